import { createHash } from 'node:crypto';
import type { Database, Queryable } from '@cctv/core';

/** Two segments closer than this (end to start, ms) belong to one recorded range: more than the error of dating runs by the wall clock, less than any real loss. */
export const RANGE_JOIN_MS = 500;

export interface NewSegment {
  camera: string;
  run: string;
  seq: number;
  startMs: number;
  durationMs: number;
  bytes: number;
  sha256: string;
  initSha256: string;
  /** Path of the file in the spool, relative to the spool directory. */
  path: string;
  recorder: string;
}

export interface SegmentRow {
  id: number;
  camera_id: string;
  run: string;
  seq: number;
  start_ms: number;
  duration_ms: number;
  bytes: number;
  sha256: string;
  init_sha256: string;
  prev_link: string | null;
  link: string;
  state: 'spool' | 'stored' | 'deleting' | 'dropped';
  storage_id: string | null;
  path: string;
  recorder: string;
}

export const SEGMENT_COLUMNS = 'id, camera_id, run, seq, start_ms, duration_ms, bytes, sha256, init_sha256, prev_link, link, state, storage_id, path, recorder';

/**
 * The link of a segment in its camera's chain: SHA-256 over the previous link and every field that says
 * what the segment is. Editing any of them, or removing or inserting a row, breaks the chain there.
 */
export function linkOf(prev: string | null, s: { camera: string; run: string; seq: number; startMs: number; durationMs: number; bytes: number; sha256: string; initSha256: string }): string {
  return createHash('sha256')
    .update([prev ?? '', s.camera, s.run, s.seq, s.startMs, s.durationMs, s.bytes, s.sha256, s.initSha256].join('|'))
    .digest('hex');
}

export function rowLink(r: SegmentRow): string {
  return linkOf(r.prev_link, { camera: r.camera_id, run: r.run, seq: r.seq, startMs: r.start_ms, durationMs: r.duration_ms, bytes: r.bytes, sha256: r.sha256, initSha256: r.init_sha256 });
}

