import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { TestCluster, until, type Proc } from '../support/cluster.js';
import { watchResilient, type ResilientViewer } from '../support/resilientViewer.js';
import { watch } from '../support/whepClient.js';

// Three camera-nodes, two SFUs and two signaling instances as separate processes on this machine,
// against the machine's Redis and Postgres; a viewer that reconnects like the dashboard's player.
// Each kind is killed with SIGKILL in turn: cameras move, the viewer's video returns, gaps are stored.

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let cluster: TestCluster;
let viewer: ResilientViewer;

const CAMERA = { source: { kind: 'test', width: 320, height: 180, fps: 15, bitrateKbps: 300 } };

interface NodeView {
  id: string;
  state: string;
  leader: boolean;
  cameras: Array<{ id: string; state: string }>;
  rooms: Array<{ camera: string }>;
  clock: { offsetMs: number | null; warning: boolean };
  config: { applied: number | null; current: number; upToDate: boolean | null };
}

const nodes = async (via?: Proc) => (await cluster.api<NodeView[]>('/api/nodes', via ? { via } : {})).body;
const placementOf = async (cam: string) => until(async () => {
  const p = await cluster.placement(cam);
  return p?.cameraNode && p.sfu ? p : null;
}, `${cam} placed`);

beforeAll(async () => {
  db = await createTestDatabase();
  cluster = new TestCluster({ redisUrl: 'redis://127.0.0.1:6379', databaseUrl: db.url, prefix: `failover-${randomBytes(4).toString('hex')}` });
  await cluster.add({ id: 'sig1', roles: ['signaling'] });
  await cluster.add({ id: 'sig2', roles: ['signaling'] });
  for (const id of ['sfu1', 'sfu2']) await cluster.add({ id, roles: ['sfu'] });
  for (const id of ['cn1', 'cn2', 'cn3']) await cluster.add({ id, roles: ['camera-node'] });
  await until(async () => (await nodes()).filter((n) => n.state === 'alive').length === 7, 'seven nodes alive', 30_000).catch((error: Error) => {
    throw new Error(`${error.message}\n${cluster.dump()}`);
  });
  for (const id of ['cam-a', 'cam-b']) expect((await cluster.api(`/api/cameras`, { method: 'POST', body: { id, ...CAMERA } })).status).toBe(201);
  await until(async () => {
    const cams = (await cluster.api<Array<{ id: string; status: { state: string } }>>('/api/cameras')).body;
    return cams.every((c) => c.status.state === 'live');
  }, 'both cameras live', 30_000);
  const token = await cluster.token();
  viewer = await watchResilient({
    doors: () => [...cluster.procs.values()].filter((p) => p.spec.roles.includes('signaling') && p.running).map((p) => p.url),
    camera: 'cam-a',
    headers: { authorization: `Bearer ${token}` },
  });
  await viewer.keyframeAfter(0);
}, 120_000);

afterAll(async () => {
  await viewer?.close();
  await cluster?.close();
  await db?.drop();
});

