/**
 * Runs `rtsp-server.py` (GStreamer's RTSP server) for tests: picks a free port, waits for `READY`, and
 * stops or restarts it on the same port. The Python process is spawned with core's `spawnGuarded`, so the
 * kernel kills it if the test process dies (setpriv --pdeathsig), and an exit hook kills it on a normal
 * exit; tests still stop it themselves in `finally`/`afterEach`.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { spawnGuarded, terminate } from '@cctv/core';
import { freeTcpPort } from '../../../testing/helpers.js';

const SCRIPT = fileURLToPath(new URL('./rtsp-server.py', import.meta.url));
// The system Python has the GStreamer bindings (python3-gi); a pyenv python3 on PATH does not.
const PYTHON = '/usr/bin/python3';
const READY_TIMEOUT_MS = 15_000;

export interface RtspServerOptions {
  /** Mount path; default /cam. */
  path?: string;
  /** default h264. */
  codec?: 'h264' | 'h265';
  /** default 15. */
  fps?: number;
  /** Keyframe interval in frames; default fps. */
  gop?: number;
  /** Basic auth: only this user may play. */
  user?: string;
  password?: string;
  /** Fixed port; default a free one. */
  port?: number;
}

export class RtspTestServer {
  readonly port: number;
  readonly #opts: RtspServerOptions;
  #child: ChildProcess | null = null;
  #stderr: string[] = [];
  #exited: string | null = null;

  private constructor(port: number, opts: RtspServerOptions) {
    this.port = port;
    this.#opts = opts;
  }

  /** Starts a server on a free port (trying another port if it was taken meanwhile). */
  static async start(opts: RtspServerOptions = {}): Promise<RtspTestServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = new RtspTestServer(opts.port ?? (await freeTcpPort()), opts);
      try {
        await server.#spawn();
        return server;
      } catch (error) {
        lastError = error;
        await server.stop();
        if (opts.port !== undefined) break;
      }
    }
    throw lastError;
  }

  /** The stream's URL; with credentials when given (percent-encoded). */
  url(user?: string, password?: string): string {
    const auth = user !== undefined ? `${encodeURIComponent(user)}${password !== undefined ? `:${encodeURIComponent(password)}` : ''}@` : '';
    return `rtsp://${auth}127.0.0.1:${this.port}${this.#opts.path ?? '/cam'}`;
  }

  /** Process id of the running server, or null. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  get running(): boolean {
    const c = this.#child;
    return c !== null && c.exitCode === null && c.signalCode === null;
  }

  /** SIGTERM, then SIGKILL after 3 s; resolves when the process has exited. Idempotent. */
  async stop(): Promise<void> {
    const c = this.#child;
    this.#child = null;
    if (c) await terminate(c, 3000);
  }

  /** Stops the server and starts it again on the same port. */
  async restart(): Promise<void> {
    await this.stop();
    let lastError: unknown;
    // The port was just released; a few tries cover a slow release.
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.#spawn();
        return;
      } catch (error) {
        lastError = error;
        await this.stop();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw lastError;
  }

  /** What the server is doing, for failure messages: its pid and whether it still runs, how it exited, its last stderr. */
  describe(): string {
    const state = this.running ? `running as pid ${String(this.pid)} on port ${this.port}` : `not running (${this.#exited ?? 'stopped by the test'})`;
    return `rtsp-server.py ${state}; stderr: ${this.#stderr.slice(-5).join(' | ') || '(none)'}`;
  }

  /** Last lines the server wrote on stderr (for failure messages). */
  get stderr(): string[] {
    return this.#stderr;
  }

  async #spawn(): Promise<void> {
    const o = this.#opts;
    const args = [SCRIPT, '--port', String(this.port), '--path', o.path ?? '/cam', '--codec', o.codec ?? 'h264', '--fps', String(o.fps ?? 15)];
    if (o.gop !== undefined) args.push('--gop', String(o.gop));
    if (o.user !== undefined) args.push('--user', o.user, '--password', o.password ?? '');
    const child = spawnGuarded(PYTHON, args, ['ignore', 'pipe', 'pipe']);
    this.#child = child;
    this.#stderr = [];
    this.#exited = null;
    child.once('exit', (code, signal) => {
      this.#exited = `exited with code ${String(code)}, signal ${String(signal)}`;
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      this.#stderr.push(...s.split('\n').filter(Boolean));
      if (this.#stderr.length > 50) this.#stderr.splice(0, this.#stderr.length - 50);
    });
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => fail(new Error(`rtsp-server.py did not print READY within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        reject(err);
      };
      const onData = (s: string): void => {
        out += s;
        if (/^READY \d+$/m.test(out)) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
          child.stdout?.resume();
          resolve();
        }
      };
      const onExit = (code: number | null, signal: string | null): void =>
        fail(new Error(`rtsp-server.py exited before READY (code ${String(code)}, signal ${String(signal)}): ${this.#stderr.slice(-5).join(' | ')}`));
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', onData);
      child.once('exit', onExit);
      child.once('error', (err) => fail(err));
    });
  }
}
