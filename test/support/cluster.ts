import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A cluster of real processes on this machine, as `npm run cluster` starts it: signaling instances,
 * SFUs and camera-nodes, each its own Node process with its own data folder, against a real Redis and
 * Postgres. Used by the cluster tests and by bench:failover.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REGISTER = fileURLToPath(new URL('./tsxRegister.mjs', import.meta.url));
const CLI_SRC = join(ROOT, 'signaling/src/cli.ts');
const CLI_DIST = join(ROOT, 'signaling/dist/cli.js');

export const ADMIN_PASSWORD = 'cluster-admin-password';
const ENROLL_SECRET = 'cluster-enrolment-secret-0123456789';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ProcSpec {
  id: string;
  roles: Array<'signaling' | 'sfu' | 'camera-node' | 'recorder' | 'detector'>;
  labels?: Record<string, string>;
  env?: Record<string, string>;
}

/** One process of the cluster; it can be killed and started again on the same data folder. */
export class Proc {
  readonly spec: ProcSpec;
  readonly dataDir: string;
  readonly port: number | null;
  child: ChildProcess | null = null;
  /** The last lines it printed (stdout and stderr), for failure messages. */
  readonly output: string[] = [];
  readonly #env: () => Record<string, string>;
  readonly #fromSource: boolean;
  #exited: Promise<void> = Promise.resolve();

  constructor(spec: ProcSpec, dataDir: string, port: number | null, env: () => Record<string, string>, fromSource: boolean) {
    this.spec = spec;
    this.dataDir = dataDir;
    this.port = port;
    this.#env = env;
    this.#fromSource = fromSource;
  }

  get id(): string {
    return this.spec.id;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  start(): void {
    if (this.running) throw new Error(`${this.id} is running`);
    const args = this.#fromSource ? ['--import', REGISTER, CLI_SRC] : [CLI_DIST];
    const labels = Object.entries(this.spec.labels ?? {}).map(([k, v]) => [`CCTV_NODE__LABELS__${k.toUpperCase()}`, v]);
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        ...this.#env(),
        ...Object.fromEntries(labels),
        CCTV_NODE_ID: this.id,
        CCTV_ROLES: this.spec.roles.join(','),
        CCTV_DATA_DIR: this.dataDir,
        ...(this.port ? { CCTV_PORT: String(this.port) } : {}),
        ...this.spec.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) if (line.trim()) this.output.push(line);
      if (this.output.length > 4000) this.output.splice(0, this.output.length - 4000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.child = child;
    this.#exited = new Promise((r) => child.once('exit', () => r()));
  }

  /** SIGKILL: no goodbye, as when a machine loses power. */
  async kill9(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.#exited;
  }

  /** SIGSTOP: the process hangs with its connections open (a frozen machine); `thaw()` resumes it. */
  freeze(): void {
    if (this.running) this.child!.kill('SIGSTOP');
  }

  thaw(): void {
    if (this.running) this.child!.kill('SIGCONT');
  }

  /** JSON log lines it printed with this message, as objects. */
  logs(msg: string | RegExp): Array<Record<string, unknown> & { time: string }> {
    const out: Array<Record<string, unknown> & { time: string }> = [];
    for (const line of this.output) {
      if (!line.startsWith('{')) continue;
      try {
        const o = JSON.parse(line) as Record<string, unknown> & { time: string; msg?: string };
        if (typeof o.msg === 'string' && (typeof msg === 'string' ? o.msg === msg : msg.test(o.msg))) out.push(o);
      } catch {
        // not a log line
      }
    }
    return out;
  }

  async stop(): Promise<void> {
    this.thaw();
    if (!this.running) return;
    this.child!.kill('SIGTERM');
    const t = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(t);
  }

  tail(n = 30): string {
    return this.output.slice(-n).join('\n');
  }
}

export interface ClusterOptions {
  redisUrl: string;
  databaseUrl: string;
  /** Key prefix in Redis, unique per test. */
  prefix: string;
  /** Run the TypeScript sources (tests) or the build (benchmarks); default sources. */
  fromSource?: boolean;
  /** Node lease, ms. */
  leaseMs?: number;
  env?: Record<string, string>;
}

/** Processes of one cluster, started and stopped together. */
export class TestCluster {
  readonly procs = new Map<string, Proc>();
  readonly dir: string;
  readonly #o: ClusterOptions;
  #token: string | null = null;

