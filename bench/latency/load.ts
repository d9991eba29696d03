// Extra viewers for the benchmark, in a process of their own: N werift peers that complete ICE and DTLS
// like a browser, then only count what arrives (no decryption, no depacketizing), and send a receiver
// report every second as browsers do. They cost the SFU what real remote viewers cost it, and cost this
// machine little, so the measured browser viewer is not slowed by them.
//
// Usage: node --import tsx bench/latency/load.ts <whep-url> <count>
// Prints `READY <count>` when every viewer is receiving, then `PACKETS <n>` every second.
import type dgram from 'node:dgram';
import { RtcpReceiverInfo, RtcpRrPacket, type RTCPeerConnection } from 'werift';
import { loopbackH264Peer } from './peer.js';

const [url, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!url || !Number.isInteger(count) || count < 0) {
  process.stderr.write('usage: load.ts <whep-url> <count>\n');
  process.exit(2);
}

// Headers every WHEP request carries (the real server wants a Bearer token).
const headers = JSON.parse(process.env.BENCH_WHEP_HEADERS ?? '{}') as Record<string, string>;
let packets = 0;
const sessions: string[] = [];
const peers: RTCPeerConnection[] = [];

async function viewer(): Promise<void> {
  const pc = loopbackH264Peer();
  peers.push(pc);
  pc.addTransceiver('video', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url!, { method: 'POST', body: pc.localDescription!.sdp, headers: { 'content-type': 'application/sdp', ...headers } });
  if (res.status !== 201) throw new Error(`WHEP answered ${res.status}: ${await res.text()}`);
  sessions.push(new URL(res.headers.get('location')!, url).toString());
  const answer = await res.text();
  const ssrc = Number(/a=ssrc:(\d+) /.exec(answer)?.[1] ?? 0);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('viewer did not connect in 10 s')), 10_000);
    pc.connectionStateChange.subscribe((s) => {
      if (s === 'connected') {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const t = pc.getTransceivers()[0]!;
  const conn = (t.dtlsTransport.iceTransport as unknown as { connection: { protocols: Array<{ transport: { socket: dgram.Socket } }> } }).connection;
  for (const protocol of conn.protocols) {
    const socket = protocol.transport.socket;
    // Keep werift's listeners for STUN and DTLS; take RTP/RTCP (first byte 128–191) away from them.
    const original = socket.listeners('message') as Array<(m: Buffer, r: dgram.RemoteInfo) => void>;
    socket.removeAllListeners('message');
    socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
      if (msg.length > 0 && msg[0]! >= 128 && msg[0]! <= 191) {
        packets++;
        return;
      }
      for (const l of original) l(msg, rinfo);
    });
  }
  setInterval(() => {
    t.dtlsTransport.sendRtcp([new RtcpRrPacket({ ssrc: 0x10ad, reports: [new RtcpReceiverInfo({ ssrc, fractionLost: 0, packetsLost: 0, highestSequence: 0, jitter: 0, lsr: 0, dlsr: 0 })] })]).catch(() => {});
  }, 1000);
}

async function main(): Promise<void> {
  for (let i = 0; i < count; i++) await viewer();
  const before = packets;
  await new Promise((r) => setTimeout(r, 1000));
  if (count > 0 && packets === before) throw new Error('the viewers connected but receive nothing');
  process.stdout.write(`READY ${count}\n`);
  setInterval(() => process.stdout.write(`PACKETS ${packets}\n`), 1000);
}

async function stop(): Promise<void> {
  await Promise.all(sessions.map((s) => fetch(s, { method: 'DELETE', headers }).catch(() => {})));
  await Promise.all(peers.map((p) => p.close().catch(() => {})));
  process.exit(0);
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
main().catch((e: unknown) => {
  process.stderr.write(`load: ${(e as Error).message}\n`);
  process.exit(1);
});
