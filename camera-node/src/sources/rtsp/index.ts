import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Supervisor, requireExecutable, type CameraSource, type VideoCodec } from '@cctv/core';
import { FFMPEG_COMMON, rtpOutputArgs, type Source } from '../types.js';

type RtspSource = Extract<CameraSource, { kind: 'rtsp' }>;

/**
 * An IP camera over RTSP. The video is copied, never re-encoded (H.264 and H.265 alike); parameter sets
 * are repeated before each keyframe so a viewer can start at any of them. TCP (interleaved) by default.
 * The codec is learnt from the SDP FFmpeg writes for its RTP output once it has connected.
 */
export function createRtspSource(cfg: RtspSource, runtimeDir: string): Source {
  const url = withCredentials(cfg);
  const secrets = [cfg.password, ...passwordInUrl(cfg.url)].filter((s): s is string => !!s);
  let supervisor: Supervisor | null = null;
  let sdpPath = '';
  let codec: VideoCodec | null = null;

  return {
    get codec() {
      return codec;
    },
    payloadType: null,
    listen: null,
    canRequestKeyframe: false,
    secrets,
    get supervisor() {
      return supervisor;
    },
    start(ctx) {
      const ffmpeg = requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg');
      const ssrc = 0x10000 + Math.floor(Math.random() * 0xfff0000);
      sdpPath = join(runtimeDir, `${ctx.cameraId}.rtsp.sdp`);
      const args = [
        ...FFMPEG_COMMON,
        '-rtsp_transport', cfg.transport,
        // Socket I/O timeout (µs): a camera that stops answering ends ffmpeg, so the supervisor reconnects.
        '-timeout', '5000000',
        '-fflags', 'nobuffer',
        '-flags', 'low_delay',
        // Enough to find the stream's codec without holding the first frames back for long.
        '-analyzeduration', '1000000',
        '-probesize', '1000000',
        '-i', url,
        '-map', '0:v:0',
        '-c:v', 'copy',
        '-bsf:v', 'dump_extra=freq=keyframe',
        '-an', '-sn', '-dn',
        '-sdp_file', sdpPath,
        ...rtpOutputArgs(ctx.rtpTarget, 96, ssrc),
      ];
      supervisor = new Supervisor({
        name: `camera ${ctx.cameraId}`,
        logger: ctx.logger,
        initialDelayMs: ctx.reconnect.initialDelayMs,
        maxDelayMs: ctx.reconnect.maxDelayMs,
        secrets,
        launch: () => {
          // A stale SDP from the previous connection must not decide the codec of the next one.
          rmSync(sdpPath, { force: true });
          codec = null;
          return [{ command: ffmpeg, args }];
        },
      });
      supervisor.on('spawn', () => ctx.onSpawn());
      supervisor.on('exit', (info) => ctx.onExit(info));
      supervisor.start();
    },
    detectCodec() {
      if (codec) return codec;
      try {
        const m = /a=rtpmap:\d+ (H264|H265)\//.exec(readFileSync(sdpPath, 'utf8'));
        codec = (m?.[1] as VideoCodec | undefined) ?? null;
      } catch {
        codec = null;
      }
      return codec;
    },
    requestKeyframe() {},
    restart(reason) {
      supervisor?.restart(reason);
    },
    async close() {
      await supervisor?.close();
      rmSync(sdpPath, { force: true });
    },
  };
}

/** The URL with username/password from the config put in (percent-encoded), when given apart. */
export function withCredentials(cfg: { url: string; username?: string | undefined; password?: string | undefined }): string {
  if (cfg.username === undefined && cfg.password === undefined) return cfg.url;
  const u = new URL(cfg.url);
  if (cfg.username !== undefined) u.username = encodeURIComponent(cfg.username);
  if (cfg.password !== undefined) u.password = encodeURIComponent(cfg.password);
  return u.toString();
}

/**
 * The password of a URL as written (ffmpeg prints the URL as given, e.g. with lowercase `%3a` escapes,
 * which encodeURIComponent of the decoded form would not match) and decoded. A malformed escape keeps
 * the written form rather than losing the secret.
 */
function passwordInUrl(url: string): string[] {
  let written: string;
  try {
    written = new URL(url).password;
  } catch {
    return [];
  }
  if (!written) return [];
  try {
    return [decodeURIComponent(written), written];
  } catch {
    return [written];
  }
}
