import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openBus, type Bus } from '../bus/bus.js';
import { CameraSchema } from '../config/schema.js';
import { NodeAgent } from './agent.js';
import { generateBoxKeys, openBox, sealBox } from './box.js';
import { generateKeys, open, seal } from './keys.js';
import { Channel, Key, type Command, type Heartbeat, type WireCommand } from './messages.js';
import { RpcClient } from './rpc.js';

const site = generateKeys();
const nodeSign = generateKeys();
const nodeBox = generateBoxKeys();
const rogue = generateKeys();
const camera = CameraSchema.parse({ id: 'door', source: { kind: 'rtsp', url: 'rtsp://cam.local/stream', username: 'admin', password: 'hunter2-secret' } });

let dir: string;
let bus: Bus;
const agents: NodeAgent[] = [];

function agent(o: { replayWaitMs?: number } = {}): NodeAgent {
  const a = new NodeAgent({
    bus, id: 'cn1', roles: ['camera-node'], labels: { site: 'shop' }, version: 'test',
    keys: { privateKey: nodeSign.privateKey, boxPrivateKey: nodeBox.privateKey, sitePublicKey: site.publicKey },
    stateFile: join(dir, 'node-state.json'), heartbeatMs: 200, leaseMs: 600, ...o,
  });
  agents.push(a);
  return a;
}

const assign = (epoch: number, by = site.privateKey): unknown =>
  seal('site', { type: 'camera-node.assign', epoch, version: epoch * 10, cameras: sealBox([{ config: camera, target: { host: '127.0.0.1', port: 5000 + epoch } }], nodeBox.publicKey) } satisfies WireCommand, by);

async function next<T>(list: T[], n: number, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (list.length < n) {
    if (Date.now() > end) throw new Error(`only ${list.length} of ${n} within ${ms} ms`);
    await sleep(10);
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-agent-'));
  bus = await openBus({ prefix: 'agent-test' });
});
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  rmSync(join(dir, 'node-state.json'), { force: true });
  await bus.del(Key.leader);
});
afterAll(async () => {
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sealed boxes and signed envelopes', () => {
  it('open only with the right key, and not once altered', () => {
    const box = sealBox({ secret: 'x' }, nodeBox.publicKey);
    expect(openBox(box, nodeBox.privateKey)).toEqual({ secret: 'x' });
    expect(openBox(box, generateBoxKeys().privateKey)).toBeNull();
    expect(openBox({ ...box, ct: Buffer.from('tampered').toString('base64') }, nodeBox.privateKey)).toBeNull();
    expect(openBox('not a box', nodeBox.privateKey)).toBeNull();
    const env = seal('cn1', { a: 1 }, nodeSign.privateKey);
    expect(open(env, nodeSign.publicKey)).toEqual({ a: 1 });
    expect(open(env, rogue.publicKey)).toBeNull();
    expect(open({ ...env, payload: '{"a":2}' }, nodeSign.publicKey)).toBeNull();
  });
});

