import dgram from 'node:dgram';
import { CameraState, InvalidStateError, NotFoundError, metricsText, seqDiff } from '@cctv/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createCameraNode, type Camera, type CameraNode } from './index.js';
import { FakeSfu } from './testing/fakeSfu.js';
import {
  Resources, cameraConfig, cmdline, freeTcpPort, nodeSettings, processGone, quietLogs, tempDir, testCamera, waitFor,
} from './testing/helpers.js';

const res = new Resources();
const dir = tempDir();
beforeAll(() => quietLogs());
afterEach(() => res.closeAll());
afterAll(() => dir.remove());

async function setup(): Promise<{ sfu: FakeSfu; node: CameraNode }> {
  const sfu = res.add(await FakeSfu.start(), (s) => s.close());
  const node = res.add(await createCameraNode({ settings: nodeSettings(), dataDir: dir.path }), (n) => n.close());
  return { sfu, node };
}

const live = (cam: Camera, timeoutMs = 15_000) =>
  waitFor(() => `camera ${cam.id} to be live (${cam.state}: ${cam.status().lastError ?? ''})`, () => cam.state === CameraState.Live, timeoutMs);

/** Resolves once `n` more packets of `cam` have reached `sfu`: the camera is still flowing. */
async function flowing(sfu: FakeSfu, cam: Camera, n = 10): Promise<void> {
  const from = sfu.count(cam.ssrc);
  await waitFor(`${n} more packets from ${cam.id}`, () => sfu.count(cam.ssrc) >= from + n, 10_000);
}

