import dgram from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RTCRtpCodecParameters } from 'werift';
import { InvalidStateError, NotFoundError, UnavailableError, UnsupportedError, ValidationError, metricsText } from '@cctv/core';
import { ViewerState } from './index.js';
import { framesOf, inSequence, missingSequenceNumbers, openTestCamera, startsKeyframe, type TestCamera } from './testing/camera.js';
import { CHROME_OFFER } from './testing/chromeOffer.js';
import { TestReceiver, h264Codec } from './testing/receiver.js';
import { UdpProxy, isRtpDatagram } from './testing/udpProxy.js';
import { Cleanup, waitFor } from './testing/wait.js';

const cleanup = new Cleanup();

/** After each test: close what it opened, and wait until the SFU has let go of its viewers. */
function closeAfterEach(cam: () => TestCamera | undefined): void {
  afterEach(async () => {
    await cleanup.run();
    const c = cam();
    if (c) await waitFor(() => c.room.viewerCount === 0, 10_000, () => `${c.room.viewerCount} viewers left`);
  });
}

/** A receiver closed after the test (the way a browser closes), whatever happens. */
function receiver(opts: ConstructorParameters<typeof TestReceiver>[0]): TestReceiver {
  const r = new TestReceiver(opts);
  cleanup.add(() => r.closeLikeBrowser());
  return r;
}

/** Reads the playout-delay extension (RFC-less webrtc.org format: 12-bit min, 12-bit max, 10 ms units). */
function playoutDelay(data: Buffer): { minMs: number; maxMs: number } {
  return { minMs: ((data[0]! << 4) | (data[1]! >> 4)) * 10, maxMs: (((data[1]! & 0x0f) << 8) | data[2]!) * 10 };
}

/** Waits for a moment well inside the current group of pictures, so that fast start has frames to send. */
async function midGop(cam: TestCamera): Promise<void> {
  await waitFor(() => {
    const since = Date.now() - (cam.room.trackInfo()?.lastKeyframeAt ?? 0);
    return since > 400 && since < 1500;
  }, 10_000);
}

