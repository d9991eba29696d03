// A recorder in a process of its own for bench/archive (so its CPU time can be read from /proc):
// its stream source asks the parent, over IPC, to subscribe it to the parent's SFU.
import { CameraSchema, ConfigSchema, configureLogging, openDatabase, type CameraConfig } from '@cctv/core';
import { Recorder, type StreamSource } from '@cctv/recorder';

configureLogging({ level: (process.env.BENCH_LOG as 'info' | undefined) ?? 'warn', format: 'json' });
const { dbUrl, dataDir, nas, cameras } = JSON.parse(process.argv[2]!) as { dbUrl: string; dataDir: string; nas: string; cameras: string[] };

let next = 1;
const waiting = new Map<number, (v: unknown) => void>();
process.on('message', (m: { id: number; result: unknown }) => {
  waiting.get(m.id)?.(m.result);
  waiting.delete(m.id);
});
const ask = <T>(op: string, args: unknown[]): Promise<T> =>
  new Promise((resolve) => {
    const id = next++;
    waiting.set(id, resolve as (v: unknown) => void);
    process.send!({ id, op, args });
  });
const source: StreamSource = {
  subscribe: (...a) => ask('subscribe', a),
  renew: (...a) => ask('renew', a),
  unsubscribe: (...a) => ask('unsubscribe', a),
};

const db = await openDatabase({ url: dbUrl, maxConnections: 4 });
const config = ConfigSchema.parse({ dataDir, log: { level: 'warn' }, recorder: { storage: { path: nas, minFreeBytes: 0 } } });
const rec = new Recorder({ config, db, id: 'bench', site: 'bench', source });
let segments = 0;
let stored = 0;
rec.on('segment', () => segments++);
rec.on('stored', () => stored++);
await rec.start();
const cams: CameraConfig[] = cameras.map((id) => CameraSchema.parse({
  id, name: id, source: { kind: 'test', width: 1280, height: 720, fps: 30, bitrateKbps: 4000 },
  recording: { enabled: true, retainDays: 0, retainBytes: 0, storageCodec: 'copy' },
}));
await rec.setCameras(cams);
setInterval(() => {
  const s = rec.status();
  process.send!({ status: { segments, stored, spool: s.spool, storage: s.storage.available, problem: s.storage.problem } });
  if (process.env.BENCH_DEBUG) process.stderr.write(`cams ${JSON.stringify(s.cameras)}\n`);
}, 250);
process.on('message', (m: { op?: string }) => {
  if (m.op === 'check') void rec.storage.check();
  if (m.op === 'stop') void rec.close().then(() => db.close()).then(() => process.exit(0));
});
