/**
 * A recorder in a process of its own, for tests that kill it: an SFU with one room fed by a test source,
 * and a Recorder of one camera. Argument: JSON { dbUrl, dir, camera }. Prints `ready` once recording.
 */
import { ConfigSchema, openDatabase } from '@cctv/core';
import { createSfu } from '@cctv/sfu';
import { Recorder } from '@cctv/recorder';
import { join } from 'node:path';
import { testSettings } from '../../sfu/src/testing/settings.js';
import { startSource } from '../../sfu/src/testing/ffmpeg.js';
import { cameraConfig, sfuSource } from './archive.js';

const { dbUrl, dir, camera } = JSON.parse(process.argv[2]!) as { dbUrl: string; dir: string; camera: string };
const db = await openDatabase({ url: dbUrl });
const sfu = await createSfu({ settings: testSettings(), dataDir: join(dir, 'sfu') });
const room = await sfu.createRoom(camera);
startSource({ codec: 'H264', port: room.ingestPort, gop: 30 });
const config = ConfigSchema.parse({ dataDir: join(dir, 'data'), recorder: { segmentSeconds: 2, storage: { path: join(dir, 'nas'), minFreeBytes: 0 } } });
const rec = new Recorder({ config, db, id: 'rec1', site: 'test-site', source: sfuSource(sfu) });
await rec.start();
await rec.setCameras([cameraConfig(camera)]);
rec.on('segment', (s) => process.stdout.write(`segment ${s.id}\n`));
process.stdout.write('ready\n');
