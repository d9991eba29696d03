import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { createClient } from 'redis';
import YAML from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_POSTGRES_ADMIN_URL } from '../../core/src/db/testing/testDatabase.js';
import { until } from '../support/cluster.js';

// `npm run cluster` reads compose.yaml and starts its services as processes on this machine. Started
// here on its own ports, database and Redis prefix, it must bring up exactly the services of the file as
// alive nodes of one cluster, and leave no process behind when stopped like Ctrl-C does.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REDIS_URL = 'redis://127.0.0.1:6379';
const ADMIN_PASSWORD = 'script-test-admin-password';

interface ComposeService {
  image?: string;
  environment?: Record<string, string | number | boolean | null>;
}

/** The CCTV services of compose.yaml (every one but Redis and Postgres), with their environments. */
function composeServices(): Map<string, Record<string, string>> {
  const doc = YAML.parse(readFileSync(join(ROOT, 'compose.yaml'), 'utf8'), { merge: true }) as { services: Record<string, ComposeService> };
  const out = new Map<string, Record<string, string>>();
  for (const [name, s] of Object.entries(doc.services)) {
    if (s.image && /^(redis|postgres):/.test(s.image)) continue;
    out.set(name, Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, String(v)])));
  }
  return out;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '0.0.0.0', () => s.close(() => resolve(true)));
  });
}

/**
 * An offset that puts every HTTP port of the file on a free port, below the ephemeral range that other
 * tests' random ports come from (the ICE ranges move with it and stay below 65536).
 */
async function freeOffset(ports: number[]): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const offset = 10_000 + Math.floor(Math.random() * 14_000);
    if ((await Promise.all(ports.map((p) => portFree(p + offset)))).every(Boolean)) return offset;
  }
  throw new Error('no free ports for the cluster');
}

/** Every process below `pid`, from /proc: pid → command name. */
function descendants(pid: number): Map<number, string> {
  const parent = new Map<number, { ppid: number; comm: string }>();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      parent.set(Number(e), { ppid, comm: stat.slice(stat.indexOf('(') + 1, close) });
    } catch {
      // Gone meanwhile.
    }
  }
  const out = new Map<number, string>();
  let grew = true;
  while (grew) {
    grew = false;
    for (const [p, { ppid, comm }] of parent) {
      if (!out.has(p) && (ppid === pid || out.has(ppid))) {
        out.set(p, comm);
        grew = true;
      }
    }
  }
  return out;
}

/** The command name of a running process, or null. */
function commandOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    // A zombie has ended; it only waits to be reaped.
    return stat[close + 2] === 'Z' ? null : stat.slice(stat.indexOf('(') + 1, close);
  } catch {
    return null;
  }
}

/** Processes whose environment names `text` (every process of the cluster has its data folder there). */
function processesMentioning(text: string): number[] {
  const found: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/environ`).includes(text)) found.push(Number(e));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

const services = composeServices();
const dataDir = mkdtempSync(join(tmpdir(), 'cctv-cluster-script-'));
const prefix = `clusterscript-${randomBytes(4).toString('hex')}`;
const database = `cctv_test_cluster_${randomBytes(6).toString('hex')}`;
const databaseUrl = (() => {
  const u = new URL(TEST_POSTGRES_ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
})();
let script: ChildProcess | null = null;
const output: string[] = [];
const tail = () => output.join('').split('\n').slice(-60).join('\n');

afterAll(async () => {
  if (script && script.exitCode === null && script.signalCode === null) {
    for (const pid of descendants(script.pid!).keys()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    script.kill('SIGKILL');
  }
  rmSync(dataDir, { recursive: true, force: true });
  const admin = postgres(TEST_POSTGRES_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`).finally(() => admin.end({ timeout: 5 }));
  const redis = createClient({ url: REDIS_URL });
  await redis.connect();
  for await (const keys of redis.scanIterator({ MATCH: `${prefix}:*`, COUNT: 500 })) if (keys.length) await redis.del(keys);
  await redis.close();
}, 30_000);

