import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@cctv/core';
import { Archive, RANGE_JOIN_MS, Storage, timeline, verifyArchive } from '@cctv/recorder';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { TestCluster, until } from '../support/cluster.js';

// Two recorders of their own, sharing one storage (the NAS), in a cluster of processes: the master places
// the camera on one and subscribes the SFU to it; killed with SIGKILL, its camera goes to the other.

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let cluster: TestCluster;
let nas = '';
const CAMERA = { id: 'cam-r', source: { kind: 'test', width: 320, height: 180, fps: 15, bitrateKbps: 300 } };
const storedBy = (recorder: string) =>
  db.query<{ n: number }>("SELECT count(*)::int AS n FROM segments WHERE recorder = $1 AND state = 'stored'", [recorder]).then((r) => Number(r[0]!.n));

beforeAll(async () => {
  testDb = await createTestDatabase('cctv_cluster_rec');
  cluster = new TestCluster({ redisUrl: 'redis://127.0.0.1:6379', databaseUrl: testDb.url, prefix: `rec-${randomBytes(4).toString('hex')}` });
  nas = join(cluster.dir, 'nas');
  mkdirSync(nas);
  const recorderEnv = { DATABASE_URL: testDb.url, CCTV_NAS_DIR: nas, CCTV_RECORDER__SEGMENT_SECONDS: '1' };
  // The signaling instance reads recordings from the NAS too (mounted on its machine as well).
  await cluster.add({ id: 'sig1', roles: ['signaling'], env: { CCTV_NAS_DIR: nas } });
  await cluster.add({ id: 'sfu1', roles: ['sfu'] });
  await cluster.add({ id: 'cn1', roles: ['camera-node'] });
  await cluster.add({ id: 'rec1', roles: ['recorder'], env: recorderEnv });
  await cluster.add({ id: 'rec2', roles: ['recorder'], env: recorderEnv });
  db = await openDatabase({ url: testDb.url });
  await until(async () => (await cluster.api<Array<{ state: string }>>('/api/nodes')).body.filter((n) => n.state === 'alive').length === 5, 'five nodes alive', 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${cluster.dump()}`);
  });
  expect((await cluster.api('/api/cameras', { method: 'POST', body: CAMERA })).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await cluster?.close();
  await db?.close();
  await testDb?.drop();
});

describe('recorders in a cluster', () => {
  it('records on the recorder the master chose; when it is killed, the other takes the camera over and the gap is recorded', async () => {
    const first = (await until(async () => (await cluster.placement('cam-r'))?.recorder, 'a recorder placed', 30_000))!;
    const other = first === 'rec1' ? 'rec2' : 'rec1';
    await until(async () => (await storedBy(first)) >= 3, `3 segments stored by ${first}`, 40_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${cluster.dump()}`);
    });
    expect(await storedBy(other)).toBe(0);
    await cluster.procs.get(first)!.kill9();
    const killedAt = Date.now();
    await until(async () => (await cluster.placement('cam-r'))?.recorder === other, `the camera placed on ${other}`, 15_000);
    const moved = Date.now() - killedAt;
    await until(async () => (await storedBy(other)) >= 3, `3 segments stored by ${other}`, 40_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${cluster.dump()}`);
    });
    const firstRow = await db.query<{ start_ms: number }>("SELECT min(start_ms) AS start_ms FROM segments WHERE recorder = $1", [other]);
    const resumedAfter = Number(firstRow[0]!.start_ms) - killedAt;
    // The dead recorder comes back: it keeps no camera (placements stick) but sends what it had spooled.
    cluster.procs.get(first)!.start();
    await until(async () => {
      const r = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM segments WHERE state = 'spool' AND recorder = $1", [first]);
      return Number(r[0]!.n) === 0;
    }, `${first}'s spool emptied`, 30_000);
    expect((await cluster.placement('cam-r'))?.recorder).toBe(other);

    // What the kill cost the archive: from the end of the last segment the killed recorder finished to
    // the start of the first the other made (negative: they overlap).
    const lastOfFirst = await db.query<{ e: number }>('SELECT max(start_ms + duration_ms) AS e FROM segments WHERE recorder = $1', [first]);
    const hole = Number(firstRow[0]!.start_ms) - Number(lastOfFirst[0]!.e);
    const archive = new Archive(db);
    const t = await timeline(archive, 'cam-r', killedAt - 60_000, Date.now());
    if (hole > RANGE_JOIN_MS) {
      // A hole a player would notice is on the timeline, with why.
      expect(t.recorded.length).toBe(2);
      const gap = t.gaps.find((g) => g.startMs >= t.recorded[0]!.endMs - 1 && g.endMs <= t.recorded[1]!.startMs + 1)!;
      expect(gap.reason).toMatch(/recorder/);
    } else {
      expect(t.recorded.length).toBe(1);
    }
    // Never more than the segment in progress (1 s) and the time to move (detection, subscription, keyframe).
    expect(hole).toBeLessThan(5000);
    const storage = new Storage({ config: { id: 'nas', path: nas, requireMount: false, minFreeBytes: 0 }, db, site: 'check', ioTimeoutMs: 5000 });
    try {
      // Segments still in the live recorder's spool cannot be re-hashed from here; everything else must hold.
      // The live recorder goes on recording and copying while the check runs, so what may be in its spool
      // then is what was spooled before the check began and anything entered since.
      const before = await db.query<{ id: number; state: string }>('SELECT id, state FROM segments');
      const spooledIds = new Set(before.filter((r) => r.state === 'spool').map((r) => Number(r.id)));
      const lastId = Math.max(0, ...before.map((r) => Number(r.id)));
      const report = await verifyArchive({ db, storage, spoolDir: '/nonexistent' });
      expect(report.findings.filter((f) => f.kind !== 'unreadable' && f.kind !== 'missing')).toEqual([]);
      expect(report.findings.filter((f) => !spooledIds.has(f.segment ?? -1) && (f.segment ?? -1) <= lastId)).toEqual([]);
    } finally {
      storage.close();
    }
    // A signaling instance without a recorder serves the recordings from the NAS.
    const stored = await db.query<{ id: number; sha256: string }>("SELECT id, sha256 FROM segments WHERE state = 'stored' ORDER BY id LIMIT 1");
    const sig = cluster.procs.get('sig1')!;
    const res = await fetch(`${sig.url}/api/cameras/cam-r/archive/segments/${Number(stored[0]!.id)}.m4s`, { headers: { authorization: `Bearer ${await cluster.token()}` } });
    expect(res.status).toBe(200);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')).toBe(stored[0]!.sha256);
    console.log(`recorder failover: re-placed ${moved} ms after the kill; the new recorder's first segment starts ${resumedAfter} ms after it; hole in the archive ${hole} ms`);
  });
});
