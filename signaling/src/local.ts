import { CameraState, TypedEmitter, UnavailableError, createLogger, type CameraConfig, type CameraStatus } from '@cctv/core';
import type { CameraNode } from '@cctv/camera-node';
import type { Sfu } from '@cctv/sfu';
import type { CameraStore, StoredCamera } from './cameras.js';

const log = createLogger('signaling:local');

/** Where the WHEP door sends offers and deletes: the SFU that hosts a camera. */
export interface WhepTarget {
  /** Answers an offer; rejects with core errors (ValidationError, UnsupportedError, UnavailableError, NotFoundError). */
  createViewer(cameraId: string, offer: string): Promise<{ id: string; sdp: string }>;
  deleteViewer(cameraId: string, viewerId: string): Promise<void>;
}

/** Live state of the cameras, for the API and the dashboard. */
export interface CameraRuntime {
  status(id: string): CameraStatus;
}

export interface RuntimeEvents extends Record<string, unknown[]> {
  status: [CameraStatus];
}

/**
 * Runs every camera on this process's camera-node and SFU (the one-machine mode): each stored camera gets
 * a room on the SFU and its source on the camera-node, pointed at the room's ingest port. Changes in
 * the store are applied as they happen.
 */
export class LocalRuntime extends TypedEmitter<RuntimeEvents> implements WhepTarget, CameraRuntime {
  readonly #store: CameraStore;
  readonly #node: CameraNode;
  readonly #sfu: Sfu;
  // Changes to one camera are applied in order, one at a time.
  readonly #queues = new Map<string, Promise<void>>();
  // When a camera that is not running was first reported stopped.
  readonly #stoppedSince = new Map<string, number>();

  constructor(store: CameraStore, node: CameraNode, sfu: Sfu) {
    super();
    this.#store = store;
    this.#node = node;
    this.#sfu = sfu;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'listener failed');
    store.on('changed', (cam) => this.#enqueue(cam.config.id, () => this.#apply(cam)));
    store.on('removed', (id) => this.#enqueue(id, () => this.#remove(id)));
    node.on('camerastate', (s) => this.safeEmit('status', this.#withViewers(s)));
    node.on('keyframeunavailable', () => {});
    sfu.on('viewers', (id) => {
      if (node.has(id)) this.safeEmit('status', this.status(id));
    });
  }

  /** Starts every stored camera. */
  async initialize(): Promise<void> {
    for (const cam of await this.#store.list()) await this.#enqueue(cam.config.id, () => this.#apply(cam));
  }

  /** Resolves when every queued change has been applied (for tests and shutdown). */
  async settled(): Promise<void> {
    await Promise.all(this.#queues.values());
  }

  status(id: string): CameraStatus {
    if (this.#node.has(id)) return this.#withViewers(this.#node.get(id).status());
    let since = this.#stoppedSince.get(id);
    if (since === undefined) this.#stoppedSince.set(id, (since = Date.now()));
    return {
      id,
      state: CameraState.Stopped,
      since,
      lastError: null,
      input: { codec: null, fps: 0, bitrateKbps: 0, packets: 0, bytes: 0, keyframes: 0, junk: 0, reconnects: 0, lastPacketAt: null },
      viewers: 0,
    };
  }

  async createViewer(cameraId: string, offer: string): Promise<{ id: string; sdp: string }> {
    // Say at once what is wrong with a camera that cannot be watched, rather than after a wait.
    const camera = this.#node.has(cameraId) ? this.#node.get(cameraId) : null;
    if (!camera || !camera.config.enabled) throw new UnavailableError('CAMERA_DISABLED', `camera ${cameraId} is disabled`, 30);
    const s = camera.status();
    const lastPacket = s.input.lastPacketAt ?? 0;
    if (s.state === CameraState.Reconnecting && Date.now() - lastPacket > 2000) {
      throw new UnavailableError('CAMERA_OFFLINE', `camera ${cameraId} is not sending video${s.lastError ? ` (${s.lastError})` : ''}`, 2);
    }
    const a = await this.#sfu.createViewer(cameraId, offer);
    return { id: a.viewer.id, sdp: a.sdp };
  }

  async deleteViewer(cameraId: string, viewerId: string): Promise<void> {
    await this.#sfu.deleteViewer(cameraId, viewerId);
  }

  #withViewers(s: CameraStatus): CameraStatus {
    return { ...s, viewers: this.#sfu.hasRoom(s.id) ? this.#sfu.room(s.id).viewerCount : 0 };
  }

  #enqueue(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.#queues.get(id) ?? Promise.resolve();
    const next = prev.then(fn).catch((error: unknown) => log.error({ camera: id, err: error }, 'applying a camera change failed'));
    this.#queues.set(id, next);
    void next.then(() => {
      if (this.#queues.get(id) === next) this.#queues.delete(id);
    });
    return next;
  }

  async #apply(cam: StoredCamera): Promise<void> {
    const cfg: CameraConfig = cam.config;
    const room = await this.#sfu.createRoom(cfg.id);
    const target = { host: this.#sfu.ingestHost, port: room.ingestPort };
    if (this.#node.has(cfg.id)) {
      await this.#node.updateCamera(cfg);
      this.#node.setTarget(cfg.id, target);
    } else {
      await this.#node.addCamera(cfg, target);
    }
    if (!cfg.enabled) this.safeEmit('status', this.status(cfg.id));
  }

  async #remove(id: string): Promise<void> {
    this.#stoppedSince.delete(id);
    if (this.#node.has(id)) await this.#node.removeCamera(id);
    await this.#sfu.closeRoom(id);
  }
}
