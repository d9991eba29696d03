import type { Writable } from 'node:stream';
import { INGEST_PAYLOAD_TYPE, Supervisor, requireExecutable, type CameraSource } from '@cctv/core';
import { FFMPEG_COMMON, rtpOutputArgs, type Source, type SourceContext } from '../types.js';
import { MotionSceneFrames } from './motionScene.js';
import { TimecodeFrames } from './timecode.js';

type TestSource = Extract<CameraSource, { kind: 'test' }>;

const FFMPEG_HINT = 'install it with: sudo apt-get install ffmpeg';

/**
 * A synthetic camera: FFmpeg's testsrc2 with the wall clock drawn in (or the timecode or motion pattern
 * fed from this process), encoded to H.264 by libx264 tuned for zero latency.
 */
export function createTestSource(cfg: TestSource): Source {
  let supervisor: Supervisor | null = null;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const gop = cfg.gop ?? cfg.fps;

  const encodeArgs = (ssrc: number, ctx: SourceContext): string[] => [
    '-c:v', 'libx264',
    '-preset', 'ultrafast',
    '-tune', 'zerolatency',
    '-profile:v', 'baseline',
    '-pix_fmt', 'yuv420p',
    '-g', String(gop),
    '-keyint_min', String(gop),
    '-sc_threshold', '0',
    '-bf', '0',
    '-b:v', `${cfg.bitrateKbps}k`,
    '-maxrate', `${cfg.bitrateKbps}k`,
    '-bufsize', `${Math.max(1, Math.round(cfg.bitrateKbps / 2))}k`,
    // SPS/PPS before every keyframe, so a viewer can start at any keyframe.
    '-x264-params', 'repeat-headers=1',
    ...rtpOutputArgs(ctx.rtpTarget, INGEST_PAYLOAD_TYPE.H264, ssrc),
  ];

  // Feeds raw frames at the configured rate, stamped at the moment they are written.
  const feed = (stdin: Writable | null): void => {
    clearTimeout(timer);
    if (!stdin) return;
    const frames = cfg.pattern === 'motion' ? new MotionSceneFrames(cfg.width, cfg.height, cfg.periodS, cfg.motionS) : new TimecodeFrames(cfg.width, cfg.height);
    const interval = 1000 / cfg.fps;
    const t0 = performance.now();
    let n = 0;
    const tick = (): void => {
      if (closed || stdin.destroyed) return;
      // Under back-pressure the frame is skipped, as a camera drops frames it cannot send.
      if (stdin.writableLength === 0) stdin.write(frames.draw(Date.now()));
      n++;
      // Schedule from the start time, not the last tick, so timer lateness does not accumulate.
      let next = t0 + n * interval;
      const now = performance.now();
      if (next < now) {
        n = Math.ceil((now - t0) / interval);
        next = t0 + n * interval;
      }
      timer = setTimeout(tick, next - now);
    };
    tick();
  };

  return {
    codec: 'H264',
    payloadType: null,
    listen: null,
    canRequestKeyframe: false,
    secrets: [],
    get supervisor() {
      return supervisor;
    },
    start(ctx) {
      const ffmpeg = requireExecutable('ffmpeg', FFMPEG_HINT);
      const ssrc = 0x10000 + Math.floor(Math.random() * 0xfff0000);
      const input =
        cfg.pattern !== 'testsrc2'
          ? ['-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${cfg.width}x${cfg.height}`, '-framerate', String(cfg.fps), '-i', 'pipe:0']
          : [
              '-re',
              '-f', 'lavfi',
              '-i', `testsrc2=size=${cfg.width}x${cfg.height}:rate=${cfg.fps}`,
              '-vf', clockOverlay(cfg.height),
            ];
      supervisor = new Supervisor({
        name: `camera ${ctx.cameraId}`,
        logger: ctx.logger,
        initialDelayMs: ctx.reconnect.initialDelayMs,
        maxDelayMs: ctx.reconnect.maxDelayMs,
        launch: () => [{ command: ffmpeg, args: [...FFMPEG_COMMON, ...input, ...encodeArgs(ssrc, ctx)], stdinPipe: cfg.pattern !== 'testsrc2' }],
        onSpawn: (_procs, stdin) => feed(stdin),
      });
      supervisor.on('spawn', () => ctx.onSpawn());
      supervisor.on('exit', (info) => {
        clearTimeout(timer);
        ctx.onExit(info);
      });
      supervisor.start();
    },
    detectCodec: () => 'H264',
    requestKeyframe() {},
    restart(reason) {
      supervisor?.restart(reason);
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      await supervisor?.close();
    },
  };
}

/** The wall clock, to the second, drawn at the bottom left, scaled to the frame. */
function clockOverlay(height: number): string {
  const size = Math.max(12, Math.round(height / 14));
  // drawtext expands %{localtime}; colons inside the expansion must be escaped twice (filter, then option).
  return `drawtext=text='%{localtime\\:%Y-%m-%d %H\\\\\\:%M\\\\\\:%S}':x=8:y=h-th-8:fontsize=${size}:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=4`;
}
