import { randomUUID } from 'node:crypto';
import { InvalidStateError, TypedEmitter, createLogger } from '@cctv/core';
import type { RTCPeerConnection } from 'werift';
import { SrtpProtector } from './srtp.js';
import type { Gop, MediaPacket, StreamTrack, TrackSink } from './track.js';
import { onFeedback, sendPathOf, sendSenderReport, type SendPath, type ViewerFeedback } from './webrtc.js';

const log = createLogger('sfu:viewer');

/** Where a viewer is in its life. */
export const ViewerState = {
  /** Answer sent; waiting for ICE and DTLS. */
  Connecting: 'connecting',
  /** Connected; waiting for a keyframe to start from. */
  WaitingKeyframe: 'waiting-keyframe',
  /** Receiving video. */
  Live: 'live',
  Closed: 'closed',
} as const;
export type ViewerState = (typeof ViewerState)[keyof typeof ViewerState];

/** Counters of one viewer. */
export interface ViewerStats {
  packetsSent: number;
  bytesSent: number;
  /** Packets sent again after a NACK. */
  retransmitted: number;
  /** Sequence numbers NACKed that were no longer in the history. */
  nackMisses: number;
  nacks: number;
  keyframeRequests: number;
  /** Packets the viewer reports lost (cumulative, from its receiver reports). */
  remoteLost: number;
  /** Interarrival jitter the viewer reports, in RTP ticks. */
  remoteJitter: number;
  /** Packets dropped because the ICE pair was not there. */
  sendFailures: number;
}

export interface ViewerEvents extends Record<string, unknown[]> {
  state: [ViewerState];
  /** The viewer asked for a keyframe (PLI/FIR) that the group-of-pictures cache could not answer. */
  keyframerequest: [];
  close: [];
}

export interface ViewerOptions {
  cameraId: string;
  pc: RTCPeerConnection;
  /** Payload type the viewer negotiated. */
  payloadType: number;
  /** Extension id for playout-delay, or null. */
  playoutDelayId: number | null;
  /** min/max playout delay to send, in ms (12-bit fields in 10 ms units). */
  playoutDelay: { minMs: number; maxMs: number };
  /** A viewer that has sent no RTCP for this long is considered gone, in ms. */
  idleTimeoutMs: number;
}

// RTP history kept per viewer for NACKs: about 1.5 s at 4 Mbit/s.
const HISTORY = 1024;
const SR_INTERVAL_MS = 1000;
// At most one GOP replay per viewer in this interval, however many PLIs arrive.
const REPLAY_INTERVAL_MS = 500;

interface HistoryEntry {
  seq: number;
  roc: number;
  ts: number;
  p: MediaPacket | null;
}

/**
 * One WHEP viewer: a werift peer connection for ICE/DTLS/RTCP, and our own send path. Each packet is
 * written once into a buffer of its own with the viewer's payload type, SSRC, sequence number and the
 * playout-delay extension, encrypted in place, and sent on the nominated ICE pair.
 */
export class Viewer extends TypedEmitter<ViewerEvents> implements TrackSink {
  readonly id = randomUUID();
  readonly cameraId: string;
  /** ms since the epoch when the viewer was created (the WHEP POST). */
  readonly createdAt = Date.now();
  readonly #opts: ViewerOptions;
  readonly #pc: RTCPeerConnection;
  #state: ViewerState = ViewerState.Connecting;
  #track: StreamTrack | null = null;
  #path: SendPath | null = null;
  #srtp: SrtpProtector | null = null;
  // Viewer sequence number = track sequence number + this offset, so loss before the SFU stays visible.
  #seqOffset = Math.floor(Math.random() * 0x8000);
  #lastSeq = -1;
  #roc = 0;
  #lastTs = 0;
  #lastTsAt = 0;
  readonly #history: HistoryEntry[] = Array.from({ length: HISTORY }, () => ({ seq: -1, roc: 0, ts: 0, p: null }));
  #replayPending = false;
  #renumberNext = false;
  #lastReplayAt = 0;
  #lastFeedbackAt = Date.now();
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: Array<() => void> = [];
  readonly #ext: Buffer | null;
  /** When the first keyframe went out, in ms since the epoch (0 until then). */
  firstKeyframeAt = 0;
  /** When DTLS completed, in ms since the epoch (0 until then). */
  connectedAt = 0;
  readonly stats: ViewerStats = { packetsSent: 0, bytesSent: 0, retransmitted: 0, nackMisses: 0, nacks: 0, keyframeRequests: 0, remoteLost: 0, remoteJitter: 0, sendFailures: 0 };

