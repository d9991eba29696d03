import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, describe, expect, it } from 'vitest';
import { openBus } from '@cctv/core';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { TestCluster, until } from '../support/cluster.js';
import { watchResilient, type ResilientViewer } from '../support/resilientViewer.js';
import { privatePostgres, privateRedis, type Service } from '../support/services.js';

// Redis and Postgres of the test's own (stopped and started here), with nodes as separate processes.

const CAMERA = { source: { kind: 'test', width: 320, height: 180, fps: 15, bitrateKbps: 300 } };
const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface NodeView { id: string; state: string; cameras: Array<{ id: string }> }

async function startCluster(redisUrl: string, databaseUrl: string, cameraNodes: string[]): Promise<{ cluster: TestCluster; viewer: ResilientViewer }> {
  const cluster = new TestCluster({ redisUrl, databaseUrl, prefix: `outage-${randomBytes(4).toString('hex')}` });
  cleanups.push(() => cluster.close());
  await cluster.add({ id: 'sig1', roles: ['signaling'] });
  await cluster.add({ id: 'sfu1', roles: ['sfu'] });
  for (const id of cameraNodes) await cluster.add({ id, roles: ['camera-node'] });
  await until(async () => (await cluster.api<NodeView[]>('/api/nodes')).body.filter((n) => n.state === 'alive').length === 2 + cameraNodes.length, 'nodes alive', 40_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${cluster.dump()}`);
  });
  expect((await cluster.api('/api/cameras', { method: 'POST', body: { id: 'cam-a', ...CAMERA } })).status).toBe(201);
  await until(async () => (await cluster.api<{ status: { state: string } }>('/api/cameras/cam-a')).body.status.state === 'live', 'cam-a live', 30_000);
  const viewer = await watchResilient({ doors: () => [cluster.get('sig1').url], camera: 'cam-a', headers: { authorization: `Bearer ${await cluster.token()}` } });
  cleanups.push(() => viewer.close());
  await viewer.keyframeAfter(0);
  return { cluster, viewer };
}

describe('Redis restarted while streaming', { timeout: 180_000 }, () => {
  it('video never stops; nodes register again; nothing moves', async () => {
    const redis = await privateRedis();
    cleanups.push(() => redis.close());
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const { cluster, viewer } = await startCluster(redis.url, db.url, ['cn1']);
    const before = await cluster.placement('cam-a');
    const moves = (await cluster.api<{ moves: unknown[] }>('/api/cluster')).body.moves.length;
    const reconnects = viewer.reconnects();
    const t0 = Date.now();
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    // Everyone is back in the (empty) Redis: heartbeats, keys, a leader.
    const probe = await openBus({ url: redis.url, prefix: cluster.env().CCTV_REDIS__PREFIX });
    cleanups.push(() => probe.close());
    await until(async () => (await probe.get('node:cn1')) && (await probe.get('node:sfu1')) && (await probe.get('leader')), 'nodes and leader back in Redis', 15_000);
    await until(async () => (await cluster.api<NodeView[]>('/api/nodes')).body.every((n) => n.state === 'alive'), 'every node alive');
    await new Promise((r) => setTimeout(r, 3000));
    const t1 = Date.now();
    // The video did not notice.
    expect(viewer.reconnects()).toBe(reconnects);
    expect(viewer.longestSilence(t0, t1)).toBeLessThan(1000);
    expect(await cluster.placement('cam-a')).toEqual(before);
    expect((await cluster.api<{ moves: unknown[] }>('/api/cluster')).body.moves.length).toBe(moves);
    // And the cluster works as before.
    expect((await cluster.api('/api/cameras/cam-a', { method: 'PATCH', body: { name: 'After Redis' } })).status).toBe(200);
  });
});

describe('Postgres stopped for a minute', { timeout: 240_000 }, () => {
  it('streaming and failover go on, camera changes queue, and everything is stored when it returns', async () => {
    const pg = await privatePostgres();
    cleanups.push(() => pg.close());
    const { cluster, viewer } = await startCluster('redis://127.0.0.1:6379', pg.url, ['cn1', 'cn2']);
    const first = (await cluster.placement('cam-a'))!;
    const reconnects = viewer.reconnects();
    const t0 = Date.now();
    await pg.stop();

    // The API still answers what it can from memory, and says what it cannot do.
    expect((await cluster.api<Array<{ id: string }>>('/api/cameras')).body.map((c) => c.id)).toEqual(['cam-a']);
    const queued = await cluster.api<{ queued: boolean; error: { code: string; message: string } }>('/api/cameras/cam-a', { method: 'PATCH', body: { name: 'Renamed while away' } });
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ queued: true, error: { code: 'DATABASE_UNAVAILABLE' } });
    expect(queued.body.error.message).toMatch(/database is unavailable.*queued/);
    expect((await cluster.api('/api/cameras', { method: 'POST', body: { id: 'cam-b', ...CAMERA } })).status).toBe(202);
    // A change that could never apply is refused now, not later.
    const bad = await cluster.api<{ error: { code: string; field: string } }>('/api/cameras', { method: 'POST', body: { id: 'cam-c', source: { kind: 'test', fps: 0 } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.field).toBe('source.fps');
    const users = await cluster.api<{ error: { code: string } }>('/api/users');
    expect(users.status).toBe(503);
    expect(users.body.error.code).toBe('DATABASE_UNAVAILABLE');

    // A camera-node dies meanwhile: its camera moves all the same.
    const t1 = Date.now();
    await cluster.get(first.cameraNode!).kill9();
    await until(async () => (await cluster.placement('cam-a'))?.cameraNode !== first.cameraNode, 'cam-a moved without the database');
    await viewer.keyframeAfter(t1);
    const state = await cluster.api<{ database: { available: boolean }; queuedChanges: unknown[]; warnings: string[] }>('/api/cluster');
    expect(state.body.database.available).toBe(false);
    expect(state.body.queuedChanges).toHaveLength(2);
    expect(state.body.warnings.join('\n')).toMatch(/database is unavailable/);

    // A minute without Postgres.
    await new Promise((r) => setTimeout(r, Math.max(0, 60_000 - (Date.now() - t0))));
    const t2 = Date.now();
    expect(viewer.longestSilence(t1 + 3000, t2)).toBeLessThan(1000);
    expect(viewer.reconnects() - reconnects).toBeLessThanOrEqual(1);
    await pg.start();

    // Everything that waited is stored, in order, and acted on.
    await until(async () => (await cluster.api<{ name: string }>('/api/cameras/cam-a')).body.name === 'Renamed while away', 'the rename applied', 20_000);
    await until(async () => (await cluster.api<{ status: { state: string } }>('/api/cameras/cam-b')).body?.status?.state === 'live', 'cam-b created and live', 30_000);
    const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
    cleanups.push(() => sql.end({ timeout: 1 }));
    const now = (await cluster.placement('cam-a'))!;
    await until(async () => (await sql`SELECT camera_node FROM placements WHERE camera_id = 'cam-a'`)[0]?.camera_node === now.cameraNode, 'the placement written');
    await until(async () => (await sql`SELECT count(*)::int AS n FROM gaps WHERE camera_id = 'cam-a'`)[0]!.n > 0, 'the gap written');
    const audit = await cluster.api<{ entries: Array<{ action: string; cameraId: string; details: { queuedAt?: string } }> }>('/api/audit?action=camera.*');
    const changed = audit.body.entries.find((e) => e.action === 'camera.changed' && e.cameraId === 'cam-a');
    expect(changed?.details.queuedAt).toBeDefined();
    expect(new Date(changed!.details.queuedAt!).getTime()).toBeLessThan(t2);
    expect((await cluster.api<{ ok: boolean }>('/api/audit/verify')).body.ok).toBe(true);
    expect((await cluster.api<{ queuedChanges: unknown[]; database: { available: boolean } }>('/api/cluster')).body).toMatchObject({ queuedChanges: [], database: { available: true } });
  });
});
