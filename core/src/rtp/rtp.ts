/**
 * RTP and RTCP parsing without allocation, for the per-packet paths (RFC 3550).
 * Everything here reads a Buffer in place; nothing keeps a reference to it.
 */

/** Fields of an RTP header (RFC 3550 §5.1) and where the payload sits in the packet. */
export interface RtpHeader {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** Offset of the first payload byte (after CSRCs and the header extension). */
  payloadOffset: number;
  /** Offset one past the last payload byte (before padding). */
  payloadEnd: number;
  /** Offset of the header extension's profile word, or -1 when there is none. */
  extensionOffset: number;
}

/** Smallest RTP header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC. */
export const RTP_HEADER_MIN = 12;

/**
 * RFC 5761 §4: with RTP and RTCP on one port, a second byte of 192–223 is RTCP
 * (those would be RTP payload types 64–95 with the marker bit set).
 */
export function isRtcp(buf: Buffer): boolean {
  return buf.length >= 8 && (buf[0]! & 0xc0) === 0x80 && buf[1]! >= 192 && buf[1]! <= 223;
}

/**
 * Parses an RTP header into `out` (reused by the caller). Returns false, leaving `out` partly
 * written, when the bytes are not a well-formed RTP version 2 packet.
 */
export function parseRtpHeader(buf: Buffer, out: RtpHeader): boolean {
  const len = buf.length;
  if (len < RTP_HEADER_MIN) return false;
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) return false;
  const csrcCount = b0 & 0x0f;
  let offset = RTP_HEADER_MIN + csrcCount * 4;
  if (offset > len) return false;
  out.extensionOffset = -1;
  if (b0 & 0x10) {
    if (offset + 4 > len) return false;
    out.extensionOffset = offset;
    const words = buf.readUInt16BE(offset + 2);
    offset += 4 + words * 4;
    if (offset > len) return false;
  }
  let end = len;
  if (b0 & 0x20) {
    const pad = buf[len - 1]!;
    if (pad === 0 || offset + pad > len) return false;
    end = len - pad;
  }
  const b1 = buf[1]!;
  out.marker = (b1 & 0x80) !== 0;
  out.payloadType = b1 & 0x7f;
  out.sequenceNumber = buf.readUInt16BE(2);
  out.timestamp = buf.readUInt32BE(4);
  out.ssrc = buf.readUInt32BE(8);
  out.payloadOffset = offset;
  out.payloadEnd = end;
  return true;
}

/** A fresh header object to pass to parseRtpHeader. */
export function newRtpHeader(): RtpHeader {
  return { marker: false, payloadType: 0, sequenceNumber: 0, timestamp: 0, ssrc: 0, payloadOffset: 0, payloadEnd: 0, extensionOffset: -1 };
}

/** (a - b) mod 2^16 as a signed distance: positive when a is after b (RFC 3550 §A.1). */
export function seqDiff(a: number, b: number): number {
  const d = (a - b) & 0xffff;
  return d >= 0x8000 ? d - 0x10000 : d;
}

/** (a - b) mod 2^32 as a signed distance. */
export function tsDiff(a: number, b: number): number {
  const d = (a - b) >>> 0;
  return d >= 0x80000000 ? d - 0x100000000 : d;
}