/** A metric's value in the Prometheus text, or undefined. */
async function metric(name: string, camera: string): Promise<number | undefined> {
  const { body } = await metricsText();
  const m = new RegExp(`^${name}\\{camera="${camera}"\\} (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
}

describe('viewer (werift receivers, an ffmpeg H.264 camera)', () => {
  let cam: TestCamera;
  beforeAll(async () => {
    // A keyframe every 3 s, so a viewer usually joins in the middle of a group of pictures.
    cam = await openTestCamera({ settings: { playoutDelay: { minMs: 100, maxMs: 1000 } }, source: { codec: 'H264', gop: 90 } });
  });
  afterAll(() => cam?.close());
  closeAfterEach(() => cam);

  it('sends the payload type the viewer offered, starting with a keyframe, with the group of pictures at once', async () => {
    // VP8 first, H.264 packetization-mode 0 next: the SFU must pass both over for 109.
    const rx = receiver({
      codecs: [new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96 }), h264Codec(108, { packetizationMode: 0 }), h264Codec(109)],
    });
    await midGop(cam);
    const answer = await rx.watch(cam.sfu, 'A');
    expect(answer).toMatchObject({ codec: 'H264', transcoded: false });
    expect(answer.sdp).toMatch(/^m=video \d+ \S+ 109\r$/m);
    await rx.waitForPackets(150);
    expect(new Set(rx.packets.map((p) => p.pt))).toEqual(new Set([109]));
    expect(startsKeyframe('H264', inSequence(rx.packets)[0]!)).toBe(true);
    expect(answer.viewer.state).toBe(ViewerState.Live);

    // Fast start: the frames of the group before the live edge come first with timestamps one tick apart
    // (decoded at once, only the newest shown), then live frames one frame (3000 ticks at 30 fps) apart.
    const frames = framesOf(rx.packets);
    const steps = frames.slice(1).map((f, i) => (f[0]!.ts - frames[i]![0]!.ts) >>> 0);
    const squeezed = steps.findIndex((s) => s !== 1);
    expect(squeezed, `timestamp steps ${steps.slice(0, 40).join(' ')}`).toBeGreaterThanOrEqual(3);
    expect(steps.slice(squeezed).every((s) => s === 3000), `timestamp steps ${steps.join(' ')}`).toBe(true);
    // One sequence, no holes, across the cached frames and the live ones.
    expect(missingSequenceNumbers(rx.packets)).toEqual([]);
    expect(new Set(rx.packets.map((p) => p.ssrc)).size).toBe(1);
  });

  it('writes the playout-delay extension when the viewer offered it, and none otherwise', async () => {
    const withExt = receiver({ codecs: [h264Codec(102)], playoutDelay: true });
    const without = receiver({ codecs: [h264Codec(102)] });
    const a = await withExt.watch(cam.sfu, 'A');
    // The answer takes the id the offer gave the extension (RFC 8285 §6).
    const id = Number(/^a=extmap:(\d+) http:\/\/www\.webrtc\.org\/experiments\/rtp-hdrext\/playout-delay\r$/m.exec(withExt.offerSdp)![1]);
    expect(a.sdp).toContain(`a=extmap:${id} http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`);
    const b = await without.watch(cam.sfu, 'A');
    expect(b.sdp).not.toContain('playout-delay');
    await withExt.waitForPackets(30);
    await without.waitForPackets(30);
    for (const p of withExt.packets) {
      expect(p.extensions.map((e) => e.id)).toEqual([id]);
      expect(playoutDelay(p.extensions[0]!.payload)).toEqual({ minMs: 100, maxMs: 1000 });
    }
    expect(without.packets.every((p) => p.extensions.length === 0)).toBe(true);
  });

  it('answers NACKs from its history: the receiver ends up with every packet the network lost', async () => {
    // Drop every 7th RTP packet on its way to the receiver once it is live, 15 in all, each only once.
    const dropped: number[] = [];
    let rtp = 0;
    const proxy = new UdpProxy((buf) => {
      if (!isRtpDatagram(buf)) return false;
      const seq = buf.readUInt16BE(2);
      if (++rtp > 40 && rtp % 7 === 0 && dropped.length < 15 && !dropped.includes(seq)) {
        dropped.push(seq);
        return true;
      }
      return false;
    });
    cleanup.add(() => proxy.close());
    await proxy.bind();
    const rx = receiver({ codecs: [h264Codec(102)], rewriteAnswer: proxy.rewriteAnswer });
    const { viewer } = await rx.watch(cam.sfu, 'A');
    await waitFor(() => dropped.length === 15, 20_000, () => `dropped ${dropped.length}`);
    await waitFor(
      () => dropped.every((seq) => rx.packets.some((p) => p.seq === seq)),
      10_000,
      () => `still missing ${dropped.filter((seq) => !rx.packets.some((p) => p.seq === seq)).join(', ')}; stats ${JSON.stringify(viewer.stats)}`,
    );
    expect(viewer.stats.nacks).toBeGreaterThan(0);
    expect(viewer.stats.retransmitted).toBeGreaterThanOrEqual(dropped.length);
    expect(viewer.stats.nackMisses).toBe(0);
    expect(await metric('cctv_sfu_retransmitted_packets_total', 'A')).toBeGreaterThanOrEqual(dropped.length);
    // Nothing the receiver saw is missing any more.
    expect(missingSequenceNumbers(rx.packets)).toEqual([]);
    // Its close_notify goes through the relay: let it arrive before the relay closes.
    await rx.closeLikeBrowser();
    await waitFor(() => cam.room.viewerCount === 0, 5000);
  });

  it('answers a PLI by replaying the group of pictures, and one more right after by asking the camera', async () => {
    const rx = receiver({ codecs: [h264Codec(102)] });
    await midGop(cam);
    const { viewer } = await rx.watch(cam.sfu, 'A');
    await rx.waitForPackets(60);
    const mark = rx.packets.length;
    const requestsBefore = cam.room.ingestCounters.keyframeRequests;
    // Two PLIs back to back: the first is answered from the cache, the second (within the replay
    // interval) goes to the camera.
    await rx.sendPli();
    await rx.sendPli();
    await waitFor(() => viewer.stats.keyframeRequests === 2, 5000);
    await waitFor(() => cam.room.ingestCounters.keyframeRequests === requestsBefore + 1, 5000);
    // The replay: a keyframe squeezed in before the next live frame, its frames one tick apart.
    const replayed = () => {
      const frames = framesOf(rx.packets);
      return frames.some((f, i) => i > 0 && startsKeyframe('H264', f[0]!) && ((f[0]!.ts - frames[i - 1]![0]!.ts) >>> 0) < 3000);
    };
    await waitFor(replayed, 5000, () => `no replay in ${rx.packets.length - mark} packets`);
    expect(await metric('cctv_sfu_keyframe_requests_total', 'A')).toBe(cam.room.ingestCounters.keyframeRequests);
    // Timestamps never go back and sequence numbers stay one run through the replay.
    const frames = framesOf(rx.packets);
    expect(frames.slice(1).every((f, i) => ((f[0]!.ts - frames[i]![0]!.ts) >>> 0) < 0x80000000)).toBe(true);
    expect(missingSequenceNumbers(rx.packets)).toEqual([]);
  });

  it('frees the viewer on DELETE: the room forgets it and its packets stop', async () => {
    const rx = receiver({ codecs: [h264Codec(102)] });
    const counts: number[] = [];
    const onViewers = (camera: string, n: number) => camera === 'A' && counts.push(n);
    cam.sfu.on('viewers', onViewers);
    cleanup.add(() => cam.sfu.off('viewers', onViewers));
    const { viewer } = await rx.watch(cam.sfu, 'A');
    expect(cam.room.viewerCount).toBe(1);
    expect(await metric('cctv_sfu_viewers', 'A')).toBe(1);
    await rx.waitForPackets(10);
    await cam.sfu.deleteViewer('A', viewer.id);
    expect(cam.room.viewerCount).toBe(0);
    expect(cam.room.getViewer(viewer.id)).toBeUndefined();
    expect(viewer.state).toBe(ViewerState.Closed);
    expect(counts).toEqual([1, 0]);
    expect(await metric('cctv_sfu_viewers', 'A')).toBe(0);
    // A second DELETE of an ended session is not an error (WHEP clients send one as they close).
    await expect(cam.sfu.deleteViewer('A', viewer.id)).resolves.toBeUndefined();
    // The SFU sends nothing more; what the receiver still reads was on its way before the DELETE.
    const sent = viewer.stats.packetsSent + viewer.stats.retransmitted;
    await sleep(300);
    const settled = rx.packets.length;
    await sleep(500);
    expect(viewer.stats.packetsSent + viewer.stats.retransmitted).toBe(sent);
    expect(rx.packets.length).toBe(settled);
  });

  it('frees the viewer when the browser closes its peer connection (DTLS close_notify)', async () => {
    const rx = receiver({ codecs: [h264Codec(102)] });
    const { viewer } = await rx.watch(cam.sfu, 'A');
    await rx.waitForPackets(10);
    const closed = new Promise<void>((r) => viewer.once('close', () => r()));
    // The idle timeout here is 15 s; the wait below is bounded well under it.
    await rx.closeLikeBrowser();
    await waitFor(() => cam.room.viewerCount === 0, 5000);
    await closed;
    expect(viewer.state).toBe(ViewerState.Closed);
    // The WHEP DELETE a page sends as it closes arrives after that: it succeeds, it is not an error.
    await expect(cam.sfu.deleteViewer('A', viewer.id)).resolves.toBeUndefined();
    await expect(cam.sfu.deleteViewer('A', 'never-was')).rejects.toThrow(NotFoundError);
  });

  it('refuses offers it cannot answer, with the error that says why, and keeps no viewer', async () => {
    // werift's default codec list is VP8 only.
    const vp8 = receiver({ codecs: [new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96 })] });
    await expect(cam.sfu.createViewer('A', await vp8.offer())).rejects.toThrow(UnsupportedError);
    await expect(cam.sfu.createViewer('A', 'v=0\r\n')).rejects.toThrow(ValidationError);
    await expect(cam.sfu.createViewer('A', CHROME_OFFER.replace(/a=recvonly/g, 'a=sendonly'))).rejects.toThrow(/video must be recvonly or sendrecv to receive, not sendonly/);
    await expect(cam.sfu.createViewer('A', CHROME_OFFER.replace(/^a=fingerprint:.*\r\n/gm, ''))).rejects.toThrow(/has no DTLS fingerprint/);
    await expect(cam.sfu.createViewer('A', CHROME_OFFER.replace(/^a=ice-ufrag:.*\r\n/gm, ''))).rejects.toThrow(/has no ICE credentials/);
    await expect(cam.sfu.createViewer('A', CHROME_OFFER.replace(/^m=video 9/m, 'm=video 0'))).rejects.toThrow(/has no video m= section/);
    await expect(cam.sfu.createViewer('nope', CHROME_OFFER)).rejects.toThrow(NotFoundError);
    expect(cam.room.viewerCount).toBe(0);
  });

  it('keeps the viewer on one continuous timeline when the camera restarts', async () => {
    const rx = receiver({ codecs: [h264Codec(102)] });
    await rx.watch(cam.sfu, 'A');
    await rx.waitForPackets(60);
    const before = cam.room.trackInfo()!.discontinuities;
    // A new ffmpeg (new SSRC, sequence number and timestamp) after a pause longer than the ingest's
    // 200 ms source switch time, as camera-node's supervisor backs off before a restart.
    await cam.restartSource(300);
    const mark = rx.packets.length;
    await waitFor(() => cam.room.trackInfo()!.discontinuities === before + 1, 15_000);
    await rx.waitForPackets(mark + 60);
    // The new ffmpeg starts at a random sequence number and timestamp; the viewer sees neither jump.
    expect(missingSequenceNumbers(rx.packets)).toEqual([]);
    const frames = framesOf(rx.packets);
    const steps = frames.slice(1).map((f, i) => (f[0]!.ts - frames[i]![0]!.ts) >>> 0);
    expect(steps.every((s) => s === 3000 || s === 1), `timestamp steps ${steps.join(' ')}`).toBe(true);
    expect(cam.room.ingestCounters.junk).toBe(0);
  });
});

describe('fast start of a large group of pictures', () => {
  let cam: TestCamera;
  beforeAll(async () => {
    // A keyframe every 5 s at 640x360: joining 3–4 s in, the cached frames are several times the
    // kernel's default 208 KiB socket buffer.
    cam = await openTestCamera({ cameraId: 'L', source: { codec: 'H264', gop: 150, size: '640x360' } });
  });
  afterAll(() => cam?.close());
  closeAfterEach(() => cam);

  it('is paced: a burst, then the rest behind it in order, live packets after (regression: it went out at once)', async () => {
    await waitFor(() => {
      const since = Date.now() - (cam.room.trackInfo()?.lastKeyframeAt ?? 0);
      return since > 3000 && since < 4000;
    }, 15_000);
    const rx = receiver({ codecs: [h264Codec(102)] });
    const { viewer } = await rx.watch(cam.sfu, 'L');
    // The cached frames, then 30 live frames.
    await waitFor(() => {
      const f = framesOf(rx.packets);
      return f.length > 30 && f.slice(1).filter((x, i) => ((x[0]!.ts - f[i]![0]!.ts) >>> 0) === 3000).length >= 30;
    }, 20_000);
    const frames = framesOf(rx.packets);
    const squeezed = frames.slice(1).findIndex((f, i) => ((f[0]!.ts - frames[i]![0]!.ts) >>> 0) !== 1);
    const burstBytes = frames.slice(0, squeezed + 1).flat().reduce((n, p) => n + p.payload.length, 0);
    expect(burstBytes, 'the cached frames are larger than a default socket buffer').toBeGreaterThan(256 * 1024);
    // Beyond the first 64 KiB the cached frames waited in the viewer's queue, and live packets behind them.
    expect(viewer.stats.paced).toBeGreaterThan(Math.floor((burstBytes - 64 * 1024) / 1300));
    expect(missingSequenceNumbers(rx.packets)).toEqual([]);
    const steps = frames.slice(squeezed + 1).map((f, i) => (f[0]!.ts - frames[squeezed + i]![0]!.ts) >>> 0);
    expect(steps.every((s) => s === 3000), 'live frames follow, in order').toBe(true);
  });
});

describe('viewer without fast start (short idle timeout, at most 2 viewers)', () => {
  let cam: TestCamera;
  beforeAll(async () => {
    cam = await openTestCamera({ cameraId: 'B', settings: { fastStart: false, maxViewersPerCamera: 2 }, viewerIdleTimeoutMs: 2000, source: { codec: 'H264', gop: 30 } });
  });
  afterAll(() => cam?.close());
  closeAfterEach(() => cam);

  it('asks the camera for a keyframe, waits for one, and answers a PLI with a keyframe request', async () => {
    const rx = receiver({ codecs: [h264Codec(102)] });
    const requestsBefore = cam.room.ingestCounters.keyframeRequests;
    const { viewer } = await rx.watch(cam.sfu, 'B');
    // Nothing cached to start from: the viewer's arrival asks the camera at once.
    expect(cam.room.ingestCounters.keyframeRequests).toBe(requestsBefore + 1);
    await rx.waitForPackets(30);
    // It starts on a keyframe from the camera, in real time (no squeezed timestamps).
    expect(startsKeyframe('H264', inSequence(rx.packets)[0]!)).toBe(true);
    const frames = framesOf(rx.packets);
    expect(frames.slice(1).every((f, i) => ((f[0]!.ts - frames[i]![0]!.ts) >>> 0) === 3000)).toBe(true);
    await sleep(400); // past the ingest's keyframe request interval
    await rx.sendPli();
    await waitFor(() => viewer.stats.keyframeRequests === 1, 5000);
    await waitFor(() => cam.room.ingestCounters.keyframeRequests === requestsBefore + 2, 5000);
  });

  it('closes a viewer that went silent after the idle timeout, and keeps one that still talks', async () => {
    const silent = receiver({ codecs: [h264Codec(102)] });
    const alive = receiver({ codecs: [h264Codec(102)] });
    const a = await silent.watch(cam.sfu, 'B');
    const b = await alive.watch(cam.sfu, 'B');
    await silent.waitForPackets(10);
    await alive.waitForPackets(10);
    // werift's close sends nothing: to the SFU the viewer just stops sending RTCP.
    await silent.close();
    await waitFor(() => a.viewer.state === ViewerState.Closed, 10_000);
    expect(cam.room.viewers()).toEqual([b.viewer]);
    // The other one sends receiver reports every second or so, and is still there well past 2 s.
    await sleep(3000);
    expect(b.viewer.state).toBe(ViewerState.Live);
    expect(cam.room.viewerCount).toBe(1);
  });

  it('answers 503 (UnavailableError) beyond the viewer limit', async () => {
    const one = receiver({ codecs: [h264Codec(102)] });
    const two = receiver({ codecs: [h264Codec(102)] });
    const three = receiver({ codecs: [h264Codec(102)] });
    await one.watch(cam.sfu, 'B');
    await two.watch(cam.sfu, 'B');
    const err = await cam.sfu.createViewer('B', await three.offer()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).reason).toBe('TOO_MANY_VIEWERS');
    expect(cam.room.viewerCount).toBe(2);
    // Connected, so that their close_notify frees them at the end (a viewer still connecting waits for
    // the idle timeout).
    await one.waitConnected();
    await two.waitConnected();
  });

  it('answers CAMERA_OFFLINE when the camera sends nothing', async () => {
    const room = await cam.sfu.createRoom('silent');
    const rx = receiver({ codecs: [h264Codec(102)] });
    const err = await cam.sfu.createViewer('silent', await rx.offer()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).reason).toBe('CAMERA_OFFLINE');
    expect(room.viewerCount).toBe(0);
    await cam.sfu.closeRoom('silent');
  });

  it('closes its rooms and viewers on close(), releases the ingest port, and refuses work afterwards', async () => {
    const rx = receiver({ codecs: [h264Codec(102)] });
    const { viewer } = await rx.watch(cam.sfu, 'B');
    await rx.waitForPackets(10);
    const port = cam.room.ingestPort;
    await cam.sfu.close();
    expect(viewer.state).toBe(ViewerState.Closed);
    expect(cam.room.viewerCount).toBe(0);
    expect(cam.sfu.rooms()).toEqual([]);
    await expect(cam.sfu.createRoom('C')).rejects.toThrow(InvalidStateError);
    await expect(cam.sfu.createViewer('B', CHROME_OFFER)).rejects.toThrow(InvalidStateError);
    await cam.sfu.close();
    // The port is free again: bind it.
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((r) => socket.close(() => r()));
  });
});
