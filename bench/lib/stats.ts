import { readFileSync } from 'node:fs';

/** Percentile by nearest rank (p in 0..1) of an unsorted list; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

export function summary(values: readonly number[]): { p50: number; p95: number; p99: number; max: number; n: number } {
  return { p50: percentile(values, 0.5), p95: percentile(values, 0.95), p99: percentile(values, 0.99), max: percentile(values, 1), n: values.length };
}

const fmt = (v: number | string): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1)) : v);

/** Prints one `RESULT <name> key=value …` line, the form every benchmark of the project ends with. */
export function result(name: string, fields: Record<string, number | string>): void {
  process.stdout.write(`RESULT ${name} ${Object.entries(fields).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}\n`);
}

/** CPU time (user + system) of a process in ms, from /proc (Linux). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 (1-based) of /proc/<pid>/stat, in clock ticks (100 Hz on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}
