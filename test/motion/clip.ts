import { spawn } from 'node:child_process';
import { MotionSceneFrames, MOTION_BOX_SHARE } from '../../camera-node/src/sources/test/motionScene.js';

/** What a clip shows at time t (s): where the box is (its left edge as a share of the width), and the light. */
export interface Script {
  box?: (t: number) => { x: number; y?: number } | null;
  light?: (t: number) => { gain: number; offset: number };
}

/**
 * Encodes a clip of the motion test scene as a camera would send it (libx264, ultrafast, zero latency,
 * baseline, 1 s GOP): still, noisy, with the box and light changes the script asks for at known times.
 */
export async function encodeClip(path: string, o: { seconds: number; width?: number; height?: number; fps?: number; script: Script }): Promise<void> {
  const width = o.width ?? 640;
  const height = o.height ?? 360;
  const fps = o.fps ?? 15;
  const scene = new MotionSceneFrames(width, height, 3600, 1);
  const side = Math.round(height * MOTION_BOX_SHARE) & ~1;
  const ff = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${width}x${height}`, '-framerate', String(fps), '-i', 'pipe:0',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-g', String(fps), '-b:v', '1000k', '-maxrate', '1000k', '-bufsize', '500k', path,
  ], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  ff.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<void>((resolve, reject) => ff.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg could not encode the clip: ${err}`)))));
  for (let n = 0; n < o.seconds * fps; n++) {
    const t = n / fps;
    const b = o.script.box?.(t) ?? null;
    const frame = scene.render(b ? { x: Math.round(b.x * width), y: Math.round((b.y ?? (height - side) / 2 / height) * height), side } : null, o.script.light?.(t));
    if (!ff.stdin.write(frame)) await new Promise((r) => ff.stdin.once('drain', r));
  }
  ff.stdin.end();
  await done;
}

/** The box's side as a share of the width, for a picture of this shape. */
export function boxShareOfWidth(width = 640, height = 360): number {
  return (Math.round(height * MOTION_BOX_SHARE) & ~1) / width;
}
