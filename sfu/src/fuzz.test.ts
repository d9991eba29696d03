import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { setImmediate as turn, setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { UnavailableError, UnsupportedError, ValidationError, metricsText } from '@cctv/core';
import { createSfu, type Room } from './index.js';
import { CHROME_OFFER } from './testing/chromeOffer.js';
import { captureRtp, startSource } from './testing/ffmpeg.js';
import { PacketFuzzer, SdpFuzzer } from './testing/fuzz.js';
import { TestReceiver, h264Codec } from './testing/receiver.js';
import { testSettings, tempDataDir } from './testing/settings.js';
import { Cleanup, waitFor, withTimeout } from './testing/wait.js';

// A real GC for the heap check. vitest runs every file with the same node flags, so instead of
// --expose-gc this file turns the flag on at run time and takes `gc` from a fresh context.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const PACKETS = 1_000_000;
const OFFERS = 1000;
const SEED = Number(process.env.CCTV_FUZZ_SEED ?? 20_240_611);
// Datagrams sent but not yet judged by the ingest: kept under what its 4 MiB socket buffer holds, so the
// kernel drops none and every one is counted.
const MAX_IN_FLIGHT = 1500;
const BATCH = 64;

/** Active handles and requests by type (process.getActiveResourcesInfo), timers apart. */
function resources(): { handles: Record<string, number>; timers: number } {
  const handles: Record<string, number> = {};
  let timers = 0;
  for (const r of process.getActiveResourcesInfo()) {
    if (r === 'Timeout' || r === 'Immediate') timers++;
    else handles[r] = (handles[r] ?? 0) + 1;
  }
  return { handles, timers };
}

/** Datagrams the kernel dropped for full receive buffers, machine-wide (/proc/net/snmp Udp RcvbufErrors). */
function rcvbufErrors(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  return Number(values![names!.indexOf('RcvbufErrors')]);
}

function heapAfterGc(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

/** Sends PACKETS junk datagrams to a room's ingest from 4 sockets, paced to what the ingest reads. */
async function sendJunk(room: Room, fuzzer: PacketFuzzer): Promise<{ sent: number; ms: number }> {
  const sockets = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const s = dgram.createSocket('udp4');
      s.on('error', () => {});
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
      // Connected: send() then skips the address lookup for each datagram.
      await new Promise<void>((r) => s.connect(room.ingestPort, '127.0.0.1', () => r()));
      return s;
    }),
  );
  const c = room.ingestCounters;
  const judged0 = c.junk + c.packets;
  const started = performance.now();
  let sent = 0;
  try {
    while (sent < PACKETS) {
      if (sent - (c.junk + c.packets - judged0) < MAX_IN_FLIGHT) {
        for (let i = 0; i < BATCH && sent < PACKETS; i++, sent++) sockets[sent & 3]!.send(fuzzer.next());
      }
      // One turn of the event loop: the ingest, the other room and the viewers get theirs.
      await turn();
    }
    return { sent, ms: performance.now() - started };
  } finally {
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

describe('robustness', () => {
  it('takes a million junk packets and a thousand mangled offers on camera A without disturbing camera B', async () => {
    const cleanup = new Cleanup();
    try {
      // Real packets to mutate, from an ffmpeg of our own (its own SSRC, like a stranger on the network).
      const real = await captureRtp({ codec: 'H264', count: 300 });

      const dir = tempDataDir();
      cleanup.add(() => dir.remove());
      const sfu = await createSfu({ settings: testSettings(), dataDir: dir.path });
      cleanup.add(() => sfu.close());
      const roomA = await sfu.createRoom('A');
      const roomB = await sfu.createRoom('B');
      for (const room of [roomA, roomB]) {
        const source = startSource({ codec: 'H264', port: room.ingestPort });
        cleanup.add(() => source.stop());
      }
      await waitFor(() => roomA.codec !== null && roomB.codec !== null, 20_000);

      const viewerA = new TestReceiver({ codecs: [h264Codec(102)] });
      const viewerB = new TestReceiver({ codecs: [h264Codec(102)], playoutDelay: true });
      cleanup.add(() => viewerA.closeLikeBrowser());
      cleanup.add(() => viewerB.closeLikeBrowser());
      const answerA = await viewerA.watch(sfu, 'A');
      const answerB = await viewerB.watch(sfu, 'B');
      await viewerA.waitForPackets(30);
      await viewerB.waitForPackets(30);

      // A werift offer to mangle, beside Chrome's.
      const base = new TestReceiver({ codecs: [h264Codec(102), h264Codec(104, { packetizationMode: 0 })], playoutDelay: true });
      cleanup.add(() => base.close());
      const weriftOffer = await base.offer();
      await base.close();

      // The starting point: after a settle, with everything above running.
      await sleep(1500);
      const heapBefore = heapAfterGc();
      const before = resources();
      const bPacketsBefore = viewerB.packets.length;
      const junkBefore = roomA.ingestCounters.junk;
      const dropsBefore = rcvbufErrors();

      const packetFuzzer = new PacketFuzzer(SEED, real);
      const sdpFuzzer = new SdpFuzzer(SEED, [CHROME_OFFER, weriftOffer]);
      const outcomes = { answered: 0, ValidationError: 0, UnsupportedError: 0, UnavailableError: 0 };
      const unexpected: string[] = [];

      const offers = (async () => {
        for (let i = 0; i < OFFERS; i++) {
          const { sdp, mutations } = sdpFuzzer.next();
          try {
            const answer = await withTimeout(sfu.createViewer('A', sdp), 10_000, `offer ${i}`);
            outcomes.answered++;
            await sfu.deleteViewer('A', answer.viewer.id);
          } catch (error) {
            if (error instanceof ValidationError) outcomes.ValidationError++;
            else if (error instanceof UnsupportedError) outcomes.UnsupportedError++;
            else if (error instanceof UnavailableError) outcomes.UnavailableError++;
            else unexpected.push(`offer ${i} (${mutations.join(', ')}): ${String(error)}`);
          }
        }
      })();
      const junk = await sendJunk(roomA, packetFuzzer);
      await offers;

      // Every datagram judged (the count stops moving).
      let last = -1;
      await waitFor(() => {
        const now = roomA.ingestCounters.junk;
        const settled = now === last;
        last = now;
        return settled;
      }, 10_000);
      const junkCounted = roomA.ingestCounters.junk - junkBefore;
      const kernelDrops = rcvbufErrors() - dropsBefore;
      const bPacketsDuring = viewerB.packets.length - bPacketsBefore;

      // The process is up and camera A still serves: a new viewer gets video.
      const fresh = new TestReceiver({ codecs: [h264Codec(102)] });
      cleanup.add(() => fresh.closeLikeBrowser());
      await fresh.watch(sfu, 'A');
      await fresh.waitForPackets(30);
      await fresh.closeLikeBrowser();

      const { body } = await metricsText();
      const junkMetric = Number(/^cctv_sfu_ingest_junk_packets_total\{camera="A"\} (\d+)$/m.exec(body)?.[1]);

      // Back to the starting point: only the viewers of before are left.
      await waitFor(() => roomA.viewerCount === 1 && roomB.viewerCount === 1, 10_000, () => `viewers A ${roomA.viewerCount}, B ${roomB.viewerCount}`);
      await sleep(1500);
      const heapAfter = heapAfterGc();
      const after = resources();

      console.info(
        `fuzz: ${junk.sent} packets in ${(junk.ms / 1000).toFixed(1)} s (${Math.round(junk.sent / (junk.ms / 1000))}/s), ` +
          `junk counted ${junkCounted} (${((junkCounted / junk.sent) * 100).toFixed(2)}%), kernel drops ${kernelDrops}, ` +
          `A packets accepted ${roomA.ingestCounters.packets}, A viewer ${answerA.viewer.state} (${viewerA.packets.length} packets), ` +
          `B viewer +${bPacketsDuring} packets; offers ${JSON.stringify(outcomes)}; kinds ${JSON.stringify(packetFuzzer.counts)}; ` +
          `heap ${(heapBefore / 2 ** 20).toFixed(1)} → ${(heapAfter / 2 ** 20).toFixed(1)} MiB; ` +
          `handles ${JSON.stringify(before.handles)} timers ${before.timers} → ${JSON.stringify(after.handles)} timers ${after.timers}`,
      );

      expect(unexpected).toEqual([]);
      expect(Object.values(outcomes).reduce((a, b) => a + b)).toBe(OFFERS);
      expect(junk.sent).toBe(PACKETS);
      // Most of what was sent is counted as junk (none of it is the camera's stream); the rest is what
      // the kernel dropped, if anything.
      expect(junkCounted).toBeGreaterThanOrEqual(0.95 * PACKETS);
      expect(junkCounted).toBeLessThanOrEqual(PACKETS);
      expect(junkMetric).toBe(roomA.ingestCounters.junk);
      // Camera B went on for its viewer all along, untouched.
      expect(answerB.viewer.state).toBe('live');
      expect(bPacketsDuring).toBeGreaterThan(100);
      expect(roomB.ingestCounters.junk).toBe(0);
      // Memory and handles are back where they were.
      expect(heapAfter - heapBefore).toBeLessThan(32 * 2 ** 20);
      expect(after.handles).toEqual(before.handles);
      // Timers come back down too. werift resolves an offer's mDNS (`.local`) candidates with a lookup
      // that gives up after 10 s, and a deleted viewer does not cancel it: where nothing answers mDNS,
      // each mangled offer that was answered leaves one for up to 10 s. Bounded, not leaked.
      await waitFor(() => resources().timers <= before.timers + 4, 15_000, () => `timers ${resources().timers}, before ${before.timers}`);
    } finally {
      await cleanup.run();
    }
  }, 120_000);
});
