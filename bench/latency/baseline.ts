// The baseline of the latency benchmark: the minimal werift forwarder the project started from. RTP in
// on a UDP port, one werift peer connection and track per viewer, every packet copied to every track
// with track.writeRtp (werift changes a packet while sending it, so each viewer needs its own copy).
// WHEP on HTTP like the real system, so the same page and load viewers measure both.
//
// Usage: node --import tsx bench/latency/baseline.ts <http-port> <rtp-port>
// Prints `READY` once listening.
import dgram from 'node:dgram';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { MediaStreamTrack, type RTCPeerConnection } from 'werift';
import { loopbackH264Peer } from './peer.js';

const [httpPort, rtpPort] = process.argv.slice(2).map(Number);
const viewers = new Map<string, { pc: RTCPeerConnection; track: MediaStreamTrack }>();

const ingest = dgram.createSocket('udp4');
ingest.on('message', (buf) => {
  for (const v of viewers.values()) v.track.writeRtp(Buffer.from(buf));
});
ingest.bind(rtpPort, '127.0.0.1');

const server = http.createServer(async (req, res) => {
  try {
    if (req.method === 'GET') {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>baseline</title>');
      return;
    }
    if (req.method === 'DELETE') {
      const id = req.url!.split('/').pop()!;
      const v = viewers.get(id);
      viewers.delete(id);
      await v?.pc.close();
      res.statusCode = 200;
      res.end();
      return;
    }
    let body = '';
    for await (const c of req) body += c;
    const pc = loopbackH264Peer();
    const track = new MediaStreamTrack({ kind: 'video' });
    await pc.setRemoteDescription({ type: 'offer', sdp: body });
    const t = pc.getTransceivers()[0]!;
    t.setDirection('sendonly');
    await t.sender.replaceTrack(track);
    await pc.setLocalDescription(await pc.createAnswer());
    const id = randomUUID();
    viewers.set(id, { pc, track });
    res.statusCode = 201;
    res.setHeader('content-type', 'application/sdp');
    res.setHeader('location', `/whep/${id}`);
    res.end(pc.localDescription!.sdp);
  } catch (error) {
    res.statusCode = 400;
    res.end(String(error));
  }
});
server.listen(httpPort, '127.0.0.1', () => process.stdout.write('READY\n'));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
