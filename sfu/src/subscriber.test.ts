import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { newRtpHeader, parseRtpHeader } from '@cctv/core';
import { RtpSubscriber } from './subscriber.js';
import { StreamTrack } from './track.js';
import { h264Stream } from './testing/rtp.js';
import { Cleanup, waitFor } from './testing/wait.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function receiver() {
  const got: Array<{ seq: number; ts: number; ssrc: number; pt: number; marker: boolean; payload: Buffer }> = [];
  const s = dgram.createSocket('udp4');
  cleanup.add(() => new Promise<void>((r) => s.close(() => r())));
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  s.on('message', (buf) => {
    const h = newRtpHeader();
    if (parseRtpHeader(buf, h)) got.push({ seq: h.sequenceNumber, ts: h.timestamp, ssrc: h.ssrc, pt: h.payloadType, marker: h.marker, payload: buf.subarray(h.payloadOffset, h.payloadEnd) });
  });
  return { port: s.address().port, got };
}

/** Pushes a stream into the track; `at(frame)` runs before that frame's first packet. */
function feed(track: StreamTrack, frames: number, gop: number, at: Record<number, () => void> = {}) {
  const h = newRtpHeader();
  const sent: Array<{ frame: number }> = [];
  let last = -1;
  for (const p of h264Stream({ ssrc: 0xabc, seq: 100, ts: 9000, frames, gop })) {
    if (p.frame !== last) {
      at[p.frame]?.();
      last = p.frame;
    }
    parseRtpHeader(p.buf, h);
    track.push(p.buf, h);
    sent.push({ frame: p.frame });
  }
  return sent;
}

describe('RtpSubscriber', () => {
  it('starts with the current group of pictures, then follows live, under its own SSRC and the ingest payload type', async () => {
    const rx = await receiver();
    const track = new StreamTrack('H264', 1 << 20);
    const out = dgram.createSocket('udp4');
    cleanup.add(() => new Promise<void>((r) => out.close(() => r())));
    const sub = new RtpSubscriber('H264', out, { host: '127.0.0.1', port: rx.port, leaseMs: 1000 });
    cleanup.add(() => sub.close());
    // It joins after 1.5 GOPs: it gets the second GOP from its keyframe (frame 30) onwards.
    const sent = feed(track, 75, 30, { 45: () => sub.start(track) });
    const expected = sent.filter((p) => p.frame >= 30).length;
    await waitFor(() => rx.got.length >= expected, 3000, () => `${rx.got.length} of ${expected}`);
    expect(rx.got.length).toBe(expected);
    expect(rx.got[0]!.payload[0]! & 0x1f).toBe(24); // STAP-A with SPS and PPS: a keyframe
    expect(new Set(rx.got.map((p) => p.ssrc))).toEqual(new Set([sub.ssrc]));
    expect(new Set(rx.got.map((p) => p.pt))).toEqual(new Set([96]));
    // Continuous sequence numbers and the source's timestamps.
    rx.got.forEach((p, i) => i > 0 && expect((p.seq - rx.got[i - 1]!.seq) & 0xffff).toBe(1));
    expect(rx.got[0]!.ts).toBe(9000 + 30 * 3000);
    expect(sub.stats.packetsSent).toBe(expected);
  });

  it('waits for a keyframe when there is no group of pictures to start from, and stops at close', async () => {
    const rx = await receiver();
    const track = new StreamTrack('H264', 0);
    const out = dgram.createSocket('udp4');
    cleanup.add(() => new Promise<void>((r) => out.close(() => r())));
    const sub = new RtpSubscriber('H264', out, { host: '127.0.0.1', port: rx.port, leaseMs: 1000 });
    // No GOP is kept (fast start off): joining at frame 10, it sends from the keyframe at frame 30 on,
    // and nothing after it closes at frame 50.
    const sent = feed(track, 60, 30, { 10: () => sub.start(track), 50: () => sub.close() });
    const expected = sent.filter((p) => p.frame >= 30 && p.frame < 50).length;
    await waitFor(() => rx.got.length >= expected, 3000, () => `${rx.got.length} of ${expected}`);
    await new Promise((r) => setTimeout(r, 100));
    expect(rx.got.length).toBe(expected);
    expect(rx.got[0]!.payload[0]! & 0x1f).toBe(24);
    expect(track.sinkCount).toBe(0);
  });

  it('expires when its lease is not renewed', () => {
    const out = dgram.createSocket('udp4');
    cleanup.add(() => new Promise<void>((r) => out.close(() => r())));
    const sub = new RtpSubscriber('H265', out, { host: '127.0.0.1', port: 9, leaseMs: 1000 });
    const t0 = Date.now();
    expect(sub.payloadType).toBe(97);
    expect(sub.expired(t0 + 500)).toBe(false);
    expect(sub.expired(t0 + 1500)).toBe(true);
    sub.renew(t0 + 1000);
    expect(sub.expired(t0 + 1500)).toBe(false);
  });
});
