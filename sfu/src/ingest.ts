import dgram from 'node:dgram';
import { buildPli, codecOfIngestPayloadType, isRtcp, newRtpHeader, parseRtpHeader, seqDiff, type RtpHeader, type VideoCodec } from '@cctv/core';

/** Counters of one ingest port. */
export interface IngestCounters {
  packets: number;
  bytes: number;
  /** Datagrams that were not RTP of an ingest payload type (random bytes, other streams, RTCP we ignore). */
  junk: number;
  /** Packets missing in the sequence (counted when a later one arrives). */
  lost: number;
  /** Keyframe requests sent to the source. */
  keyframeRequests: number;
  lastPacketAt: number | null;
  /**
   * When the current run of packets began: the first packet, the first of another sender (a camera that
   * moved to another camera-node, an ffmpeg that restarted elsewhere), or the first after a silence of
   * over a second.
   */
  streamStartAt: number | null;
}

export interface IngestOptions {
  host: string;
  /** Called for every valid RTP packet with its codec (from the payload type). */
  onRtp: (buf: Buffer, h: RtpHeader, codec: VideoCodec) => void;
}

// A sender silent this long may come back as a new stream (new SSRC or sequence), in ms.
const SOURCE_SWITCH_MS = 200;
/** A silence this long ends a run of packets (what the cluster records as a gap). */
const STREAM_BREAK_MS = 1000;
// Larger forward steps in the sequence are jumps, not loss.
const MAX_SEQ_STEP = 1000;
// At most one keyframe request per this interval, whatever asks.
const KEYFRAME_REQUEST_INTERVAL_MS = 300;

/**
 * The UDP port a camera's RTP arrives on (payload type 96 = H.264, 97 = H.265). Everything else that
 * reaches the port is counted as junk and dropped; nothing from outside can make it throw.
 */
export class Ingest {
  #socket: dgram.Socket;
  readonly #opts: IngestOptions;
  readonly #hdr = newRtpHeader();
  #source: { address: string; port: number } | null = null;
  #lastSeq: number | null = null;
  #ssrc: number | null = null;
  #lastKeyframeRequestAt = 0;
  #jumpSeq: number | null = null;
  #closed = false;
  readonly counters: IngestCounters = { packets: 0, bytes: 0, junk: 0, lost: 0, keyframeRequests: 0, lastPacketAt: null, streamStartAt: null };

  constructor(opts: IngestOptions) {
    this.#opts = opts;
    this.#socket = this.#newSocket();
  }

  #newSocket(): dgram.Socket {
    const s = dgram.createSocket({ type: this.#opts.host.includes(':') ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    s.on('message', (buf, rinfo) => this.#onMessage(buf, rinfo));
    s.on('error', () => {});
    return s;
  }

  /**
   * Binds the port: `preferred` when given and free (a restarted SFU keeps the ports its camera-nodes
   * still send to), any free one otherwise.
   */
  async bind(preferred = 0): Promise<number> {
    const tryBind = (port: number) =>
      new Promise<void>((resolve, reject) => {
        this.#socket.once('error', reject);
        this.#socket.bind(port, this.#opts.host, () => {
          this.#socket.off('error', reject);
          resolve();
        });
      });
    try {
      await tryBind(preferred);
    } catch (error) {
      if (preferred === 0) throw error;
      this.#socket.close();
      this.#socket = this.#newSocket();
      await tryBind(0);
    }
    return this.port;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  /** Asks the source for a keyframe with an RTCP PLI (RFC 4585 §6.3.1), rate-limited. */
  requestKeyframe(): boolean {
    const src = this.#source;
    const now = Date.now();
    if (!src || this.#ssrc === null || now - this.#lastKeyframeRequestAt < KEYFRAME_REQUEST_INTERVAL_MS) return false;
    this.#lastKeyframeRequestAt = now;
    this.counters.keyframeRequests++;
    this.#socket.send(buildPli(1, this.#ssrc), src.port, src.address);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }

  #onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    const h = this.#hdr;
    if (isRtcp(buf) || !parseRtpHeader(buf, h) || h.payloadEnd <= h.payloadOffset) {
      c.junk++;
      return;
    }
    const codec = codecOfIngestPayloadType(h.payloadType);
    if (!codec) {
      c.junk++;
      return;
    }
    const now = Date.now();
    const quiet = c.lastPacketAt === null || now - c.lastPacketAt > SOURCE_SWITCH_MS;
    // One stream at a time: another SSRC is taken only once the current one has gone quiet.
    if (this.#ssrc !== h.ssrc) {
      if (!quiet) {
        c.junk++;
        return;
      }
      if (this.#ssrc !== null) c.streamStartAt = null;
      this.#ssrc = h.ssrc;
      this.#lastSeq = null;
    }
    if (this.#lastSeq !== null) {
      const d = seqDiff(h.sequenceNumber, this.#lastSeq);
      if (d <= 0 || d > MAX_SEQ_STEP) {
        // A duplicate, a late packet, or a jump: a jump is a restarted sender only after a pause or when
        // the next packets follow it; a lone packet from elsewhere in the sequence space is junk.
        const follows = this.#jumpSeq !== null && seqDiff(h.sequenceNumber, this.#jumpSeq) === 1;
        this.#jumpSeq = h.sequenceNumber;
        if (!quiet && !(follows && Math.abs(d) > MAX_SEQ_STEP)) {
          c.junk++;
          return;
        }
      } else if (d > 1) {
        c.lost += d - 1;
      }
    }
    this.#jumpSeq = null;
    this.#lastSeq = h.sequenceNumber;
    c.packets++;
    c.bytes += buf.length;
    if (c.streamStartAt === null || c.lastPacketAt === null || now - c.lastPacketAt > STREAM_BREAK_MS) c.streamStartAt = now;
    c.lastPacketAt = now;
    if (!this.#source || this.#source.port !== rinfo.port || this.#source.address !== rinfo.address) this.#source = { address: rinfo.address, port: rinfo.port };
    this.#opts.onRtp(buf, h, codec);
  }
}
