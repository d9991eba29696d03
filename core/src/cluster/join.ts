import { join, resolve } from 'node:path';
import type { Bus } from '../bus/bus.js';
import { openBus } from '../bus/bus.js';
import type { Config } from '../config/schema.js';
import { ValidationError } from '../errors.js';
import { NodeAgent } from './agent.js';
import { loadOrEnroll, type NodeIdentity } from './identity.js';
import type { Role } from './messages.js';

/** A node process's place in the cluster: its identity, the bus and its agent (not yet started). */
export interface ClusterMembership {
  identity: NodeIdentity;
  bus: Bus;
  agent: NodeAgent;
  dataDir: string;
}

/**
 * Joins the cluster as a node without signaling (camera-node, sfu): enrols with the master on the first
 * start (or reads the identity the data folder keeps), opens the bus — starting even while Redis is
 * down, so the node streams on its saved assignment — and makes the node's agent.
 */
export async function joinCluster(config: Readonly<Config>, roles: Role[], version: string): Promise<ClusterMembership> {
  if (roles.includes('signaling')) throw new ValidationError('node.roles', 'joinCluster is for nodes without the signaling role');
  if (!config.redis.url) throw new ValidationError('redis.url', 'is needed by a node that runs apart from signaling (REDIS_URL, e.g. redis://master:6379)');
  const dataDir = resolve(config.dataDir);
  const identity = await loadOrEnroll({
    masterUrl: config.cluster.masterUrl ?? '',
    fingerprint: config.cluster.masterFingerprint,
    token: config.cluster.enrollToken,
    secret: config.cluster.enrollSecret,
    id: config.node.id,
    roles,
    file: join(dataDir, 'node-identity.json'),
  });
  const bus = await openBus({ url: config.redis.url, prefix: config.redis.prefix, lazy: true });
  const agent = new NodeAgent({
    bus,
    id: identity.id,
    roles,
    labels: config.node.labels,
    version,
    keys: { privateKey: identity.privateKey, boxPrivateKey: identity.boxPrivateKey, sitePublicKey: identity.sitePublicKey },
    stateFile: join(dataDir, 'node-state.json'),
    heartbeatMs: config.cluster.heartbeatMs,
    leaseMs: config.cluster.leaseMs,
  });
  return { identity, bus, agent, dataDir };
}
