import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  CameraState, InvalidStateError, NotFoundError, TypedEmitter, counter, createLogger, gauge,
  type CameraConfig, type CameraStatus, type Config, type IngestAddress,
} from '@cctv/core';
import { Camera } from './camera.js';

const log = createLogger('camera-node');

export interface CameraNodeOptions {
  /** The `cameraNode` section of the config. */
  settings: Config['cameraNode'];
  /** Folder for runtime files; a `run/` folder is made in it. */
  dataDir: string;
}

export interface CameraNodeEvents extends Record<string, unknown[]> {
  /** A camera's state changed (or it was added). */
  camerastate: [CameraStatus];
  /** A camera was removed. */
  cameraremoved: [string];
  /** The SFU asked for a keyframe the camera's source cannot make. */
  keyframeunavailable: [string];
  close: [];
}

const nodes = new Set<CameraNode>();

function allCameras(): Camera[] {
  return [...nodes].flatMap((n) => n.cameras());
}

function registerMetrics(): void {
  gauge('cctv_camera_up', 'Whether the camera is delivering video (1) or not (0)', ['camera'], function () {
    this.reset();
    for (const c of allCameras()) this.set({ camera: c.id }, c.state === CameraState.Live ? 1 : 0);
  });
  gauge('cctv_camera_state', 'The camera state, one series per state with value 1 for the current one', ['camera', 'state'], function () {
    this.reset();
    for (const c of allCameras()) for (const s of Object.values(CameraState)) this.set({ camera: c.id, state: s }, c.state === s ? 1 : 0);
  });
  gauge('cctv_camera_input_fps', 'Frames per second received from the camera', ['camera'], function () {
    this.reset();
    for (const c of allCameras()) this.set({ camera: c.id }, c.inputStats().fps);
  });
  gauge('cctv_camera_input_bitrate_bps', 'Bits per second received from the camera', ['camera'], function () {
    this.reset();
    for (const c of allCameras()) this.set({ camera: c.id }, c.inputStats().bitrateKbps * 1000);
  });
  const totals = [
    ['cctv_camera_input_bytes_total', 'Bytes of RTP received from the camera', 'bytes'],
    ['cctv_camera_input_keyframes_total', 'Keyframes received from the camera', 'keyframes'],
    ['cctv_camera_input_junk_packets_total', 'Packets dropped because they were not valid RTP of the expected payload type', 'junk'],
    ['cctv_camera_reconnects_total', 'Times the camera source was restarted after a failure or stall', 'reconnects'],
    ['cctv_camera_input_packets_total', 'RTP packets received from the camera and forwarded', 'packets'],
  ] as const;
  for (const [name, help, field] of totals) {
    const m = counter(name, help, ['camera']);
    // Totals are kept by the cameras; each scrape copies them.
    (m as unknown as { collect: () => void }).collect = function (this: typeof m) {
      this.reset();
      for (const c of allCameras()) this.inc({ camera: c.id }, c.inputStats()[field]);
    };
  }
}

/**
 * Owns the cameras of this machine: adds, changes and removes them at runtime, and reports their
 * state. Each camera runs on its own; one failing never disturbs another.
 */
export class CameraNode extends TypedEmitter<CameraNodeEvents> {
  readonly #opts: CameraNodeOptions;
  readonly #cameras = new Map<string, Camera>();
  readonly #runtimeDir: string;
  #closed = false;

  constructor(opts: CameraNodeOptions) {
    super();
    this.#opts = opts;
    this.#runtimeDir = join(opts.dataDir, 'run');
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'listener failed');
  }

  /** Prepares the runtime folder and metrics. */
  async initialize(): Promise<void> {
    this.#assertOpen();
    mkdirSync(this.#runtimeDir, { recursive: true });
    registerMetrics();
    nodes.add(this);
  }

  /** Cameras on this node. */
  cameras(): Camera[] {
    return [...this.#cameras.values()];
  }

  /** The camera with this id; throws NotFoundError. */
  get(id: string): Camera {
    const c = this.#cameras.get(id);
    if (!c) throw new NotFoundError(`camera ${id} is not on this node`);
    return c;
  }

  has(id: string): boolean {
    return this.#cameras.has(id);
  }

  /** Statuses of every camera. */
  statuses(): CameraStatus[] {
    return this.cameras().map((c) => c.status());
  }

  /**
   * Adds a camera and starts it, sending its RTP to `target`. A source that cannot start (a port in use)
   * still adds the camera, in state `reconnecting` with the reason; the error is logged.
   */
  async addCamera(config: CameraConfig, target: IngestAddress | null): Promise<Camera> {
    this.#assertOpen();
    if (this.#cameras.has(config.id)) throw new InvalidStateError(`camera ${config.id} is already on this node`);
    const camera = new Camera(config, { ...this.#opts.settings, runtimeDir: this.#runtimeDir }, target);
    this.#cameras.set(config.id, camera);
    camera.on('state', (s) => this.safeEmit('camerastate', s));
    camera.on('keyframerequest', () => this.safeEmit('keyframeunavailable', camera.id));
    try {
      await camera.initialize();
    } catch (error) {
      log.error({ camera: config.id, err: error }, `camera ${config.id} could not start`);
    }
    this.safeEmit('camerastate', camera.status());
    return camera;
  }

  /** Applies a changed config to a camera (restarting its source only when the source changed). */
  async updateCamera(config: CameraConfig): Promise<void> {
    this.#assertOpen();
    const camera = this.get(config.id);
    try {
      await camera.update(config);
    } catch (error) {
      log.error({ camera: config.id, err: error }, `camera ${config.id} could not restart`);
    }
  }

  /** Stops and removes a camera; resolves when its processes have exited. */
  async removeCamera(id: string): Promise<void> {
    this.#assertOpen();
    const camera = this.get(id);
    this.#cameras.delete(id);
    await camera.close();
    this.safeEmit('cameraremoved', id);
  }

  /** Points a camera's RTP at another SFU ingest. */
  setTarget(id: string, target: IngestAddress | null): void {
    this.get(id).setTarget(target);
  }

  /** Closes every camera, then itself. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.cameras().map((c) => c.close()));
    this.#cameras.clear();
    nodes.delete(this);
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('camera node is closed');
  }
}
