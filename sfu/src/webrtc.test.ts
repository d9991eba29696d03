import { describe, expect, it } from 'vitest';
import { RtcpPacketConverter, type RTCDtlsTransport, type RtcpPacket } from 'werift';
import { onFeedback, type ViewerFeedback } from './webrtc.js';

/** The RTCP side of a DTLS transport: what onFeedback subscribes to. */
function fakeDtls(): { dtls: RTCDtlsTransport; deliver(bytes: Buffer): void } {
  let handler: ((p: RtcpPacket) => void) | null = null;
  const dtls = {
    onRtcp: {
      subscribe(fn: (p: RtcpPacket) => void) {
        handler = fn;
        return { unSubscribe: () => (handler = null) };
      },
    },
  } as unknown as RTCDtlsTransport;
  // werift's own RTCP parser turns the bytes into packets, as it does for a real viewer.
  return { dtls, deliver: (bytes) => RtcpPacketConverter.deSerialize(bytes).forEach((p) => handler?.(p)) };
}

/** A Generic NACK (RFC 4585 §6.2.1): RTPFB, FMT 1, one FCI of PID and BLP. */
function nack(senderSsrc: number, mediaSsrc: number, pid: number, blp: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x80 | 1;
  b[1] = 205;
  b.writeUInt16BE(3, 2);
  b.writeUInt32BE(senderSsrc, 4);
  b.writeUInt32BE(mediaSsrc, 8);
  b.writeUInt16BE(pid, 12);
  b.writeUInt16BE(blp, 14);
  return b;
}

describe('onFeedback', () => {
  it('reads a NACK that spans the sequence number wrap as 16-bit sequence numbers (regression)', () => {
    const { dtls, deliver } = fakeDtls();
    const seen: ViewerFeedback[] = [];
    const stop = onFeedback(dtls, 0xabc, (f) => seen.push(f));
    // libwebrtc packs losses modulo 2^16: PID 65534 with BLP bits for 65535, 0 and 1.
    deliver(nack(1, 0xabc, 65_534, 0b111));
    expect(seen).toEqual([{ nacks: [65_534, 65_535, 0, 1] }]);
    // About another stream: not ours to answer.
    deliver(nack(1, 0xdef, 10, 0));
    expect(seen).toHaveLength(1);
    stop();
    deliver(nack(1, 0xabc, 10, 0));
    expect(seen).toHaveLength(1);
  });
});
