import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Channel, generateBoxKeys, generateKeys, metricsText, migrate, openBus, openDatabase, seal, type Bus, type Database, type Heartbeat } from '@cctv/core';
import { Leadership } from './leader.js';
import { NodeStore } from './nodes.js';
import { Registry, type NodeEntry } from './registry.js';

// The registry and the leader lease on the machine's Redis (each run under its own key prefix); nodes
// are simulated by signed heartbeats, each on its own Redis connection as a separate process would be.

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let prefix: string;
let db: Database;
let bus: Bus;
let nodes: NodeStore;
const opened: Bus[] = [];

const own = async () => {
  const b = await openBus({ url: REDIS_URL, prefix });
  opened.push(b);
  return b;
};

/** A node that heartbeats by hand: its own connection, its alive subscription, a clock that may be off. */
async function fakeNode(id: string, o: { skewMs?: number; enrol?: boolean } = {}) {
  const keys = generateKeys();
  if (o.enrol !== false) await nodes.enroll(id, ['camera-node'], keys.publicKey, generateBoxKeys().publicKey);
  await nodes.load();
  const conn = await own();
  await conn.subscribe(Channel.alive(id), () => {});
  const hb = (): Heartbeat => ({
    id, roles: ['camera-node'], labels: {}, version: 't', startedAt: 1, clock: Date.now() + (o.skewMs ?? 0),
    ntp: { source: 'none', synchronized: null, offsetMs: null }, addresses: { ingestHost: null, api: null },
    load: { cpu: 0.1, cpus: 2, ingressBps: 0, viewers: 0, cameras: 0 }, appliedVersion: 0, epoch: 0, cameras: [], rooms: [],
  });
  let timer: NodeJS.Timeout | undefined;
  return {
    conn,
    beat: () => conn.publish(Channel.heartbeats, seal(id, hb(), keys.privateKey)),
    startBeating() {
      timer = setInterval(() => void conn.publish(Channel.heartbeats, seal(id, hb(), keys.privateKey)), 100);
    },
    stopBeating: () => clearInterval(timer),
  };
}

