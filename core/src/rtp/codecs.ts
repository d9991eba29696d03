import type { VideoCodec } from '../config/schema.js';

/**
 * What the first bytes of an RTP payload say about the frame it belongs to.
 * H.264: RFC 6184 (single NAL, STAP-A 24, FU-A 28). H.265: RFC 7798 (single NAL, AP 48, FU 49).
 */
export const PayloadKind = {
  /** Not the first packet of a keyframe. */
  Other: 0,
  /** Starts (or carries) a keyframe: an IDR/IRAP slice, or parameter sets that precede one. */
  KeyframeStart: 1,
} as const;
export type PayloadKind = (typeof PayloadKind)[keyof typeof PayloadKind];

// H.264 NAL unit types (ITU-T H.264 Table 7-1).
const H264_IDR = 5;
const H264_SPS = 7;
const H264_PPS = 8;
const H264_STAP_A = 24;
const H264_FU_A = 28;

function h264NalIsKey(t: number): boolean {
  return t === H264_IDR || t === H264_SPS || t === H264_PPS;
}

/** True when this H.264 RTP payload starts a keyframe (RFC 6184 §5.6–5.8). */
export function h264IsKeyframeStart(buf: Buffer, start: number, end: number): boolean {
  if (end - start < 1) return false;
  const type = buf[start]! & 0x1f;
  if (type >= 1 && type <= 23) return h264NalIsKey(type);
  if (type === H264_STAP_A) {
    // STAP-A: [header][size16][nal]...
    let o = start + 1;
    while (o + 2 < end) {
      const size = buf.readUInt16BE(o);
      o += 2;
      if (size === 0 || o + size > end) return false;
      if (h264NalIsKey(buf[o]! & 0x1f)) return true;
      o += size;
    }
    return false;
  }
  if (type === H264_FU_A) {
    if (end - start < 2) return false;
    const fuHeader = buf[start + 1]!;
    return (fuHeader & 0x80) !== 0 && h264NalIsKey(fuHeader & 0x1f);
  }
  return false;
}

// H.265 NAL unit types (ITU-T H.265 Table 7-1): IRAP 16–23, VPS 32, SPS 33, PPS 34.
const H265_AP = 48;
const H265_FU = 49;

function h265NalIsKey(t: number): boolean {
  return (t >= 16 && t <= 21) || t === 32 || t === 33 || t === 34;
}

/** True when this H.265 RTP payload starts a keyframe (RFC 7798 §4.4). */
export function h265IsKeyframeStart(buf: Buffer, start: number, end: number): boolean {
  if (end - start < 2) return false;
  const type = (buf[start]! >> 1) & 0x3f;
  if (type < 48) return h265NalIsKey(type);
  if (type === H265_AP) {
    let o = start + 2;
    while (o + 2 < end) {
      const size = buf.readUInt16BE(o);
      o += 2;
      if (size < 2 || o + size > end) return false;
      if (h265NalIsKey((buf[o]! >> 1) & 0x3f)) return true;
      o += size;
    }
    return false;
  }
  if (type === H265_FU) {
    if (end - start < 3) return false;
    const fuHeader = buf[start + 2]!;
    return (fuHeader & 0x80) !== 0 && h265NalIsKey(fuHeader & 0x3f);
  }
  return false;
}

/** Keyframe detection for either codec. */
export function isKeyframeStart(codec: VideoCodec, buf: Buffer, start: number, end: number): boolean {
  return codec === 'H264' ? h264IsKeyframeStart(buf, start, end) : h265IsKeyframeStart(buf, start, end);
}

/** RTP clock rate of every video codec we carry (RFC 6184 §8.2.1, RFC 7798 §7.1). */
export const VIDEO_CLOCK_RATE = 90_000;

/**
 * An SDP that lets FFmpeg read one RTP video stream from a UDP port (FFmpeg's `-f sdp` input).
 * `host` is where FFmpeg listens.
 */
export function rtpInputSdp(opts: { codec: VideoCodec; payloadType: number; port: number; host?: string }): string {
  const host = opts.host ?? '127.0.0.1';
  const ip = host.includes(':') ? 'IP6' : 'IP4';
  return [
    'v=0',
    `o=- 0 0 IN ${ip} ${host}`,
    's=cctv',
    `c=IN ${ip} ${host}`,
    't=0 0',
    `m=video ${opts.port} RTP/AVP ${opts.payloadType}`,
    `a=rtpmap:${opts.payloadType} ${opts.codec}/${VIDEO_CLOCK_RATE}`,
    ...(opts.codec === 'H264' ? [`a=fmtp:${opts.payloadType} packetization-mode=1`] : []),
    'a=recvonly',
    '',
  ].join('\r\n');
}
