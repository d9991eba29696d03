import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import {
  InvalidStateError, NotFoundError, TypedEmitter, counter, createLogger, gauge, histogram, type Config,
} from '@cctv/core';
import { Room, type PublisherAnswer, type RoomSettings, type ViewerAnswer } from './room.js';
import { createDtlsKeys, useNativeX25519, warmUp, type DtlsKeys } from './webrtc.js';

const log = createLogger('sfu');

export interface SfuOptions {
  /** The `sfu` section of the config. */
  settings: Config['sfu'];
  /** Folder for runtime files (transcoder SDPs). */
  dataDir: string;
  /** A viewer that sends no RTCP about our stream for this long is closed, in ms; default 15000. */
  viewerIdleTimeoutMs?: number;
  /** A WHIP publisher not connected, or sending nothing, for this long is closed, in ms; default 15000. */
  publisherIdleTimeoutMs?: number;
  /**
   * A WHIP publisher is asked for a keyframe this often, in ms; default 2000. Browsers send one only when
   * asked, and recordings are cut into segments at keyframes.
   */
  publisherKeyframeIntervalMs?: number;
}

export interface SfuEvents extends Record<string, unknown[]> {
  /** Viewers of a camera changed: camera id, count. */
  viewers: [string, number];
  close: [];
}

const sfus = new Set<Sfu>();

function registerMetrics(): void {
  const rooms = () => [...sfus].flatMap((s) => s.rooms());
  const perRoom = (name: string, help: string, read: (r: Room) => number, kind: 'gauge' | 'counter') => {
    const collect = function (this: { reset(): void; set?(l: object, v: number): void; inc?(l: object, v: number): void }) {
      this.reset();
      for (const r of rooms()) {
        const v = read(r);
        if (kind === 'gauge') this.set!({ camera: r.cameraId }, v);
        else this.inc!({ camera: r.cameraId }, v);
      }
    };
    if (kind === 'gauge') gauge(name, help, ['camera'], collect as never);
    else (counter(name, help, ['camera']) as unknown as { collect: unknown }).collect = collect;
  };
  perRoom('cctv_sfu_viewers', 'WebRTC viewers of the camera', (r) => r.viewerCount, 'gauge');
  perRoom('cctv_sfu_ingest_packets_total', 'RTP packets received on the camera ingest', (r) => r.ingestCounters.packets, 'counter');
  perRoom('cctv_sfu_ingest_bytes_total', 'Bytes received on the camera ingest', (r) => r.ingestCounters.bytes, 'counter');
  perRoom('cctv_sfu_ingest_junk_packets_total', 'Datagrams on the ingest that were not RTP of the camera stream', (r) => r.ingestCounters.junk, 'counter');
  perRoom('cctv_sfu_ingest_lost_packets_total', 'RTP packets missing on the ingest (sequence gaps)', (r) => r.ingestCounters.lost, 'counter');
  perRoom('cctv_sfu_keyframe_requests_total', 'Keyframe requests sent to the camera source', (r) => r.ingestCounters.keyframeRequests, 'counter');
  perRoom('cctv_sfu_keyframe_waits_total', 'Viewers that had to wait for a keyframe (nothing cached to start from)', (r) => r.keyframeWaits.count, 'counter');
  perRoom('cctv_sfu_keyframe_wait_seconds_total', 'Time viewers spent waiting for a keyframe', (r) => r.keyframeWaits.totalMs / 1000, 'counter');
  perRoom('cctv_sfu_packets_sent_total', 'RTP packets sent to viewers', (r) => r.totals.packetsSent, 'counter');
  perRoom('cctv_sfu_bytes_sent_total', 'Bytes of SRTP sent to viewers', (r) => r.totals.bytesSent, 'counter');
  perRoom('cctv_sfu_nacks_total', 'NACK messages received from viewers', (r) => r.totals.nacks, 'counter');
  perRoom('cctv_sfu_retransmitted_packets_total', 'Packets sent again after a NACK', (r) => r.totals.retransmitted, 'counter');
  perRoom('cctv_sfu_nack_misses_total', 'NACKed packets no longer in the history', (r) => r.totals.nackMisses, 'counter');
  perRoom('cctv_sfu_viewer_keyframe_requests_total', 'PLI/FIR received from viewers', (r) => r.totals.keyframeRequests, 'counter');
  perRoom('cctv_sfu_viewer_lost_packets_total', 'Packets viewers reported lost in their receiver reports', (r) => r.totals.remoteLost, 'counter');
  perRoom('cctv_sfu_transcoders', 'H.265 to H.264 transcodes running for the camera', (r) => (r.transcoderPids.length > 0 ? 1 : 0), 'gauge');
}

/** Seconds from a WHEP POST to the first keyframe sent to that viewer. */
const firstFrame = histogram('cctv_sfu_time_to_first_keyframe_seconds', 'From the WHEP offer to the first keyframe sent to the viewer', [], [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5]);
const whepSessions = counter('cctv_sfu_whep_sessions_total', 'WHEP sessions created', ['camera']);
const whipSessions = counter('cctv_sfu_whip_sessions_total', 'WHIP publishing sessions created', ['camera']);

/** The machine's non-internal IPv4 addresses. */
export function hostIPv4Addresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => a.address);
}

