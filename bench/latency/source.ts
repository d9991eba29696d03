import { spawn, type ChildProcess } from 'node:child_process';
import { TimecodeFrames } from '@cctv/camera-node';

export interface SourceOptions {
  width: number;
  height: number;
  /** Frames per second the encoder is told (and the nominal rate). */
  fps: number;
  /** Actual pace of frames; a camera's clock is not locked to the viewer's display. */
  paceFps: number;
  gop: number;
  bitrateKbps: number;
  /** Where the RTP goes (one or more receivers; the same packets to each via ffmpeg's tee). */
  targets: Array<{ host: string; port: number }>;
}

/**
 * The benchmark's camera: frames carrying the wall-clock millisecond at which each was handed to the
 * encoder (16×16 blocks on the top row), encoded by libx264 tuned for zero latency, sent as RTP.
 */
export function startSource(o: SourceOptions): { stop: () => Promise<void>; frames: () => number } {
  const frames = new TimecodeFrames(o.width, o.height);
  const out = o.targets.map((t) => `[f=rtp:payload_type=96:ssrc=${0x5eed + t.port}]rtp://${t.host}:${t.port}?rtcpport=${t.port}&pkt_size=1200`).join('|');
  const ff: ChildProcess = spawn('ffmpeg', [
    '-hide_banner', '-nostats', '-loglevel', 'error', '-nostdin',
    '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${o.width}x${o.height}`, '-framerate', String(o.fps), '-i', 'pipe:0',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-g', String(o.gop), '-keyint_min', String(o.gop), '-sc_threshold', '0', '-bf', '0',
    '-b:v', `${o.bitrateKbps}k`, '-maxrate', `${o.bitrateKbps}k`, '-bufsize', `${o.bitrateKbps >> 1}k`,
    '-x264-params', 'repeat-headers=1',
    '-map', '0:v', '-f', 'tee', out,
  ], { stdio: ['pipe', 'inherit', 'inherit'] });
  ff.stdin!.on('error', () => {});
  let n = 0;
  let stopped = false;
  const t0 = performance.now();
  let timer: NodeJS.Timeout;
  const tick = (): void => {
    if (stopped) return;
    if (ff.stdin!.writableLength === 0) ff.stdin!.write(frames.draw(Date.now()));
    n++;
    timer = setTimeout(tick, Math.max(0, t0 + (n * 1000) / o.paceFps - performance.now()));
  };
  tick();
  return {
    frames: () => n,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      ff.stdin!.end();
      await new Promise<void>((r) => {
        if (ff.exitCode !== null) return r();
        ff.once('exit', () => r());
        setTimeout(() => ff.kill('SIGKILL'), 2000).unref();
      });
    },
  };
}