  constructor(opts: ViewerOptions) {
    super();
    this.#opts = opts;
    this.cameraId = opts.cameraId;
    this.#pc = opts.pc;
    this.onListenerError = (event, error) => log.error({ viewer: this.id, event, err: error }, 'viewer listener failed');
    if (opts.playoutDelayId !== null) {
      // One-byte header extension (RFC 8285 §4.2): 0xBEDE, length 1 word, then id/len and 3 bytes:
      // 12 bits min delay, 12 bits max delay, in 10 ms units.
      const min = Math.min(4095, Math.round(opts.playoutDelay.minMs / 10));
      const max = Math.min(4095, Math.round(opts.playoutDelay.maxMs / 10));
      this.#ext = Buffer.from([0xbe, 0xde, 0x00, 0x01, (opts.playoutDelayId << 4) | 2, min >> 4, ((min & 0xf) << 4) | (max >> 8), max & 0xff]);
    } else {
      this.#ext = null;
    }
  }

  get state(): ViewerState {
    return this.#state;
  }

  /** Starts listening to the peer connection; the track is where its packets will come from. */
  start(track: StreamTrack): void {
    this.#track = track;
    const pc = this.#pc;
    const onState = () => {
      const s = pc.connectionState;
      if (s === 'connected' && this.#state === ViewerState.Connecting) this.#onConnected();
      else if (s === 'failed' || s === 'closed') void this.close();
    };
    const sub = pc.connectionStateChange.subscribe(onState);
    this.#unsubscribe.push(() => sub.unSubscribe());
    onState();
    // A viewer that vanished without DELETE stops sending RTCP; end it so it holds nothing.
    this.#timers.push(
      setInterval(() => {
        if (Date.now() - this.#lastFeedbackAt > this.#opts.idleTimeoutMs) {
          log.info({ viewer: this.id, camera: this.cameraId }, 'viewer went silent; closing it');
          void this.close();
        }
      }, 1000),
    );
  }