describe('a cluster of separate processes', { timeout: 120_000 }, () => {
  it('spreads the cameras and reports every node: roles, load, clock, config version', async () => {
    const a = await placementOf('cam-a');
    const b = await placementOf('cam-b');
    // Least loaded first: two cameras land on two different camera-nodes and SFUs.
    expect(a.cameraNode).not.toBe(b.cameraNode);
    expect(a.sfu).not.toBe(b.sfu);
    const list = await nodes();
    expect(list.map((n) => n.id)).toEqual(['cn1', 'cn2', 'cn3', 'sfu1', 'sfu2', 'sig1', 'sig2']);
    expect(list.filter((n) => n.leader).length).toBe(1);
    for (const n of list) {
      expect(n.clock.offsetMs).not.toBeNull();
      // Every process runs on this machine's clock.
      expect(n.clock.warning).toBe(false);
    }
    await until(async () => (await nodes()).filter((n) => n.config.upToDate !== null).every((n) => n.config.upToDate), 'every node on the current config version');
    // Both instances see the same nodes.
    expect((await nodes(cluster.get('sig2'))).map((n) => n.state)).toEqual(list.map((n) => n.state));
  });

  it('lets any instance serve any request: a session opened through one is ended through the other', async () => {
    const headers = { authorization: `Bearer ${await cluster.token()}` };
    const v = await watch(`${cluster.get('sig1').url}/api/cameras/cam-b/whep`, { headers });
    try {
      await v.waitForPackets(20);
      const path = new URL(v.location).pathname;
      // The session id names the SFU, so the other instance knows where to send the DELETE.
      expect(path).toMatch(/\/whep\/sfu[12]~/);
      const viewers = async () => (await cluster.api<{ status: { viewers: number } }>('/api/cameras/cam-b', { via: cluster.get('sig2') })).body.status.viewers;
      await until(async () => (await viewers()) === 1, 'one viewer seen by sig2');
      expect((await fetch(`${cluster.get('sig2').url}${path}`, { method: 'DELETE', headers })).status).toBe(200);
      await until(async () => (await viewers()) === 0, 'no viewer after the DELETE through sig2');
    } finally {
      await v.close();
    }
  });

  it('moves the cameras of a killed camera-node, brings the picture back and records the gap', async () => {
    const before = await placementOf('cam-a');
    const victim = cluster.get(before.cameraNode!);
    const t0 = Date.now();
    await victim.kill9();
    // Every instance sees it dead within the lease.
    for (const via of [cluster.get('sig1'), cluster.get('sig2')]) {
      await until(async () => (await nodes(via)).find((n) => n.id === victim.id)?.state === 'dead', `${victim.id} dead on ${via.id}`, 3500, 50);
    }
    const after = await until(async () => {
      const p = await cluster.placement('cam-a');
      return p?.cameraNode && p.cameraNode !== victim.id ? p : null;
    }, 'cam-a moved');
    expect(after.sfu).toBe(before.sfu);
    // A keyframe, then video that keeps coming (a replay of old frames would stop after its burst).
    const back = await viewer.keyframeAfter(t0);
    await viewer.packetAfter(back + 1500);
    const gaps = await until(async () => {
      const g = (await cluster.api<Array<{ camera: string; reason: string; durationMs: number }>>('/api/gaps?camera=cam-a')).body;
      return g.length ? g : null;
    }, 'a gap for cam-a');
    expect(gaps[0]!.reason).toContain(victim.id);
    expect(gaps[0]!.durationMs).toBeGreaterThan(0);

    // Back from the dead: it registers again and gets nothing back (cameras stay where they are).
    victim.start();
    await until(async () => (await nodes()).find((n) => n.id === victim.id)?.state === 'alive', `${victim.id} alive again`, 20_000);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await cluster.placement('cam-a'))!.cameraNode).toBe(after.cameraNode);
    expect((await nodes()).find((n) => n.id === victim.id)!.cameras).toEqual([]);
  });

  it('moves the rooms of a killed SFU; the viewer reconnects through the front door', async () => {
    const before = await placementOf('cam-a');
    const reconnects = viewer.reconnects();
    const t0 = Date.now();
    await cluster.get(before.sfu!).kill9();
    const after = await until(async () => {
      const p = await cluster.placement('cam-a');
      return p?.sfu && p.sfu !== before.sfu ? p : null;
    }, 'cam-a on another SFU');
    expect(after.cameraNode).toBe(before.cameraNode);
    const back = await viewer.keyframeAfter(t0);
    await viewer.packetAfter(back + 1500);
    expect(viewer.reconnects()).toBeGreaterThan(reconnects);
    await until(async () => (await cluster.api<Array<{ reason: string }>>('/api/gaps?camera=cam-a')).body.some((g) => g.reason.includes(before.sfu!)), 'a gap naming the SFU');
    cluster.get(before.sfu!).start();
    await until(async () => (await nodes()).find((n) => n.id === before.sfu)?.state === 'alive', `${before.sfu} back`, 20_000);
  });

  it('survives the leader: another instance takes over, the video never stops, the API still answers', async () => {
    const leader = (await nodes()).find((n) => n.leader)!.id;
    const other = leader === 'sig1' ? cluster.get('sig2') : cluster.get('sig1');
    const reconnects = viewer.reconnects();
    const t0 = Date.now();
    await cluster.get(leader).kill9();
    await until(async () => (await cluster.api<{ leading: boolean }>('/api/cluster', { via: other })).body.leading, `${other.id} leading`, 5000, 50);
    // The new leader places what is new.
    expect((await cluster.api('/api/cameras', { method: 'POST', body: { id: 'cam-c', ...CAMERA }, via: other })).status).toBe(201);
    await until(async () => (await cluster.api<{ status: { state: string } }>('/api/cameras/cam-c', { via: other })).body.status.state === 'live', 'cam-c live under the new leader', 20_000);
    // Streaming never depended on the master.
    expect(viewer.reconnects()).toBe(reconnects);
    expect(viewer.lastPacketAt()).toBeGreaterThan(t0);
    cluster.get(leader).start();
    await cluster.waitHealthy(cluster.get(leader));
  });

  it('drains a node: its cameras move away and none come back when it is undrained', async () => {
    const p = await placementOf('cam-b');
    expect((await cluster.api(`/api/nodes/${p.cameraNode}/drain`, { method: 'POST' })).status).toBe(200);
    const moved = await until(async () => {
      const q = await cluster.placement('cam-b');
      return q?.cameraNode && q.cameraNode !== p.cameraNode ? q : null;
    }, 'cam-b off the drained node');
    await until(async () => (await cluster.api<{ status: { state: string } }>('/api/cameras/cam-b')).body.status.state === 'live', 'cam-b live after the drain', 20_000);
    expect((await cluster.api(`/api/nodes/${p.cameraNode}/undrain`, { method: 'POST' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await cluster.placement('cam-b'))!.cameraNode).toBe(moved.cameraNode);
  });
});
