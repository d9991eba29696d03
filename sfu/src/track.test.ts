import { describe, expect, it } from 'vitest';
import { StreamTrack, type MediaPacket } from './track.js';
import { captureRtp } from './testing/ffmpeg.js';
import { h264Sps, h264Stream, parseRtp, rtpPacket } from './testing/rtp.js';

/** A track with a sink that records what it fans out. */
function recordingTrack(maxGopBytes = 1 << 20): { track: StreamTrack; out: MediaPacket[]; push(buf: Buffer): void } {
  const track = new StreamTrack('H264', maxGopBytes);
  const out: MediaPacket[] = [];
  track.addSink({ onPacket: (p) => out.push(p) });
  return { track, out, push: (buf) => track.push(buf, parseRtp(buf)) };
}

describe('StreamTrack', () => {
  it('caches the group of pictures from the last keyframe, split into frames', () => {
    const { track, push } = recordingTrack();
    // Frames before any keyframe cannot start a decoder: they are not cached.
    for (const p of h264Stream({ ssrc: 1, seq: 100, ts: 5000, frames: 3, gop: 1000 })) if (p.frame > 0) push(p.buf);
    expect(track.gop()).toBeNull();

    const packets = [...h264Stream({ ssrc: 1, seq: 200, ts: 90_000, frames: 16, gop: 10 })];
    for (const p of packets) push(p.buf);
    // Keyframes at frames 0 and 10: the cache holds frames 10..15.
    const gop = track.gop()!;
    expect(gop.frames).toHaveLength(6);
    expect(gop.lastComplete).toBe(true);
    expect(gop.frames[0]![0]!.keyStart).toBe(true);
    expect(gop.frames[0]![0]!.ts).toBe(90_000 + 10 * 3000);
    // STAP-A (SPS, PPS) and the IDR fragments share one frame; only the first packet starts the keyframe.
    expect(gop.frames[0]!.map((p) => p.keyStart)).toEqual([true, false, false]);
    expect(gop.frames.slice(1).every((f) => f.length === 2 && f[0]!.frameStart && !f[0]!.keyStart)).toBe(true);
    expect(gop.frames.flat().map((p) => p.seq)).toEqual(packets.slice(-(3 + 5 * 2)).map((p) => parseRtp(p.buf).sequenceNumber));
  });

  it('says whether the last cached frame is complete', () => {
    const { track, push } = recordingTrack();
    const packets = [...h264Stream({ ssrc: 1, seq: 0, ts: 0, frames: 3, gop: 30 })];
    for (const p of packets.slice(0, -1)) push(p.buf);
    expect(track.gop()!.lastComplete).toBe(false);
    push(packets.at(-1)!.buf);
    expect(track.gop()!.lastComplete).toBe(true);
  });

  it('drops the cache once it grows past its byte limit, until the next keyframe', () => {
    // Each packet carries ~200 payload bytes; 2,000 bytes hold about ten.
    const { track, push } = recordingTrack(2000);
    const packets = [...h264Stream({ ssrc: 1, seq: 0, ts: 0, frames: 40, gop: 20 })];
    for (const p of packets.slice(0, 3 + 2)) push(p.buf);
    expect(track.gop()?.frames).toHaveLength(2);
    for (const p of packets.filter((x) => x.frame >= 2 && x.frame < 20)) push(p.buf);
    expect(track.gop()).toBeNull();
    // The next keyframe starts a new cache.
    for (const p of packets.filter((x) => x.frame >= 20 && x.frame < 22)) push(p.buf);
    expect(track.gop()?.frames).toHaveLength(2);
    expect(track.gop()!.frames[0]![0]!.keyStart).toBe(true);
  });

  it('keeps no cache when its limit is 0 (fast start off)', () => {
    const { track, push, out } = recordingTrack(0);
    for (const p of h264Stream({ ssrc: 1, seq: 0, ts: 0, frames: 5, gop: 2 })) push(p.buf);
    expect(track.gop()).toBeNull();
    expect(out).toHaveLength(3 + 2 + 3 + 2 + 3);
  });

  it('reads profile-level-id from the SPS, in a STAP-A or alone', () => {
    const a = recordingTrack();
    for (const p of h264Stream({ ssrc: 1, seq: 0, ts: 0, frames: 1, gop: 1, profileLevelId: '64001f' })) a.push(p.buf);
    expect(a.track.profileLevelId).toBe('64001f');

    const b = recordingTrack();
    expect(b.track.profileLevelId).toBeNull();
    b.push(rtpPacket({ pt: 96, seq: 1, ts: 0, ssrc: 1, payload: h264Sps('4d0028') }));
    expect(b.track.profileLevelId).toBe('4d0028');
  });

  it("reads profile-level-id from ffmpeg's own stream", async () => {
    // ultrafast uses no High tools, so libx264 signals Baseline whatever the profile asked; veryfast does.
    for (const [profile, preset, idc] of [['baseline', 'ultrafast', 0x42], ['high', 'veryfast', 0x64]] as const) {
      const packets = await captureRtp({ codec: 'H264', profile, preset, count: 20 });
      const { track, push } = recordingTrack();
      for (const p of packets) push(p);
      // Found independently: the SPS (NAL type 7) alone or inside a STAP-A (type 24, 16-bit sizes).
      let sps: Buffer | undefined;
      for (const p of packets) {
        const h = parseRtp(p);
        const payload = p.subarray(h.payloadOffset, h.payloadEnd);
        if ((payload[0]! & 0x1f) === 7) sps = payload;
        for (let o = 1; !sps && (payload[0]! & 0x1f) === 24 && o + 2 < payload.length; o += 2 + payload.readUInt16BE(o)) {
          if ((payload[o + 2]! & 0x1f) === 7) sps = payload.subarray(o + 2);
        }
        if (sps) break;
      }
      expect(sps, `no SPS in ${profile} stream`).toBeDefined();
      expect(track.profileLevelId).toBe(sps!.subarray(1, 4).toString('hex'));
      expect(sps![1]).toBe(idc);
    }
  });

  it('keeps its output timeline continuous across a source restart and counts it', () => {
    const { track, out, push } = recordingTrack();
    const first = [...h264Stream({ ssrc: 1, seq: 65_000, ts: 4_294_000_000, frames: 30, gop: 30, ticksPerFrame: 6000 })];
    for (const p of first) push(p.buf);
    // Across the seq and timestamp wrap there is no discontinuity: it is the same timeline.
    expect(track.discontinuities).toBe(0);
    const lastOut = out.at(-1)!;

    // A restarted ffmpeg: new SSRC, random sequence number and timestamp.
    const second = [...h264Stream({ ssrc: 2, seq: 12_345, ts: 1_000_000_000, frames: 10, gop: 30, ticksPerFrame: 6000 })];
    for (const p of second) push(p.buf);
    expect(track.discontinuities).toBe(1);
    const after = out.slice(first.length);
    // Sequence numbers go on by one, timestamps by one frame (the learned 6000 ticks at 15 fps).
    expect(after[0]!.seq).toBe((lastOut.seq + 1) & 0xffff);
    expect(after[0]!.ts).toBe((lastOut.ts + 6000) >>> 0);
    for (let i = 1; i < after.length; i++) {
      expect(after[i]!.seq).toBe((after[i - 1]!.seq + 1) & 0xffff);
      expect([0, 6000]).toContain((after[i]!.ts - after[i - 1]!.ts) >>> 0);
    }
    // The old group of pictures does not mix with the new source's.
    expect(track.gop()!.frames).toHaveLength(10);
    expect(track.gop()!.frames[0]![0]!.ts).toBe(after[0]!.ts);
  });

  it('treats a backward timestamp jump as a restart too', () => {
    const { track, out, push } = recordingTrack();
    for (const p of h264Stream({ ssrc: 1, seq: 100, ts: 50_000_000, frames: 5, gop: 30 })) push(p.buf);
    const before = out.at(-1)!;
    for (const p of h264Stream({ ssrc: 1, seq: 200, ts: 1_000, frames: 2, gop: 30 })) push(p.buf);
    expect(track.discontinuities).toBe(1);
    // 2 frames: a keyframe of 3 packets and a frame of 2.
    expect(out[out.length - 5]!.ts).toBe((before.ts + 3000) >>> 0);
    expect(out[out.length - 5]!.seq).toBe((before.seq + 1) & 0xffff);
  });

  it('stops fanning out to a removed sink', () => {
    const { track, push, out } = recordingTrack();
    const other: MediaPacket[] = [];
    const sink = { onPacket: (p: MediaPacket) => other.push(p) };
    track.addSink(sink);
    expect(track.sinkCount).toBe(2);
    const packets = [...h264Stream({ ssrc: 1, seq: 0, ts: 0, frames: 4, gop: 30 })];
    push(packets[0]!.buf);
    track.removeSink(sink);
    for (const p of packets.slice(1)) push(p.buf);
    expect(other).toHaveLength(1);
    expect(out).toHaveLength(packets.length);
  });
});
