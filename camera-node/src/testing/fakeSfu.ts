import dgram from 'node:dgram';
import { buildPli, isKeyframeStart, isRtcp, newRtpHeader, parseRtpHeader, type VideoCodec } from '@cctv/core';

/** One RTP packet as the fake SFU saw it. */
export interface SeenPacket {
  /** Wall-clock ms of arrival. */
  at: number;
  payloadType: number;
  ssrc: number;
  marker: boolean;
  sequenceNumber: number;
  /** The whole datagram. */
  data: Buffer;
  /** Address the packet came from (the camera's relay socket). */
  from: { address: string; port: number };
}

/**
 * A UDP socket standing in for the SFU's RTP ingest: it records what a camera's relay sends, and can send
 * RTCP back (a PLI) the way the SFU asks for keyframes.
 */
export class FakeSfu {
  readonly socket = dgram.createSocket('udp4');
  readonly packets: SeenPacket[] = [];
  /** Datagrams that were not RTP (should never come from a relay). */
  other = 0;
  /** Packets kept in `packets`; older ones are dropped to bound memory, counts stay exact. */
  readonly keep: number;
  /** Packets received per SSRC. */
  readonly countBySsrc = new Map<number, number>();
  /** Packets received per payload type. */
  readonly countByPt = new Map<number, number>();
  total = 0;
  #closed = false;

  private constructor(keep: number) {
    this.keep = keep;
    const h = newRtpHeader();
    this.socket.on('message', (data, rinfo) => {
      if (isRtcp(data) || !parseRtpHeader(data, h)) {
        this.other++;
        return;
      }
      this.total++;
      this.countBySsrc.set(h.ssrc, (this.countBySsrc.get(h.ssrc) ?? 0) + 1);
      this.countByPt.set(h.payloadType, (this.countByPt.get(h.payloadType) ?? 0) + 1);
      this.packets.push({
        at: Date.now(), payloadType: h.payloadType, ssrc: h.ssrc, marker: h.marker, sequenceNumber: h.sequenceNumber,
        data, from: { address: rinfo.address, port: rinfo.port },
      });
      if (this.packets.length > this.keep) this.packets.shift();
    });
  }

  /** Binds to 127.0.0.1 on a free port. */
  static async start(keep = 2000): Promise<FakeSfu> {
    const sfu = new FakeSfu(keep);
    await new Promise<void>((resolve, reject) => {
      sfu.socket.once('error', reject);
      sfu.socket.bind(0, '127.0.0.1', () => resolve());
    });
    return sfu;
  }

  /** Where a camera should send: pass to addCamera / setTarget. */
  get address(): { host: string; port: number } {
    return { host: '127.0.0.1', port: this.socket.address().port };
  }

  /** Packets received from one SSRC. */
  count(ssrc: number): number {
    return this.countBySsrc.get(ssrc) ?? 0;
  }

  /** The most recent packet seen, if any. */
  last(): SeenPacket | undefined {
    return this.packets.at(-1);
  }

  /**
   * The frames of one SSRC among the kept packets, in arrival order: one entry per RTP timestamp, with
   * whether any of its packets starts a keyframe (IDR or parameter sets before one).
   */
  frames(ssrc: number, codec: VideoCodec): Array<{ timestamp: number; key: boolean }> {
    const out: Array<{ timestamp: number; key: boolean }> = [];
    const h = newRtpHeader();
    for (const p of this.packets) {
      if (p.ssrc !== ssrc || !parseRtpHeader(p.data, h)) continue;
      let f = out.at(-1);
      if (!f || f.timestamp !== h.timestamp) {
        f = { timestamp: h.timestamp, key: false };
        out.push(f);
      }
      if (isKeyframeStart(codec, p.data, h.payloadOffset, h.payloadEnd)) f.key = true;
    }
    return out;
  }

  /** Sends an RTCP PLI (RFC 4585 §6.3.1) for `mediaSsrc` to a relay address. */
  sendPli(to: { address: string; port: number }, mediaSsrc: number): void {
    this.socket.send(buildPli(1, mediaSsrc), to.port, to.address);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}
