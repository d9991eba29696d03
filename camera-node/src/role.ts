import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { canonicalJson, createLogger, type CameraAssignment, type Config, type NodeAgent } from '@cctv/core';
import { CameraNode } from './cameraNode.js';

const log = createLogger('camera-node:role');

export interface CameraNodeRoleOptions {
  config: Readonly<Config>;
  dataDir: string;
  /** The process's cluster agent (started by the caller once every role is in). */
  agent: NodeAgent;
}

export interface CameraNodeRole {
  node: CameraNode;
  /** Resolves when the assignments received so far are applied. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Runs cameras as a node of the cluster: the master's assignment says which cameras run here and where
 * each one's RTP goes; it is applied without restarts (a camera whose config is unchanged keeps its
 * ffmpeg, a new target only moves its RTP), kept on disk, and applied again at start, so the cameras
 * keep streaming while the master, Redis or Postgres is away. State changes are published at once.
 */
export async function startCameraNodeRole(o: CameraNodeRoleOptions): Promise<CameraNodeRole> {
  const node = new CameraNode({ settings: o.config.cameraNode, dataDir: o.dataDir });
  await node.initialize();
  let chain: Promise<unknown> = Promise.resolve();
  // An SFU advertised by name is looked up once per assignment, not by every packet the relay sends.
  const resolve = async (t: CameraAssignment['target']): Promise<CameraAssignment['target']> => {
    if (!t || isIP(t.host)) return t;
    try {
      return { host: (await lookup(t.host)).address, port: t.port };
    } catch (error) {
      log.error({ host: t.host, err: error }, 'cannot resolve the SFU address; holding the camera until the next assignment');
      return null;
    }
  };
  const apply = (assigned: CameraAssignment[]): Promise<void> => {
    const next = chain.then(async () => {
      // A whip camera is fed by its publisher through the SFU: nothing to run here (an assignment from
      // an older master, or a saved one, may still list it).
      const own = assigned.filter((c) => c.config.source.kind !== 'whip');
      if (own.length < assigned.length) log.warn({ cameras: assigned.filter((c) => c.config.source.kind === 'whip').map((c) => c.config.id) }, 'ignoring whip cameras in the assignment');
      const cameras = await Promise.all(own.map(async (c) => ({ ...c, target: await resolve(c.target) })));
      const want = new Map(cameras.map((c) => [c.config.id, c]));
      for (const c of node.cameras()) if (!want.has(c.id)) await node.removeCamera(c.id);
      for (const [id, a] of want) {
        if (!node.has(id)) {
          await node.addCamera(a.config, a.target);
          continue;
        }
        const cam = node.get(id);
        if (canonicalJson(cam.config) !== canonicalJson(a.config)) await node.updateCamera(a.config);
        node.setTarget(id, a.target);
      }
    });
    chain = next.catch(() => {});
    return next;
  };

  const { agent } = o;
  agent.contribute(() => {
    const cameras = node.statuses();
    return { cameras, ingressBps: cameras.reduce((n, c) => n + c.input.bitrateKbps * 1000, 0) };
  });
  agent.on('command', (c) => {
    if (c.type !== 'camera-node.assign') return;
    void apply(c.cameras)
      .then(() => {
        agent.appliedVersion = c.version;
      })
      .catch((error: unknown) => log.error({ err: error }, 'could not apply the camera assignment'));
  });
  node.on('camerastate', (status) => void agent.publish({ type: 'camera.status', node: agent.id, status }));
  return {
    node,
    async settled() {
      await chain;
    },
    async close() {
      await chain.catch(() => {});
      await node.close();
    },
  };
}
