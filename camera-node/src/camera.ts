import { randomInt } from 'node:crypto';
import {
  CameraState, InvalidStateError, TypedEmitter, createLogger,
  type CameraConfig, type CameraInputStats, type CameraStatus, type ExitInfo, type IngestAddress,
} from '@cctv/core';
import { RtpRelay } from './relay.js';
import { createSource } from './sources/index.js';
import type { Source } from './sources/types.js';

const log = createLogger('camera-node:camera');

/** Settings a camera takes from its node. */
export interface CameraSettings {
  /** Retry delays of a failing source, in ms. */
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  /** A source that sends nothing for this long is restarted, in ms. */
  stallTimeoutMs: number;
  /** Folder for small runtime files (RTSP SDPs). */
  runtimeDir: string;
}

export interface CameraEvents extends Record<string, unknown[]> {
  /** The state changed. */
  state: [CameraStatus];
  /** The source asked for nothing but a keyframe was requested by the SFU. */
  keyframerequest: [];
  close: [];
}

// How often rates are computed and stalls checked, in ms.
const TICK_MS = 500;
// Rates are averaged over this many ticks.
const RATE_WINDOW = 4;
// A camera is live while its last packet is at most this old, in ms (longer than a 1 fps camera's gap).
const LIVE_WINDOW_MS = 2000;

/**
 * One camera: its source (usually one supervised ffmpeg), the relay that forwards its RTP to the SFU,
 * its state and its input stats. Created and owned by a CameraNode.
 */
export class Camera extends TypedEmitter<CameraEvents> {
  readonly id: string;
  #config: CameraConfig;
  readonly #settings: CameraSettings;
  #source: Source | null = null;
  #relay: RtpRelay | null = null;
  #target: IngestAddress | null;
  #state: CameraState = CameraState.Stopped;
  #since = Date.now();
  #lastError: string | null = null;
  // When the running source process started (null while none runs); stall checks count from here.
  #runningSince: number | null = null;
  // When the source last exited; packets older than this do not make the camera live.
  #exitAt = 0;
  #stallReason: string | null = null;
  #timer: NodeJS.Timeout | undefined;
  #history: Array<{ t: number; frames: number; bytes: number }> = [];
  #rates = { fps: 0, bitrateKbps: 0 };
  #reconnects = 0;
  // Counters of relays that were replaced, so totals survive a source change.
  #carried = { packets: 0, bytes: 0, keyframes: 0, junk: 0 };
  readonly #ssrc = randomInt(1, 0xffffffff);
  #closed = false;
  // A source that could not even start (its port taken) is tried again after a growing delay.
  #retryTimer: NodeJS.Timeout | undefined;
  #retryDelayMs: number;

  constructor(config: CameraConfig, settings: CameraSettings, target: IngestAddress | null) {
    super();
    this.id = config.id;
    this.#config = config;
    this.#settings = settings;
    this.#target = target;
    this.#retryDelayMs = settings.reconnect.initialDelayMs;
    this.onListenerError = (event, error) => log.error({ camera: this.id, event, err: error }, 'camera listener failed');
  }

  /** The camera's config as last applied. */
  get config(): CameraConfig {
    return this.#config;
  }

  get state(): CameraState {
    return this.#state;
  }

  /** The SSRC the camera's RTP carries towards the SFU (stable for the camera's life). */
  get ssrc(): number {
    return this.#ssrc;
  }

  /** Process ids of the source (empty when it runs none). */
  get pids(): number[] {
    return this.#source?.supervisor?.pids ?? [];
  }

