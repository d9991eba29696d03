import { join } from 'node:path';
import {
  Channel, RpcClient, createLogger, newNodeKeys, readIdentity, writeIdentity,
  type Bus, type Config, type Database, type KeyPair, type NodeIdentity, type Role,
} from '@cctv/core';
import type { CameraStore } from '../cameras.js';
import { GapStore, GapTracker } from './gaps.js';
import { Leadership } from './leader.js';
import { Master } from './master.js';
import { NodeStore } from './nodes.js';
import { Registry } from './registry.js';
import { ClusterRuntime } from './runtime.js';

const log = createLogger('signaling:cluster');

/** The cluster as one signaling instance runs it: registry, leadership, master, routing. */
export interface Cluster {
  /** This instance's node id. */
  id: string;
  nodes: NodeStore;
  siteKey: KeyPair;
  registry: Registry;
  rpc: RpcClient;
  leadership: Leadership;
  master: Master;
  runtime: ClusterRuntime;
  gaps: GapStore;
  bus: Bus;
  db: Database;
  config: Readonly<Config>;
  /** Starts leading (or following). Call once this instance's own node agent heartbeats. */
  startLeadership(): void;
  close(): Promise<void>;
}

export interface CreateClusterOptions {
  db: Database;
  bus: Bus;
  config: Readonly<Config>;
  store: CameraStore;
  /** This instance's node id (unique among signaling instances: it names its reply channel). */
  id: string;
  /** Ms between leadership checks and registry checks (tests shorten them); defaults 250. */
  checkMs?: number;
}

/** Builds and starts (but for leadership) the cluster parts of a signaling instance. */
export async function createCluster(o: CreateClusterOptions): Promise<Cluster> {
  const { db, bus, config, store, id } = o;
  const nodes = new NodeStore(db);
  const siteKey = await nodes.siteKey();
  const registry = new Registry({ bus, nodes, leaseMs: config.cluster.leaseMs, clockWarningMs: config.cluster.clockWarningMs, ...(o.checkMs ? { checkMs: o.checkMs } : {}) });
  const rpc = new RpcClient({ bus, instance: id, siteKey: siteKey.privateKey, nodeKey: (n) => nodes.publicKey(n) });
  const gaps = new GapStore(db);
  const tracker = new GapTracker();
  let master: Master | undefined;
  const leadership = new Leadership({ bus, id, leaseMs: config.cluster.leaseMs, floor: () => Math.max(registry.maxEpoch(), master?.dbEpoch ?? 0), ...(o.checkMs ? { checkMs: o.checkMs } : {}) });
  master = new Master({ bus, db, store, nodes, registry, leadership, rpc, siteKey, gaps: { tracker, store: gaps } });
  const runtime = new ClusterRuntime({ registry, master, rpc, store });
  const closers: Array<() => Promise<void>> = [];
  try {
    await registry.start();
    closers.push(() => registry.close());
    await rpc.initialize();
    closers.push(() => rpc.close());
    await master.start();
    closers.push(() => master!.close());
    // Another instance enrolled, drained or revoked a node: take its keys and flags.
    const unsub = await bus.subscribe(Channel.nodes, () => {
      void nodes.load().then(() => master!.kick()).catch(() => {});
    });
    closers.push(unsub);
  } catch (error) {
    for (const c of closers.reverse()) await c().catch(() => {});
    throw error;
  }
  let closed = false;
  return {
    id, nodes, siteKey, registry, rpc, leadership, master, runtime, gaps, bus, db, config,
    startLeadership: () => leadership.start(),
    async close() {
      if (closed) return;
      closed = true;
      // Leadership first: another instance takes over at once instead of waiting for the lease.
      await leadership.close();
      for (const c of closers.reverse()) await c().catch((error: unknown) => log.warn({ err: error }, 'error while stopping'));
      await gaps.flush();
    },
  };
}

/**
 * The identity of a node that runs in a signaling process: enrolled directly in the database (this
 * process holds it), kept in the data folder like any node's. A new key is made when there is none, when
 * the site key changed (a new database) or when the database no longer knows the node's key.
 */
export async function localIdentity(nodes: NodeStore, siteKey: KeyPair, dataDir: string, id: string, roles: Role[]): Promise<NodeIdentity> {
  const file = join(dataDir, 'node-identity.json');
  let identity = readIdentity(file);
  if (identity && identity.id !== id) identity = null;
  await nodes.load();
  const enrolled = nodes.get(id);
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
  if (identity && identity.sitePublicKey === siteKey.publicKey && enrolled?.publicKey === identity.publicKey && same(enrolled.roles, roles)) return identity;
  const keys = identity && identity.sitePublicKey === siteKey.publicKey ? identity : newNodeKeys();
  await nodes.enroll(id, roles, keys.publicKey, keys.boxPublicKey);
  const fresh: NodeIdentity = { id, roles, privateKey: keys.privateKey, publicKey: keys.publicKey, boxPrivateKey: keys.boxPrivateKey, boxPublicKey: keys.boxPublicKey, sitePublicKey: siteKey.publicKey, enrolledAt: new Date().toISOString() };
  writeIdentity(file, fresh);
  return fresh;
}
