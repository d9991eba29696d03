import type { CameraConfig, ROLES, VideoCodec } from '../config/schema.js';
import type { CameraStatus } from '../wire.js';
import type { Box } from './box.js';

/**
 * What crosses the bus between the master (signaling) and the nodes. Channels and keys, under the bus
 * prefix:
 *   node:<id>          the node's last heartbeat (signed), with a time to live of the lease
 *   heartbeats         every heartbeat, as it is sent
 *   alive:<id>         subscribed by the node while it runs: its subscriber count drops to 0 the moment
 *                      its process dies (the kernel closes its connection), long before the lease ends
 *   cmd:<id>           commands from the master to one node (signed with the site key)
 *   rpc:<id>           requests to one node; answers go to the reply channel each request names
 *   events             camera state changes and motion events, as they happen (signed by the node)
 *   leader             the master lease: `<instance>:<epoch>`
 *   placements         where every camera runs (set and published by the master; every signaling
 *                      instance routes WHEP by it, every recorder and detector takes its cameras from it)
 *   config             a camera or setting changed in the database (every instance reloads)
 *   nodes              a node was enrolled, drained or revoked (every instance reloads its keys)
 */
export const Channel = {
  heartbeats: 'heartbeats',
  events: 'events',
  placements: 'placements',
  config: 'config',
  nodes: 'nodes',
  alive: (node: string) => `alive:${node}`,
  cmd: (node: string) => `cmd:${node}`,
  rpc: (node: string) => `rpc:${node}`,
} as const;

export const Key = {
  node: (id: string) => `node:${id}`,
  leader: 'leader',
  leaderEpoch: 'leader:epoch',
  placements: 'placements',
} as const;

/** Roles a process can run. */
export type Role = (typeof ROLES)[number];

/** An SFU room as its node reports it. */
export interface RoomReport {
  camera: string;
  ingestPort: number;
  codec: VideoCodec | null;
  viewers: number;
  /** Last RTP packet, ms since the epoch (0: none yet). */
  lastPacketAt: number;
  /** When the current run of packets began (after the room opened or after a silence), ms (0: none). */
  streamStartAt: number;
}

/** What a node says of itself every second. */
export interface Heartbeat {
  id: string;
  roles: Role[];
  labels: Record<string, string>;
  version: string;
  /** When the process started, ms since the epoch. */
  startedAt: number;
  /** The node's clock when it sent this, ms since the epoch. */
  clock: number;
  /** What NTP says on this machine, when chrony or systemd-timesyncd can be asked. */
  ntp: { source: 'chrony' | 'timesyncd' | 'none'; synchronized: boolean | null; offsetMs: number | null };
  /** Where others reach it: the address RTP should be sent to (SFU), the API (signaling). */
  addresses: { ingestHost: string | null; api: string | null };
  load: {
    /** Share of the machine's CPUs in use over the last seconds, 0–1. */
    cpu: number;
    cpus: number;
    /** Bits per second of camera video coming in. */
    ingressBps: number;
    viewers: number;
    cameras: number;
  };
  /** The config version of the last assignment applied. */
  appliedVersion: number;
  /** The newest master epoch this node has taken a command from (a new master starts above it). */
  epoch: number;
  /** Cameras running here (camera-node). */
  cameras: CameraStatus[];
  /** Rooms open here (SFU). */
  rooms: RoomReport[];
  /**
   * The recorder here: the address SFUs send RTP to, and the UDP port of each camera it records (the
   * master subscribes the camera's SFU to it).
   */
  recorder?: { host: string; ports: Record<string, number>; recording: string[] } | null;
  /** The motion detector here: the address SFUs send RTP to, and the UDP port of each camera it watches. */
  detector?: { host: string; ports: Record<string, number> } | null;
}

/** A camera as a camera-node is told to run it. */
export interface CameraAssignment {
  config: CameraConfig;
  /** Where its RTP goes (the room's ingest on its SFU), or null while there is none. */
  target: { host: string; port: number } | null;
}

/** Commands from the master; each carries the master's fencing epoch and the config version. */
export type Command = { type: 'camera-node.assign'; epoch: number; version: number; cameras: CameraAssignment[] };

/** A command as it crosses the bus: camera assignments (they hold camera credentials) sealed to the node. */
export type WireCommand = { type: 'camera-node.assign'; epoch: number; version: number; cameras: Box };

/** Requests to a node, and their answers. */
export type RpcRequest =
  | { method: 'sfu.rooms'; params: { epoch: number; version: number; cameras: string[] } }
  | { method: 'sfu.whep.offer'; params: { camera: string; sdp: string } }
  | { method: 'sfu.whep.delete'; params: { camera: string; viewer: string } }
  | { method: 'sfu.whip.offer'; params: { camera: string; sdp: string } }
  | { method: 'sfu.whip.delete'; params: { camera: string; publisher: string } }
  | { method: 'sfu.subscribe'; params: { camera: string; host: string; port: number; leaseMs?: number } }
  | { method: 'sfu.renew'; params: { camera: string; id: string } }
  | { method: 'sfu.unsubscribe'; params: { camera: string; id: string } }
  | { method: 'ping'; params: { sentAt: number } };

export interface RpcResults {
  'sfu.rooms': { ports: Record<string, number> };
  'sfu.whep.offer': { viewer: string; sdp: string };
  'sfu.whep.delete': Record<string, never>;
  'sfu.whip.offer': { publisher: string; sdp: string };
  'sfu.whip.delete': Record<string, never>;
  'sfu.subscribe': { id: string; codec: VideoCodec; payloadType: number; ssrc: number };
  'sfu.renew': { ok: boolean };
  'sfu.unsubscribe': Record<string, never>;
  ping: { clock: number };
}

/** An error carried back over RPC: the core error class name, its message, and for UnavailableError its reason. */
export interface RpcError {
  name: string;
  message: string;
  path?: string;
  reason?: string;
  retryAfterS?: number;
}

/** A camera's state change, published by its camera-node as it happens. */
export interface CameraEvent {
  type: 'camera.status';
  node: string;
  status: CameraStatus;
}

/** A motion event started, grew or ended, published by the detector that saw it (the body is the recorder's EventNotice). */
export interface MotionNotice {
  type: 'motion.event';
  node: string;
  phase: 'start' | 'update' | 'end';
  event: { id: number; camera: string; [k: string]: unknown };
}
