import { randomUUID } from 'node:crypto';
import { InvalidStateError, TypedEmitter, createLogger } from '@cctv/core';
import type { RTCPeerConnection } from 'werift';
import { SrtpProtector } from './srtp.js';
import type { Gop, MediaPacket, StreamTrack, TrackSink } from './track.js';
import { onActivity, onDtlsClosed, onFeedback, sendPathOf, sendSenderReport, type SendPath, type ViewerFeedback } from './webrtc.js';

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
  /** Packets that went out after the first burst of a fast start (they waited in the queue). */
  paced: number;
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
// Fast start sends at most this much at once (a keyframe fits), then about 50 Mbit/s: a whole group of
// pictures sent in one go overflows socket buffers (the kernel's default 208 KiB on the way in) and is lost.
const FAST_START_BURST_BYTES = 64 * 1024;
const FAST_START_BYTES_PER_MS = 6250;
const DRAIN_INTERVAL_MS = 2;

/** A FIFO of (seq, roc, ts, packet) without a per-entry object; shift is O(1) amortized. */
class PacketQueue {
  #items: Array<number | MediaPacket> = [];
  #head = 0;
  get length(): number {
    return (this.#items.length - this.#head) / 4;
  }
  push(seq: number, roc: number, ts: number, p: MediaPacket): void {
    this.#items.push(seq, roc, ts, p);
  }
  shift4(): [number, number, number, MediaPacket] {
    const i = this.#head;
    const it = this.#items;
    const out: [number, number, number, MediaPacket] = [it[i] as number, it[i + 1] as number, it[i + 2] as number, it[i + 3] as MediaPacket];
    this.#head += 4;
    if (this.#head === it.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 4096) {
      this.#items = it.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}

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
  // Whether a group of pictures went out before (a later one is a replay, numbered on from the last).
  #replayed = false;
  #lastReplayAt = 0;
  // Fast-start pacing: packets waiting behind a burst, and the byte budget.
  #pacing = false;
  readonly #queue = new PacketQueue();
  #budget = FAST_START_BURST_BYTES;
  #budgetAt = performance.now();
  #drainTimer: NodeJS.Timeout | undefined;
  #drainRounds = 0;
  #lastHeardAt = Date.now();
  #timers: NodeJS.Timeout[] = [];
  #unsubscribe: Array<() => void> = [];
  readonly #ext: Buffer | null;
  /** When the first keyframe went out, in ms since the epoch (0 until then). */
  firstKeyframeAt = 0;
  /** When DTLS completed, in ms since the epoch (0 until then). */
  connectedAt = 0;
  readonly stats: ViewerStats = { packetsSent: 0, bytesSent: 0, retransmitted: 0, nackMisses: 0, nacks: 0, keyframeRequests: 0, remoteLost: 0, remoteJitter: 0, sendFailures: 0, paced: 0 };

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
        if (Date.now() - this.#lastHeardAt > this.#opts.idleTimeoutMs) {
          log.info({ viewer: this.id, camera: this.cameraId }, 'viewer went silent; closing it');
          void this.close();
        }
      }, Math.min(1000, Math.max(10, this.#opts.idleTimeoutMs / 2))),
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
    this.#lastHeardAt = Date.now();
    this.#unsubscribe.push(onFeedback(dtls, ssrc, (f) => this.#onFeedback(f)));
    this.#unsubscribe.push(onActivity(dtls, () => (this.#lastHeardAt = Date.now())));
    // A browser that closes sends a DTLS close_notify: free the viewer now, not after the idle timeout.
    this.#unsubscribe.push(onDtlsClosed(dtls, () => void this.close()));
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
   * Sends a group of pictures ahead of the live packets. Its frames get timestamps one tick apart that
   * end just before `nextTs` (the live frame that follows), or at the last frame's own timestamp when
   * `nextTs` is null, so the receiver decodes them all at once and shows the newest, instead of playing
   * them back in time. The burst is paced (see #drain) so it does not overflow socket buffers.
   */
  #sendGop(gop: Gop, nextTs: number | null): void {
    const n = gop.frames.length;
    if (n === 0) return;
    const lastTs = nextTs === null ? gop.frames[n - 1]![0]!.ts : (nextTs - 1) >>> 0;
    if (this.#state === ViewerState.Live && ((lastTs - (n - 1) - this.#lastTs) | 0) <= 0) return;
    this.#goLive();
    // A replay to a viewer that already had packets is numbered on from the last one.
    if (this.#lastSeq >= 0) this.#seqOffset = (this.#lastSeq + 1 - gop.frames[0]![0]!.seq) & 0xffff;
    this.#pacing = true;
    gop.frames.forEach((frame, i) => {
      const ts = (lastTs - (n - 1 - i)) >>> 0;
      for (const p of frame) this.#send(p, ts);
    });
    // Live packets follow the replay without a gap.
    this.#renumberNext = this.#lastSeq >= 0 && this.#replayed;
    this.#replayed = true;
    this.#drain();
  }

  /** Numbers a packet for this viewer and sends it, or queues it behind a paced burst. */
  #send(p: MediaPacket, ts: number): void {
    if (!this.#path) return;
    if (this.#renumberNext) {
      this.#renumberNext = false;
      this.#seqOffset = (this.#lastSeq + 1 - p.seq) & 0xffff;
    }
    const seq = (p.seq + this.#seqOffset) & 0xffff;
    // RFC 3711 §3.3.1: the rollover counter counts wraps of the sequence number.
    if (this.#lastSeq >= 0 && seq < this.#lastSeq && this.#lastSeq - seq > 0x8000) this.#roc = (this.#roc + 1) >>> 0;
    this.#lastSeq = seq;
    this.#lastTs = ts;
    this.#lastTsAt = Date.now();
    const h = this.#history[seq % HISTORY]!;
    h.seq = seq;
    h.roc = this.#roc;
    h.ts = ts;
    h.p = p;
    if (this.#pacing) {
      this.#queue.push(h.seq, h.roc, ts, p);
      return;
    }
    this.#write(p, ts, seq, this.#roc);
  }

  /**
   * Sends queued packets while the byte budget lasts (a bucket of FAST_START_BURST_BYTES refilled at
   * FAST_START_BYTES_PER_MS), then comes back in a few ms; live packets wait behind the queue.
   */
  #drain = (): void => {
    this.#drainTimer = undefined;
    const now = performance.now();
    this.#budget = Math.min(FAST_START_BURST_BYTES, this.#budget + (now - this.#budgetAt) * FAST_START_BYTES_PER_MS);
    this.#budgetAt = now;
    const q = this.#queue;
    while (q.length > 0 && this.#budget > 0) {
      const [seq, roc, ts, p] = q.shift4();
      this.#budget -= this.#write(p, ts, seq, roc);
      if (this.#drainRounds > 0) this.stats.paced++;
    }
    if (q.length > 0) {
      this.#drainRounds++;
      this.#drainTimer = setTimeout(this.#drain, DRAIN_INTERVAL_MS);
    } else {
      this.#drainRounds = 0;
      this.#pacing = false;
    }
  };

  /** Builds the viewer's packet in one buffer, encrypts it in place and sends it; returns its size. */
  #write(p: MediaPacket, ts: number, seq: number, roc: number): number {
    const path = this.#path;
    const srtp = this.#srtp;
    if (!path || !srtp) return 0;
    const ext = this.#ext;
    const hl = ext ? 20 : 12;
    const pl = p.payloadEnd - p.payloadOffset;
    const out = Buffer.allocUnsafe(hl + pl + srtp.overhead);
    out[0] = ext ? 0x90 : 0x80;
    out[1] = (p.marker ? 0x80 : 0) | this.#opts.payloadType;
    out.writeUInt16BE(seq, 2);
    out.writeUInt32BE(ts, 4);
    out.writeUInt32BE(path.ssrc, 8);
    if (ext) ext.copy(out, 12);
    p.buf.copy(out, hl, p.payloadOffset, p.payloadEnd);
    const len = srtp.protect(out, hl, hl + pl, roc);
    if (path.send(out, len)) {
      this.stats.packetsSent++;
      this.stats.bytesSent += len;
    } else {
      this.stats.sendFailures++;
    }
    return len;
  }

  #resend(seq: number): void {
    const h = this.#history[seq % HISTORY]!;
    if (h.seq !== seq || !h.p || !this.#path) {
      this.stats.nackMisses++;
      return;
    }
    // Same sequence number and rollover counter: the same SRTP index as the lost packet (RFC 4588 §3
    // allows retransmission in the original stream when RTX was not negotiated).
    this.#write(h.p, h.ts, seq, h.roc);
    this.stats.retransmitted++;
  }

  #onFeedback(f: ViewerFeedback): void {
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
    clearTimeout(this.#drainTimer);
    this.#queue.clear();
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
