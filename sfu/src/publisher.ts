import { randomUUID } from 'node:crypto';
import dgram from 'node:dgram';
import { INGEST_PAYLOAD_TYPE, InvalidStateError, TypedEmitter, createLogger, readRtcpRequests, type VideoCodec } from '@cctv/core';
import type { RTCPeerConnection, RtpPacket } from 'werift';
import { onActivity, onDtlsClosed, onRtpReceived, sendPli } from './webrtc.js';

const log = createLogger('sfu:publisher');

/** Where a WHIP publisher is in its life. */
export const PublisherState = {
  /** Answer sent; waiting for ICE and DTLS. */
  Connecting: 'connecting',
  /** Connected; its packets go to the room's ingest. */
  Connected: 'connected',
  Closed: 'closed',
} as const;
export type PublisherState = (typeof PublisherState)[keyof typeof PublisherState];

/** Counters of one publisher. */
export interface PublisherStats {
  /** RTP packets passed on to the room's ingest. */
  packets: number;
  bytes: number;
  /** Packets dropped: another payload type (audio, RTX), or padding only. */
  dropped: number;
  /** Keyframe requests (PLI) sent to the publisher. */
  keyframeRequests: number;
}

export interface PublisherEvents extends Record<string, unknown[]> {
  state: [PublisherState];
  close: [];
}

export interface PublisherOptions {
  cameraId: string;
  pc: RTCPeerConnection;
  /** The codec accepted and the publisher's payload type for it. */
  codec: VideoCodec;
  payloadType: number;
  /** The room's ingest port, and the address to reach it on from this process. */
  ingest: { host: string; port: number };
  /** The SSRC the room's ingest sees, the same for every publisher of the camera (as a camera-node's relay does). */
  ssrc: number;
  /** A publisher that is not connected within this, or sends nothing for this long, is closed, in ms. */
  idleTimeoutMs: number;
  /** A keyframe is asked for this often, in ms (browsers send one only when asked; recordings cut at keyframes). */
  keyframeIntervalMs: number;
}

/**
 * One WHIP publisher (RFC 9725): a werift peer connection that receives the publisher's video, and a
 * UDP socket that hands each packet to the room's ingest port exactly as a camera-node's relay would
 * (ingest payload type, the camera's SSRC). Keyframe requests the ingest sends back to that socket
 * (a new viewer, recorder or detector) become a PLI to the publisher.
 */
export class Publisher extends TypedEmitter<PublisherEvents> {
  readonly id = randomUUID();
  readonly cameraId: string;
  /** ms since the epoch when the publisher was created (the WHIP POST). */
  readonly createdAt = Date.now();
  readonly codec: VideoCodec;
  readonly stats: PublisherStats = { packets: 0, bytes: 0, dropped: 0, keyframeRequests: 0 };
  readonly #opts: PublisherOptions;
  readonly #pc: RTCPeerConnection;
  readonly #socket: dgram.Socket;
  #state: PublisherState = PublisherState.Connecting;
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: Array<() => void> = [];
  #lastHeardAt = Date.now();
  #lastRtpAt = 0;
  #mediaSsrc: number | null = null;
  // Padding-only packets (bandwidth probes) are not passed on; later sequence numbers close the gap they
  // leave, so the ingest and the viewers see real loss only.
  #skipped = 0;
  #requestKeyframe: (() => void) | null = null;

