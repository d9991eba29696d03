/**
 * Test support shared by camera-node's tests: waiting, temp folders, free ports, configs, processes and
 * log capture. Not part of the package (tsconfig excludes `testing/`).
 */
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { CameraSchema, ConfigSchema, configureLogging, type CameraConfig, type CameraInput, type Config } from '@cctv/core';

/**
 * Polls `check` every `everyMs` until it returns a truthy value; throws naming `what` after `timeoutMs`
 * (`what` may be a function, evaluated at the timeout, to describe the state then).
 */
export async function waitFor<T>(what: string | (() => string), check: () => T | Promise<T>, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what} (last: ${String(last)})`);
    }
    await sleep(everyMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A fresh folder under the system temp dir; `remove()` deletes it. */
export function tempDir(prefix = 'cctv-camera-node-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * The `cameraNode` config section with test-friendly defaults: quick retries so reconnects happen within
 * a test, and the shortest stall timeout the schema allows unless given.
 */
export function nodeSettings(over: { initialDelayMs?: number; maxDelayMs?: number; stallTimeoutMs?: number } = {}): Config['cameraNode'] {
  return ConfigSchema.parse({
    cameraNode: {
      reconnect: { initialDelayMs: over.initialDelayMs ?? 100, maxDelayMs: over.maxDelayMs ?? 400 },
      stallTimeoutMs: over.stallTimeoutMs ?? 3000,
    },
  }).cameraNode;
}

/** A camera config through the real schema (defaults applied, unknown keys rejected). */
export function cameraConfig(input: CameraInput): CameraConfig {
  return CameraSchema.parse(input);
}

/** A small synthetic camera (320×240, 15 fps, GOP 15) that costs little CPU. */
export function testCamera(id: string, over: Record<string, unknown> = {}): CameraConfig {
  return cameraConfig({ id, source: { kind: 'test', width: 320, height: 240, fps: 15, bitrateKbps: 300, ...over } as CameraInput['source'] });
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for servers that need a fixed port). */
export async function freeTcpPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A UDP port that was free a moment ago on 127.0.0.1. */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => resolve());
  });
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** The argv of a running process, from /proc; empty when it is gone. */
export function cmdline(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Whether a process no longer runs: /proc has no entry, or it is a zombie (dead, waiting for a parent
 * that will reap it; in a container the init process may never do so).
 */
export function processGone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name in parentheses, which may itself contain spaces.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/** SIGKILLs a pid if it still runs `expect` (so a reused pid of another program is never hit). */
export function killIfStill(pid: number, expect: string): void {
  if (processGone(pid)) return;
  if (!cmdline(pid).some((a) => a.includes(expect))) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/** Everything logged, one parsed JSON record per line, plus the raw text. */
export class LogCapture {
  readonly lines: string[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, cb) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) this.lines.push(line);
      cb();
    },
  });

  /** Routes every logger of this process (also those already handed out) here, at trace level. */
  install(): this {
    configureLogging({ level: 'trace', destination: this.stream as never });
    return this;
  }

  /** Puts logging back to quiet JSON on stdout at `warn`. */
  static restore(): void {
    configureLogging({ level: 'warn' });
  }

  get text(): string {
    return this.lines.join('\n');
  }

  records(): Array<Record<string, unknown>> {
    return this.lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return { msg: l };
      }
    });
  }
}

/** Logging for a test file that does not read logs: none, so the run stays readable (expected failures log errors). */
export function quietLogs(): void {
  configureLogging({ level: 'silent' });
}

/**
 * What a test opened, closed in reverse order by `closeAll()` (call it from afterEach), so a failing
 * test still stops its cameras, sockets and processes and waits for them.
 */
export class Resources {
  #fns: Array<() => unknown> = [];

  /** Registers a closer and returns `value`, for `const x = res.add(await open(), (x) => x.close())`. */
  add<T>(value: T, close: (v: T) => unknown): T {
    this.#fns.push(() => close(value));
    return value;
  }

  /** Runs a closer at cleanup. */
  defer(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  async closeAll(): Promise<void> {
    const fns = this.#fns.reverse();
    this.#fns = [];
    const errors: unknown[] = [];
    for (const fn of fns) {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length) throw new AggregateError(errors, 'cleanup failed');
  }
}
