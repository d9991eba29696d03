import dgram from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import { INGEST_PAYLOAD_TYPE, requireExecutable, spawnGuarded, terminate, type VideoCodec } from '@cctv/core';
import { waitFor } from './wait.js';

/** What a test source encodes. */
export interface SourceOptions {
  codec: VideoCodec;
  /** Where the RTP goes (the room's ingest port). */
  port: number;
  host?: string;
  /** Frames per second; default 30. */
  fps?: number;
  /** Frames per group of pictures; default 30 (one keyframe a second at 30 fps). */
  gop?: number;
  /** Picture size; default 320x240. */
  size?: string;
  /** Payload type to stamp; default the ingest contract's (96 H.264, 97 H.265). */
  payloadType?: number;
  /** libx264 profile (e.g. `high`); default libx264's choice for the input. */
  profile?: string;
  /** Encoder preset; default ultrafast (whose feature set libx264 signals as Constrained Baseline). */
  preset?: string;
}

/** A running ffmpeg sending a synthetic picture as RTP. */
export interface TestSource {
  readonly child: ChildProcess;
  /** Last lines ffmpeg wrote on stderr (for failure messages). */
  readonly stderr: string[];
  /** Kills ffmpeg and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** The ffmpeg arguments of a real-time test camera (lavfi testsrc2) sending RTP to `url`. */
export function sourceArgs(opts: Omit<SourceOptions, 'port' | 'host'>, url: string): string[] {
  const fps = opts.fps ?? 30;
  const gop = opts.gop ?? 30;
  const size = opts.size ?? '320x240';
  const pt = opts.payloadType ?? INGEST_PAYLOAD_TYPE[opts.codec];
  const codec =
    opts.codec === 'H264'
      ? ['-c:v', 'libx264', '-preset', opts.preset ?? 'ultrafast', '-tune', 'zerolatency', '-g', String(gop), '-sc_threshold', '0', '-bf', '0', '-x264-params', 'repeat-headers=1', ...(opts.profile ? ['-profile:v', opts.profile] : [])]
      : ['-c:v', 'libx265', '-preset', opts.preset ?? 'ultrafast', '-tune', 'zerolatency', '-x265-params', `keyint=${gop}:min-keyint=${gop}:bframes=0:repeat-headers=1:log-level=error`];
  return [
    '-hide_banner', '-nostats', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${fps}`,
    '-pix_fmt', 'yuv420p',
    ...codec,
    '-f', 'rtp', '-payload_type', String(pt), '-pkt_size', '1200',
    url,
  ];
}

/** Starts ffmpeg sending a synthetic picture to `host:port`, like a camera-node does. */
export function startSource(opts: SourceOptions): TestSource {
  const ffmpeg = requireExecutable('ffmpeg', 'install ffmpeg to run the SFU tests');
  const child = spawnGuarded(ffmpeg, sourceArgs(opts, `rtp://${opts.host ?? '127.0.0.1'}:${opts.port}`), ['ignore', 'ignore', 'pipe']);
  const stderr: string[] = [];
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr.push(...chunk.split('\n').filter(Boolean));
    if (stderr.length > 20) stderr.splice(0, stderr.length - 20);
  });
  let stopping: Promise<void> | null = null;
  return {
    child,
    stderr,
    stop: () => (stopping ??= terminate(child, 1000)),
  };
}

/** Runs a source into a socket of our own until `count` packets arrived; returns them in order. */
export async function captureRtp(opts: Omit<SourceOptions, 'port' | 'host'> & { count: number }): Promise<Buffer[]> {
  const socket = dgram.createSocket('udp4');
  const packets: Buffer[] = [];
  socket.on('message', (buf) => {
    if (packets.length < opts.count) packets.push(buf);
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const source = startSource({ ...opts, port: socket.address().port });
  try {
    await waitFor(() => packets.length >= opts.count, 20_000, () => `ffmpeg sent ${packets.length} of ${opts.count} packets; stderr: ${source.stderr.join(' | ')}`);
    return packets;
  } finally {
    await source.stop();
    socket.close();
  }
}
