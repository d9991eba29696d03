import { CameraState, INGEST_PAYLOAD_TYPE } from '@cctv/core';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { createCameraNode, type Camera, type CameraNode } from '../../index.js';
import { FakeSfu } from '../../testing/fakeSfu.js';
import { LogCapture, Resources, cameraConfig, cmdline, nodeSettings, tempDir, waitFor } from '../../testing/helpers.js';
import { RtspTestServer } from './testing/rtspServer.js';

const res = new Resources();
const dir = tempDir();
// Every test reads what was logged, at trace level (ffmpeg's stderr lines included).
const logs = new LogCapture().install();
afterEach(() => res.closeAll());
afterAll(() => {
  LogCapture.restore();
  dir.remove();
});

async function setup(): Promise<{ sfu: FakeSfu; node: CameraNode }> {
  const sfu = res.add(await FakeSfu.start(), (s) => s.close());
  const node = res.add(await createCameraNode({ settings: nodeSettings({ initialDelayMs: 100, maxDelayMs: 400, stallTimeoutMs: 5000 }), dataDir: dir.path }), (n) => n.close());
  return { sfu, node };
}

// A short GOP: ffmpeg's copy starts at a keyframe, so the first packet need not wait a whole second.
async function server(opts: Parameters<typeof RtspTestServer.start>[0] = {}): Promise<RtspTestServer> {
  return res.add(await RtspTestServer.start({ gop: 5, ...opts }), (s) => s.stop());
}

const live = (cam: Camera, rtsp?: RtspTestServer, timeoutMs = 15_000) =>
  waitFor(() => `camera ${cam.id} to be live (${cam.state}: ${cam.status().lastError ?? ''}${rtsp ? `; ${rtsp.describe()}` : ''})`, () => cam.state === CameraState.Live, timeoutMs);

/** The argv of the camera's processes, from /proc (what really runs, not what we think we ran). */
function argvOf(cam: Camera): string[][] {
  return cam.pids.map((p) => cmdline(p));
}