describe('CameraNode', () => {
  test('adds, updates and removes cameras at runtime without restarting the others', async () => {
    const { sfu, node } = await setup();
    const events: string[] = [];
    node.on('camerastate', (s) => events.push(`${s.id}:${s.state}`));
    node.on('cameraremoved', (id) => events.push(`removed:${id}`));
    const a = await node.addCamera(testCamera('a'), sfu.address);
    const b = await node.addCamera(testCamera('b'), sfu.address);
    await Promise.all([live(a), live(b)]);
    const [pidA] = a.pids;
    expect(pidA).toBeTypeOf('number');

    const c = await node.addCamera(testCamera('c'), sfu.address);
    await live(c);
    expect(node.cameras().map((x) => x.id)).toEqual(['a', 'b', 'c']);
    await expect(node.addCamera(testCamera('c'), sfu.address)).rejects.toThrow(InvalidStateError);

    await node.updateCamera(testCamera('b', { fps: 10 }));
    await live(b);
    const [pidC] = c.pids;
    await node.removeCamera('c');
    expect(node.has('c')).toBe(false);
    expect(() => node.get('c')).toThrow(NotFoundError);
    expect(processGone(pidC!)).toBe(true);
    expect(events).toContain('removed:c');
    expect(events).toContain('c:live');

    // Through all of it, camera a kept its ffmpeg and its packets kept coming.
    expect(a.pids).toEqual([pidA]);
    expect(a.inputStats().reconnects).toBe(0);
    await flowing(sfu, a);
    expect(a.state).toBe(CameraState.Live);
  });

  test('a rename does not restart the source; a source change does', async () => {
    const { sfu, node } = await setup();
    const cam = await node.addCamera(testCamera('door'), sfu.address);
    await live(cam);
    const [pid] = cam.pids;

    await node.updateCamera(cameraConfig({ ...testCamera('door'), name: 'Front door' }));
    expect(cam.config.name).toBe('Front door');
    expect(cam.pids).toEqual([pid]);
    expect(cam.state).toBe(CameraState.Live);
    await flowing(sfu, cam);

    const states: Array<[string, string | null]> = [];
    node.on('camerastate', (s) => states.push([s.state, s.lastError]));
    await node.updateCamera(cameraConfig({ ...testCamera('door', { bitrateKbps: 200 }), name: 'Front door' }));
    expect(cam.pids).toHaveLength(1);
    expect(cam.pids[0]).not.toBe(pid);
    expect(processGone(pid!)).toBe(true);
    await live(cam);
    expect(cmdline(cam.pids[0]!).join(' ')).toContain('-b:v 200k');
    // A restart asked for is not a failure: no reconnect is counted and no error shown on the way.
    expect(states).toEqual([
      ['starting', null],
      ['live', null],
    ]);
    expect(cam.inputStats().reconnects).toBe(0);
    // The SSRC towards the SFU survives the restart, so the SFU sees one stream.
    expect([...sfu.countBySsrc.keys()]).toEqual([cam.ssrc]);
  });

  test('disabling stops the ffmpeg; enabling starts it again', async () => {
    const { sfu, node } = await setup();
    const clock = await node.addCamera(testCamera('clock'), sfu.address);
    const cam = await node.addCamera(testCamera('porch'), sfu.address);
    await Promise.all([live(clock), live(cam)]);
    const [pid] = cam.pids;

    const states: string[] = [];
    cam.on('state', (st) => states.push(st.state));
    await node.updateCamera({ ...testCamera('porch'), enabled: false });
    expect(cam.state).toBe(CameraState.Stopped);
    // Straight to stopped: a stop asked for is no failure.
    expect(states).toEqual(['stopped']);
    expect(cam.status().lastError).toBeNull();
    expect(cam.inputStats().reconnects).toBe(0);
    expect(cam.pids).toEqual([]);
    expect(processGone(pid!)).toBe(true);
    const stopped = sfu.count(cam.ssrc);
    // The other camera serves as the clock: while it sends 20 packets, the disabled one sends none.
    await flowing(sfu, clock, 20);
    expect(sfu.count(cam.ssrc)).toBe(stopped);
    expect(cam.state).toBe(CameraState.Stopped);

    await node.updateCamera(testCamera('porch'));
    await live(cam);
    expect(cam.pids[0]).not.toBe(pid);
    expect(clock.pids).toHaveLength(1);
  });

  test('a failing camera never disturbs another', async () => {
    const { sfu, node } = await setup();
    const good = await node.addCamera(testCamera('good'), sfu.address);
    await live(good);
    const [pid] = good.pids;

    // An RTSP camera at a port where nothing listens, and an RTP camera whose port is already taken.
    const closedPort = await freeTcpPort();
    const refused = await node.addCamera(cameraConfig({ id: 'refused', source: { kind: 'rtsp', url: `rtsp://127.0.0.1:${closedPort}/x` } }), sfu.address);
    const taken = res.add(dgram.createSocket('udp4'), (s) => new Promise<void>((r) => s.close(() => r())));
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    const busyPort = taken.address().port;
    const busy = await node.addCamera(
      cameraConfig({ id: 'busy', source: { kind: 'rtp', host: '127.0.0.1', port: busyPort, codec: 'H264', payloadType: 96 } }),
      sfu.address,
    );

    expect(busy.state).toBe(CameraState.Reconnecting);
    expect(busy.status().lastError).toContain(`127.0.0.1:${busyPort}`);
    expect(busy.status().lastError).toMatch(/EADDRINUSE/);
    await waitFor('the refused camera to fail a few times', () => refused.inputStats().reconnects >= 3, 10_000);
    expect(refused.state).toBe(CameraState.Reconnecting);
    expect(refused.status().lastError).toMatch(/refused/i);

    expect(good.pids).toEqual([pid]);
    expect(good.state).toBe(CameraState.Live);
    await flowing(sfu, good);
    expect([...sfu.countBySsrc.keys()]).toEqual([good.ssrc]);
    expect(node.statuses().map((s) => [s.id, s.state])).toEqual([
      ['good', 'live'],
      ['refused', 'reconnecting'],
      ['busy', 'reconnecting'],
    ]);

    await node.removeCamera('refused');
    await node.removeCamera('busy');
    expect(good.pids).toEqual([pid]);
    await flowing(sfu, good);
  });

  test('an rtp camera whose port was taken binds it once it is free (regression: it never retried)', async () => {
    const { sfu, node } = await setup();
    const taken = dgram.createSocket('udp4');
    await new Promise<void>((r) => taken.bind(0, '127.0.0.1', () => r()));
    const port = taken.address().port;
    const cam = await node.addCamera(cameraConfig({ id: 'late', source: { kind: 'rtp', host: '127.0.0.1', port, codec: 'H264', payloadType: 96 } }), sfu.address);
    expect(cam.state).toBe(CameraState.Reconnecting);
    await new Promise<void>((r) => taken.close(() => r()));
    // Once the port is free the camera's relay listens on it again: RTP sent there reaches the SFU.
    const sender = res.add(dgram.createSocket('udp4'), (s) => new Promise<void>((r) => s.close(() => r())));
    const packet = Buffer.from([0x80, 0xe0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0x65, 0x88, 0x84, 0x00]);
    await waitFor('the camera to take its port and forward', async () => {
      packet.writeUInt16BE((packet.readUInt16BE(2) + 1) & 0xffff, 2);
      sender.send(packet, port, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 50));
      return sfu.count(cam.ssrc) > 0;
    }, 10_000);
    expect(cam.inputStats().reconnects).toBeGreaterThanOrEqual(1);
  });

  test('setTarget moves the RTP to another socket without restarting ffmpeg', async () => {
    const { sfu, node } = await setup();
    const other = res.add(await FakeSfu.start(), (s) => s.close());
    const cam = await node.addCamera(testCamera('mover'), sfu.address);
    await live(cam);
    await flowing(sfu, cam);
    const [pid] = cam.pids;

    node.setTarget('mover', other.address);
    await flowing(other, cam, 20);
    const leftAt = sfu.count(cam.ssrc);
    await flowing(other, cam, 20);
    // The first SFU gets nothing more; the new one first gets the packets since the last keyframe (so
    // it can show a picture at once), then the very same stream goes on (no restart: the sequence
    // numbers continue from where the first SFU's stopped, without a hole).
    expect(sfu.count(cam.ssrc)).toBe(leftAt);
    expect(cam.pids).toEqual([pid]);
    const atFirst = sfu.packets.filter((p) => p.ssrc === cam.ssrc);
    const lastAtFirst = atFirst.at(-1)!;
    const atOther = other.packets.filter((p) => p.ssrc === cam.ssrc);
    expect(seqDiff(atOther[0]!.sequenceNumber, lastAtFirst.sequenceNumber)).toBeLessThanOrEqual(1);
    // The replay starts at a packet the first SFU also got: the start of the last keyframe it was sent.
    expect(atFirst.some((p) => p.sequenceNumber === atOther[0]!.sequenceNumber) || seqDiff(atOther[0]!.sequenceNumber, lastAtFirst.sequenceNumber) === 1).toBe(true);
    for (let i = 1; i < atOther.length; i++) expect(seqDiff(atOther[i]!.sequenceNumber, atOther[i - 1]!.sequenceNumber)).toBe(1);

    // null holds the packets: the source keeps running, nothing is sent.
    node.setTarget('mover', null);
    const held = other.count(cam.ssrc);
    await waitFor('packets to be counted while held', () => cam.inputStats().packets > 0);
    const countedAt = cam.inputStats().packets;
    await waitFor('20 more packets to arrive at the relay', () => cam.inputStats().packets >= countedAt + 20, 10_000);
    expect(other.count(cam.ssrc)).toBe(held);
    expect(cam.pids).toEqual([pid]);
  });

  test('a PLI from the SFU reaches the node as a keyframe request; one from elsewhere is ignored', async () => {
    const { sfu, node } = await setup();
    const cam = await node.addCamera(testCamera('pli'), sfu.address);
    await live(cam);
    const requests: string[] = [];
    node.on('keyframeunavailable', (id) => requests.push(id));
    const relay = sfu.last()!.from;

    // A stranger's PLI (another port) must not be taken for the SFU's.
    const stranger = res.add(await FakeSfu.start(), (s) => s.close());
    stranger.sendPli(relay, cam.ssrc);
    sfu.sendPli(relay, cam.ssrc);
    await waitFor('the keyframe request', () => requests.length > 0, 5000);
    await flowing(sfu, cam);
    expect(requests).toEqual(['pli']);
  });

  test('close() leaves no ffmpeg behind and makes the node unusable', async () => {
    const { sfu, node } = await setup();
    const a = await node.addCamera(testCamera('x1'), sfu.address);
    const b = await node.addCamera(testCamera('x2', { pattern: 'timecode', width: 640, height: 64 }), sfu.address);
    await Promise.all([live(a), live(b)]);
    const pids = [...a.pids, ...b.pids];
    expect(pids).toHaveLength(2);
    for (const p of pids) expect(cmdline(p)[0]).toMatch(/ffmpeg$/);

    await node.close();
    for (const p of pids) expect(processGone(p), `ffmpeg ${p} is gone`).toBe(true);
    await node.close();
    await expect(node.addCamera(testCamera('x3'), sfu.address)).rejects.toThrow(InvalidStateError);
    expect(() => a.setTarget(null)).toThrow(InvalidStateError);
    expect(a.state).toBe(CameraState.Stopped);
  });

  test('metrics show live cameras and drop the series of a removed one', async () => {
    const { sfu, node } = await setup();
    const m1 = await node.addCamera(testCamera('m1'), sfu.address);
    const m2 = await node.addCamera(testCamera('m2'), sfu.address);
    await Promise.all([live(m1), live(m2)]);
    await waitFor('input rates', () => m1.inputStats().fps > 0 && m2.inputStats().fps > 0, 10_000);

    const before = (await metricsText()).body;
    for (const id of ['m1', 'm2']) {
      expect(before).toContain(`cctv_camera_up{camera="${id}"} 1`);
      expect(before).toMatch(new RegExp(`cctv_camera_input_fps\\{camera="${id}"\\} [0-9.]*[1-9]`));
      expect(before).toMatch(new RegExp(`cctv_camera_input_packets_total\\{camera="${id}"\\} [1-9]`));
      expect(before).toContain(`cctv_camera_state{camera="${id}",state="live"} 1`);
    }

    await node.removeCamera('m2');
    const after = (await metricsText()).body;
    expect(after).toContain('cctv_camera_up{camera="m1"} 1');
    expect(after).not.toContain('camera="m2"');
  });
});
