import type { VideoCodec } from '../config/schema.js';

const START_CODE = Buffer.from([0, 0, 0, 1]);
/** Access unit delimiters (H.264 type 9, any picture; H.265 type 35, any picture). */
const AUD: Record<VideoCodec, Buffer> = {
  H264: Buffer.from([0, 0, 0, 1, 0x09, 0xf0]),
  H265: Buffer.from([0, 0, 0, 1, 0x46, 0x01, 0x50]),
};

/**
 * Turns a camera's RTP payloads back into an Annex B byte stream (RFC 6184 for H.264: single NAL units,
 * STAP-A, FU-A; RFC 7798 for H.265: single NAL units, AP, FU), for a decoder reading a pipe.
 *
 * At the end of each frame (the RTP marker bit) it writes the next frame's access unit delimiter: a
 * parser then knows the frame is complete at once instead of waiting for the next frame's first bytes,
 * which takes a frame interval of latency out of decoding. A fragmented NAL unit with a packet missing
 * is dropped whole (a decoder conceals a missing slice better than a corrupt one).
 */
export class Depacketizer {
  readonly codec: VideoCodec;
  #fu: Buffer[] | null = null;
  #lastSeq = -1;
  #lostInFu = false;
  readonly stats = { nals: 0, dropped: 0 };

  constructor(codec: VideoCodec) {
    this.codec = codec;
  }

  /** The Annex B bytes of one RTP payload (possibly none), in order. */
  push(buf: Buffer, start: number, end: number, seq: number, marker: boolean): Buffer[] {
    const out: Buffer[] = [];
    if (this.#lastSeq >= 0 && ((this.#lastSeq + 1) & 0xffff) !== seq && this.#fu) this.#lostInFu = true;
    this.#lastSeq = seq;
    if (end > start) {
      if (this.codec === 'H264') this.#h264(buf, start, end, out);
      else this.#h265(buf, start, end, out);
    }
    if (marker) out.push(AUD[this.codec]);
    return out;
  }

  #nal(out: Buffer[], nal: Buffer): void {
    this.stats.nals++;
    out.push(START_CODE, nal);
  }

  #h264(buf: Buffer, start: number, end: number, out: Buffer[]): void {
    const type = buf[start]! & 0x1f;
    if (type >= 1 && type <= 23) {
      this.#nal(out, Buffer.from(buf.subarray(start, end)));
    } else if (type === 24) {
      // STAP-A: [header][size16][nal]…
      for (let o = start + 1; o + 2 <= end;) {
        const size = buf.readUInt16BE(o);
        o += 2;
        if (size === 0 || o + size > end) break;
        this.#nal(out, Buffer.from(buf.subarray(o, o + size)));
        o += size;
      }
    } else if (type === 28 && end - start > 2) {
      // FU-A: [indicator][header: S E R type][fragment]
      const fu = buf[start + 1]!;
      if (fu & 0x80) {
        this.#fu = [Buffer.from([(buf[start]! & 0xe0) | (fu & 0x1f)])];
        this.#lostInFu = false;
      }
      if (!this.#fu) return;
      this.#fu.push(Buffer.from(buf.subarray(start + 2, end)));
      if (fu & 0x40) this.#endFu(out);
    }
  }

  #h265(buf: Buffer, start: number, end: number, out: Buffer[]): void {
    if (end - start < 2) return;
    const type = (buf[start]! >> 1) & 0x3f;
    if (type < 48) {
      this.#nal(out, Buffer.from(buf.subarray(start, end)));
    } else if (type === 48) {
      // AP: [header 2][size16][nal]…
      for (let o = start + 2; o + 2 <= end;) {
        const size = buf.readUInt16BE(o);
        o += 2;
        if (size === 0 || o + size > end) break;
        this.#nal(out, Buffer.from(buf.subarray(o, o + size)));
        o += size;
      }
    } else if (type === 49 && end - start > 3) {
      // FU: [header 2][FU header: S E type][fragment]
      const fu = buf[start + 2]!;
      if (fu & 0x80) {
        this.#fu = [Buffer.from([(buf[start]! & 0x81) | ((fu & 0x3f) << 1), buf[start + 1]!])];
        this.#lostInFu = false;
      }
      if (!this.#fu) return;
      this.#fu.push(Buffer.from(buf.subarray(start + 3, end)));
      if (fu & 0x40) this.#endFu(out);
    }
  }

  #endFu(out: Buffer[]): void {
    const parts = this.#fu!;
    this.#fu = null;
    if (this.#lostInFu) {
      this.stats.dropped++;
      return;
    }
    this.#nal(out, Buffer.concat(parts));
  }
}