describe('a node agent', () => {
  it('heartbeats signed, with what its roles contribute, under a key that expires with the lease', async () => {
    const a = agent();
    a.contribute(() => ({ ingressBps: 1000, viewers: 2, api: null }));
    const beats: Heartbeat[] = [];
    const off = await bus.subscribe(Channel.heartbeats, (m) => {
      const hb = open<Heartbeat>(m, nodeSign.publicKey);
      if (hb) beats.push(hb);
    });
    await a.start();
    await next(beats, 2);
    expect(beats[0]).toMatchObject({ id: 'cn1', roles: ['camera-node'], labels: { site: 'shop' }, load: { ingressBps: 1000, viewers: 2 } });
    expect(Math.abs(beats[0]!.clock - Date.now())).toBeLessThan(1000);
    expect(await bus.ttl(Key.node('cn1'))).toBeGreaterThan(0);
    expect(await bus.subscriberCounts([Channel.alive('cn1')])).toEqual([1]);
    await a.close();
    expect(await bus.get(Key.node('cn1'))).toBeNull();
    expect(await bus.subscriberCounts([Channel.alive('cn1')])).toEqual([0]);
    await off();
  });

  it('obeys only the site, never an older master, and keeps the assignment sealed on disk', async () => {
    const a = agent();
    const got: Command[] = [];
    a.on('command', (c) => got.push(c));
    await a.start();
    await bus.publish(Channel.cmd('cn1'), assign(3, rogue.privateKey));
    await bus.publish(Channel.cmd('cn1'), assign(3));
    await next(got, 1);
    expect(got[0]).toMatchObject({ type: 'camera-node.assign', epoch: 3, version: 30, cameras: [{ config: { id: 'door' }, target: { port: 5003 } }] });
    expect(a.epoch).toBe(3);
    await bus.publish(Channel.cmd('cn1'), assign(2));
    await bus.publish(Channel.cmd('cn1'), assign(4));
    await next(got, 2);
    expect(got.map((c) => c.epoch)).toEqual([3, 4]);
    const file = readFileSync(join(dir, 'node-state.json'), 'utf8');
    expect(file).not.toContain('hunter2-secret');
    expect(JSON.parse(file).epoch).toBe(4);
    // Requests that change something are fenced the same way.
    expect(a.admit(3)).toBe(false);
    expect(a.admit(5)).toBe(true);
    expect(a.epoch).toBe(5);
  });

  it('runs its saved assignment at start when no master is there', async () => {
    const a = agent();
    await a.start();
    await bus.publish(Channel.cmd('cn1'), assign(7));
    await sleep(100);
    await a.close();
    const b = agent();
    const got: Command[] = [];
    b.on('command', (c) => got.push(c));
    await b.start();
    expect(got.map((c) => c.epoch)).toEqual([7]);
  });

  it('with a master there, waits for its word first and runs the saved assignment only if none comes', async () => {
    const a = agent();
    await a.start();
    await bus.publish(Channel.cmd('cn1'), assign(7));
    await sleep(100);
    await a.close();
    await bus.set(Key.leader, 'sig1:8', 5000);
    const fresh = agent({ replayWaitMs: 300 });
    const got: Command[] = [];
    fresh.on('command', (c) => got.push(c));
    await fresh.start();
    expect(got).toEqual([]);
    await bus.publish(Channel.cmd('cn1'), assign(8));
    await sleep(500);
    expect(got.map((c) => c.epoch)).toEqual([8]);
    await fresh.close();
    const silent = agent({ replayWaitMs: 300 });
    const got2: Command[] = [];
    silent.on('command', (c) => got2.push(c));
    await silent.start();
    expect(got2).toEqual([]);
    await sleep(500);
    expect(got2.map((c) => c.epoch)).toEqual([8]);
  });

  it('answers requests signed by the site; the client takes answers only from the enrolled key', async () => {
    const a = agent();
    a.handle('echo', async (p) => ({ echoed: p }));
    await a.start();
    const client = new RpcClient({ bus, instance: 'sig1', siteKey: site.privateKey, nodeKey: (n) => (n === 'cn1' ? nodeSign.publicKey : undefined) });
    await client.initialize();
    expect(await client.call('cn1', 'ping', { sentAt: 1 })).toMatchObject({ clock: expect.any(Number) });
    expect(await client.call('cn1', 'echo' as 'ping', { x: 1 } as never)).toEqual({ echoed: { x: 1 } });
    await expect(client.call('cn2', 'ping', { sentAt: 1 })).rejects.toThrow(/not enrolled/);
    // A master without the site key is not answered.
    const impostor = new RpcClient({ bus, instance: 'evil', siteKey: rogue.privateKey, nodeKey: () => nodeSign.publicKey });
    await impostor.initialize();
    await expect(impostor.call('cn1', 'ping', { sentAt: 1 }, 300)).rejects.toThrow(/did not answer/);
    // An answer must come from the node's enrolled key.
    const wrongKey = new RpcClient({ bus, instance: 'sig2', siteKey: site.privateKey, nodeKey: () => rogue.publicKey });
    await wrongKey.initialize();
    await expect(wrongKey.call('cn1', 'ping', { sentAt: 1 }, 300)).rejects.toThrow(/did not answer/);
    await Promise.all([client.close(), impostor.close(), wrongKey.close()]);
  });
});