/** Where a stored segment lives on the storage. */
export function storagePath(camera: string, startMs: number, id: number): string {
  const d = new Date(startMs);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${camera}/${d.getUTCFullYear()}-${p2(d.getUTCMonth() + 1)}-${p2(d.getUTCDate())}/${p2(d.getUTCHours())}/${startMs}-${id}.m4s`;
}

export function initStoragePath(camera: string, sha256: string): string {
  return `${camera}/init/${sha256}.mp4`;
}

/** A row into a segment of `recording_ranges`: extend the camera's latest range or open a new one. */
async function addToRanges(tx: Queryable, camera: string, startMs: number, endMs: number, bytes: number): Promise<void> {
  const last = await tx.query<{ id: number; start_ms: number; end_ms: number }>(
    'SELECT id, start_ms, end_ms FROM recording_ranges WHERE camera_id = $1 ORDER BY end_ms DESC LIMIT 1',
    [camera],
  );
  const r = last[0];
  if (r && startMs <= Number(r.end_ms) + RANGE_JOIN_MS && endMs >= Number(r.start_ms)) {
    await tx.query(
      'UPDATE recording_ranges SET start_ms = LEAST(start_ms, $2), end_ms = GREATEST(end_ms, $3), segments = segments + 1, bytes = bytes + $4 WHERE id = $1',
      [r.id, startMs, endMs, bytes],
    );
  } else {
    await tx.query('INSERT INTO recording_ranges (camera_id, start_ms, end_ms, segments, bytes) VALUES ($1, $2, $3, 1, $4)', [camera, startMs, endMs, bytes]);
  }
}

/** Rebuilds a camera's ranges between `fromMs` and `toMs` from its segments (after segments were removed). */
export async function rebuildRanges(tx: Queryable, camera: string, fromMs: number, toMs: number): Promise<void> {
  const touching = await tx.query<{ id: number; start_ms: number; end_ms: number }>(
    'SELECT id, start_ms, end_ms FROM recording_ranges WHERE camera_id = $1 AND end_ms >= $2 AND start_ms <= $3',
    [camera, fromMs, toMs],
  );
  if (touching.length === 0) return;
  const lo = Math.min(...touching.map((r) => Number(r.start_ms)));
  const hi = Math.max(...touching.map((r) => Number(r.end_ms)));
  await tx.query('DELETE FROM recording_ranges WHERE id = ANY($1::bigint[])', [touching.map((r) => r.id)]);
  const segs = await tx.query<{ start_ms: number; duration_ms: number; bytes: number }>(
    `SELECT start_ms, duration_ms, bytes FROM segments WHERE camera_id = $1 AND start_ms >= $2 AND start_ms <= $3 AND state IN ('spool', 'stored') ORDER BY start_ms`,
    [camera, lo, hi],
  );
  let cur: { start: number; end: number; n: number; bytes: number } | null = null;
  const flush = async () => {
    if (cur) await tx.query('INSERT INTO recording_ranges (camera_id, start_ms, end_ms, segments, bytes) VALUES ($1, $2, $3, $4, $5)', [camera, cur.start, cur.end, cur.n, cur.bytes]);
  };
  for (const s of segs) {
    const start = Number(s.start_ms);
    const end = start + Number(s.duration_ms);
    if (cur && start <= cur.end + RANGE_JOIN_MS) {
      cur.end = Math.max(cur.end, end);
      cur.n++;
      cur.bytes += Number(s.bytes);
    } else {
      await flush();
      cur = { start, end, n: 1, bytes: Number(s.bytes) };
    }
  }
  await flush();
}

/** The archive's rows in the database: segments, their chain, init sections and recorded ranges. */
export class Archive {
  readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  async addInit(camera: string, data: Buffer): Promise<string> {
    const sha = createHash('sha256').update(data).digest('hex');
    await this.db.query('INSERT INTO recording_inits (sha256, camera_id, bytes, data) VALUES ($1, $2, $3, $4) ON CONFLICT (sha256) DO NOTHING', [sha, camera, data.length, data]);
    return sha;
  }

  async init(sha256: string): Promise<Buffer | null> {
    const rows = await this.db.query<{ data: Uint8Array }>('SELECT data FROM recording_inits WHERE sha256 = $1', [sha256]);
    return rows[0] ? Buffer.from(rows[0].data) : null;
  }

  /**
   * Adds a segment at the head of its camera's chain, and to the camera's recorded ranges, in one
   * transaction. Adding the same (camera, run, seq) again changes nothing and returns the row there.
   */
  async addSegment(s: NewSegment): Promise<{ id: number; link: string; added: boolean }> {
    return this.db.transaction(async (tx) => {
      const existing = await tx.query<{ id: number; link: string }>('SELECT id, link FROM segments WHERE camera_id = $1 AND run = $2 AND seq = $3', [s.camera, s.run, s.seq]);
      if (existing[0]) return { id: Number(existing[0].id), link: existing[0].link, added: false };
      // The head row is locked until commit: two writers of one camera (a recorder taking over from
      // another) still make one chain.
      await tx.query('INSERT INTO archive_heads (camera_id, segment_id, link) VALUES ($1, NULL, \'\') ON CONFLICT (camera_id) DO NOTHING', [s.camera]);
      const head = await tx.query<{ link: string }>('SELECT link FROM archive_heads WHERE camera_id = $1 FOR UPDATE', [s.camera]);
      const prev = head[0]?.link ? head[0].link : null;
      const link = linkOf(prev, s);
      const ins = await tx.query<{ id: number }>(
        `INSERT INTO segments (camera_id, run, seq, start_ms, duration_ms, bytes, sha256, init_sha256, prev_link, link, state, path, recorder)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'spool', $11, $12) RETURNING id`,
        [s.camera, s.run, s.seq, s.startMs, s.durationMs, s.bytes, s.sha256, s.initSha256, prev, link, s.path, s.recorder],
      );
      const id = Number(ins[0]!.id);
      await tx.query('UPDATE archive_heads SET segment_id = $2, link = $3 WHERE camera_id = $1', [s.camera, id, link]);
      await addToRanges(tx, s.camera, s.startMs, s.startMs + s.durationMs, s.bytes);
      return { id, link, added: true };
    });
  }

  /** Spooled segments of a recorder, oldest first. */
  async spooled(recorder: string, limit: number): Promise<SegmentRow[]> {
    return this.db.query<SegmentRow>(`SELECT ${SEGMENT_COLUMNS} FROM segments WHERE recorder = $1 AND state = 'spool' ORDER BY id LIMIT $2`, [recorder, limit]).then(norm);
  }

  async spoolTotals(recorder: string): Promise<{ count: number; bytes: number; oldestMs: number | null }> {
    const r = await this.db.query<{ n: number; b: number | null; oldest: number | null }>(
      `SELECT count(*)::int8 AS n, sum(bytes)::int8 AS b, min(start_ms) AS oldest FROM segments WHERE recorder = $1 AND state = 'spool'`,
      [recorder],
    );
    return { count: Number(r[0]?.n ?? 0), bytes: Number(r[0]?.b ?? 0), oldestMs: r[0]?.oldest == null ? null : Number(r[0].oldest) };
  }

  async markStored(id: number, storageId: string, path: string): Promise<void> {
    await this.db.query(`UPDATE segments SET state = 'stored', storage_id = $2, path = $3, stored_at = now() WHERE id = $1 AND state = 'spool'`, [id, storageId, path]);
  }

  /** A spooled segment given up (the spool overflowed): kept as a row, so verify reports it as dropped, not as tampering. */
  async markDropped(id: number): Promise<void> {
    await this.db.query(`UPDATE segments SET state = 'dropped' WHERE id = $1 AND state = 'spool'`, [id]);
  }

  /** Segments of a camera that overlap [fromMs, toMs), in time order. */
  async segments(camera: string, fromMs: number, toMs: number, limit = 100_000): Promise<SegmentRow[]> {
    return this.db.query<SegmentRow>(
      `SELECT ${SEGMENT_COLUMNS} FROM segments
       WHERE camera_id = $1 AND start_ms < $3::int8 AND start_ms >= $2::int8 - 20000 AND start_ms + duration_ms > $2::int8 AND state IN ('spool', 'stored')
       ORDER BY start_ms, id LIMIT $4`,
      [camera, fromMs, toMs, limit],
    ).then(norm);
  }

  async segment(id: number): Promise<SegmentRow | null> {
    const rows = norm(await this.db.query<SegmentRow>(`SELECT ${SEGMENT_COLUMNS} FROM segments WHERE id = $1`, [id]));
    return rows[0] ?? null;
  }

  /** Recorded ranges of a camera overlapping [fromMs, toMs). */
  async ranges(camera: string, fromMs: number, toMs: number): Promise<Array<{ startMs: number; endMs: number; segments: number; bytes: number }>> {
    const rows = await this.db.query<{ start_ms: number; end_ms: number; segments: number; bytes: number }>(
      'SELECT start_ms, end_ms, segments, bytes FROM recording_ranges WHERE camera_id = $1 AND end_ms > $2 AND start_ms < $3 ORDER BY start_ms',
      [camera, fromMs, toMs],
    );
    return rows.map((r) => ({ startMs: Number(r.start_ms), endMs: Number(r.end_ms), segments: Number(r.segments), bytes: Number(r.bytes) }));
  }

  /** Bytes recorded of one camera (from its ranges, not the disk). */
  async cameraBytes(camera: string): Promise<number> {
    const rows = await this.db.query<{ b: number | null }>('SELECT sum(bytes)::int8 AS b FROM recording_ranges WHERE camera_id = $1', [camera]);
    return Number(rows[0]?.b ?? 0);
  }

  /** Bytes recorded per camera (from the ranges, not the disk). */
  async bytesByCamera(): Promise<Map<string, number>> {
    const rows = await this.db.query<{ camera_id: string; b: number }>('SELECT camera_id, sum(bytes)::int8 AS b FROM recording_ranges GROUP BY camera_id');
    return new Map(rows.map((r) => [r.camera_id, Number(r.b)]));
  }
}

function norm(rows: SegmentRow[]): SegmentRow[] {
  for (const r of rows) {
    r.id = Number(r.id);
    r.start_ms = Number(r.start_ms);
    r.duration_ms = Number(r.duration_ms);
    r.bytes = Number(r.bytes);
    r.seq = Number(r.seq);
  }
  return rows;
}