/**
 * The media router: one room per camera, each with an RTP ingest port and any number of WHEP viewers.
 */
export class Sfu extends TypedEmitter<SfuEvents> {
  readonly #opts: SfuOptions;
  readonly #rooms = new Map<string, Room>();
  #dtlsKeys: DtlsKeys | null = null;
  #warmUp: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(opts: SfuOptions) {
    super();
    this.#opts = opts;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'sfu listener failed');
  }

  /** Makes the DTLS certificate shared by every viewer and registers metrics. */
  async initialize(): Promise<void> {
    this.#assertOpen();
    useNativeX25519();
    this.#dtlsKeys = await createDtlsKeys();
    registerMetrics();
    sfus.add(this);
    // In the background: the first viewer should not pay for loading and compiling the handshake code.
    this.#warmUp = warmUp(this.#dtlsKeys).then((ms) => log.debug({ ms: Math.round(ms) }, 'warmed up the WebRTC stack'));
  }

  /** The address camera-nodes should send RTP to (the host part). */
  get ingestHost(): string {
    const i = this.#opts.settings.ingest;
    if (i.advertisedHost) return i.advertisedHost;
    if (i.bindHost !== '0.0.0.0' && i.bindHost !== '::') return i.bindHost;
    return this.#opts.settings.ice.hostAddresses[0] ?? hostIPv4Addresses()[0] ?? '127.0.0.1';
  }

  rooms(): Room[] {
    return [...this.#rooms.values()];
  }

  /** The room of a camera; throws NotFoundError. */
  room(cameraId: string): Room {
    const r = this.#rooms.get(cameraId);
    if (!r) throw new NotFoundError(`camera ${cameraId} has no room on this SFU`);
    return r;
  }

  hasRoom(cameraId: string): boolean {
    return this.#rooms.has(cameraId);
  }

  /** Creates (or returns) the room of a camera and binds its ingest port (`preferredPort` if free). */
  async createRoom(cameraId: string, preferredPort = 0): Promise<Room> {
    this.#assertOpen();
    const existing = this.#rooms.get(cameraId);
    if (existing) return existing;
    const s = this.#opts.settings;
    const settings: RoomSettings = {
      ingestHost: s.ingest.bindHost,
      hostAddresses: s.ice.hostAddresses,
      announcedAddresses: s.ice.announcedAddresses,
      loopback: s.ice.loopback,
      portRange: s.ice.portMin > 0 && s.ice.portMax > s.ice.portMin ? [s.ice.portMin, s.ice.portMax] : undefined,
      playoutDelay: s.playoutDelay,
      fastStart: s.fastStart,
      fastStartMaxBytes: s.fastStartMaxBytes,
      maxViewers: s.maxViewersPerCamera,
      transcode: s.transcode,
      runtimeDir: join(this.#opts.dataDir, 'run'),
      dtlsKeys: this.#dtlsKeys!,
      codecWaitMs: 3000,
      viewerIdleTimeoutMs: this.#opts.viewerIdleTimeoutMs ?? 15_000,
      publisherIdleTimeoutMs: this.#opts.publisherIdleTimeoutMs ?? 15_000,
      publisherKeyframeIntervalMs: this.#opts.publisherKeyframeIntervalMs ?? 2000,
    };
    const room = new Room(cameraId, settings);
    await room.initialize(preferredPort);
    this.#rooms.set(cameraId, room);
    room.on('viewers', (n) => this.safeEmit('viewers', cameraId, n));
    log.info({ camera: cameraId, ingestPort: room.ingestPort }, 'room created');
    return room;
  }

  /** Closes a camera's room and its viewers. */
  async closeRoom(cameraId: string): Promise<void> {
    const room = this.#rooms.get(cameraId);
    if (!room) return;
    this.#rooms.delete(cameraId);
    await room.close();
  }

  /** Answers a WHEP offer for a camera. */
  async createViewer(cameraId: string, offer: string): Promise<ViewerAnswer> {
    this.#assertOpen();
    const room = this.room(cameraId);
    const started = Date.now();
    const answer = await room.createViewer(offer);
    whepSessions.inc({ camera: cameraId });
    answer.viewer.on('state', (s) => {
      if (s === 'live') firstFrame.observe((answer.viewer.firstKeyframeAt - started) / 1000);
    });
    return answer;
  }

  /** Answers a WHIP offer for a camera: the publisher feeds the camera's room (replacing any before). */
  async createPublisher(cameraId: string, offer: string): Promise<PublisherAnswer> {
    this.#assertOpen();
    const answer = await this.room(cameraId).createPublisher(offer);
    whipSessions.inc({ camera: cameraId });
    return answer;
  }

  /** Ends a WHIP publisher. */
  async deletePublisher(cameraId: string, publisherId: string): Promise<void> {
    await this.room(cameraId).deletePublisher(publisherId);
  }

  /** Ends a viewer. */
  async deleteViewer(cameraId: string, viewerId: string): Promise<void> {
    await this.room(cameraId).deleteViewer(viewerId);
  }

  /** Closes every room, then itself. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#warmUp;
    await Promise.all(this.rooms().map((r) => r.close()));
    this.#rooms.clear();
    sfus.delete(this);
    this.safeEmit('close');
    this.removeAllListeners();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('sfu is closed');
  }
}
