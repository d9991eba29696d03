import type { ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { CameraState, INGEST_PAYLOAD_TYPE, spawnGuarded, terminate } from '@cctv/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createCameraNode, type Camera } from '../../index.js';
import { FakeSfu } from '../../testing/fakeSfu.js';
import { Resources, cameraConfig, freeUdpPort, nodeSettings, quietLogs, tempDir, waitFor } from '../../testing/helpers.js';

const res = new Resources();
const dir = tempDir();
beforeAll(() => quietLogs());
afterEach(() => res.closeAll());
afterAll(() => dir.remove());

/** An encoder pushing RTP at `port`, as an IP encoder or another ffmpeg would. */
function sender(codec: 'H264' | 'H265', port: number, payloadType: number, ssrc = 0x1234): ChildProcess {
  const enc =
    codec === 'H264'
      ? ['-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15', '-bf', '0', '-x264-params', 'repeat-headers=1']
      : ['-c:v', 'libx265', '-preset', 'ultrafast', '-tune', 'zerolatency', '-x265-params', 'keyint=15:bframes=0:repeat-headers=1:log-level=error'];
  const child = spawnGuarded(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-nostdin', '-re', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=15', '-pix_fmt', 'yuv420p',
      ...enc, '-f', 'rtp', '-payload_type', String(payloadType), '-ssrc', String(ssrc), '-pkt_size', '1200', `rtp://127.0.0.1:${port}`],
    ['ignore', 'ignore', 'ignore'],
  );
  res.defer(async () => {
    // A stopped process only acts on SIGTERM once continued.
    child.kill('SIGCONT');
    await terminate(child);
  });
  return child;
}

async function setup(stallTimeoutMs = 3000) {
  const sfu = res.add(await FakeSfu.start(), (s) => s.close());
  const node = res.add(await createCameraNode({ settings: nodeSettings({ stallTimeoutMs }), dataDir: dir.path }), (n) => n.close());
  return { sfu, node };
}

const live = (cam: Camera, timeoutMs = 15_000) => waitFor(() => `camera ${cam.id} to be live (${cam.state}: ${cam.status().lastError ?? ''})`, () => cam.state === CameraState.Live, timeoutMs);

/** An RTP packet (RFC 3550 §5.1) with one payload. */
function rtp(pt: number, seq: number, payload: Buffer, marker = true, ssrc = 0xabcd): Buffer {
  const h = Buffer.alloc(12);
  h[0] = 0x80;
  h[1] = (marker ? 0x80 : 0) | pt;
  h.writeUInt16BE(seq, 2);
  h.writeUInt32BE(seq * 3000, 4);
  h.writeUInt32BE(ssrc, 8);
  return Buffer.concat([h, payload]);
}