async function until<T>(fn: () => T | undefined | null | false, what: string, ms = 3000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

beforeAll(async () => {
  prefix = `registry-${randomBytes(6).toString('hex')}`;
  db = await openDatabase({ dataDir: 'memory://' });
  await migrate(db);
  nodes = new NodeStore(db);
  bus = await own();
});
afterAll(async () => {
  for (const b of opened) await b.close();
  await db.close();
});

describe('the registry', () => {
  it('takes heartbeats of enrolled nodes only, and measures clock offsets', async () => {
    const registry = new Registry({ bus, nodes, leaseMs: 1000, clockWarningMs: 100, checkMs: 50 });
    await registry.start();
    try {
      const good = await fakeNode('good');
      const skewed = await fakeNode('skewed', { skewMs: 250 });
      const stranger = await fakeNode('stranger', { enrol: false });
      await Promise.all([good.beat(), skewed.beat(), stranger.beat()]);
      await until(() => registry.get('good') && registry.get('skewed'), 'two nodes');
      await sleep(100);
      expect(registry.get('stranger')).toBeUndefined();
      expect(Math.abs(registry.get('good')!.clockOffsetMs!)).toBeLessThan(50);
      expect(registry.get('skewed')!.clockOffsetMs!).toBeGreaterThan(200);
      expect(registry.get('skewed')!.clockOffsetMs!).toBeLessThan(260);
      expect(registry.clockWarning(registry.get('skewed')!)).toBe(true);
      expect(registry.clockWarning(registry.get('good')!)).toBe(false);
      expect((await metricsText()).body).toMatch(/cctv_node_clock_offset_ms\{node="skewed"\} 2\d\d/);
      // A heartbeat signed by another key is dropped, even under an enrolled id.
      const forger = generateKeys();
      await bus.publish(Channel.heartbeats, seal('good', { id: 'good', roles: ['sfu'] }, forger.privateKey));
      await sleep(100);
      expect(registry.get('good')!.heartbeat.roles).toEqual(['camera-node']);
    } finally {
      await registry.close();
    }
  });

  it('declares a node dead at once when its connection closes, and by the lease when it goes silent', async () => {
    const registry = new Registry({ bus, nodes, leaseMs: 1000, clockWarningMs: 100, checkMs: 50 });
    const dead: NodeEntry[] = [];
    registry.on('dead', (n) => dead.push(n));
    await registry.start();
    try {
      const crashing = await fakeNode('crashing');
      const frozen = await fakeNode('frozen');
      crashing.startBeating();
      frozen.startBeating();
      await until(() => registry.get('crashing')?.state === 'alive' && registry.get('frozen')?.state === 'alive', 'alive');
      // Past the grace after start, so that a subscriber count is trusted.
      await sleep(1100);
      // A process killed: its connection closes (here: the connection is dropped without a goodbye).
      crashing.stopBeating();
      const t0 = Date.now();
      await crashing.conn.close();
      await until(() => dead.find((n) => n.id === 'crashing'), 'crashing dead', 1000);
      const connectionMs = Date.now() - t0;
      expect(dead[0]).toMatchObject({ id: 'crashing', state: 'dead', deathReason: 'connection' });
      // A frozen process keeps its connection but stops beating: the lease decides.
      const t1 = Date.now();
      frozen.stopBeating();
      await until(() => dead.find((n) => n.id === 'frozen'), 'frozen dead', 2500);
      // (Looked up by id: under load a heartbeat 'crashing' sent just before its connection closed can
      // arrive after it was declared dead and register it again for a moment, so it may die twice.)
      expect(dead.find((n) => n.id === 'frozen')).toMatchObject({ id: 'frozen', deathReason: 'lease' });
      expect(Date.now() - t1).toBeGreaterThan(connectionMs);
      // Back: registered again.
      await frozen.beat();
      await until(() => registry.get('frozen')?.state === 'alive', 'frozen back');
    } finally {
      await registry.close();
    }
  });
});

describe('the leader lease', () => {
  it('is held by one instance; another takes over when the leader dies, with a higher epoch', async () => {
    const a = await own();
    const b = await own();
    await a.subscribe(Channel.alive('sig-a'), () => {});
    await b.subscribe(Channel.alive('sig-b'), () => {});
    const la = new Leadership({ bus: a, id: 'sig-a', leaseMs: 3000, floor: () => 0, checkMs: 50 });
    const lb = new Leadership({ bus: b, id: 'sig-b', leaseMs: 3000, floor: () => 0, checkMs: 50 });
    la.start();
    await until(() => la.isLeader, 'a leads');
    lb.start();
    await sleep(300);
    expect(lb.isLeader).toBe(false);
    expect(lb.leaderId).toBe('sig-a');
    // Wait past b's grace after connecting, then kill a's connection: b must not wait for the 3 s lease.
    await sleep(3000);
    const t0 = Date.now();
    await a.close();
    await until(() => lb.isLeader, 'b leads', 3000);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(lb.epoch).toBeGreaterThan(la.epoch);
    await lb.close();
    await la.close();
  });

  it('starts above the floor (an epoch a node has obeyed) when the counter was lost, and a deposed leader knows it', async () => {
    const c = await own();
    await c.subscribe(Channel.alive('sig-c'), () => {});
    await c.del('leader');
    await c.del('leader:epoch');
    const lc = new Leadership({ bus: c, id: 'sig-c', leaseMs: 600, floor: () => 41, checkMs: 50 });
    const deposed: string[] = [];
    lc.on('deposed', (why) => deposed.push(why));
    lc.start();
    await until(() => lc.isLeader, 'c leads');
    expect(lc.epoch).toBe(42);
    // Someone else's value in the key (a newer leader after a partition): c steps down at its next renewal.
    await c.set('leader', 'sig-x:43', 5000);
    await until(() => deposed.length > 0, 'deposed', 2000);
    expect(lc.isLeader).toBe(false);
    await lc.close();
  });
});
