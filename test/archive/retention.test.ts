import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '@cctv/core';
import { Archive, Storage, applyRetention, storagePath, timeline, verifyArchive } from '@cctv/recorder';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { cameraConfig } from '../support/archive.js';

const DAY = 86_400_000;
const SEG = 100_000;

describe('retention', () => {
  let dir = '';
  let db: Database;
  let drop: () => Promise<void>;
  let storage: Storage;
  let archive: Archive;
  const now = Date.now();
  const starts: number[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cctv-retention-'));
    const t = await createTestDatabase('cctv_retention');
    drop = t.drop;
    db = await openDatabase({ url: t.url });
    await migrate(db);
    storage = new Storage({ config: { id: 'nas', path: join(dir, 'nas'), requireMount: false, minFreeBytes: 0 }, db, site: 's', ioTimeoutMs: 5000 });
    expect((await storage.check()).available).toBe(true);
    archive = new Archive(db);
    const init = await archive.addInit('r1', Buffer.from('init'));
    // Five segments 40 days old, five from the last minutes; 100 kB each, 2 s apart.
    for (let i = 0; i < 10; i++) starts.push(i < 5 ? now - 40 * DAY + i * 2000 : now - 600_000 + i * 2000);
    for (const [i, startMs] of starts.entries()) {
      const data = randomBytes(SEG);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const r = await archive.addSegment({ camera: 'r1', run: i < 5 ? 'old' : 'new', seq: i, startMs, durationMs: 2000, bytes: SEG, sha256, initSha256: init, path: 'x', recorder: 'rec' });
      const path = storagePath('r1', startMs, r.id);
      await storage.putData(path, data, sha256);
      await archive.markStored(r.id, 'nas', path);
    }
    // An operator protected the third old segment.
    await db.query("INSERT INTO protected_ranges (camera_id, start_ms, end_ms, reason, created_by) VALUES ('r1', $1, $2, 'incident 42', 'op')", [starts[2]! + 500, starts[2]! + 1000]);
  });
  afterAll(async () => {
    storage?.close();
    await db?.close();
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  const left = () => db.query<{ start_ms: number; path: string }>('SELECT start_ms, path FROM segments ORDER BY start_ms').then((r) => r.map((x) => ({ start: Number(x.start_ms), path: x.path })));

  it('by days: removes what is older, oldest first, never a protected clip; two-phase, with tombstones that keep the chain verifiable', async () => {
    const r = await applyRetention({ archive, storage, cameras: [cameraConfig('r1', { retainDays: 30 })] });
    expect(r.deleted).toBe(4);
    expect(r.byReason).toEqual({ 'older than 30 days': 4 });
    const rows = await left();
    expect(rows.map((x) => x.start)).toEqual([starts[2], ...starts.slice(5)]);
    for (const i of [0, 1, 3, 4]) expect(existsSync(join(dir, 'nas', storagePath('r1', starts[i]!, i + 1)))).toBe(false);
    for (const x of rows) expect(existsSync(join(dir, 'nas', x.path))).toBe(true);
    const tombs = await db.query<{ reason: string }>('SELECT reason FROM segment_tombstones');
    expect(tombs.length).toBe(4);
    const v = await verifyArchive({ db, storage, spoolDir: dir });
    expect(v.findings).toEqual([]);
    // The timeline's ranges follow: the protected segment alone, then the recent run.
    const t = await timeline(archive, 'r1', now - 41 * DAY, now);
    expect(t.recorded.map((x) => [x.startMs, x.endMs])).toEqual([[starts[2], starts[2]! + 2000], [starts[5], starts[9]! + 2000]]);
  });

  it('by bytes: keeps the camera under its size from the database\'s totals, oldest first, protected clips kept', async () => {
    const r = await applyRetention({ archive, storage, cameras: [cameraConfig('r1', { retainDays: 0, retainBytes: 3 * SEG })] });
    expect(r.deleted).toBe(3);
    expect((await left()).map((x) => x.start)).toEqual([starts[2], starts[8], starts[9]]);
    expect((await archive.bytesByCamera()).get('r1')).toBe(3 * SEG);
    expect((await verifyArchive({ db, storage, spoolDir: dir })).ok).toBe(true);
  });

  it('by the storage\'s free-space floor: removes across cameras until it holds, never a protected clip', async () => {
    const greedy = new Storage({ config: { id: 'nas', path: join(dir, 'nas'), requireMount: false, minFreeBytes: Number.MAX_SAFE_INTEGER }, db, site: 's', ioTimeoutMs: 5000 });
    try {
      const r = await applyRetention({ archive, storage: greedy, cameras: [cameraConfig('r1', { retainDays: 0 })] });
      expect(r.byReason).toEqual({ 'storage below its free-space floor': 2 });
      expect((await left()).map((x) => x.start)).toEqual([starts[2]]);
    } finally {
      greedy.close();
    }
  });
});