  constructor(opts: PublisherOptions) {
    super();
    this.#opts = opts;
    this.cameraId = opts.cameraId;
    this.codec = opts.codec;
    this.#pc = opts.pc;
    this.onListenerError = (event, error) => log.error({ publisher: this.id, event, err: error }, 'publisher listener failed');
    this.#socket = dgram.createSocket(opts.ingest.host.includes(':') ? 'udp6' : 'udp4');
    this.#socket.on('error', (error) => log.warn({ publisher: this.id, err: error }, 'publisher socket error'));
    // RTCP from the ingest: a PLI or FIR asks for a keyframe.
    this.#socket.on('message', (buf) => {
      if (readRtcpRequests(buf)?.keyframe) this.requestKeyframe();
    });
  }

  get state(): PublisherState {
    return this.#state;
  }

  /** Binds the socket towards the ingest and starts watching the peer connection. */
  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#socket.once('error', reject);
      this.#socket.bind(0, () => {
        this.#socket.off('error', reject);
        resolve();
      });
    });
    const pc = this.#pc;
    const onState = () => {
      const s = pc.connectionState;
      if (s === 'connected' && this.#state === PublisherState.Connecting) this.#onConnected();
      else if (s === 'failed' || s === 'closed') void this.close();
    };
    const sub = pc.connectionStateChange.subscribe(onState);
    this.#unsubscribe.push(() => sub.unSubscribe());
    onState();
    // Not connected in time, or silent (no media, no RTCP, no ICE consent checks): the publisher is gone.
    this.#timers.push(
      setInterval(() => {
        const idle = this.#opts.idleTimeoutMs;
        const now = Date.now();
        const silentSince = Math.max(this.#lastHeardAt, this.#lastRtpAt, this.createdAt);
        if (now - silentSince > idle) {
          log.info({ publisher: this.id, camera: this.cameraId, state: this.#state }, 'publisher went silent; closing it');
          void this.close();
        }
      }, Math.min(1000, Math.max(10, this.#opts.idleTimeoutMs / 2))),
    );
  }

  #onConnected(): void {
    const transceiver = this.#pc.getTransceivers().find((t) => t.kind === 'video');
    if (!transceiver) return void this.close();
    const dtls = transceiver.dtlsTransport;
    const senderSsrc = transceiver.sender.ssrc;
    this.#lastHeardAt = Date.now();
    this.#unsubscribe.push(onRtpReceived(dtls, (p) => this.#onRtp(p)));
    this.#unsubscribe.push(onActivity(dtls, () => (this.#lastHeardAt = Date.now())));
    this.#unsubscribe.push(onDtlsClosed(dtls, () => void this.close()));
    this.#requestKeyframe = () => {
      if (this.#mediaSsrc === null) return;
      this.stats.keyframeRequests++;
      sendPli(dtls, senderSsrc, this.#mediaSsrc).catch((error: unknown) => log.debug({ publisher: this.id, err: error }, 'could not send a PLI'));
    };
    this.#timers.push(setInterval(() => this.requestKeyframe(), this.#opts.keyframeIntervalMs));
    this.#setState(PublisherState.Connected);
    log.info({ publisher: this.id, camera: this.cameraId, codec: this.codec }, 'publisher connected');
  }

  /** Asks the publisher for a keyframe (RTCP PLI), once its stream is known. */
  requestKeyframe(): void {
    this.#requestKeyframe?.();
  }

  #onRtp(p: RtpPacket): void {
    const h = p.header;
    if (this.#state !== PublisherState.Connected) return;
    this.#lastRtpAt = Date.now();
    if (h.payloadType !== this.#opts.payloadType) {
      this.stats.dropped++;
      return;
    }
    if (p.payload.length === 0) {
      this.#skipped++;
      this.stats.dropped++;
      return;
    }
    const first = this.#mediaSsrc === null;
    this.#mediaSsrc = h.ssrc;
    // The ingest contract (RFC 3550 §5.1 fixed header, no extensions or padding): its payload type, our SSRC.
    const out = Buffer.allocUnsafe(12 + p.payload.length);
    out[0] = 0x80;
    out[1] = (h.marker ? 0x80 : 0) | INGEST_PAYLOAD_TYPE[this.codec];
    out.writeUInt16BE((h.sequenceNumber - this.#skipped) & 0xffff, 2);
    out.writeUInt32BE(h.timestamp >>> 0, 4);
    out.writeUInt32BE(this.#opts.ssrc >>> 0, 8);
    p.payload.copy(out, 12);
    this.#socket.send(out, this.#opts.ingest.port, this.#opts.ingest.host);
    this.stats.packets++;
    this.stats.bytes += out.length;
    // The stream may have begun before DTLS finished on our side: start from a keyframe.
    if (first) this.requestKeyframe();
  }

  #setState(s: PublisherState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.safeEmit('state', s);
  }

  /** Ends the publisher: closes its peer connection and socket. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === PublisherState.Closed) return;
    this.#setState(PublisherState.Closed);
    for (const t of this.#timers) clearInterval(t);
    for (const u of this.#unsubscribe) u();
    this.#timers = [];
    this.#unsubscribe = [];
    this.#requestKeyframe = null;
    try {
      this.#socket.close();
    } catch {
      // not bound
    }
    try {
      await this.#pc.close();
    } catch (error) {
      log.debug({ publisher: this.id, err: error }, 'closing the peer connection failed');
    }
    log.info({ publisher: this.id, camera: this.cameraId, packets: this.stats.packets }, 'publisher closed');
    this.safeEmit('close');
    this.removeAllListeners();
  }

  assertOpen(): void {
    if (this.#state === PublisherState.Closed) throw new InvalidStateError(`publisher ${this.id} is closed`);
  }
}
