import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, until } from './cluster.js';

/**
 * A Redis and a Postgres of a test's own, on free ports of 127.0.0.1, for tests that stop and restart
 * them (the machine's shared servers must stay up for the other tests).
 */

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

export interface Service {
  url: string;
  port: number;
  start(): Promise<void>;
  /** Stops it (Redis: SIGKILL, its data is gone as with `--save ""`; Postgres: fast shutdown). */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function privateRedis(): Promise<Service> {
  const port = await freePort();
  let child: ChildProcess | null = null;
  const svc: Service = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
      await until(() => portOpen(port), `redis on ${port}`, 10_000, 50);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await gone;
      await until(async () => !(await portOpen(port)), 'redis stopped', 5000, 50);
    },
    close: () => svc.stop(),
  };
  await svc.start();
  return svc;
}

function pgBin(name: string): string {
  const dir = readdirSync('/usr/lib/postgresql').sort().pop();
  if (!dir) throw new Error('PostgreSQL server binaries are not installed (apt-get install postgresql)');
  return join('/usr/lib/postgresql', dir, 'bin', name);
}

export async function privatePostgres(): Promise<Service> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cctv-pg-'));
  const data = join(dir, 'data');
  // Postgres refuses to run as root: run it as the postgres user then.
  const root = userInfo().uid === 0;
  const as = (cmd: string, args: string[]) => (root ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' }) : spawnSync(cmd, args, { encoding: 'utf8' }));
  if (root) chownSync(dir, Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim()), Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim()));
  const init = as(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  const ctl = (args: string[]) => {
    const r = as(pgBin('pg_ctl'), ['-D', data, '-w', '-t', '30', ...args]);
    if (r.status !== 0) throw new Error(`pg_ctl ${args[0]} failed: ${r.stderr}${r.stdout}`);
  };
  const opts = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=50`;
  const svc: Service = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async start() {
      ctl(['-o', opts, '-l', join(dir, 'log'), 'start']);
    },
    async stop() {
      ctl(['-m', 'fast', 'stop']);
    },
    async close() {
      try {
        ctl(['-m', 'immediate', 'stop']);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await svc.start();
  return svc;
}