  constructor(o: ClusterOptions) {
    this.#o = o;
    this.dir = mkdtempSync(join(tmpdir(), 'cctv-cluster-'));
  }

  /** Environment common to every process. */
  env(): Record<string, string> {
    const signaling = [...this.procs.values()].filter((p) => p.spec.roles.includes('signaling'));
    return {
      REDIS_URL: this.#o.redisUrl,
      CCTV_REDIS__PREFIX: this.#o.prefix,
      CCTV_HOST: '127.0.0.1',
      CCTV_HTTP__TLS__MODE: 'off',
      CCTV_ADMIN_PASSWORD: ADMIN_PASSWORD,
      CCTV_ENROLL_SECRET: ENROLL_SECRET,
      CCTV_DEMO_CAMERA: 'false',
      CCTV_LOG_LEVEL: 'info',
      CCTV_LOG_FORMAT: 'json',
      CCTV_SFU__ICE__LOOPBACK: 'true',
      CCTV_SFU__ICE__HOST_ADDRESSES: '127.0.0.1',
      CCTV_CLUSTER__LEASE_MS: String(this.#o.leaseMs ?? 3000),
      ...(signaling[0] ? { CCTV_MASTER_URL: signaling[0].url } : {}),
      ...this.#o.env,
    };
  }

  /** Adds a process (and starts it). Signaling instances get a port and the database. */
  async add(spec: ProcSpec, start = true): Promise<Proc> {
    const signaling = spec.roles.includes('signaling');
    const dataDir = join(this.dir, spec.id);
    mkdirSync(dataDir, { recursive: true });
    const port = signaling ? await freePort() : null;
    const p = new Proc(
      { ...spec, env: { ...(signaling ? { DATABASE_URL: this.#o.databaseUrl } : {}), ...spec.env } },
      dataDir,
      port,
      () => this.env(),
      this.#o.fromSource ?? true,
    );
    this.procs.set(spec.id, p);
    if (start) {
      p.start();
      if (signaling) await this.waitHealthy(p);
    }
    return p;
  }

  get(id: string): Proc {
    const p = this.procs.get(id);
    if (!p) throw new Error(`no process ${id}`);
    return p;
  }

  /** A running signaling instance (the first, unless it is down). */
  signaling(): Proc {
    const p = [...this.procs.values()].find((x) => x.spec.roles.includes('signaling') && x.running);
    if (!p) throw new Error('no signaling instance is running');
    return p;
  }

  async waitHealthy(p: Proc, ms = 30_000): Promise<void> {
    await until(async () => {
      if (!p.running) throw new Error(`${p.id} exited:\n${p.tail()}`);
      const r = await fetch(`${p.url}/api/health`).catch(() => null);
      return r?.ok;
    }, `${p.id} healthy`, ms);
  }

  /** An admin Bearer token (made once, through any instance). */
  async token(): Promise<string> {
    if (this.#token) return this.#token;
    const r = await fetch(`${this.signaling().url}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    if (r.status !== 200) throw new Error(`token: ${r.status} ${await r.text()}`);
    this.#token = ((await r.json()) as { token: string }).token;
    return this.#token;
  }

  /** A JSON API call through `via` (default: a running signaling instance). */
  async api<T = unknown>(path: string, init: { method?: string; body?: unknown; via?: Proc } = {}): Promise<{ status: number; body: T }> {
    const via = init.via ?? this.signaling();
    const r = await fetch(`${via.url}${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${await this.token()}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
  }

  async placement(camera: string): Promise<{ cameraNode: string | null; sfu: string | null; recorder: string | null; detector: string | null } | null> {
    const r = await this.api<{ placement: { cameraNode: string | null; sfu: string | null; recorder: string | null; detector: string | null } | null }>(`/api/cameras/${camera}`);
    return r.body?.placement ?? null;
  }

  /** Prints every process's last lines (for a failing test). */
  dump(): string {
    return [...this.procs.values()].map((p) => `--- ${p.id} (${p.running ? 'running' : 'stopped'})\n${p.tail(40)}`).join('\n');
  }

  async close(): Promise<void> {
    await Promise.all([...this.procs.values()].map((p) => p.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function until<T>(fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, what: string, ms = 15_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
