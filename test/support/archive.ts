import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CameraSchema, ConfigSchema, migrate, openDatabase, type CameraConfig, type Config, type ConfigInput, type Database } from '@cctv/core';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { createSfu, type Sfu } from '@cctv/sfu';
import { testSettings } from '../../sfu/src/testing/settings.js';
import { startSource, type TestSource } from '../../sfu/src/testing/ffmpeg.js';
import { Recorder, type StreamSource } from '@cctv/recorder';

/** A plain-RTP source straight from an SFU in this process. */
export function sfuSource(sfu: Sfu): StreamSource {
  return {
    subscribe: (camera, host, port, leaseMs) => sfu.room(camera).subscribe({ host, port, leaseMs }),
    renew: async (camera, id) => sfu.hasRoom(camera) && sfu.room(camera).renewSubscription(id),
    unsubscribe: async (camera, id) => {
      if (sfu.hasRoom(camera)) sfu.room(camera).unsubscribe(id);
    },
  };
}

export function cameraConfig(id: string, recording: Partial<CameraConfig['recording']> = {}): CameraConfig {
  return CameraSchema.parse({
    id, name: id,
    source: { kind: 'test', width: 320, height: 240, fps: 30, bitrateKbps: 500 },
    recording: { enabled: true, retainDays: 30, retainBytes: 0, storageCodec: 'copy', ...recording },
  });
}

/** An SFU with rooms fed by test sources, a database of its own, and a folder for spool and storage. */
export interface ArchiveRig {
  dir: string;
  db: Database;
  sfu: Sfu;
  sources: Map<string, TestSource>;
  config(input?: ConfigInput): Config;
  recorder(input?: ConfigInput, id?: string): Promise<Recorder>;
  /** Starts (or restarts) a camera's test source into its room. */
  feed(camera: string, opts?: { gop?: number; codec?: 'H264' | 'H265' }): Promise<void>;
  close(): Promise<void>;
}

export async function archiveRig(cameras: string[]): Promise<ArchiveRig> {
  const dir = mkdtempSync(join(tmpdir(), 'cctv-archive-'));
  const testDb = await createTestDatabase('cctv_archive');
  const db = await openDatabase({ url: testDb.url });
  await migrate(db);
  for (const c of cameras) {
    await db.query(`INSERT INTO cameras (id, name, source) VALUES ($1, $1, '{"kind":"test"}'::jsonb)`, [c]);
  }
  const sfu = await createSfu({ settings: testSettings(), dataDir: join(dir, 'sfu') });
  for (const c of cameras) await sfu.createRoom(c);
  const sources = new Map<string, TestSource>();
  const recorders: Recorder[] = [];
  const rig: ArchiveRig = {
    dir, db, sfu, sources,
    config(input = {}) {
      return ConfigSchema.parse({
        dataDir: join(dir, 'data'),
        ...input,
        recorder: { segmentSeconds: 2, storage: { path: join(dir, 'nas'), minFreeBytes: 0 }, ...input.recorder },
      });
    },
    async recorder(input = {}, id = 'rec1') {
      const r = new Recorder({ config: rig.config(input), db, id, site: 'test-site', source: sfuSource(sfu) });
      recorders.push(r);
      await r.start();
      return r;
    },
    async feed(camera, opts = {}) {
      await sources.get(camera)?.stop();
      sources.set(camera, startSource({ codec: opts.codec ?? 'H264', port: sfu.room(camera).ingestPort, gop: opts.gop ?? 30 }));
    },
    async close() {
      for (const r of recorders) await r.close().catch(() => {});
      for (const s of sources.values()) await s.stop();
      await sfu.close();
      await db.close();
      await testDb.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return rig;
}
