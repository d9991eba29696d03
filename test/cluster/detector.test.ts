import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '@cctv/core';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { TestCluster, until } from '../support/cluster.js';

// Two detectors of their own in a cluster of processes: the master places the camera on one and
// subscribes the SFU to it; its events are stored with its name and reach the API; killed with SIGKILL,
// the camera goes to the other, which raises the next events, and the event the dead one had open ends.

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let cluster: TestCluster;
const CAMERA = {
  id: 'cam-d', source: { kind: 'test', width: 320, height: 180, fps: 15, bitrateKbps: 300, pattern: 'motion', periodS: 4, motionS: 2 },
  recording: { enabled: false }, motion: { enabled: true },
};
const METRICS_TOKEN = randomBytes(16).toString('hex');
const metricsPorts = new Map<string, number>();
/** A TCP port free now (the node binds it a moment later). */
const freePort = () => new Promise<number>((resolve) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => {
    const port = (s.address() as { port: number }).port;
    s.close(() => resolve(port));
  });
});
const eventsBy = (node: string) => db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE node = $1 AND end_ms IS NOT NULL', [node]).then((r) => Number(r[0]!.n));

beforeAll(async () => {
  testDb = await createTestDatabase('cctv_cluster_det');
  cluster = new TestCluster({ redisUrl: 'redis://127.0.0.1:6379', databaseUrl: testDb.url, prefix: `det-${randomBytes(4).toString('hex')}` });
  await cluster.add({ id: 'sig1', roles: ['signaling'] });
  await cluster.add({ id: 'sfu1', roles: ['sfu'] });
  await cluster.add({ id: 'cn1', roles: ['camera-node'] });
  for (const id of ['det1', 'det2']) {
    metricsPorts.set(id, await freePort());
    await cluster.add({ id, roles: ['detector'], env: { DATABASE_URL: testDb.url, CCTV_METRICS__PORT: String(metricsPorts.get(id)), CCTV_METRICS__HOST: '127.0.0.1', CCTV_METRICS__TOKEN: METRICS_TOKEN } });
  }
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

describe('detectors in a cluster', () => {
  it('detects on the detector the master chose; when it is killed, the other takes the camera over', async () => {
    const first = (await until(async () => (await cluster.placement('cam-d'))?.detector, 'a detector placed', 30_000))!;
    const other = first === 'det1' ? 'det2' : 'det1';
    await until(async () => (await eventsBy(first)) >= 2, `2 events by ${first}`, 40_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${cluster.dump()}`);
    });
    expect(await eventsBy(other)).toBe(0);
    // The API finds them (through the signaling instance, which has no detector).
    const found = await cluster.api<{ events: Array<{ node: string; camera: string }> }>('/api/events?camera=cam-d');
    expect(found.body.events.length).toBeGreaterThanOrEqual(2);
    expect(found.body.events.every((e) => e.node === first && e.camera === 'cam-d')).toBe(true);
    // The detector, a node without signaling, serves its own metrics to the scraper's token.
    const metricsUrl = `http://127.0.0.1:${metricsPorts.get(first)}/metrics`;
    expect((await fetch(metricsUrl)).status).toBe(401);
    const metrics = await (await fetch(metricsUrl, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
    expect(Number(/^cctv_motion_events_total\{camera="cam-d"\} (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2);
    expect(metrics).toMatch(/^cctv_detector_frames_total\{camera="cam-d"\} [1-9]/m);

    await cluster.procs.get(first)!.kill9();
    const killedAt = Date.now();
    await until(async () => (await cluster.placement('cam-d'))?.detector === other, `the camera placed on ${other}`, 15_000);
    const moved = Date.now() - killedAt;
    await until(async () => (await eventsBy(other)) >= 1, `an event by ${other}`, 30_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${cluster.dump()}`);
    });
    // Nothing the dead detector started is left open.
    await until(async () => Number((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE node = $1 AND end_ms IS NULL', [first]))[0]!.n) === 0, 'the dead detector\'s events ended', 10_000);
    console.log(`detector failover: re-placed ${moved} ms after the kill`);
  });
});
