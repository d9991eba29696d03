import { setTimeout as sleep } from 'node:timers/promises';
import { h264IsKeyframeStart, h265IsKeyframeStart, seqDiff, type ConfigInput, type VideoCodec } from '@cctv/core';
import { createSfu, type Room, type Sfu } from '../index.js';
import { startSource, type SourceOptions, type TestSource } from './ffmpeg.js';
import type { ReceivedPacket } from './receiver.js';
import { testSettings, tempDataDir } from './settings.js';
import { Cleanup, waitFor } from './wait.js';

/** An SFU with one room fed by a real ffmpeg camera. */
export interface TestCamera {
  sfu: Sfu;
  room: Room;
  cameraId: string;
  source: TestSource;
  /**
   * Stops the ffmpeg and starts a new one on the same port after `pauseMs` (a camera-node restarting it
   * after its backoff).
   */
  restartSource(pauseMs?: number): Promise<void>;
  /** Closes the SFU, ffmpeg and the data folder. */
  close(): Promise<void>;
}

export interface TestCameraOptions {
  cameraId?: string;
  settings?: NonNullable<ConfigInput['sfu']>;
  viewerIdleTimeoutMs?: number;
  source?: Omit<SourceOptions, 'port' | 'host'>;
}

/** Starts an SFU, a room and an ffmpeg sending to it; resolves once the room has its camera's codec. */
export async function openTestCamera(opts: TestCameraOptions = {}): Promise<TestCamera> {
  const cleanup = new Cleanup();
  const cameraId = opts.cameraId ?? 'A';
  const sourceOpts = opts.source ?? { codec: 'H264' };
  try {
    const dir = tempDataDir();
    cleanup.add(() => dir.remove());
    const sfu = await createSfu({ settings: testSettings(opts.settings), dataDir: dir.path, ...(opts.viewerIdleTimeoutMs ? { viewerIdleTimeoutMs: opts.viewerIdleTimeoutMs } : {}) });
    cleanup.add(() => sfu.close());
    const room = await sfu.createRoom(cameraId);
    const cam: TestCamera = {
      sfu,
      room,
      cameraId,
      source: startSource({ ...sourceOpts, port: room.ingestPort }),
      async restartSource(pauseMs = 0) {
        await cam.source.stop();
        await sleep(pauseMs);
        cam.source = startSource({ ...sourceOpts, port: room.ingestPort });
      },
      close: () => cleanup.run(),
    };
    cleanup.add(() => cam.source.stop());
    await waitFor(() => room.codec !== null && room.ingestCounters.packets > 10, 20_000, () => `camera sent ${room.ingestCounters.packets} packets; ffmpeg: ${cam.source.stderr.join(' | ')}`);
    return cam;
  } catch (error) {
    await cleanup.run().catch(() => {});
    throw error;
  }
}

/** Whether a received packet starts a keyframe of `codec`. */
export function startsKeyframe(codec: VideoCodec, p: ReceivedPacket): boolean {
  return codec === 'H264' ? h264IsKeyframeStart(p.payload, 0, p.payload.length) : h265IsKeyframeStart(p.payload, 0, p.payload.length);
}

/**
 * Received packets in sequence order, each once: retransmissions answer NACKs late, so arrival order is
 * not stream order.
 */
export function inSequence(packets: readonly ReceivedPacket[]): ReceivedPacket[] {
  if (packets.length === 0) return [];
  const first = packets[0]!.seq;
  const bySeq = new Map<number, ReceivedPacket>();
  for (const p of packets) if (!bySeq.has(p.seq)) bySeq.set(p.seq, p);
  return [...bySeq.values()].sort((a, b) => seqDiff(a.seq, first) - seqDiff(b.seq, first));
}

/** Received packets grouped into frames (runs of one timestamp), in sequence order. */
export function framesOf(packets: readonly ReceivedPacket[]): ReceivedPacket[][] {
  const frames: ReceivedPacket[][] = [];
  for (const p of inSequence(packets)) {
    const cur = frames.at(-1);
    if (cur && cur[0]!.ts === p.ts) cur.push(p);
    else frames.push([p]);
  }
  return frames;
}

/** Sequence numbers missing between the first and last received (by 16-bit distance), duplicates removed. */
export function missingSequenceNumbers(packets: readonly ReceivedPacket[]): number[] {
  const ordered = inSequence(packets);
  if (ordered.length === 0) return [];
  const first = ordered[0]!.seq;
  const seen = new Set(ordered.map((p) => (p.seq - first) & 0xffff));
  const last = (ordered.at(-1)!.seq - first) & 0xffff;
  const missing: number[] = [];
  for (let i = 0; i <= last; i++) if (!seen.has(i)) missing.push((first + i) & 0xffff);
  return missing;
}
