import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { InvalidStateError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import type { Logger } from '../log.js';
import { scrubSecrets } from '../log.js';

/** One process of a pipeline: its stdout feeds the next one's stdin. */
export interface ProcessSpec {
  /** Executable name or path. */
  command: string;
  /** Arguments, passed without a shell. */
  args: string[];
  /** Give the first process a writable stdin (for raw frames written by this process); default false. */
  stdinPipe?: boolean;
}

/** Lifecycle states of a supervised pipeline. */
export const SupervisorState = {
  Idle: 'idle',
  Running: 'running',
  Backoff: 'backoff',
  Stopped: 'stopped',
  Closed: 'closed',
} as const;
export type SupervisorState = (typeof SupervisorState)[keyof typeof SupervisorState];

/** Why a pipeline ended: the first process that exited, and the last lines it wrote on stderr. */
export interface ExitInfo {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Last stderr lines of every process, secrets scrubbed. */
  stderr: string[];
  /** How long the pipeline ran, in ms. */
  ranMs: number;
}

export interface SupervisorOptions {
  /** Used in logs (`camera front`). */
  name: string;
  /** Builds the pipeline to run; called again at every restart so it can pick new ports or arguments. */
  launch: () => ProcessSpec[];
  /** Delay before the first restart, in ms; doubled at every failure up to maxMs. */
  initialDelayMs: number;
  /** Largest delay between restarts, in ms. */
  maxDelayMs: number;
  /** Strings scrubbed from every logged line (passwords, tokens). */
  secrets?: string[];
  logger: Logger;
  /** Called with the spawned processes; the first one's stdin is writable when it asked for a pipe. */
  onSpawn?: (procs: ChildProcess[], stdin: Writable | null) => void;
}

export interface SupervisorEvents extends Record<string, unknown[]> {
  state: [SupervisorState];
  spawn: [number[]];
  exit: [ExitInfo];
}

const STDERR_LINES = 20;
const STOP_GRACE_MS = 2000;

// Every child of this process, so that none outlives it even when it exits abruptly.
const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) {
      try {
        c.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

let setprivPath: string | null | undefined;
/**
 * `setpriv --pdeathsig KILL` makes the kernel kill a child when this process dies, even by SIGKILL
 * (prctl PR_SET_PDEATHSIG survives execve). Without it (not Linux), the exit hook is the only guard.
 */
function deathSignalWrapper(): string | null {
  if (setprivPath === undefined) {
    setprivPath = null;
    for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) {
      if (existsSync(p)) {
        try {
          execFileSync(p, ['--pdeathsig', 'KILL', '--', 'true'], { stdio: 'ignore', timeout: 2000 });
          setprivPath = p;
        } catch {
          // not usable here
        }
        break;
      }
    }
  }
  return setprivPath;
}

/** Spawns a command so that it dies with this process, and is tracked for the exit hook. */
export function spawnGuarded(command: string, args: string[], stdio: Array<'pipe' | 'ignore' | 'inherit' | Writable | NodeJS.ReadableStream | null>): ChildProcess {
  installExitHook();
  const wrapper = process.platform === 'linux' ? deathSignalWrapper() : null;
  const child = wrapper
    ? spawn(wrapper, ['--pdeathsig', 'KILL', '--', command, ...args], { stdio: stdio as never })
    : spawn(command, args, { stdio: stdio as never });
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  child.once('error', () => liveChildren.delete(child));
  return child;
}

/** Number of child processes started by spawnGuarded that are still alive (for tests and leak checks). */
export function liveChildCount(): number {
  return liveChildren.size;
}

/**
 * Runs a pipeline of processes (usually one ffmpeg) and keeps it running: when any process exits,
 * the others are killed and the pipeline restarts after a capped exponential backoff.
 * `stop()` ends it and resolves when every process has exited.
 */
export class Supervisor extends TypedEmitter<SupervisorEvents> {
  readonly #opts: SupervisorOptions;
  #state: SupervisorState = SupervisorState.Idle;
  #procs: ChildProcess[] = [];
  #delay: number;
  #timer: NodeJS.Timeout | undefined;
  #startedAt = 0;
  #restarts = 0;
  #stderr = new Map<ChildProcess, string[]>();
  #lastExit: ExitInfo | undefined;

  constructor(opts: SupervisorOptions) {
    super();
    this.#opts = opts;
    this.#delay = opts.initialDelayMs;
  }

  /** Current state. */
  get state(): SupervisorState {
    return this.#state;
  }

  /** Times the pipeline was restarted after an exit. */
  get restarts(): number {
    return this.#restarts;
  }

  /** How the last run ended, if it did. */
  get lastExit(): ExitInfo | undefined {
    return this.#lastExit;
  }

  /** Process ids of the running pipeline (empty when not running). */
  get pids(): number[] {
    return this.#procs.map((p) => p.pid).filter((p): p is number => p !== undefined);
  }

  /** Starts the pipeline now. */
  start(): void {
    this.#assertOpen();
    if (this.#state === SupervisorState.Running || this.#state === SupervisorState.Backoff) return;
    this.#delay = this.#opts.initialDelayMs;
    this.#spawn();
  }

  /** Resets the backoff: the source is delivering, so its next failure retries quickly again. */
  markHealthy(): void {
    this.#delay = this.#opts.initialDelayMs;
  }

  /** Kills the running pipeline so it restarts (after the current backoff delay); `reason` is logged. */
  restart(reason: string): void {
    this.#assertOpen();
    if (this.#state !== SupervisorState.Running) return;
    this.#opts.logger.warn({ reason }, `${this.#opts.name}: restarting`);
    for (const p of this.#procs) p.kill('SIGKILL');
  }

  /** Ends the pipeline; resolves when every process has exited. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === SupervisorState.Closed) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const procs = this.#procs;
    this.#setState(SupervisorState.Stopped);
    // A process reading frames from our pipe sits in read() and only notices SIGTERM after its next
    // frame; end of input lets it finish at once instead of waiting out the grace period for SIGKILL.
    for (const p of procs) p.stdin?.end();
    await Promise.all(procs.map((p) => terminate(p)));
    this.#procs = [];
  }

  /** Stops and releases listeners; afterwards start() throws InvalidStateError. */
  async close(): Promise<void> {
    if (this.#state === SupervisorState.Closed) return;
    await this.stop();
    this.#setState(SupervisorState.Closed);
    this.removeAllListeners();
  }

  #assertOpen(): void {
    if (this.#state === SupervisorState.Closed) throw new InvalidStateError(`${this.#opts.name}: supervisor is closed`);
  }

  #setState(s: SupervisorState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.safeEmit('state', s);
  }

  #spawn(): void {
    const { logger, name } = this.#opts;
    let specs: ProcessSpec[];
    try {
      specs = this.#opts.launch();
    } catch (error) {
      logger.error({ err: error }, `${name}: cannot build the command`);
      // Reported like an exit, so the owner learns why nothing runs (e.g. an executable is missing).
      const info: ExitInfo = { command: '', code: null, signal: null, stderr: [scrubSecrets((error as Error).message, this.#opts.secrets ?? [])], ranMs: 0 };
      this.#lastExit = info;
      const before = this.#state;
      this.safeEmit('exit', info);
      // A listener that stopped the supervisor meanwhile wins.
      if (this.#state !== before) return;
      this.#scheduleRestart(info);
      return;
    }
    const procs: ChildProcess[] = [];
    let prevStdout: NodeJS.ReadableStream | null = null;
    for (const [i, spec] of specs.entries()) {
      const last = i === specs.length - 1;
      const stdin = i === 0 ? (spec.stdinPipe ? 'pipe' : 'ignore') : prevStdout;
      const child = spawnGuarded(spec.command, spec.args, [stdin, last ? 'ignore' : 'pipe', 'pipe']);
      procs.push(child);
      prevStdout = child.stdout;
      this.#watchStderr(child);
    }
    this.#procs = procs;
    this.#startedAt = Date.now();
    this.#setState(SupervisorState.Running);
    let ended = false;
    const onEnd = (child: ChildProcess, spec: ProcessSpec, code: number | null, signal: NodeJS.Signals | null, err?: Error) => {
      if (ended || this.#procs !== procs) return;
      ended = true;
      for (const p of procs) if (p !== child) p.kill('SIGKILL');
      const stderr = procs.flatMap((p) => this.#stderr.get(p) ?? []);
      if (err) stderr.push(err.message);
      const info: ExitInfo = { command: spec.command, code, signal, stderr, ranMs: Date.now() - this.#startedAt };
      this.#lastExit = info;
      this.safeEmit('exit', info);
      if (this.#state === SupervisorState.Running) this.#scheduleRestart(info);
    };
    procs.forEach((child, i) => {
      const spec = specs[i]!;
      // 'close' rather than 'exit': it comes after stderr has drained, so the tail holds the reason.
      child.once('close', (code, signal) => onEnd(child, spec, code, signal));
      child.once('error', (err) => onEnd(child, spec, null, null, err));
    });
    const stdin = specs[0]?.stdinPipe ? (procs[0]?.stdin ?? null) : null;
    // A write to a dead child's stdin fails with EPIPE; the exit handler restarts it.
    stdin?.on('error', () => {});
    logger.debug({ pids: this.pids }, `${name}: started`);
    this.safeEmit('spawn', this.pids);
    this.#opts.onSpawn?.(procs, stdin);
  }

  #scheduleRestart(info: ExitInfo): void {
    const { logger, name } = this.#opts;
    this.#procs = [];
    const delay = this.#delay;
    this.#delay = Math.min(this.#delay * 2, this.#opts.maxDelayMs);
    this.#restarts++;
    logger.warn(
      { command: info.command, code: info.code, signal: info.signal, ranMs: info.ranMs, retryInMs: delay, stderr: info.stderr.slice(-5) },
      `${name}: exited, restarting`,
    );
    this.#setState(SupervisorState.Backoff);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === SupervisorState.Backoff) this.#spawn();
    }, delay);
  }

  #watchStderr(child: ChildProcess): void {
    const lines: string[] = [];
    this.#stderr.set(child, lines);
    let partial = '';
    const secrets = this.#opts.secrets ?? [];
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const parts = (partial + chunk).split(/\r?\n|\r/);
      partial = parts.pop() ?? '';
      for (const raw of parts) {
        const line = scrubSecrets(raw.trim(), secrets);
        if (!line) continue;
        lines.push(line);
        if (lines.length > STDERR_LINES) lines.shift();
        this.#opts.logger.trace({ pid: child.pid }, line);
      }
    });
    child.once('close', () => setTimeout(() => this.#stderr.delete(child), 0));
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the process has exited. */
export function terminate(child: ChildProcess, graceMs = STOP_GRACE_MS): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
