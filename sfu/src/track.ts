import { isKeyframeStart, tsDiff, seqDiff, type RtpHeader, type VideoCodec } from '@cctv/core';

/** One RTP packet on its way through a room, shared (never modified) by every viewer it goes to. */
export interface MediaPacket {
  /** The whole RTP packet as received; only [payloadOffset, payloadEnd) is forwarded. */
  readonly buf: Buffer;
  readonly payloadOffset: number;
  readonly payloadEnd: number;
  /** Last packet of a frame. */
  readonly marker: boolean;
  /** RTP timestamp on the track's continuous timeline (source jumps removed). */
  readonly ts: number;
  /** Sequence number on the track's continuous numbering; gaps in it are packets lost before the SFU. */
  readonly seq: number;
  /** First packet of a frame (its timestamp differs from the previous packet's). */
  readonly frameStart: boolean;
  /** First packet of a keyframe. */
  readonly keyStart: boolean;
}

/** Receives a track's packets: a viewer, or a plain-RTP subscriber. */
export interface TrackSink {
  /** Called for every packet, in arrival order. Must not throw and must not keep `p.buf` beyond its history. */
  onPacket(p: MediaPacket): void;
}

/** A group of pictures from its keyframe, split into frames (for sending a joining viewer at once). */
export interface Gop {
  frames: MediaPacket[][];
  /** Whether the last frame has ended (its marker packet arrived). */
  lastComplete: boolean;
}

// A forward jump larger than this (in 90 kHz ticks, 10 s) or any backward jump is a new source timeline.
const MAX_TS_JUMP = 10 * 90_000;
const MAX_SEQ_JUMP = 3000;
// Timestamp step assumed across a discontinuity: one frame at 30 fps.
const DEFAULT_FRAME_TICKS = 3000;

/**
 * One codec's stream inside a room: the camera's own, or the shared H.264 transcode of an H.265 camera.
 * It keeps a continuous RTP timeline across source restarts, the current group of pictures for fast
 * start, and fans packets out to its sinks.
 */
export class StreamTrack {
  readonly codec: VideoCodec;
  readonly #sinks = new Set<TrackSink>();
  readonly #maxGopBytes: number;
  #gop: MediaPacket[][] = [];
  #gopBytes = 0;
  #gopOverflow = false;
  #lastSrcTs: number | null = null;
  #lastSrcSeq: number | null = null;
  #lastOutTs = 0;
  #tsOffset = 0;
  #lastOutSeq = 0;
  #seqOffset = 0;
  #frameTicks = DEFAULT_FRAME_TICKS;
  #lastMarker = true;
  /** Times the source's timeline jumped (an ffmpeg restart). */
  discontinuities = 0;
  /** H.264 profile-level-id of the stream (from its SPS), when seen. */
  profileLevelId: string | null = null;
  /** When the last keyframe started, in ms since the epoch. */
  lastKeyframeAt = 0;
  /** When the last packet arrived, in ms since the epoch. */
  lastPacketAt = 0;

  constructor(codec: VideoCodec, maxGopBytes: number) {
    this.codec = codec;
    this.#maxGopBytes = maxGopBytes;
  }

  get sinkCount(): number {
    return this.#sinks.size;
  }

  addSink(s: TrackSink): void {
    this.#sinks.add(s);
  }

  removeSink(s: TrackSink): void {
    this.#sinks.delete(s);
  }

  /** The current group of pictures, or null when there is none (no keyframe yet, or it grew too big). */
  gop(): Gop | null {
    if (this.#gop.length === 0 || this.#gopOverflow) return null;
    const last = this.#gop[this.#gop.length - 1]!;
    return { frames: this.#gop, lastComplete: last[last.length - 1]!.marker };
  }

  /** Takes one RTP packet of this track's codec (already parsed into `h`) and fans it out. */
  push(buf: Buffer, h: RtpHeader): void {
    this.lastPacketAt = Date.now();
    const srcTs = h.timestamp;
    const frameStart = this.#lastSrcTs === null || srcTs !== this.#lastSrcTs || this.#lastMarker;
    if (this.#lastSrcTs !== null && this.#lastSrcSeq !== null) {
      const dTs = tsDiff(srcTs, this.#lastSrcTs);
      const dSeq = seqDiff(h.sequenceNumber, this.#lastSrcSeq);
      if (dTs < -MAX_TS_JUMP / 10 || dTs > MAX_TS_JUMP || Math.abs(dSeq) > MAX_SEQ_JUMP) {
        // The source restarted with a new random timeline: continue ours one frame later.
        this.#tsOffset = (this.#lastOutTs + this.#frameTicks - srcTs) >>> 0;
        this.#seqOffset = (this.#lastOutSeq + 1 - h.sequenceNumber) & 0xffff;
        this.discontinuities++;
        this.#resetGop();
      } else if (frameStart && dTs > 0 && dTs < 90_000) {
        this.#frameTicks = dTs;
      }
    }
    this.#lastSrcTs = srcTs;
    this.#lastSrcSeq = h.sequenceNumber;
    this.#lastMarker = h.marker;
    const ts = (srcTs + this.#tsOffset) >>> 0;
    const seq = (h.sequenceNumber + this.#seqOffset) & 0xffff;
    this.#lastOutTs = ts;
    this.#lastOutSeq = seq;
    let keyStart = false;
    if (isKeyframeStart(this.codec, buf, h.payloadOffset, h.payloadEnd)) {
      // Parameter sets and the IDR of one keyframe share a timestamp: only the first packet starts it.
      const cur = this.#gop.length ? this.#gop[this.#gop.length - 1]! : null;
      const sameFrame = !frameStart && cur !== null && cur[0]!.keyStart && cur[0]!.ts === ts;
      if (!sameFrame) {
        keyStart = true;
        this.lastKeyframeAt = Date.now();
        this.#resetGop();
      }
      if (this.codec === 'H264') this.#readProfile(buf, h.payloadOffset, h.payloadEnd);
    }
    const p: MediaPacket = { buf, payloadOffset: h.payloadOffset, payloadEnd: h.payloadEnd, marker: h.marker, ts, seq, frameStart: frameStart || keyStart, keyStart };
    this.#remember(p);
    for (const s of this.#sinks) s.onPacket(p);
  }

  #remember(p: MediaPacket): void {
    if (this.#gopOverflow) return;
    if (p.keyStart) this.#gop.push([p]);
    else if (this.#gop.length === 0) return;
    else if (p.frameStart) this.#gop.push([p]);
    else this.#gop[this.#gop.length - 1]!.push(p);
    this.#gopBytes += p.payloadEnd - p.payloadOffset;
    if (this.#gopBytes > this.#maxGopBytes) {
      this.#gopOverflow = true;
      this.#gop = [];
      this.#gopBytes = 0;
    }
  }

  #resetGop(): void {
    this.#gop = [];
    this.#gopBytes = 0;
    this.#gopOverflow = false;
  }

  // The SPS's first three bytes after the NAL header are profile_idc, constraint flags, level_idc.
  #readProfile(buf: Buffer, start: number, end: number): void {
    const type = buf[start]! & 0x1f;
    let sps = -1;
    if (type === 7) sps = start;
    else if (type === 24) {
      for (let o = start + 1; o + 2 < end; ) {
        const size = buf.readUInt16BE(o);
        if ((buf[o + 2]! & 0x1f) === 7) {
          sps = o + 2;
          break;
        }
        o += 2 + size;
      }
    }
    if (sps >= 0 && sps + 3 < end) this.profileLevelId = buf.subarray(sps + 1, sps + 4).toString('hex');
  }
}
