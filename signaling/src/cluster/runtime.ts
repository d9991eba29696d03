import {
  CameraState, NotFoundError, TypedEmitter, UnavailableError, createLogger,
  type CameraStatus, type RpcClient,
} from '@cctv/core';
import type { CameraStore } from '../cameras.js';
import type { Master, PlacementRecord } from './master.js';
import type { Registry } from './registry.js';

const log = createLogger('signaling:runtime');

/** Where the WHEP door sends offers and deletes: the SFU that hosts a camera. */
export interface WhepTarget {
  /** Answers an offer; rejects with core errors (ValidationError, UnsupportedError, UnavailableError, NotFoundError). */
  createViewer(cameraId: string, offer: string): Promise<{ id: string; sdp: string }>;
  deleteViewer(cameraId: string, viewerId: string): Promise<void>;
}

/** Where the WHIP door sends publishers' offers and deletes: the SFU that holds a camera's room. */
export interface WhipTarget {
  /** Answers a WHIP offer; rejects with core errors (ValidationError, UnsupportedError, UnavailableError, NotFoundError). */
  createPublisher(cameraId: string, offer: string): Promise<{ id: string; sdp: string }>;
  deletePublisher(cameraId: string, session: string): Promise<void>;
}

/** Live state of the cameras, for the API and the dashboard. */
export interface CameraRuntime {
  status(id: string): CameraStatus;
  /** Where a camera runs, when the cluster knows. */
  placement?(id: string): PlacementRecord | undefined;
}

export interface RuntimeEvents extends Record<string, unknown[]> {
  status: [CameraStatus];
}

const SESSION_SEPARATOR = '~';
const EMPTY_INPUT: CameraStatus['input'] = { codec: null, fps: 0, bitrateKbps: 0, packets: 0, bytes: 0, keyframes: 0, junk: 0, reconnects: 0, lastPacketAt: null };
/** A WHIP camera whose room has had no packet for this long is not live (heartbeats come every second). */
const WHIP_LIVE_MS = 2500;

/**
 * The cameras as the cluster runs them, seen from one signaling instance: each camera's status comes
 * from the camera-node the master placed it on (its events at once, its heartbeats every second), its
 * viewers from its SFU's room; WHEP offers go to that SFU over the bus, and the session id names the SFU,
 * so any instance can end a session begun at another.
 */
export class ClusterRuntime extends TypedEmitter<RuntimeEvents> implements WhepTarget, WhipTarget, CameraRuntime {
  readonly #registry: Registry;
  readonly #master: Master;
  readonly #rpc: RpcClient;
  readonly #store: CameraStore;
  /** Latest status of each camera from each node that reported it. */
  readonly #reported = new Map<string, Map<string, CameraStatus>>();
  /** What was last emitted for each camera, to emit only changes. */
  readonly #emitted = new Map<string, string>();
  readonly #stoppedSince = new Map<string, number>();

  constructor(o: { registry: Registry; master: Master; rpc: RpcClient; store: CameraStore }) {
    super();
    this.#registry = o.registry;
    this.#master = o.master;
    this.#rpc = o.rpc;
    this.#store = o.store;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'listener failed');
    o.registry.on('camera', (e) => {
      this.#report(e.node, e.status);
      this.#maybeEmit(e.status.id);
    });
    o.registry.on('heartbeat', (n) => {
      const hb = n.heartbeat;
      for (const s of hb.cameras) this.#report(n.id, s);
      // A camera this node no longer runs is no longer reported by it.
      for (const [cam, byNode] of this.#reported) if (byNode.has(n.id) && !hb.cameras.some((c) => c.id === cam)) byNode.delete(n.id);
      for (const s of hb.cameras) this.#maybeEmit(s.id);
      for (const r of hb.rooms) this.#maybeEmit(r.camera);
    });
    o.registry.on('dead', (n) => {
      for (const s of n.heartbeat.cameras) this.#maybeEmit(s.id);
      for (const r of n.heartbeat.rooms) this.#maybeEmit(r.camera);
    });
    o.master.on('round', () => {
      for (const p of o.master.placements()) this.#maybeEmit(p.camera);
    });
    o.store.on('removed', (id) => {
      this.#reported.delete(id);
      this.#emitted.delete(id);
      this.#stoppedSince.delete(id);
    });
  }

  #report(node: string, s: CameraStatus): void {
    let byNode = this.#reported.get(s.id);
    if (!byNode) this.#reported.set(s.id, (byNode = new Map()));
    byNode.set(node, s);
  }

