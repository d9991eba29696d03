// `npm run bench:auth`: what the access layer costs and what it lets through. Ends with RESULT lines.
//   - argon2id: time to hash and to verify a password with the parameters in use;
//   - authorised API calls (GET /api/cameras with a Bearer token): requests/s and latency, with the
//     limits on the in-process bus and on Redis;
//   - a password-guessing run from one address: attempts that reach the password check, refused ones;
//   - the audit log: appends per second on the embedded database and on Postgres.
// Options: --seconds N (per measurement, default 5), --concurrency N (default 16).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hash, verify } from '@node-rs/argon2';
import { migrate, openDatabase } from '@cctv/core';
import { AuditLog } from '../../signaling/src/auth/audit.js';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { startServer } from '../lib/server.js';
import { result, summary } from '../lib/stats.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const SECONDS = Number(args.get('seconds') ?? 5);
const CONCURRENCY = Number(args.get('concurrency') ?? 16);

/** Runs `fn` from `CONCURRENCY` workers for SECONDS; returns latencies (ms) and statuses. */
async function load(fn: () => Promise<number>): Promise<{ ms: number[]; statuses: Map<number, number>; elapsedS: number }> {
  const ms: number[] = [];
  const statuses = new Map<number, number>();
  const end = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const status = await fn();
      ms.push(performance.now() - t);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  }));
  return { ms, statuses, elapsedS: (performance.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  // argon2id with the parameters of signaling/src/auth/users.ts (OWASP's minimum).
  const params = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
  const hashes: number[] = [];
  const verifies: number[] = [];
  let h = '';
  for (let i = 0; i < 10; i++) {
    let t = performance.now();
    h = await hash('a password of some length', params);
    hashes.push(performance.now() - t);
    t = performance.now();
    await verify(h, 'a password of some length');
    verifies.push(performance.now() - t);
  }
  result('argon2id_ms', { hash_p50: summary(hashes).p50, verify_p50: summary(verifies).p50 });

  for (const bus of ['memory', 'redis'] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'cctv-bench-auth-'));
    const s = await startServer(dir, {
      adminPassword: 'bench-password-1',
      env: {
        ...(bus === 'redis' ? { REDIS_URL: 'redis://127.0.0.1:6379', CCTV_REDIS__PREFIX: `bench-${Date.now()}` } : {}),
        CCTV_SECURITY__LIMITS__API_PER_PRINCIPAL: '[{"max":1000000,"windowS":60}]',
      },
    });
    try {
      const { token } = (await (await fetch(`${s.base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'bench-password-1' }) })).json()) as { token: string };
      const headers = { authorization: `Bearer ${token}` };
      const api = await load(async () => {
        const r = await fetch(`${s.base}/api/cameras`, { headers });
        await r.arrayBuffer();
        return r.status;
      });
      const sum = summary(api.ms);
      result('api_authorised', { bus, requests_per_s: api.ms.length / api.elapsedS, p50_ms: sum.p50, p95_ms: sum.p95, ok: api.statuses.get(200) ?? 0 });

      // Guessing passwords from one address, against the default limits (3/s, 10/min, 50/h per address).
      const guess = await load(async () => {
        const r = await fetch(`${s.base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `user${Math.floor(Math.random() * 1e6)}`, password: 'guess-guess-guess' }) });
        await r.arrayBuffer();
        return r.status;
      });
      result('signin_guessing', { bus, attempts: guess.ms.length, checked: guess.statuses.get(401) ?? 0, refused_429: guess.statuses.get(429) ?? 0, seconds: Math.round(guess.elapsedS) });
    } finally {
      await s.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  for (const kind of ['pglite', 'postgres'] as const) {
    const t = kind === 'postgres' ? await createTestDatabase('cctv_bench') : null;
    const db = await openDatabase(t ? { url: t.url } : { dataDir: 'memory://' });
    try {
      await migrate(db);
      const audit = new AuditLog(db);
      const n = 500;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await audit.append({ actor: 'bench', actorKind: 'user', action: 'view.live_started', cameraId: `cam${i % 10}`, ip: '127.0.0.1' });
      const appendS = (performance.now() - t0) / 1000;
      const v0 = performance.now();
      const v = await audit.verify();
      result('audit', { db: kind, appends_per_s: n / appendS, verify_ms_per_1000: ((performance.now() - v0) / v.entries) * 1000, ok: v.ok ? 1 : 0 });
    } finally {
      await db.close();
      await t?.drop();
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
