import type { Bus, CameraConfig, Config, Database, NodeAgent } from '@cctv/core';
import { followPlacements } from '../role.js';
import { Detector } from './detector.js';
import type { EventNotice } from './types.js';

export interface DetectorRoleOptions {
  config: Readonly<Config>;
  db: Database;
  bus: Bus;
  /** The process's cluster agent: the detector's ports go out in its heartbeats, its events are signed with its key. */
  agent: NodeAgent;
  /** Who raises the alerts of its events (the alert service of this process), if anyone. */
  alerts?: { onEvent(notice: EventNotice, camera: CameraConfig): Promise<void> } | null;
}

export interface DetectorRole {
  detector: Detector;
  close(): Promise<void>;
}

/**
 * Runs the motion detector as a node of the cluster: it watches the cameras the master placed on it
 * (`detector` in the published placements) and reports the UDP port of each in its heartbeats, to which
 * the master subscribes the camera's SFU. Its events go out on the bus, signed by this node.
 */
export async function startDetectorRole(o: DetectorRoleOptions): Promise<DetectorRole> {
  const listenHost = o.config.detector.listenHost;
  const detector = new Detector({
    config: o.config, db: o.db, id: o.agent.id, listenHost,
    publish: (n) => void o.agent.publish({ type: 'motion.event', node: o.agent.id, phase: n.phase, event: n.event }),
    alerts: o.alerts ?? null,
  });
  await detector.start();
  o.agent.contribute(() => ({ detector: { host: listenHost, ports: detector.ports() } }));
  const follow = await followPlacements({ bus: o.bus, db: o.db, node: o.agent.id, field: 'detector', apply: (cameras) => detector.setCameras(cameras) });
  return {
    detector,
    async close() {
      await follow.close();
      await detector.close();
    },
  };
}