  placement(id: string): PlacementRecord | undefined {
    return this.#master.placement(id);
  }

  #viewers(id: string, sfu: string | null): number {
    const n = sfu ? this.#registry.get(sfu) : undefined;
    if (!n || n.state !== 'alive') return 0;
    return n.heartbeat.rooms.find((r) => r.camera === id)?.viewers ?? 0;
  }

  status(id: string): CameraStatus {
    const p = this.#master.placement(id);
    if (p?.publisher === 'whip') return this.#whipStatus(p);
    const node = p?.cameraNode ? this.#registry.get(p.cameraNode) : undefined;
    const reported = p?.cameraNode ? this.#reported.get(id)?.get(p.cameraNode) : undefined;
    if (node?.state === 'alive' && reported) {
      this.#stoppedSince.delete(id);
      return { ...reported, viewers: this.#viewers(id, p!.sfu) };
    }
    if (p) {
      // Placed, but its node is down or has not reported it yet.
      const why = node?.state === 'dead' ? `camera-node ${node.id} is down${p.problem ? ` (${p.problem})` : '; moving the camera'}` : (p.problem ?? (p.cameraNode ? `starting on ${p.cameraNode}` : 'waiting for a camera-node'));
      const state = node?.state === 'dead' || p.problem || !p.cameraNode ? CameraState.Reconnecting : CameraState.Starting;
      return { id, state, since: p.since, lastError: state === CameraState.Starting ? null : why, input: EMPTY_INPUT, viewers: this.#viewers(id, p.sfu) };
    }
    // Not placed: disabled (the master places enabled cameras only), or not yet seen by the master.
    let since = this.#stoppedSince.get(id);
    if (since === undefined) this.#stoppedSince.set(id, (since = Date.now()));
    return { id, state: CameraState.Stopped, since, lastError: null, input: EMPTY_INPUT, viewers: 0 };
  }

  /**
   * A WHIP camera has no camera-node: it is live while its SFU's room receives packets (from the room
   * reports in the SFU's heartbeats), and waits for a publisher otherwise.
   */
  #whipStatus(p: PlacementRecord): CameraStatus {
    const n = p.sfu ? this.#registry.get(p.sfu) : undefined;
    const room = n?.state === 'alive' ? n.heartbeat.rooms.find((r) => r.camera === p.camera) : undefined;
    const now = Date.now();
    const last = room && room.lastPacketAt > 0 ? room.lastPacketAt : null;
    const input = { ...EMPTY_INPUT, codec: room?.codec ?? null, lastPacketAt: last };
    const viewers = this.#viewers(p.camera, p.sfu);
    if (last !== null && now - last < WHIP_LIVE_MS) {
      this.#stoppedSince.delete(p.camera);
      return { id: p.camera, state: CameraState.Live, since: room!.streamStartAt || last, lastError: null, input, viewers };
    }
    let since = this.#stoppedSince.get(p.camera);
    if (since === undefined) this.#stoppedSince.set(p.camera, (since = last ?? p.since));
    const why = !p.sfu ? (p.problem ?? 'no SFU serves it') : n?.state !== 'alive' ? `SFU ${p.sfu} is down` : 'waiting for a WHIP publisher';
    return { id: p.camera, state: CameraState.Reconnecting, since, lastError: why, input, viewers };
  }

  #maybeEmit(id: string): void {
    const s = this.status(id);
    const digest = `${s.state}|${s.lastError}|${s.viewers}|${s.input.codec}`;
    if (this.#emitted.get(id) === digest) return;
    this.#emitted.set(id, digest);
    this.safeEmit('status', s);
  }

  async createViewer(cameraId: string, offer: string): Promise<{ id: string; sdp: string }> {
    const cam = await this.#store.get(cameraId);
    if (!cam) throw new NotFoundError(`no camera with id '${cameraId}'`);
    if (!cam.config.enabled) throw new UnavailableError('CAMERA_DISABLED', `camera ${cameraId} is disabled`, 30);
    const p = this.#master.placement(cameraId);
    if (!p?.sfu) throw new UnavailableError('CAMERA_NOT_PLACED', `no SFU serves camera ${cameraId} now${p?.problem ? `: ${p.problem}` : ''}`, 1);
    // Say at once what is wrong with a camera that cannot be watched, rather than after a wait.
    const s = this.status(cameraId);
    if (s.state === CameraState.Reconnecting && Date.now() - (s.input.lastPacketAt ?? 0) > 2000) {
      throw new UnavailableError('CAMERA_OFFLINE', `camera ${cameraId} is not sending video${s.lastError ? ` (${s.lastError})` : ''}`, 2);
    }
    const r = await this.#rpc.call(p.sfu, 'sfu.whep.offer', { camera: cameraId, sdp: offer }, 5000);
    return { id: `${p.sfu}${SESSION_SEPARATOR}${r.viewer}`, sdp: r.sdp };
  }

  /**
   * Answers a WHIP offer (RFC 9725) for a `whip` camera by asking the SFU that holds its room; the
   * session id names that SFU, like a WHEP session's.
   */
  async createPublisher(cameraId: string, offer: string): Promise<{ id: string; sdp: string }> {
    const cam = await this.#store.get(cameraId);
    if (!cam) throw new NotFoundError(`no camera with id '${cameraId}'`);
    if (!cam.config.enabled) throw new UnavailableError('CAMERA_DISABLED', `camera ${cameraId} is disabled`, 30);
    const p = this.#master.placement(cameraId);
    if (!p?.sfu) throw new UnavailableError('CAMERA_NOT_PLACED', `no SFU serves camera ${cameraId} now${p?.problem ? `: ${p.problem}` : ''}`, 1);
    const r = await this.#rpc.call(p.sfu, 'sfu.whip.offer', { camera: cameraId, sdp: offer }, 5000);
    return { id: `${p.sfu}${SESSION_SEPARATOR}${r.publisher}`, sdp: r.sdp };
  }

  async deletePublisher(cameraId: string, session: string): Promise<void> {
    const i = session.indexOf(SESSION_SEPARATOR);
    if (i <= 0) throw new NotFoundError(`no publishing session '${session.slice(0, 80)}'`);
    const node = session.slice(0, i);
    const n = this.#registry.get(node);
    if (!n) throw new NotFoundError(`no publishing session '${session.slice(0, 80)}'`);
    // A session whose SFU is gone ended with it.
    if (n.state === 'dead') return;
    try {
      await this.#rpc.call(node, 'sfu.whip.delete', { camera: cameraId, publisher: session.slice(i + 1) }, 3000);
    } catch (error) {
      if ((error as UnavailableError).reason === 'NODE_UNREACHABLE') return;
      throw error;
    }
  }

  async deleteViewer(cameraId: string, session: string): Promise<void> {
    const i = session.indexOf(SESSION_SEPARATOR);
    if (i <= 0) throw new NotFoundError(`no viewing session '${session.slice(0, 80)}'`);
    const node = session.slice(0, i);
    const viewer = session.slice(i + 1);
    const n = this.#registry.get(node);
    if (!n) throw new NotFoundError(`no viewing session '${session.slice(0, 80)}'`);
    // A session whose SFU is gone ended with it.
    if (n.state === 'dead') return;
    try {
      await this.#rpc.call(node, 'sfu.whep.delete', { camera: cameraId, viewer }, 3000);
    } catch (error) {
      if ((error as UnavailableError).reason === 'NODE_UNREACHABLE') return;
      throw error;
    }
  }
}