describe('npm run cluster', () => {
  it('starts the services of compose.yaml as one cluster and stops them all', { timeout: 90_000 }, async () => {
    const names = [...services.keys()].sort();
    const signalingPorts = [...services.values()].filter((e) => e.CCTV_ROLES?.includes('signaling')).map((e) => Number(e.CCTV_PORT ?? 8080));
    expect(names.length).toBeGreaterThan(0);
    expect(signalingPorts.length).toBeGreaterThan(0);
    const offset = await freeOffset(signalingPorts);
    const first = `http://127.0.0.1:${signalingPorts[0]! + offset}`;

    // Only what the script needs from this environment: a developer's CCTV_* settings stay out.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CCTV_|DATABASE_URL$|REDIS_URL$)/.test(k)));
    script = spawn(process.execPath, [join(ROOT, 'scripts/cluster.mjs'), '--no-build', '--data-dir', dataDir, '--port-offset', String(offset)], {
      cwd: ROOT,
      env: { ...env, REDIS_URL, DATABASE_URL: databaseUrl, CCTV_REDIS__PREFIX: prefix, CCTV_ADMIN_PASSWORD: ADMIN_PASSWORD, CCTV_DEMO_CAMERA: 'false', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    script.stdout!.on('data', (d: Buffer) => output.push(d.toString('utf8')));
    script.stderr!.on('data', (d: Buffer) => output.push(d.toString('utf8')));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => script!.once('exit', (code, signal) => r({ code, signal })));
    const running = () => script!.exitCode === null && script!.signalCode === null;
    const explain = (error: Error) => {
      throw new Error(`${error.message}\n--- npm run cluster said:\n${tail()}`);
    };

    try {
      // 1. Signaling answers, and signs the admin in with the password given through the environment.
      await until(async () => {
        if (!running()) throw new Error('the script exited');
        return (await fetch(`${first}/api/health`).catch(() => null))?.ok;
      }, 'signaling1 healthy', 30_000).catch(explain);
      const login = await fetch(`${first}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
      expect(login.status).toBe(200);
      const { token } = (await login.json()) as { token: string };
      const api = async <T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> => {
        const r = await fetch(`${first}${path}`, {
          method: init.method ?? 'GET',
          headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        });
        const text = await r.text();
        return { status: r.status, body: (text ? JSON.parse(text) : null) as T };
      };

      // 2. Every service of compose.yaml is an alive node, and nothing else is: the same topology.
      const nodes = await until(async () => {
        if (!running()) throw new Error('the script exited');
        const list = (await api<Array<{ id: string; state: string; roles: string[] }>>('/api/nodes')).body;
        return list.length >= names.length && list.every((n) => n.state === 'alive') ? list : null;
      }, 'every compose service alive', 45_000).catch(explain);
      expect(nodes.map((n) => n.id).sort()).toEqual(names);
      for (const n of nodes) expect(n.roles.join(',')).toBe(services.get(n.id)!.CCTV_ROLES);

      // 3. A camera runs on a camera-node, so that stopping has an ffmpeg to clean up too.
      expect((await api('/api/cameras', { method: 'POST', body: { id: 'script-test', source: { kind: 'test', width: 320, height: 180, fps: 15, bitrateKbps: 300 } } })).status).toBe(201);
      await until(async () => (await api<{ status: { state: string } }>('/api/cameras/script-test')).body.status.state === 'live', 'the camera live', 30_000).catch(explain);
    } catch (error) {
      script.kill('SIGINT');
      throw error;
    }

    // 4. Ctrl-C: every process goes, ffmpeg included.
    const tree = descendants(script.pid!);
    // One node process per service, and each recorder's storage worker.
    const recorders = [...services.values()].filter((e) => e.CCTV_ROLES?.split(',').includes('recorder')).length;
    expect([...tree.values()].filter((c) => c === 'node').length).toBe(names.length + recorders);
    expect([...tree.values()]).toContain('ffmpeg');
    script.kill('SIGINT');
    const end = await exited;
    expect(end, tail()).toEqual({ code: 0, signal: null });
    expect(tail()).toContain('[cluster] stopped');
    const left = [...tree].filter(([pid, comm]) => commandOf(pid) === comm).map(([pid]) => pid);
    expect(left, `still running: ${left.map((p) => `${p} ${tree.get(p)}`).join(', ')}`).toEqual([]);
    expect(processesMentioning(dataDir)).toEqual([]);
  });
});
