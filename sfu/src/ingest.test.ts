import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { buildPli, readRtcpRequests, type RtpHeader, type VideoCodec } from '@cctv/core';
import { Ingest } from './ingest.js';
import { StreamTrack, type MediaPacket } from './track.js';
import { h264Stream, h264StapA, rtpPacket } from './testing/rtp.js';
import { Cleanup, waitFor } from './testing/wait.js';

// The ingest takes another stream only after the current one has been silent this long (ingest.ts).
const SOURCE_SWITCH_MS = 200;

interface Accepted {
  seq: number;
  ssrc: number;
  codec: VideoCodec;
}

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** An ingest on 127.0.0.1 and a camera socket sending to it over real UDP. */
async function openIngest(onPacket?: (buf: Buffer, h: RtpHeader) => void) {
  const accepted: Accepted[] = [];
  const ingest = new Ingest({
    host: '127.0.0.1',
    onRtp: (buf, h, codec) => {
      accepted.push({ seq: h.sequenceNumber, ssrc: h.ssrc, codec });
      onPacket?.(buf, h);
    },
  });
  cleanup.add(() => ingest.close());
  await ingest.bind();
  const camera = dgram.createSocket('udp4');
  cleanup.add(() => new Promise<void>((r) => camera.close(() => r())));
  await new Promise<void>((r) => camera.bind(0, '127.0.0.1', () => r()));
  const fromCamera: Buffer[] = [];
  camera.on('message', (buf) => fromCamera.push(buf));
  let sent = 0;
  const c = ingest.counters;
  return {
    ingest,
    accepted,
    fromCamera,
    /** Sends datagrams in order and waits until the ingest has judged each of them. */
    async send(...bufs: Buffer[]): Promise<void> {
      for (const b of bufs) {
        await new Promise<void>((resolve, reject) => camera.send(b, ingest.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
        sent++;
      }
      await waitFor(() => c.packets + c.junk === sent, 5000, () => `sent ${sent}, judged ${c.packets + c.junk}`);
    },
  };
}

const SSRC = 0x11223344;
const h264 = (seq: number, ts = seq * 10, ssrc = SSRC, pt = 96) => rtpPacket({ pt, seq, ts, ssrc, payload: Buffer.from([0x41, 1, 2, 3]) });

/** A small deterministic PRNG (mulberry32), so a failing case can be replayed. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Ingest', () => {
  it('forwards RTP of payload type 96 as H.264 and 97 as H.265, counting packets and bytes', async () => {
    const io = await openIngest();
    const a = h264(1);
    await io.send(a, h264(2));
    expect(io.accepted.map((p) => p.codec)).toEqual(['H264', 'H264']);
    expect(io.ingest.counters).toMatchObject({ packets: 2, bytes: 2 * a.length, junk: 0, lost: 0 });
    await sleep(SOURCE_SWITCH_MS + 100);
    await io.send(rtpPacket({ pt: 97, seq: 9, ts: 0, ssrc: 5, payload: Buffer.from([0x26, 0x01, 0xaa]) }));
    expect(io.accepted.at(-1)).toEqual({ seq: 9, ssrc: 5, codec: 'H265' });
  });

  it('counts random bytes, RTCP, other payload types and malformed packets as junk and forwards none', async () => {
    const io = await openIngest();
    await io.send(h264(100), h264(101));
    const rand = prng(42);
    const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    const junk: Buffer[] = [
      // Random bytes of every awkward length, from nothing to a full MTU.
      ...[0, 1, 2, 3, 11, 12, 13, 40, 200, 1200, 1500].map(bytes),
      // RTCP (RFC 5761 §4: second byte 192–223): PLI, SR, RR, SDES, BYE, APP.
      buildPli(1, SSRC),
      ...[200, 201, 202, 203, 204].map((pt) => Buffer.concat([Buffer.from([0x80, pt, 0x00, 0x01]), Buffer.alloc(4)])),
      // The active stream's SSRC and next sequence number, but a payload type outside the contract.
      ...[0, 8, 26, 33, 95, 98, 100, 111, 127].map((pt) => h264(102, 1020, SSRC, pt)),
      // A header with no payload, and one whose payload is all padding.
      rtpPacket({ pt: 96, seq: 102, ts: 1020, ssrc: SSRC, payload: Buffer.alloc(0) }),
      (() => {
        const p = h264(102);
        p[0]! |= 0x20;
        p[p.length - 1] = 4;
        return p;
      })(),
      // Truncated: 11 bytes of a header; 15 CSRCs announced but absent; an extension longer than the packet.
      h264(102).subarray(0, 11),
      (() => {
        const p = h264(102);
        p[0] = 0x8f;
        return p;
      })(),
      (() => {
        const p = rtpPacket({ pt: 96, seq: 102, ts: 1020, ssrc: SSRC, payload: Buffer.alloc(8, 0x41), extension: [{ id: 1, data: Buffer.from([1]) }] });
        p.writeUInt16BE(200, 14);
        return p;
      })(),
      // Version 0 and version 3.
      (() => {
        const p = h264(102);
        p[0] = 0x00;
        return p;
      })(),
      (() => {
        const p = h264(102);
        p[0] = 0xc0;
        return p;
      })(),
    ];
    await io.send(...junk);
    expect(io.ingest.counters.junk).toBe(junk.length);
    expect(io.accepted).toHaveLength(2);
    // The stream goes on as if nothing had happened.
    await io.send(h264(102), h264(103));
    expect(io.accepted.map((p) => p.seq)).toEqual([100, 101, 102, 103]);
    expect(io.ingest.counters).toMatchObject({ packets: 4, junk: junk.length, lost: 0 });
  });

  it('takes one SSRC at a time: another is junk while the first is active, and taken after a pause', async () => {
    const io = await openIngest();
    await io.send(h264(1), h264(2));
    await io.send(h264(500, 0, 0xbad), h264(501, 0, 0xbad), h264(3));
    expect(io.ingest.counters.junk).toBe(2);
    expect(io.accepted.map((p) => p.ssrc)).toEqual([SSRC, SSRC, SSRC]);
    // The first sender stops; after a pause the other one is the camera now (an ffmpeg restart).
    await sleep(SOURCE_SWITCH_MS + 100);
    await io.send(h264(7000, 0, 0xbad), h264(7001, 0, 0xbad));
    expect(io.accepted.slice(3)).toEqual([
      { seq: 7000, ssrc: 0xbad, codec: 'H264' },
      { seq: 7001, ssrc: 0xbad, codec: 'H264' },
    ]);
    // And now the old one is the stranger.
    await io.send(h264(4));
    expect(io.ingest.counters.junk).toBe(3);
  });

  it('drops lone packets from elsewhere in the sequence space, duplicates and late packets', async () => {
    const io = await openIngest();
    await io.send(h264(1000), h264(1001));
    await io.send(h264(31_000), h264(1002), h264(60_000), h264(1003), h264(1003), h264(990), h264(1004));
    expect(io.accepted.map((p) => p.seq)).toEqual([1000, 1001, 1002, 1003, 1004]);
    expect(io.ingest.counters).toMatchObject({ packets: 5, junk: 4, lost: 0 });
  });

  it('follows a sequence jump of the same SSRC once the next packet confirms it', async () => {
    const io = await openIngest();
    await io.send(h264(1000), h264(1001));
    // A sender that restarted without a pause: the first packet of the new numbering is held as junk, the
    // second confirms it and the stream goes on from there.
    await io.send(h264(40_000), h264(40_001), h264(40_002));
    expect(io.accepted.map((p) => p.seq)).toEqual([1000, 1001, 40_001, 40_002]);
    expect(io.ingest.counters.junk).toBe(1);
  });

  it('counts sequence gaps as lost packets', async () => {
    const io = await openIngest();
    await io.send(h264(65_534), h264(65_535), h264(3), h264(4), h264(10));
    // 0, 1, 2 across the wrap, then 5..9.
    expect(io.ingest.counters.lost).toBe(3 + 5);
    expect(io.ingest.counters.junk).toBe(0);
  });

  it('sends keyframe requests to the source as RTCP PLI, at most one per interval', async () => {
    const io = await openIngest();
    // Nobody to ask yet.
    expect(io.ingest.requestKeyframe()).toBe(false);
    await io.send(h264(1), h264(2));
    expect(io.ingest.requestKeyframe()).toBe(true);
    expect(io.ingest.requestKeyframe()).toBe(false);
    await waitFor(() => io.fromCamera.length === 1, 2000);
    const req = readRtcpRequests(io.fromCamera[0]!);
    expect(req?.keyframe).toBe(true);
    // RFC 4585 §6.3.1: the media source SSRC is the camera's.
    expect(io.fromCamera[0]!.readUInt32BE(8)).toBe(SSRC);
    expect(io.ingest.counters.keyframeRequests).toBe(1);
  });

  it('keeps the track timeline continuous when the sender restarts with a new sequence and timestamp', async () => {
    const track = new StreamTrack('H264', 1 << 20);
    const out: MediaPacket[] = [];
    track.addSink({ onPacket: (p) => out.push(p) });
    const io = await openIngest((buf, h) => track.push(buf, h));
    const first = [...h264Stream({ ssrc: 0xaaaa, seq: 50_000, ts: 3_000_000_000, frames: 20, gop: 10 })];
    await io.send(...first.map((p) => p.buf));
    const last = out.at(-1)!;
    await sleep(SOURCE_SWITCH_MS + 100);
    const second = [...h264Stream({ ssrc: 0xbbbb, seq: 7, ts: 123_456, frames: 20, gop: 10 })];
    await io.send(...second.map((p) => p.buf));
    expect(io.ingest.counters).toMatchObject({ packets: first.length + second.length, junk: 0 });
    expect(track.discontinuities).toBe(1);
    const after = out.slice(first.length);
    expect(after).toHaveLength(second.length);
    expect(after[0]!.seq).toBe((last.seq + 1) & 0xffff);
    expect(after[0]!.ts).toBe((last.ts + 3000) >>> 0);
    expect(after[0]!.keyStart).toBe(true);
    for (let i = 1; i < after.length; i++) expect(after[i]!.seq).toBe((after[i - 1]!.seq + 1) & 0xffff);
    expect(after.at(-1)!.ts).toBe((last.ts + 20 * 3000) >>> 0);
  });

  it('does not throw on anything the network delivers', async () => {
    const io = await openIngest();
    const rand = prng(7);
    const bufs: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const base = i % 2 ? h264(i) : rtpPacket({ pt: 96, seq: i, ts: i, ssrc: i, payload: h264StapA() });
      const b = Buffer.from(base.subarray(0, Math.floor(rand() * (base.length + 1))));
      for (let k = 0; k < 3 && b.length; k++) b[Math.floor(rand() * b.length)]! ^= 1 << Math.floor(rand() * 8);
      bufs.push(b);
    }
    await io.send(...bufs);
    const c = io.ingest.counters;
    expect(c.packets + c.junk).toBe(bufs.length);
  });
});
