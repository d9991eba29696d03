/**
 * The few RTCP messages the live path sends and reads (RFC 3550, RFC 4585, RFC 5104).
 */

/** RTCP packet types (RFC 3550 §12.1, RFC 4585 §6.1). */
export const RtcpType = { SR: 200, RR: 201, SDES: 202, BYE: 203, APP: 204, RTPFB: 205, PSFB: 206 } as const;

/** Picture Loss Indication (RFC 4585 §6.3.1): PSFB with FMT 1, no FCI. */
export function buildPli(senderSsrc: number, mediaSsrc: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = 0x80 | 1;
  b[1] = RtcpType.PSFB;
  b.writeUInt16BE(2, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  b.writeUInt32BE(mediaSsrc >>> 0, 8);
  return b;
}

/** Full Intra Request (RFC 5104 §4.3.1): PSFB with FMT 4, one FCI entry. */
export function buildFir(senderSsrc: number, mediaSsrc: number, seq: number): Buffer {
  const b = Buffer.alloc(20);
  b[0] = 0x80 | 4;
  b[1] = RtcpType.PSFB;
  b.writeUInt16BE(4, 2);
  b.writeUInt32BE(senderSsrc >>> 0, 4);
  b.writeUInt32BE(0, 8);
  b.writeUInt32BE(mediaSsrc >>> 0, 12);
  b[16] = seq & 0xff;
  return b;
}

/** What a compound RTCP packet asks of the sender. */
export interface RtcpRequests {
  /** A PLI or FIR was present. */
  keyframe: boolean;
  /** Sequence numbers a Generic NACK (RFC 4585 §6.2.1) asked for again. */
  nacks: number[];
}

/**
 * Walks a compound RTCP packet and collects keyframe requests and NACKed sequence numbers.
 * Returns null when the bytes are not well-formed RTCP (so the caller can count them as junk).
 */
export function readRtcpRequests(buf: Buffer): RtcpRequests | null {
  const out: RtcpRequests = { keyframe: false, nacks: [] };
  let o = 0;
  if (buf.length < 4) return null;
  while (o + 4 <= buf.length) {
    const b0 = buf[o]!;
    if (b0 >> 6 !== 2) return null;
    const fmt = b0 & 0x1f;
    const type = buf[o + 1]!;
    const len = (buf.readUInt16BE(o + 2) + 1) * 4;
    if (o + len > buf.length) return null;
    if (type === RtcpType.PSFB && (fmt === 1 || fmt === 4)) out.keyframe = true;
    if (type === RtcpType.RTPFB && fmt === 1) {
      for (let f = o + 12; f + 4 <= o + len; f += 4) {
        const pid = buf.readUInt16BE(f);
        const blp = buf.readUInt16BE(f + 2);
        out.nacks.push(pid);
        for (let i = 0; i < 16; i++) if (blp & (1 << i)) out.nacks.push((pid + i + 1) & 0xffff);
      }
    }
    o += len;
  }
  return o === buf.length ? out : null;
}
