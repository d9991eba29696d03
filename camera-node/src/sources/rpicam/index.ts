import { Supervisor, findExecutable, requireExecutable, type CameraSource } from '@cctv/core';
import { FFMPEG_COMMON, rtpOutputArgs, type Source } from '../types.js';

type RpicamSource = Extract<CameraSource, { kind: 'rpicam' }>;

/** Executables tried in order when the config names none: the current name, then the older one. */
export const RPICAM_COMMANDS = ['rpicam-vid', 'libcamera-vid'] as const;

/**
 * A Raspberry Pi camera: `rpicam-vid` (or `libcamera-vid`) encodes H.264 on the Pi's hardware encoder
 * and writes it to stdout; FFmpeg copies it into RTP. Parameter sets are inlined before each keyframe.
 */
export function createRpicamSource(cfg: RpicamSource): Source {
  let supervisor: Supervisor | null = null;
  const gop = cfg.gop ?? cfg.fps;
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
      const ffmpeg = requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg');
      const ssrc = 0x10000 + Math.floor(Math.random() * 0xfff0000);
      supervisor = new Supervisor({
        name: `camera ${ctx.cameraId}`,
        logger: ctx.logger,
        initialDelayMs: ctx.reconnect.initialDelayMs,
        maxDelayMs: ctx.reconnect.maxDelayMs,
        launch: () => {
          const command = cfg.command ?? RPICAM_COMMANDS.map((c) => findExecutable(c)).find((p): p is string => p !== null);
          if (!command) throw new Error(`neither ${RPICAM_COMMANDS.join(' nor ')} was found on PATH; install it with: sudo apt-get install rpicam-apps`);
          return [
            {
              command,
              args: [
                '--timeout', '0',
                '--nopreview',
                '--camera', String(cfg.camera),
                '--codec', 'h264',
                '--profile', 'baseline',
                '--inline',
                '--flush',
                '--width', String(cfg.width),
                '--height', String(cfg.height),
                '--framerate', String(cfg.fps),
                '--intra', String(gop),
                '--bitrate', String(cfg.bitrateKbps * 1000),
                ...cfg.extraArgs,
                '--output', '-',
              ],
            },
            {
              command: ffmpeg,
              args: [
                ...FFMPEG_COMMON,
                '-fflags', 'nobuffer',
                '-flags', 'low_delay',
                // Raw H.264 carries no timestamps: take them from the clock as frames arrive.
                '-use_wallclock_as_timestamps', '1',
                // The default probe (5 MB / 5 s) holds raw H.264 back for seconds, longer than the stall
                // timeout at low frame rates; the SPS inlined before the first keyframe is all it needs.
                '-probesize', '32768',
                '-analyzeduration', '500000',
                '-f', 'h264',
                '-framerate', String(cfg.fps),
                '-i', 'pipe:0',
                '-c:v', 'copy',
                ...rtpOutputArgs(ctx.rtpTarget, 96, ssrc),
              ],
            },
          ];
        },
      });
      supervisor.on('spawn', () => ctx.onSpawn());
      supervisor.on('exit', (info) => ctx.onExit(info));
      supervisor.start();
    },
    detectCodec: () => 'H264',
    requestKeyframe() {},
    restart(reason) {
      supervisor?.restart(reason);
    },
    async close() {
      await supervisor?.close();
    },
  };
}