  #onConnected(): void {
    const transceiver = this.#pc.getTransceivers().find((t) => t.kind === 'video');
    if (!transceiver) return void this.close();
    const dtls = transceiver.dtlsTransport;
    const ssrc = transceiver.sender.ssrc;
    try {
      this.#path = sendPathOf(dtls, ssrc);
      this.#srtp = new SrtpProtector(this.#path.keys);
    } catch (error) {
      log.error({ viewer: this.id, err: error }, 'cannot set up the send path');
      return void this.close();
    }
    this.connectedAt = Date.now();
    this.#lastFeedbackAt = Date.now();
    this.#unsubscribe.push(onFeedback(dtls, ssrc, (f) => this.#onFeedback(f)));
    this.#timers.push(
      setInterval(() => {
        if (this.#state !== ViewerState.Live) return;
        const elapsed = ((Date.now() - this.#lastTsAt) * 90) >>> 0;
        sendSenderReport(dtls, ssrc, { rtpTimestamp: (this.#lastTs + elapsed) >>> 0, packetCount: this.stats.packetsSent, octetCount: this.stats.bytesSent }).catch(() => {});
      }, SR_INTERVAL_MS),
    );
    this.#setState(ViewerState.WaitingKeyframe);
    // Fast start: send the current group of pictures now, squeezed into the moment before the live edge.
    const gop = this.#track?.gop();
    if (gop && gop.lastComplete) this.#sendGop(gop, null);
    else if (gop) this.#replayPending = true;
    this.#track?.addSink(this);
  }

  /** The track delivers a packet (the hot path). */
  onPacket(p: MediaPacket): void {
    if (this.#state === ViewerState.Live) {
      if (this.#replayPending && p.frameStart) {
        this.#replayPending = false;
        const gop = this.#track?.gop();
        // Replay only complete frames older than this one, between what was sent and this frame.
        if (gop && !p.keyStart) this.#sendGop({ frames: gop.frames.slice(0, -1), lastComplete: true }, p.ts);
      }
      this.#send(p, p.ts);
      return;
    }
    if (this.#state !== ViewerState.WaitingKeyframe) return;
    if (this.#replayPending && p.frameStart) {
      this.#replayPending = false;
      const gop = this.#track?.gop();
      if (gop && !p.keyStart && gop.frames.length > 1) {
        this.#sendGop({ frames: gop.frames.slice(0, -1), lastComplete: true }, p.ts);
        this.#send(p, p.ts);
        return;
      }
    }
    if (!p.keyStart) return;
    this.#goLive();
    this.#send(p, p.ts);
  }

  #goLive(): void {
    if (this.#state === ViewerState.Live) return;
    this.firstKeyframeAt = Date.now();
    this.#setState(ViewerState.Live);
  }

  /**
   * Sends a group of pictures at once. Its frames get timestamps one tick apart that end just before
   * `nextTs` (the live frame that follows), or at the last frame's own timestamp when `nextTs` is null,
   * so the receiver decodes them all at once and shows the newest, instead of playing them back in time.
   */
  #sendGop(gop: Gop, nextTs: number | null): void {
    const n = gop.frames.length;
    if (n === 0) return;
    const lastTs = nextTs === null ? gop.frames[n - 1]![0]!.ts : (nextTs - 1) >>> 0;
    if (this.#state === ViewerState.Live && ((lastTs - (n - 1) - this.#lastTs) | 0) <= 0) return;
    this.#goLive();
    // A replay to a viewer that already had packets is numbered on from the last one.
    if (this.#lastSeq >= 0) this.#seqOffset = (this.#lastSeq + 1 - gop.frames[0]![0]!.seq) & 0xffff;
    gop.frames.forEach((frame, i) => {
      const ts = (lastTs - (n - 1 - i)) >>> 0;
      for (const p of frame) this.#send(p, ts);
    });
    // Live packets follow the replay without a gap.
    this.#renumberNext = this.#lastSeq >= 0;
  }

  #send(p: MediaPacket, ts: number): void {
    const path = this.#path;
    const srtp = this.#srtp;
    if (!path || !srtp) return;
    if (this.#renumberNext) {
      this.#renumberNext = false;
      this.#seqOffset = (this.#lastSeq + 1 - p.seq) & 0xffff;
    }
    const ext = this.#ext;
    const hl = ext ? 20 : 12;
    const pl = p.payloadEnd - p.payloadOffset;
    const out = Buffer.allocUnsafe(hl + pl + srtp.overhead);
    const seq = (p.seq + this.#seqOffset) & 0xffff;
    // RFC 3711 §3.3.1: the rollover counter counts wraps of the sequence number.
    if (this.#lastSeq >= 0 && seq < this.#lastSeq && this.#lastSeq - seq > 0x8000) this.#roc = (this.#roc + 1) >>> 0;
    out[0] = ext ? 0x90 : 0x80;
    out[1] = (p.marker ? 0x80 : 0) | this.#opts.payloadType;
    out.writeUInt16BE(seq, 2);
    out.writeUInt32BE(ts, 4);
    out.writeUInt32BE(path.ssrc, 8);
    if (ext) ext.copy(out, 12);
    p.buf.copy(out, hl, p.payloadOffset, p.payloadEnd);
    const h = this.#history[seq % HISTORY]!;
    h.seq = seq;
    h.roc = this.#roc;
    h.ts = ts;
    h.p = p;
    const len = srtp.protect(out, hl, hl + pl, this.#roc);
    this.#lastSeq = seq;
    this.#lastTs = ts;
    this.#lastTsAt = Date.now();
    if (path.send(out, len)) {
      this.stats.packetsSent++;
      this.stats.bytesSent += len;
    } else {
      this.stats.sendFailures++;
    }
  }

  #resend(seq: number): void {
    const h = this.#history[seq % HISTORY]!;
    const path = this.#path;
    const srtp = this.#srtp;
    if (h.seq !== seq || !h.p || !path || !srtp) {
      this.stats.nackMisses++;
      return;
    }
    const p = h.p;
    const ext = this.#ext;
    const hl = ext ? 20 : 12;
    const pl = p.payloadEnd - p.payloadOffset;
    const out = Buffer.allocUnsafe(hl + pl + srtp.overhead);
    out[0] = ext ? 0x90 : 0x80;
    out[1] = (p.marker ? 0x80 : 0) | this.#opts.payloadType;
    out.writeUInt16BE(seq, 2);
    out.writeUInt32BE(h.ts, 4);
    out.writeUInt32BE(path.ssrc, 8);
    if (ext) ext.copy(out, 12);
    p.buf.copy(out, hl, p.payloadOffset, p.payloadEnd);
    // Same sequence number and rollover counter: the same SRTP index as the lost packet (RFC 4588 §3 allows
    // retransmission in the original stream when RTX was not negotiated).
    const len = srtp.protect(out, hl, hl + pl, h.roc);
    if (path.send(out, len)) this.stats.retransmitted++;
  }

  #onFeedback(f: ViewerFeedback): void {
    this.#lastFeedbackAt = Date.now();
    if (f.nacks) {
      this.stats.nacks++;
      for (const seq of f.nacks) this.#resend(seq);
    }
    if (f.keyframe) {
      this.stats.keyframeRequests++;
      const now = Date.now();
      if (now - this.#lastReplayAt >= REPLAY_INTERVAL_MS && this.#track?.gop()) {
        // The decoder lost its reference: replay the group of pictures at the next frame boundary.
        this.#lastReplayAt = now;
        this.#replayPending = true;
      } else {
        this.safeEmit('keyframerequest');
      }
    }
    if (f.report) {
      this.stats.remoteLost = f.report.packetsLost;
      this.stats.remoteJitter = f.report.jitter;
    }
  }

  #setState(s: ViewerState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.safeEmit('state', s);
  }

  /** Ends the viewer: stops sending and closes the peer connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === ViewerState.Closed) return;
    this.#setState(ViewerState.Closed);
    this.#track?.removeSink(this);
    for (const t of this.#timers) clearInterval(t);
    for (const u of this.#unsubscribe) u();
    this.#timers = [];
    this.#unsubscribe = [];
    for (const h of this.#history) h.p = null;
    this.#path = null;
    try {
      await this.#pc.close();
    } catch (error) {
      log.debug({ viewer: this.id, err: error }, 'closing the peer connection failed');
    }
    this.safeEmit('close');
    this.removeAllListeners();
  }

  assertOpen(): void {
    if (this.#state === ViewerState.Closed) throw new InvalidStateError(`viewer ${this.id} is closed`);
  }
}
