/**
 * The child process of sigkill.test.ts: a CameraNode with two test cameras. Prints one JSON line with the
 * ffmpeg pids once both run, then waits to be killed.
 *
 *   node --import ./tsxRegister.mjs sigkillChild.ts <dataDir> <rtpPort>
 */
import { CameraSchema, ConfigSchema, configureLogging } from '@cctv/core';
import { createCameraNode } from '../index.js';

const [dataDir, port] = process.argv.slice(2);
if (!dataDir || !port) throw new TypeError('usage: sigkillChild.ts <dataDir> <rtpPort>');
configureLogging({ level: 'silent' });
const node = await createCameraNode({ settings: ConfigSchema.parse({}).cameraNode, dataDir });
const target = { host: '127.0.0.1', port: Number(port) };
const cams = await Promise.all(
  ['k1', 'k2'].map((id) => node.addCamera(CameraSchema.parse({ id, source: { kind: 'test', width: 320, height: 240, fps: 10 } }), target)),
);
const timer = setInterval(() => {
  const pids = cams.flatMap((c) => c.pids);
  if (pids.length === cams.length) {
    clearInterval(timer);
    process.stdout.write(`${JSON.stringify({ pids })}\n`);
  }
}, 20);
// Stay alive until killed.
setInterval(() => {}, 60_000);
