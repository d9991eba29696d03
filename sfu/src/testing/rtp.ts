import { newRtpHeader, parseRtpHeader, type RtpHeader } from '@cctv/core';

/** Fields of an RTP packet to build (RFC 3550 §5.1). */
export interface RtpFields {
  pt: number;
  seq: number;
  ts: number;
  ssrc: number;
  marker?: boolean;
  payload: Buffer;
  /** A one-byte header extension block (RFC 8285 §4.2) to put after the fixed header. */
  extension?: Array<{ id: number; data: Buffer }>;
}

/** Serializes an RTP packet. */
export function rtpPacket(f: RtpFields): Buffer {
  let ext = Buffer.alloc(0);
  if (f.extension) {
    const body = Buffer.concat(f.extension.map((e) => Buffer.concat([Buffer.from([(e.id << 4) | (e.data.length - 1)]), e.data])));
    const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
    ext = Buffer.alloc(4 + padded.length);
    ext.writeUInt16BE(0xbede, 0);
    ext.writeUInt16BE(padded.length / 4, 2);
    padded.copy(ext, 4);
  }
  const h = Buffer.alloc(12);
  h[0] = 0x80 | (f.extension ? 0x10 : 0);
  h[1] = (f.marker ? 0x80 : 0) | (f.pt & 0x7f);
  h.writeUInt16BE(f.seq & 0xffff, 2);
  h.writeUInt32BE(f.ts >>> 0, 4);
  h.writeUInt32BE(f.ssrc >>> 0, 8);
  return Buffer.concat([h, ext, f.payload]);
}

/** Parses a packet built here (or received) into a fresh header; throws when it is not RTP. */
export function parseRtp(buf: Buffer): RtpHeader {
  const h = newRtpHeader();
  if (!parseRtpHeader(buf, h)) throw new Error('not an RTP packet');
  return h;
}

// H.264 NAL units (ITU-T H.264 §7.3.1): forbidden bit, nal_ref_idc, nal_unit_type.
/** An SPS NAL unit with the given profile_idc, constraint flags and level_idc (the rest is filler). */
export function h264Sps(profileLevelId: string): Buffer {
  return Buffer.concat([Buffer.from([0x67]), Buffer.from(profileLevelId, 'hex'), Buffer.from([0xac, 0xd9, 0x40, 0x50])]);
}

const PPS = Buffer.from([0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);

/** STAP-A (RFC 6184 §5.7.1) holding SPS and PPS: the first packet of a keyframe as ffmpeg sends it. */
export function h264StapA(profileLevelId = '42c01f'): Buffer {
  const sps = h264Sps(profileLevelId);
  const parts: Buffer[] = [Buffer.from([0x18])];
  for (const nal of [sps, PPS]) {
    const size = Buffer.alloc(2);
    size.writeUInt16BE(nal.length);
    parts.push(size, nal);
  }
  return Buffer.concat(parts);
}

/** A FU-A fragment (RFC 6184 §5.8) of a NAL unit of `type` (5 = IDR, 1 = non-IDR slice). */
export function h264FuA(type: number, start: boolean, end: boolean, bytes: number): Buffer {
  const b = Buffer.alloc(2 + bytes, 0xab);
  b[0] = 0x60 | 28;
  b[1] = (start ? 0x80 : 0) | (end ? 0x40 : 0) | type;
  return b;
}

/** A whole non-IDR slice in one packet (single NAL unit mode). */
export function h264Slice(bytes: number): Buffer {
  const b = Buffer.alloc(1 + bytes, 0xcd);
  b[0] = 0x41;
  return b;
}

/** Writes a little H.264 stream: `frames` frames, a keyframe every `gop`, each `fragments` packets big. */
export function* h264Stream(opts: {
  ssrc: number;
  seq: number;
  ts: number;
  frames: number;
  gop: number;
  fragments?: number;
  bytesPerPacket?: number;
  profileLevelId?: string;
  ticksPerFrame?: number;
}): Generator<{ buf: Buffer; frame: number; key: boolean }> {
  const fragments = opts.fragments ?? 2;
  const bytes = opts.bytesPerPacket ?? 200;
  let seq = opts.seq;
  for (let f = 0; f < opts.frames; f++) {
    const ts = (opts.ts + f * (opts.ticksPerFrame ?? 3000)) >>> 0;
    const key = f % opts.gop === 0;
    const payloads: Buffer[] = [];
    if (key) {
      payloads.push(h264StapA(opts.profileLevelId));
      for (let i = 0; i < fragments; i++) payloads.push(h264FuA(5, i === 0, i === fragments - 1, bytes));
    } else if (fragments === 1) {
      payloads.push(h264Slice(bytes));
    } else {
      for (let i = 0; i < fragments; i++) payloads.push(h264FuA(1, i === 0, i === fragments - 1, bytes));
    }
    for (const [i, payload] of payloads.entries()) {
      yield { buf: rtpPacket({ pt: 96, seq: seq++ & 0xffff, ts, ssrc: opts.ssrc, marker: i === payloads.length - 1, payload }), frame: f, key: key && i === 0 };
    }
  }
}