  /** Starts the source when the camera is enabled. A failure leaves nothing open. */
  async initialize(): Promise<void> {
    this.#assertOpen();
    if (this.#config.enabled) await this.#startSource();
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  /** Sends the RTP to another SFU ingest (or holds it, with null), without restarting the source. */
  setTarget(target: IngestAddress | null): void {
    this.#assertOpen();
    this.#target = target;
    this.#relay?.setTarget(target);
  }

  /** Asks the source for a keyframe, where it can honour one. */
  requestKeyframe(): void {
    if (this.#source?.canRequestKeyframe) this.#source.requestKeyframe();
    else this.safeEmit('keyframerequest');
  }

  /**
   * Applies a new config: a changed source restarts the source, a rename does not, disabling stops it.
   */
  async update(config: CameraConfig): Promise<void> {
    this.#assertOpen();
    if (config.id !== this.id) throw new TypeError(`argument 'config.id' must be '${this.id}'`);
    const before = this.#config;
    this.#config = config;
    const sourceChanged = JSON.stringify(before.source) !== JSON.stringify(config.source);
    if (!config.enabled) {
      await this.#stopSource();
      this.#setState(CameraState.Stopped, null);
    } else if (sourceChanged || !before.enabled || !this.#source) {
      await this.#stopSource();
      await this.#startSource();
    }
  }

  /** The camera's state and input stats now. */
  status(): CameraStatus {
    return { id: this.id, state: this.#state, since: this.#since, lastError: this.#lastError, input: this.inputStats(), viewers: 0 };
  }

  inputStats(): CameraInputStats {
    const c = this.#relay?.counters;
    const k = this.#carried;
    return {
      codec: this.#relay?.codec ?? this.#source?.codec ?? null,
      fps: this.#rates.fps,
      bitrateKbps: this.#rates.bitrateKbps,
      packets: k.packets + (c?.packets ?? 0),
      bytes: k.bytes + (c?.bytes ?? 0),
      keyframes: k.keyframes + (c?.keyframes ?? 0),
      junk: k.junk + (c?.junk ?? 0),
      reconnects: this.#reconnects,
      lastPacketAt: c?.lastPacketAt ?? null,
    };
  }

  /** Stops the source and releases the port. Idempotent; afterwards every method throws. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#stopSource();
    this.#setState(CameraState.Stopped, null);
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError(`camera ${this.id} is closed`);
  }

  async #startSource(): Promise<void> {
    const source = createSource(this.#config.source, this.#settings.runtimeDir);
    const relay = new RtpRelay({
      bind: source.listen ?? { host: '127.0.0.1', port: 0 },
      expectPayloadType: source.payloadType,
      codec: source.codec,
      ssrc: this.#ssrc,
      onKeyframeRequest: () => this.requestKeyframe(),
      resolveCodec: () => source.detectCodec(),
    });
    try {
      const port = await relay.bind();
      relay.setTarget(this.#target);
      this.#source = source;
      this.#relay = relay;
      this.#history = [];
      this.#exitAt = Date.now();
      // A source without a process (RTP) is expected to send from now on.
      this.#runningSince = Date.now();
      this.#setState(CameraState.Starting, null);
      source.start({
        cameraId: this.id,
        rtpTarget: { host: '127.0.0.1', port },
        reconnect: this.#settings.reconnect,
        logger: log,
        onSpawn: () => {
          this.#runningSince = Date.now();
        },
        // A source being stopped on purpose (config change, disable) exits too; that is no failure.
        onExit: (info) => {
          if (this.#source === source) this.#onSourceExit(info);
        },
      });
    } catch (error) {
      relay.close();
      await source.close().catch(() => {});
      this.#source = null;
      this.#relay = null;
      this.#setState(CameraState.Reconnecting, (error as Error).message);
      this.#scheduleStartRetry();
      throw error;
    }
    this.#retryDelayMs = this.#settings.reconnect.initialDelayMs;
  }

  #scheduleStartRetry(): void {
    clearTimeout(this.#retryTimer);
    const delay = this.#retryDelayMs;
    this.#retryDelayMs = Math.min(delay * 2, this.#settings.reconnect.maxDelayMs);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#closed || !this.#config.enabled || this.#source) return;
      this.#reconnects++;
      this.#startSource().catch(() => {});
    }, delay);
    this.#retryTimer.unref();
  }

  async #stopSource(): Promise<void> {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    const source = this.#source;
    const relay = this.#relay;
    this.#source = null;
    this.#relay = null;
    if (relay) {
      const c = relay.counters;
      this.#carried.packets += c.packets;
      this.#carried.bytes += c.bytes;
      this.#carried.keyframes += c.keyframes;
      this.#carried.junk += c.junk;
      relay.close();
    }
    this.#rates = { fps: 0, bitrateKbps: 0 };
    await source?.close();
  }

  #onSourceExit(info: ExitInfo): void {
    if (this.#closed) return;
    this.#reconnects++;
    // A new connection may bring another codec (an RTSP camera reconfigured to H.265).
    this.#relay?.resetCodec(this.#source?.codec ?? null);
    this.#runningSince = null;
    this.#exitAt = Date.now();
    const reason = this.#stallReason ?? info.stderr.at(-1) ?? (info.signal ? `killed by ${info.signal}` : `exited with code ${String(info.code)}`);
    this.#stallReason = null;
    this.#setState(CameraState.Reconnecting, reason);
  }

  #tick(): void {
    const relay = this.#relay;
    if (!relay || !this.#config.enabled) return;
    const now = Date.now();
    const c = relay.counters;
    this.#history.push({ t: now, frames: c.frames, bytes: c.bytes });
    if (this.#history.length > RATE_WINDOW + 1) this.#history.shift();
    const first = this.#history[0]!;
    const dt = (now - first.t) / 1000;
    if (dt > 0) {
      this.#rates = {
        fps: Math.round(((c.frames - first.frames) / dt) * 10) / 10,
        bitrateKbps: Math.round(((c.bytes - first.bytes) * 8) / dt / 1000),
      };
    }
    const last = c.lastPacketAt;
    const stall = this.#settings.stallTimeoutMs;
    if (last !== null && last > this.#exitAt && now - last < Math.min(stall, LIVE_WINDOW_MS)) {
      if (this.#state !== CameraState.Live) {
        this.#source?.supervisor?.markHealthy();
        this.#setState(CameraState.Live, null);
      }
      return;
    }
    const since = this.#runningSince;
    const quietFor = since === null ? 0 : now - Math.max(last ?? 0, since);
    if (this.#state === CameraState.Live) this.#setState(CameraState.Reconnecting, 'no video');
    // A source that runs but sends nothing (a hung ffmpeg, a silent RTP sender) counts as failed.
    if (since !== null && quietFor >= stall) {
      const reason = `no video for ${Math.round(quietFor / 1000)} s`;
      if (this.#source?.supervisor) {
        // The exit that follows counts the reconnect and keeps this reason.
        this.#stallReason = reason;
        this.#runningSince = null;
        this.#source.restart('stalled');
      } else {
        // Nothing to restart (RTP pushed to us); wait for packets.
        this.#runningSince = now;
      }
      this.#setState(CameraState.Reconnecting, reason);
    }
  }

  #setState(state: CameraState, error: string | null): void {
    if (state === this.#state && error === this.#lastError) return;
    const changed = state !== this.#state;
    this.#state = state;
    if (changed) this.#since = Date.now();
    this.#lastError = error;
    if (changed) log.info({ camera: this.id, state, error: error ?? undefined }, `camera ${this.id} is ${state}`);
    this.safeEmit('state', this.status());
  }
}
