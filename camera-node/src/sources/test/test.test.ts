import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CameraState, INGEST_PAYLOAD_TYPE, rtpInputSdp, spawnGuarded, terminate } from '@cctv/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createCameraNode } from '../../index.js';
import { FakeSfu } from '../../testing/fakeSfu.js';
import { Resources, freeUdpPort, nodeSettings, quietLogs, tempDir, testCamera, waitFor } from '../../testing/helpers.js';
import { TIMECODE_BITS, TIMECODE_BLOCK, decodeTimecode, encodeTimecode } from './timecode.js';

const res = new Resources();
const dir = tempDir();
beforeAll(() => quietLogs());
afterEach(() => res.closeAll());
afterAll(() => dir.remove());

describe('test source', () => {
  test('goes live with H.264 at about the configured fps, a keyframe every GOP', async () => {
    const sfu = res.add(await FakeSfu.start(5000), (s) => s.close());
    const node = res.add(await createCameraNode({ settings: nodeSettings(), dataDir: dir.path }), (n) => n.close());
    const fps = 15;
    const gop = 10;
    const cam = await node.addCamera(testCamera('synthetic', { fps, gop }), sfu.address);

    await waitFor('the camera to be live', () => cam.state === CameraState.Live);
    expect(cam.status().input.codec).toBe('H264');
    // The rate is averaged over 2 s of ticks; wait until the window is full and has seen a few keyframes.
    await waitFor('four keyframes at the SFU', () => sfu.frames(cam.ssrc, 'H264').filter((f) => f.key).length >= 4, 15_000);
    await waitFor('a full rate window', () => cam.inputStats().fps >= fps / 2, 5000);

    const stats = cam.inputStats();
    console.log(`MEASURED test_source_fps=${stats.fps} (configured ${fps})`);
    expect(stats.fps).toBeGreaterThan(0);
    // A loose sanity band: the rate is a measurement on a busy 2-core machine, not a timing contract.
    expect(stats.fps).toBeGreaterThan(fps * 0.5);
    expect(stats.fps).toBeLessThan(fps * 1.5);
    expect(stats.keyframes).toBeGreaterThanOrEqual(4);

    // Every packet carries the ingest payload type of H.264 and the camera's SSRC.
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H264]);
    expect([...sfu.countBySsrc.keys()]).toEqual([cam.ssrc]);

    // Keyframes come every GOP frames: count frames (RTP timestamps) between consecutive keyframes.
    const frames = sfu.frames(cam.ssrc, 'H264');
    const keyAt = frames.flatMap((f, i) => (f.key ? [i] : []));
    const gaps = keyAt.slice(1).map((k, i) => k - keyAt[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(3);
    expect(gaps).toEqual(gaps.map(() => gop));
  });

  test('encodeTimecode/decodeTimecode round-trip and reject a damaged code', () => {
    const now = Date.now();
    for (const ms of [now, now - 1, now + 12_345, 0x1_0000_0000 * 400 + 7, 1_700_000_000_000]) {
      const bits = encodeTimecode(ms);
      expect(bits).toHaveLength(TIMECODE_BITS);
      expect(decodeTimecode(bits, ms)).toBe(ms);
      // Only the low 32 bits travel; a reader within ±24 days still gets the full value.
      expect(decodeTimecode(bits, ms + 86_400_000)).toBe(ms);
    }
    // Across the 2^32 ms wrap, the epoch nearest to the reader's clock wins.
    const wrap = 0x1_0000_0000 * 402;
    expect(decodeTimecode(encodeTimecode(wrap - 5), wrap + 5)).toBe(wrap - 5);
    expect(decodeTimecode(encodeTimecode(wrap + 5), wrap - 5)).toBe(wrap + 5);
    const bits = encodeTimecode(now);
    bits[3] = bits[3]! ^ 1;
    expect(decodeTimecode(bits, now)).toBeNull();
  });

  test("pattern 'timecode': the timestamp survives H.264 and RTP and is read back from a decoded frame", async () => {
    // FFmpeg plays the SFU here: it receives the camera's RTP and decodes it to grey frames.
    const width = 640;
    const height = 96;
    const port = await freeUdpPort();
    const sdp = join(dir.path, 'timecode.sdp');
    writeFileSync(sdp, rtpInputSdp({ codec: 'H264', payloadType: INGEST_PAYLOAD_TYPE.H264, port }));
    const frameBytes = width * height;
    const chunks: Buffer[] = [];
    let got = 0;
    const decoder = spawnGuarded(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-nostdin', '-protocol_whitelist', 'file,udp,rtp', '-fflags', 'nobuffer', '-analyzeduration', '500000', '-probesize', '65536',
        '-i', sdp, '-frames:v', '5', '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'],
      ['ignore', 'pipe', 'pipe'],
    );
    res.defer(() => terminate(decoder));
    decoder.stdout!.on('data', (b: Buffer) => {
      chunks.push(b);
      got += b.length;
    });
    const startedAt = Date.now();
    const node = res.add(await createCameraNode({ settings: nodeSettings(), dataDir: dir.path }), (n) => n.close());
    const cam = await node.addCamera(testCamera('timecode', { pattern: 'timecode', width, height, fps: 10, gop: 5 }), { host: '127.0.0.1', port });
    await waitFor('the camera to be live', () => cam.state === CameraState.Live);
    await waitFor('a decoded frame', () => got >= frameBytes * 2, 15_000);

    const all = Buffer.concat(chunks);
    const frame = all.subarray(frameBytes, frameBytes * 2);
    // Sample the centre of each 16×16 block of the top row: white (235) is 1, black (16) is 0.
    const y = TIMECODE_BLOCK / 2;
    const bits = Array.from({ length: TIMECODE_BITS }, (_, k) => (frame[y * width + k * TIMECODE_BLOCK + TIMECODE_BLOCK / 2]! > 128 ? 1 : 0));
    const now = Date.now();
    const ts = decodeTimecode(bits, now);
    expect(ts, `bits ${bits.join('')}`).not.toBeNull();
    // The frame was stamped after the test started and before it was decoded.
    expect(ts!).toBeGreaterThanOrEqual(startedAt);
    expect(ts!).toBeLessThanOrEqual(now);
    console.log(`MEASURED timecode_age_at_read_ms=${now - ts!}`);
  });
});
