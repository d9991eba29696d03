import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { inSequence, openTestCamera, startsKeyframe, type TestCamera } from './testing/camera.js';
import { TestReceiver, h264Codec, h265Codec, type ReceivedPacket } from './testing/receiver.js';
import { Cleanup, waitFor } from './testing/wait.js';

const cleanup = new Cleanup();

function receiver(opts: ConstructorParameters<typeof TestReceiver>[0]): TestReceiver {
  const r = new TestReceiver(opts);
  cleanup.add(() => r.closeLikeBrowser());
  return r;
}

/** Whether a process id still runs. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// NAL unit types in the first payload byte(s): H.264 (RFC 6184 §5.2) 1–23, 24 STAP-A, 28 FU-A;
// H.265 (RFC 7798 §4.4) 0–40, 48 AP, 49 FU.
const h264Nal = (p: ReceivedPacket) => p.payload[0]! & 0x1f;
const h265Nal = (p: ReceivedPacket) => (p.payload[0]! >> 1) & 0x3f;
const isH264 = (p: ReceivedPacket) => (p.payload[0]! & 0x80) === 0 && [...Array(24).keys()].slice(1).concat([24, 28]).includes(h264Nal(p));
const isH265 = (p: ReceivedPacket) => (p.payload[0]! & 0x80) === 0 && (h265Nal(p) <= 40 || h265Nal(p) === 48 || h265Nal(p) === 49);

describe('an H.265 camera', () => {
  let cam: TestCamera;
  const idleStopMs = 500;
  beforeAll(async () => {
    cam = await openTestCamera({ cameraId: 'hevc', settings: { transcode: { idleStopMs } }, source: { codec: 'H265', gop: 30 } });
    expect(cam.room.codec).toBe('H265');
  });
  afterAll(() => cam?.close());
  afterEach(async () => {
    await cleanup.run();
    if (cam) await waitFor(() => cam.room.viewerCount === 0, 10_000);
  });

  it('goes as is to a viewer that offers H.265: no transcoder', async () => {
    const rx = receiver({ codecs: [h265Codec(100)] });
    const answer = await rx.watch(cam.sfu, 'hevc');
    expect(answer).toMatchObject({ codec: 'H265', transcoded: false });
    expect(answer.sdp).toMatch(/^a=rtpmap:100 H265\/90000\r$/m);
    await rx.waitForPackets(60);
    expect(cam.room.transcoderPids).toEqual([]);
    expect(new Set(rx.packets.map((p) => p.pt))).toEqual(new Set([100]));
    expect(rx.packets.every(isH265)).toBe(true);
    expect(startsKeyframe('H265', inSequence(rx.packets)[0]!)).toBe(true);
  });

  it('goes through ONE shared H.264 transcode to viewers that offer only H.264, which stops after the last leaves', async () => {
    const one = receiver({ codecs: [h264Codec(102)] });
    const two = receiver({ codecs: [h264Codec(125)] });
    const hevc = receiver({ codecs: [h265Codec(100)] });

    const a = await one.watch(cam.sfu, 'hevc');
    expect(a).toMatchObject({ codec: 'H264', transcoded: true });
    const pids = cam.room.transcoderPids;
    expect(pids).toHaveLength(1);
    const [pid] = pids;
    expect(alive(pid!)).toBe(true);

    const b = await two.watch(cam.sfu, 'hevc');
    expect(b).toMatchObject({ codec: 'H264', transcoded: true });
    expect(cam.room.transcoderPids).toEqual([pid]);
    // An H.265 viewer at the same time still gets the camera's own stream, and no second transcode.
    const c = await hevc.watch(cam.sfu, 'hevc');
    expect(c).toMatchObject({ codec: 'H265', transcoded: false });
    expect(cam.room.transcoderPids).toEqual([pid]);

    await one.waitForPackets(60, 30_000);
    await two.waitForPackets(60, 30_000);
    await hevc.waitForPackets(60);
    for (const [rx, pt] of [[one, 102], [two, 125]] as const) {
      expect(new Set(rx.packets.map((p) => p.pt))).toEqual(new Set([pt]));
      expect(rx.packets.every(isH264), `NAL types ${rx.packets.slice(0, 20).map(h264Nal).join(' ')}`).toBe(true);
      expect(startsKeyframe('H264', inSequence(rx.packets)[0]!)).toBe(true);
    }
    expect(hevc.packets.every(isH265)).toBe(true);

    // Both H.264 viewers leave: the transcode runs on for idleStopMs (a viewer may come back), then stops.
    await cam.sfu.deleteViewer('hevc', a.viewer.id);
    expect(cam.room.transcoderPids).toEqual([pid]);
    await cam.sfu.deleteViewer('hevc', b.viewer.id);
    expect(cam.room.transcoderPids).toEqual([pid]);
    await waitFor(() => cam.room.transcoderPids.length === 0, idleStopMs + 10_000);
    await waitFor(() => !alive(pid!), 10_000, () => `transcoder ffmpeg ${pid} still runs`);
    // The H.265 viewer never depended on it.
    const n = hevc.packets.length;
    await hevc.waitForPackets(n + 30);

    // The next H.264 viewer starts a new one.
    const again = receiver({ codecs: [h264Codec(102)] });
    await again.watch(cam.sfu, 'hevc');
    expect(cam.room.transcoderPids).toHaveLength(1);
    expect(cam.room.transcoderPids[0]).not.toBe(pid);
    await again.waitForPackets(30, 30_000);
  });
});