describe('rtp source', () => {
  test('H.264 RTP with payload type 100 is forwarded with payload type 96 and the camera SSRC', async () => {
    const port = await freeUdpPort();
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'enc264', source: { kind: 'rtp', host: '127.0.0.1', port, codec: 'H264', payloadType: 100 } }), sfu.address);
    // No process of its own: the camera waits on its port.
    expect(cam.pids).toEqual([]);
    sender('H264', port, 100, 0x1234);
    await live(cam);

    expect(cam.status().input.codec).toBe('H264');
    await waitFor('two keyframes at the SFU', () => sfu.frames(cam.ssrc, 'H264').filter((f) => f.key).length >= 2, 10_000);
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H264]);
    expect([...sfu.countBySsrc.keys()]).toEqual([cam.ssrc]);
    expect(cam.ssrc).not.toBe(0x1234);
    expect(cam.inputStats().junk).toBe(0);
    expect(cam.inputStats().keyframes).toBeGreaterThanOrEqual(2);
  });

  test('H.265 RTP is forwarded with payload type 97', async () => {
    const port = await freeUdpPort();
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'enc265', source: { kind: 'rtp', host: '127.0.0.1', port, codec: 'H265', payloadType: 101 } }), sfu.address);
    sender('H265', port, 101);
    await live(cam);

    expect(cam.status().input.codec).toBe('H265');
    await waitFor('a keyframe at the SFU', () => sfu.frames(cam.ssrc, 'H265').some((f) => f.key), 10_000);
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H265]);
    expect([...sfu.countBySsrc.keys()]).toEqual([cam.ssrc]);
    expect(cam.inputStats().junk).toBe(0);
  });

  test('another payload type, non-RTP bytes and truncated headers are counted as junk, not forwarded', async () => {
    const port = await freeUdpPort();
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'junky', source: { kind: 'rtp', host: '127.0.0.1', port, codec: 'H264', payloadType: 100 } }), sfu.address);
    const sock = res.add(dgram.createSocket('udp4'), (s) => new Promise<void>((r) => s.close(() => r())));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const send = (b: Buffer) => new Promise<void>((resolve, reject) => sock.send(b, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())));

    const junkTag = Buffer.from('JUNK-JUNK');
    const junk = [
      rtp(111, 1, junkTag), // well-formed RTP, wrong payload type
      Buffer.concat([Buffer.from('not rtp at all '), junkTag]), // version bits are not 2
      Buffer.from([0x80, 100, 0, 1, 0]), // truncated: shorter than the 12-byte header
      Buffer.concat([Buffer.from([0x8f, 100, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]), junkTag]), // 15 CSRCs announced, not there
      rtp(100, 3, Buffer.alloc(0)), // a header and no payload
    ];
    // An RTCP sender report (RFC 3550 §6.4.1) from the encoder: neither junk nor forwarded.
    const sr = Buffer.alloc(28);
    sr[0] = 0x80;
    sr[1] = 200;
    sr.writeUInt16BE(6, 2);
    for (const b of [...junk, sr]) await send(b);
    // Then three good packets: one-NAL (type 1, non-IDR slice) frames. The relay handles datagrams in order,
    // so once these have reached the SFU, everything above has been judged.
    const good = [10, 11, 12].map((seq) => rtp(100, seq, Buffer.from([0x41, 0x9a, seq])));
    for (const b of good) await send(b);

    await waitFor('the good packets at the SFU', () => sfu.count(cam.ssrc) >= 3, 5000);
    const stats = cam.inputStats();
    expect(stats.junk).toBe(junk.length);
    expect(stats.packets).toBe(3);
    expect(sfu.total).toBe(3);
    expect(sfu.packets.every((p) => p.payloadType === INGEST_PAYLOAD_TYPE.H264 && p.ssrc === cam.ssrc)).toBe(true);
    expect(sfu.packets.some((p) => p.data.includes(junkTag))).toBe(false);
    // The payload is forwarded untouched; only the payload type and SSRC are rewritten.
    expect(sfu.packets.map((p) => p.data.subarray(12))).toEqual(good.map((b) => b.subarray(12)));
    expect(sfu.packets.map((p) => p.sequenceNumber)).toEqual([10, 11, 12]);
  });

  test('a stalled sender makes the camera reconnecting; it is live again when packets resume', async () => {
    const port = await freeUdpPort();
    const { sfu, node } = await setup(1000);
    const cam = await node.addCamera(cameraConfig({ id: 'stally', source: { kind: 'rtp', host: '127.0.0.1', port, codec: 'H264', payloadType: 100 } }), sfu.address);
    const enc = sender('H264', port, 100);
    await live(cam);

    // Freeze the encoder: it stays connected but sends nothing, as a hung camera does.
    enc.kill('SIGSTOP');
    await waitFor('the camera to be reconnecting', () => cam.state === CameraState.Reconnecting, 10_000);
    expect(cam.status().lastError).toMatch(/no video/);
    const before = sfu.total;

    enc.kill('SIGCONT');
    await live(cam);
    expect(sfu.total).toBeGreaterThan(before);
    expect(cam.status().lastError).toBeNull();
  });
});
