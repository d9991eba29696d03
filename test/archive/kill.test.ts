import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '@cctv/core';
import { Archive, Storage, parsePlaylist, timeline, verifyArchive } from '@cctv/recorder';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { waitFor } from '../../sfu/src/testing/wait.js';

const ROOT = resolve(import.meta.dirname, '../..');

function startChild(args: object): { child: ChildProcess; lines: string[] } {
  const child = spawn(process.execPath, ['--import', join(ROOT, 'test/support/tsxRegister.mjs'), join(ROOT, 'test/support/recorderChild.ts'), JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CCTV_LOG_LEVEL: 'warn' },
  });
  const lines: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
  child.stderr!.resume();
  return { child, lines };
}

function tmpFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.tmp')) out.push(join(d, e.name));
    }
  };
  walk(dir);
  return out;
}

describe('recorder killed with SIGKILL in the middle of a segment', () => {
  let dir = '';
  let db: Database;
  let drop: () => Promise<void>;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cctv-kill-'));
    const t = await createTestDatabase('cctv_kill');
    drop = t.drop;
    db = await openDatabase({ url: t.url });
    await migrate(db);
    (globalThis as { dbUrl?: string }).dbUrl = t.url;
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await db?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never lists the half-written segment, resumes recording, and records the gap', async () => {
    const args = { dbUrl: (globalThis as { dbUrl?: string }).dbUrl, dir, camera: 'k1' };
    const first = startChild(args);
    children.push(first.child);
    const count = () => db.query<{ n: number }>("SELECT count(*)::int AS n FROM segments").then((r) => Number(r[0]!.n));
    let n = 0;
    await waitFor(() => first.lines.filter((l) => l.startsWith('segment')).length >= 3, 40_000, () => first.lines.join('|'));
    // Mid-segment: a second after one was entered (segments are 2 s).
    const seen = first.lines.length;
    await waitFor(() => first.lines.length > seen, 10_000);
    await new Promise((r) => setTimeout(r, 900));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    n = await count();
    const spool = join(dir, 'data', 'spool');
    // What ffmpeg had of the unfinished segment died with it (it keeps a segment in memory until it is
    // complete, then writes it as .tmp and renames it): every segment file in the killed run's folder is
    // one its playlist lists, and a leftover .tmp, if the kill hit the rename, is never taken.
    const killedRun = readdirSync(join(spool, 'k1')).sort().at(-1)!;
    const runDir = join(spool, 'k1', killedRun);
    const listed = parsePlaylist(readFileSync(join(runDir, 'index.m3u8'), 'utf8')).entries.map((e) => e.uri);
    const files = readdirSync(runDir).filter((f) => f.endsWith('.m4s'));
    for (const f of files) expect(listed).toContain(f);
    const partialRun = killedRun;
    const partialSeq = listed.length;
    const killedAt = Date.now();
    await new Promise((r) => setTimeout(r, 3000));

    const second = startChild(args);
    children.push(second.child);
    await waitFor(() => second.lines.filter((l) => l.startsWith('segment')).length >= 3, 40_000, () => second.lines.join('|'));
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));

    expect(tmpFiles(spool)).toEqual([]);
    const rows = await db.query<{ run: string; seq: number; start_ms: number; duration_ms: number }>('SELECT run, seq, start_ms, duration_ms FROM segments ORDER BY id');
    expect(rows.length).toBeGreaterThan(n);
    // The killed run's rows are exactly what its playlist listed: nothing more, nothing lost.
    expect(rows.filter((r) => r.run === partialRun).map((r) => Number(r.seq))).toEqual(listed.map((_, i) => i));
    expect(partialSeq).toBeGreaterThanOrEqual(3);
    const runs = [...new Set(rows.map((r) => r.run))];
    expect(runs.length).toBe(2);
    // The gap between the runs is in the timeline and in the gap records, with its reason.
    const archive = new Archive(db);
    const from = Number(rows[0]!.start_ms);
    const t = await timeline(archive, 'k1', from, Date.now());
    expect(t.recorded.length).toBe(2);
    const gap = t.gaps.find((g) => g.startMs >= t.recorded[0]!.endMs - 1 && g.endMs <= t.recorded[1]!.startMs + 1)!;
    expect(gap.reason).toMatch(/^recorder: not recording/);
    expect(gap.endMs - gap.startMs).toBeGreaterThan(2000);
    expect(gap.startMs).toBeLessThan(killedAt);
    // Every segment of both runs is intact.
    const storage = new Storage({ config: { id: 'nas', path: join(dir, 'nas'), requireMount: false, minFreeBytes: 0 }, db, site: 'test-site', ioTimeoutMs: 5000 });
    try {
      const r = await verifyArchive({ db, storage, spoolDir: spool });
      expect(r.findings).toEqual([]);
    } finally {
      storage.close();
    }
  });
});
