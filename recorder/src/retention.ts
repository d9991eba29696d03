import { counter, createLogger, gauge, type CameraConfig, type Queryable } from '@cctv/core';
import { rebuildRanges, SEGMENT_COLUMNS, type Archive, type SegmentRow } from './archive.js';
import type { Storage } from './storage.js';

const log = createLogger('recorder:retention');

const deletedSegments = counter('cctv_retention_deleted_segments_total', 'Segments removed by retention, by reason.', ['reason']);
const floorWarning = gauge('cctv_storage_floor_warning', 'The storage is within twice its free-space floor (1) or not (0).', ['storage']);

export interface RetentionResult {
  deleted: number;
  bytes: number;
  byReason: Record<string, number>;
  cameras: string[];
}

const NOT_PROTECTED = `NOT EXISTS (SELECT 1 FROM protected_ranges p WHERE p.camera_id = s.camera_id AND p.start_ms < s.start_ms + s.duration_ms AND p.end_ms > s.start_ms)`;
const BATCH = 500;

/**
 * Removes what retention asks, oldest first, never a segment a protected range covers: per camera by
 * age (`retainDays`) and by size (`retainBytes`, from the database's totals, not a walk of the disk),
 * then across cameras while the storage has less free space than its floor. Deleting is two-phase: the
 * row is marked, the file removed, then the row replaced by a tombstone that keeps its place in the
 * chain.
 */
export async function applyRetention(o: { archive: Archive; storage: Storage; cameras: CameraConfig[]; now?: number }): Promise<RetentionResult> {
  const db = o.archive.db;
  const now = o.now ?? Date.now();
  const result: RetentionResult = { deleted: 0, bytes: 0, byReason: {}, cameras: [] };
  // Deletions a crash interrupted are finished first.
  const unfinished = await db.query<SegmentRow>(`SELECT ${SEGMENT_COLUMNS} FROM segments WHERE state = 'deleting' ORDER BY id LIMIT ${BATCH}`);
  if (unfinished.length) await remove(o, unfinished, 'retention (resumed)', result);

  for (const cam of o.cameras) {
    const { retainDays, retainBytes } = cam.recording;
    if (retainDays > 0) {
      const cutoff = now - retainDays * 86_400_000;
      for (;;) {
        const rows = await db.query<SegmentRow>(
          `SELECT ${SEGMENT_COLUMNS} FROM segments s WHERE camera_id = $1 AND state = 'stored' AND start_ms + duration_ms < $2 AND ${NOT_PROTECTED} ORDER BY start_ms LIMIT ${BATCH}`,
          [cam.id, cutoff],
        );
        if (rows.length === 0) break;
        await remove(o, rows, `older than ${retainDays} days`, result);
        if (rows.length < BATCH) break;
      }
    }
    if (retainBytes > 0) {
      // Read after the deletions by age above.
      let total = await o.archive.cameraBytes(cam.id);
      while (total > retainBytes) {
        const rows = await db.query<SegmentRow>(
          `SELECT ${SEGMENT_COLUMNS} FROM segments s WHERE camera_id = $1 AND state = 'stored' AND ${NOT_PROTECTED} ORDER BY start_ms LIMIT ${BATCH}`,
          [cam.id],
        );
        const pick: SegmentRow[] = [];
        for (const r of rows) {
          if (total <= retainBytes) break;
          pick.push(r);
          total -= Number(r.bytes);
        }
        if (pick.length === 0) break;
        await remove(o, pick, `over ${retainBytes} bytes`, result);
      }
    }
  }

  // The storage's free-space floor, across cameras: the oldest recordings go first.
  const st = await o.storage.check();
  const minFree = o.storage.minFreeBytes;
  if (st.freeBytes !== null) {
    floorWarning.set({ storage: o.storage.id }, st.freeBytes < 2 * minFree ? 1 : 0);
    if (st.freeBytes < 2 * minFree) log.warn({ storage: o.storage.id, freeBytes: st.freeBytes, floorBytes: minFree }, 'the storage is nearing its free-space floor');
    let deficit = minFree - st.freeBytes;
    while (deficit > 0) {
      const rows = await db.query<SegmentRow>(
        `SELECT ${SEGMENT_COLUMNS} FROM segments s WHERE state = 'stored' AND storage_id = $1 AND ${NOT_PROTECTED} ORDER BY start_ms LIMIT 100`,
        [o.storage.id],
      );
      if (rows.length === 0) {
        log.error({ storage: o.storage.id, freeBytes: st.freeBytes, floorBytes: minFree }, 'below the free-space floor and nothing left that may be deleted');
        break;
      }
      const pick: SegmentRow[] = [];
      for (const r of rows) {
        if (deficit <= 0) break;
        pick.push(r);
        deficit -= Number(r.bytes);
      }
      await remove(o, pick, 'storage below its free-space floor', result);
    }
  }
  if (result.deleted > 0) log.info({ deleted: result.deleted, bytes: result.bytes, byReason: result.byReason }, 'retention removed recordings');
  return result;
}

async function remove(o: { archive: Archive; storage: Storage }, rows: SegmentRow[], reason: string, result: RetentionResult): Promise<void> {
  const db = o.archive.db;
  const ids = rows.map((r) => Number(r.id));
  // Phase 1: marked. A crash from here on is finished by the next pass.
  await db.query(`UPDATE segments SET state = 'deleting' WHERE id = ANY($1::bigint[])`, [ids]);
  // Phase 2: the files. A storage that is away stops the pass; the rows stay marked.
  for (const r of rows) {
    if (r.storage_id === o.storage.id) await o.storage.remove(r.path);
  }
  // Phase 3: rows → tombstones, and the ranges they were in rebuilt.
  await db.transaction(async (tx: Queryable) => {
    await tx.query(
      `INSERT INTO segment_tombstones (id, camera_id, start_ms, prev_link, link, reason)
       SELECT id, camera_id, start_ms, prev_link, link, $2 FROM segments WHERE id = ANY($1::bigint[]) ON CONFLICT (id) DO NOTHING`,
      [ids, reason],
    );
    await tx.query('DELETE FROM segments WHERE id = ANY($1::bigint[])', [ids]);
    const byCam = new Map<string, { lo: number; hi: number }>();
    for (const r of rows) {
      const c = byCam.get(r.camera_id) ?? { lo: Infinity, hi: -Infinity };
      c.lo = Math.min(c.lo, Number(r.start_ms));
      c.hi = Math.max(c.hi, Number(r.start_ms) + Number(r.duration_ms));
      byCam.set(r.camera_id, c);
    }
    for (const [cam, span] of byCam) await rebuildRanges(tx, cam, span.lo, span.hi);
  });
  for (const r of rows) {
    result.deleted++;
    result.bytes += Number(r.bytes);
    if (!result.cameras.includes(r.camera_id)) result.cameras.push(r.camera_id);
  }
  result.byReason[reason] = (result.byReason[reason] ?? 0) + rows.length;
  deletedSegments.inc({ reason: reason.startsWith('older') ? 'age' : reason.startsWith('over') ? 'size' : reason.startsWith('storage') ? 'floor' : 'resumed' }, rows.length);
}