describe('rtsp source', () => {
  test('H.264 over TCP (the default) is copied, not re-encoded', async () => {
    const rtsp = await server({ codec: 'h264', fps: 15 });
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'tcp', source: { kind: 'rtsp', url: rtsp.url() } }), sfu.address);
    expect(cam.config.source).toMatchObject({ transport: 'tcp' });
    await live(cam);

    expect(cam.status().input.codec).toBe('H264');
    await waitFor('packets at the SFU', () => sfu.count(cam.ssrc) > 20);
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H264]);
    const [argv] = argvOf(cam);
    expect(argv).toBeDefined();
    expect(argv!.join(' ')).toContain('-rtsp_transport tcp');
    expect(argv!.join(' ')).toContain('-c:v copy');
    expect(argv!.some((a) => /libx26[45]/.test(a))).toBe(false);
  });

  test('H.264 over UDP', async () => {
    const rtsp = await server({ codec: 'h264', fps: 15 });
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'udp', source: { kind: 'rtsp', url: rtsp.url(), transport: 'udp' } }), sfu.address);
    await live(cam);
    expect(cam.status().input.codec).toBe('H264');
    expect(argvOf(cam)[0]!.join(' ')).toContain('-rtsp_transport udp');
    await waitFor('packets at the SFU', () => sfu.count(cam.ssrc) > 20);
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H264]);
  });

  test('H.265 is copied as H.265 and forwarded with payload type 97', async () => {
    const rtsp = await server({ codec: 'h265', fps: 15 });
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'hevc', source: { kind: 'rtsp', url: rtsp.url() } }), sfu.address);
    await live(cam);

    expect(cam.status().input.codec).toBe('H265');
    await waitFor('a keyframe at the SFU', () => sfu.frames(cam.ssrc, 'H265').some((f) => f.key), 10_000);
    expect([...sfu.countByPt.keys()]).toEqual([INGEST_PAYLOAD_TYPE.H265]);
    expect([...sfu.countBySsrc.keys()]).toEqual([cam.ssrc]);
    const argv = argvOf(cam)[0]!.join(' ');
    expect(argv).toContain('-c:v copy');
    expect(argv).not.toMatch(/libx26[45]/);
  });

  test('a stopped server makes the camera reconnecting; restarted on the same port, video comes back', async () => {
    const rtsp = await server({ codec: 'h264', fps: 15 });
    const { sfu, node } = await setup();
    const cam = await node.addCamera(cameraConfig({ id: 'flaky', source: { kind: 'rtsp', url: rtsp.url() } }), sfu.address);
    await live(cam);
    const pidBefore = cam.pids[0];

    await rtsp.stop();
    await waitFor('the camera to be reconnecting', () => cam.state === CameraState.Reconnecting, 10_000);
    expect(cam.status().lastError).toBeTruthy();
    // Let a few connection attempts fail against the closed port, so the restart meets a real backoff.
    await waitFor('two failed reconnects', () => cam.inputStats().reconnects >= 2, 10_000);

    await rtsp.restart();
    const restartedAt = Date.now();
    const seen = sfu.total;
    const first = await waitFor('the first packet after the restart', () => (sfu.total > seen ? sfu.last() : undefined), 15_000, 5);
    const ms = first.at - restartedAt;
    console.log(`MEASURED rtsp_reconnect_ms=${ms} (server READY → first RTP packet at the fake SFU; backoff cap 400 ms)`);
    await live(cam);
    expect(cam.pids[0]).not.toBe(pidBefore);
  });

  test('credentials in the URL or in username/password both work, and the password is never logged', async () => {
    const user = 'alice';
    const password = 'Se:cr@t-Pa55';
    const from = logs.lines.length;
    const rtsp = await server({ codec: 'h264', fps: 10, user, password });
    const { sfu, node } = await setup();

    const inUrl = await node.addCamera(cameraConfig({ id: 'in-url', source: { kind: 'rtsp', url: rtsp.url(user, password) } }), sfu.address);
    const fields = await node.addCamera(cameraConfig({ id: 'fields', source: { kind: 'rtsp', url: rtsp.url(), username: user, password } }), sfu.address);
    await live(inUrl, rtsp);
    await live(fields, rtsp);
    // Without credentials the server refuses: the auth is real.
    const anon = await node.addCamera(cameraConfig({ id: 'anonymous', source: { kind: 'rtsp', url: rtsp.url() } }), sfu.address);
    await waitFor('the anonymous camera to be refused', () => /401/.test(anon.status().lastError ?? ''), 10_000);
    expect(anon.state).toBe(CameraState.Reconnecting);

    const text = logs.lines.slice(from).join('\n');
    expect(text).toMatch(/camera in-url is live/);
    for (const form of [password, encodeURIComponent(password)]) expect(text, `the log contains ${form}`).not.toContain(form);
    expect(text).not.toMatch(/cr@t|cr%40t/i);
    for (const cam of [inUrl, fields]) expect(cam.status().lastError).toBeNull();
  });

  test('a wrong password: the 401 is logged and reported without the password', async () => {
    const user = 'alice';
    const wrong = 'Wr0ng:Pa55';
    const from = logs.lines.length;
    const rtsp = await server({ codec: 'h264', fps: 10, user, password: 'right' });
    const { sfu, node } = await setup();
    const inFields = await node.addCamera(cameraConfig({ id: 'bad-fields', source: { kind: 'rtsp', url: rtsp.url(), username: user, password: wrong } }), sfu.address);
    const inUrl = await node.addCamera(cameraConfig({ id: 'bad-url', source: { kind: 'rtsp', url: rtsp.url(user, wrong) } }), sfu.address);

    for (const cam of [inFields, inUrl]) {
      const err = await waitFor(`camera ${cam.id} to report the refusal`, () => /401/.test(cam.status().lastError ?? '') && cam.status().lastError, 10_000);
      expect(cam.state).toBe(CameraState.Reconnecting);
      expect(err).not.toMatch(/Wr0ng/i);
    }
    const text = logs.lines.slice(from).join('\n');
    // ffmpeg's own 401 lines reached the log (so this looks at real stderr), scrubbed.
    expect(text).toMatch(/401 Unauthorized/);
    expect(text).toMatch(/rtsp:\/\/alice:\*\*\*@127\.0\.0\.1/);
    expect(text).not.toMatch(/Wr0ng/i);
  });

  test('a password written with lowercase percent-escapes in the URL is scrubbed too', async () => {
    // Regression: only the decoded password and its encodeURIComponent form (uppercase escapes) were
    // scrubbed, so ffmpeg's "rtsp://alice:Wr0ng%3aPa55@…: 401" line leaked it into the log and lastError.
    const from = logs.lines.length;
    const rtsp = await server({ codec: 'h264', fps: 10, user: 'alice', password: 'right' });
    const { sfu, node } = await setup();
    const url = rtsp.url('alice', 'Wr0ng:Pa55').replace('%3A', '%3a');
    expect(url).toContain('Wr0ng%3aPa55');
    const cam = await node.addCamera(cameraConfig({ id: 'lowercase', source: { kind: 'rtsp', url } }), sfu.address);
    const err = await waitFor('the refusal', () => /401/.test(cam.status().lastError ?? '') && cam.status().lastError, 10_000);
    expect(err).not.toMatch(/Wr0ng/i);
    const text = logs.lines.slice(from).join('\n');
    expect(text).toMatch(/401 Unauthorized/);
    expect(text).not.toMatch(/Wr0ng/i);
  });
});
