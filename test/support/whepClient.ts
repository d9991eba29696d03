import { testIceServers } from './stun.js';
import { RTCPeerConnection, RTCRtpCodecParameters, type RtpPacket } from 'werift';

/** A WHEP viewer made of a werift peer: posts an offer, counts what arrives, and DELETEs on close. */
export interface WhepViewer {
  /** The session URL from the Location header. */
  location: string;
  /** RTP packets received so far. */
  packets(): number;
  /** Payload types seen. */
  payloadTypes(): Set<number>;
  /** Resolves when `n` packets have arrived (rejects after `timeoutMs`). */
  waitForPackets(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface WhepOptions {
  /** Codecs to offer; default H.264 packetization-mode 1 with payload type 96. */
  codecs?: RTCRtpCodecParameters[];
  /** Extra headers (e.g. authorization). */
  headers?: Record<string, string>;
}

export const h264Codec = (payloadType = 96): RTCRtpCodecParameters =>
  new RTCRtpCodecParameters({
    mimeType: 'video/H264',
    clockRate: 90000,
    payloadType,
    rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }],
    parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
  });

export const h265Codec = (payloadType = 98): RTCRtpCodecParameters =>
  new RTCRtpCodecParameters({ mimeType: 'video/H265', clockRate: 90000, payloadType, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] });

/** Opens a WHEP session at `url` (…/whep). Throws with the status and body when the server refuses. */
export async function watch(url: string, opts: WhepOptions = {}): Promise<WhepViewer> {
  const pc = new RTCPeerConnection({
    iceServers: testIceServers(),
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    codecs: { video: opts.codecs ?? [h264Codec()] },
  });
  let count = 0;
  const pts = new Set<number>();
  const waiters: Array<() => void> = [];
  const t = pc.addTransceiver('video', { direction: 'recvonly' });
  t.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      count++;
      pts.add(rtp.header.payloadType);
      for (const w of waiters.splice(0)) w();
    });
  });
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, { method: 'POST', body: pc.localDescription!.sdp, headers: { 'content-type': 'application/sdp', ...opts.headers } });
  if (res.status !== 201) {
    await pc.close();
    throw new Error(`WHEP POST ${url} answered ${res.status}: ${await res.text()}`);
  }
  const location = new URL(res.headers.get('location')!, url).toString();
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return {
    location,
    packets: () => count,
    payloadTypes: () => pts,
    async waitForPackets(n, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (count < n) {
        if (Date.now() > until) throw new Error(`only ${count} of ${n} packets arrived within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
    async close() {
      await fetch(location, { method: 'DELETE', headers: opts.headers }).catch(() => {});
      await pc.close();
    },
  };
}
