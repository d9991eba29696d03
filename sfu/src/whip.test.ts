import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RTCRtpCodecParameters } from 'werift';
import { NotFoundError, UnsupportedError, ValidationError } from '@cctv/core';
import { createSfu, PublisherState, type Room, type Sfu } from './index.js';
import { startsKeyframe } from './testing/camera.js';
import { CHROME_OFFER } from './testing/chromeOffer.js';
import { TestPublisher } from './testing/publisher.js';
import { TestReceiver, h264Codec, h265Codec } from './testing/receiver.js';
import { testSettings, tempDataDir } from './testing/settings.js';
import { Cleanup, waitFor } from './testing/wait.js';

// WHIP ingest (RFC 9725): werift publishers sending an ffmpeg camera's H.264 into a room, watched by
// werift viewers.
const cleanup = new Cleanup();
let sfu: Sfu;
let room: Room;
let dir: ReturnType<typeof tempDataDir>;

function publisher(codecs = [h264Codec(102)], opts: { audio?: boolean } = {}): TestPublisher {
  const p = new TestPublisher(codecs, opts);
  cleanup.add(() => p.close());
  return p;
}

function receiver(): TestReceiver {
  const r = new TestReceiver({ codecs: [h264Codec(109)] });
  cleanup.add(() => r.closeLikeBrowser());
  return r;
}

beforeAll(async () => {
  dir = tempDataDir();
  sfu = await createSfu({ settings: testSettings(), dataDir: dir.path, publisherIdleTimeoutMs: 2000, publisherKeyframeIntervalMs: 1000 });
  room = await sfu.createRoom('tab');
});
afterAll(async () => {
  await sfu?.close();
  dir?.remove();
});
afterEach(async () => {
  await cleanup.run();
  await waitFor(() => room.publisher === null && room.viewerCount === 0, 10_000, () => `publisher ${room.publisher?.id ?? 'none'}, ${room.viewerCount} viewers left`);
});

describe('WHIP publishers', () => {
  it('feeds the room like a camera: a viewer gets its H.264, starting at a keyframe; the publisher is asked for keyframes', async () => {
    // A long group of pictures: the keyframes the viewer starts from come from the SFU's PLIs.
    const pub = publisher([new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96 }), h264Codec(102)], { audio: true });
    const answer = await pub.publish(sfu, 'tab');
    expect(answer.codec).toBe('H264');
    // Only the H.264 payload type is accepted; the audio section is answered inactive.
    expect(answer.sdp).toMatch(/^m=video \d+ \S+ 102\r$/m);
    expect(answer.sdp).toMatch(/a=recvonly/);
    expect(answer.sdp).toMatch(/m=audio[^]*a=inactive/);
    await pub.waitConnected();
    await pub.startSending({ codec: 'H264', gop: 300 });
    await waitFor(() => room.codec === 'H264' && room.ingestCounters.packets > 20, 15_000, () => `ingest got ${room.ingestCounters.packets} packets`);
    expect(room.publisher?.state).toBe(PublisherState.Connected);

    const rx = receiver();
    await rx.watch(sfu, 'tab');
    await rx.waitForPackets(60);
    expect(startsKeyframe('H264', rx.packets[0]!)).toBe(true);
    expect(new Set(rx.packets.map((p) => p.pt))).toEqual(new Set([109]));
    // Asked at the start, then every keyframe interval.
    await waitFor(() => pub.plis >= 2, 5000, () => `${pub.plis} PLIs`);
    expect(room.ingestCounters.junk).toBe(0);
  });

  it('replaces the publisher before when a second one publishes; the viewer keeps receiving', async () => {
    const first = publisher();
    const a = await first.publish(sfu, 'tab');
    await first.waitConnected();
    await first.startSending({ codec: 'H264', gop: 30 });
    await waitFor(() => (room.publisher?.stats.packets ?? 0) > 20, 15_000);
    const rx = receiver();
    await rx.watch(sfu, 'tab');
    await rx.waitForPackets(30);

    const second = publisher();
    const b = await second.publish(sfu, 'tab');
    expect(a.publisher.state).toBe(PublisherState.Closed);
    expect(room.publisher?.id).toBe(b.publisher.id);
    await first.stopSending();
    await second.waitConnected();
    await second.startSending({ codec: 'H264', gop: 30 });
    await waitFor(() => b.publisher.stats.packets > 20, 15_000);
    const before = rx.packets.length;
    await rx.waitForPackets(before + 60);
    // A late DELETE of the replaced one succeeds; DELETE of the current one ends it.
    await sfu.deletePublisher('tab', a.publisher.id);
    await sfu.deletePublisher('tab', b.publisher.id);
    expect(room.publisher).toBeNull();
    await expect(sfu.deletePublisher('tab', 'nope')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('accepts H.265 when offered without H.264', async () => {
    const pub = publisher([h265Codec(100)]);
    const answer = await pub.publish(sfu, 'tab');
    expect(answer.codec).toBe('H265');
    expect(answer.sdp).toMatch(/^m=video \d+ \S+ 100\r$/m);
    await sfu.deletePublisher('tab', answer.publisher.id);
  });

  it('refuses offers it cannot take, naming what is wrong', async () => {
    const vp8 = publisher([new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96 }), h264Codec(97, { packetizationMode: 0 })]);
    const err = await sfu.createPublisher('tab', await vp8.offer()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/offered: VP8, H264 packetization-mode=0/);
    // A viewer's offer (recvonly) is not a publisher's.
    await expect(sfu.createPublisher('tab', CHROME_OFFER)).rejects.toBeInstanceOf(ValidationError);
    await expect(sfu.createPublisher('tab', 'v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n')).rejects.toThrow(/no video/);
    await expect(sfu.createPublisher('nope', await vp8.offer())).rejects.toBeInstanceOf(NotFoundError);
    expect(room.publisher).toBeNull();
  });

  it('closes a publisher that never connects', async () => {
    const pub = publisher();
    // The answer is never applied: no ICE, no DTLS.
    const a = await sfu.createPublisher('tab', await pub.offer());
    expect(room.publisher?.id).toBe(a.publisher.id);
    await waitFor(() => a.publisher.state === PublisherState.Closed, 6000);
    expect(room.publisher).toBeNull();
  });

  it('closes a publisher that goes silent', async () => {
    const pub = publisher();
    const a = await pub.publish(sfu, 'tab');
    await pub.waitConnected();
    await pub.startSending({ codec: 'H264', gop: 30 });
    await waitFor(() => a.publisher.stats.packets > 20, 15_000);
    // The peer vanishes without a word (no DELETE, no DTLS alert): media, RTCP and consent checks stop.
    await pub.close();
    await waitFor(() => a.publisher.state === PublisherState.Closed, 6000);
  });
});
