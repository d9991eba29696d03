import { spawnGuarded, type Database } from '@cctv/core';
import type { MotionEvent } from './types.js';

interface EventRow {
  id: number | string;
  camera_id: string;
  kind: string;
  start_ms: number | string;
  end_ms: number | string | null;
  peak_score: number;
  zones: string[];
  box: unknown;
  node: string;
  has_thumbnail: boolean;
  protected_id: number | string | null;
}

const COLUMNS = 'id, camera_id, kind, start_ms, end_ms, peak_score, zones, box, node, thumbnail IS NOT NULL AS has_thumbnail, protected_id';

function toEvent(r: EventRow): MotionEvent {
  const box = typeof r.box === 'string' ? (JSON.parse(r.box) as MotionEvent['box']) : ((r.box ?? null) as MotionEvent['box']);
  return {
    id: Number(r.id), camera: r.camera_id, kind: 'motion', startMs: Number(r.start_ms), endMs: r.end_ms === null ? null : Number(r.end_ms),
    peakScore: Math.round(Number(r.peak_score) * 1e4) / 1e4, zones: r.zones ?? [], box, node: r.node, hasThumbnail: r.has_thumbnail,
    protectedId: r.protected_id === null ? null : Number(r.protected_id),
  };
}

export interface EventQuery {
  /** Only these cameras (the caller's visible ones); empty: none. */
  cameras: string[];
  fromMs: number;
  toMs: number;
  zone?: string;
  minScore?: number;
  limit: number;
  /** The last event of the previous page: the next starts after it (newest first). */
  after?: { startMs: number; id: number } | null;
}

/** Footage kept around an event when it is protected: before its start and after its end, ms. */
export const PROTECT_MARGIN_MS = 10_000;

/** The events table: written by detectors, read by the API. */
export class EventStore {
  constructor(readonly db: Database) {}

  async insert(e: Omit<MotionEvent, 'id' | 'hasThumbnail' | 'protectedId'>, thumbnail: Buffer | null): Promise<MotionEvent> {
    const rows = await this.db.query<EventRow>(
      `INSERT INTO events (camera_id, kind, start_ms, end_ms, peak_score, zones, box, node, thumbnail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      [e.camera, e.kind, e.startMs, e.endMs, e.peakScore, e.zones, e.box, e.node, thumbnail],
    );
    return toEvent(rows[0]!);
  }

  /** Updates an event's peak, zones and end (and its thumbnail when one is given). */
  async update(id: number, e: Pick<MotionEvent, 'endMs' | 'peakScore' | 'zones' | 'box'>, thumbnail: Buffer | null): Promise<MotionEvent | null> {
    const rows = await this.db.query<EventRow>(
      `UPDATE events SET end_ms = $2, peak_score = $3, zones = $4, box = $5, thumbnail = COALESCE($6, thumbnail), updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
      [id, e.endMs, e.peakScore, e.zones, e.box, thumbnail],
    );
    return rows[0] ? toEvent(rows[0]) : null;
  }

  /**
   * Ends the events a node left in progress (it stopped or died), at the time given, or (null) at each
   * one's last update: a node that was down for hours does not know when they really ended.
   */
  async endOpen(node: string, camera: string | null, atMs: number | null): Promise<number> {
    const rows = await this.db.query<{ id: number }>(
      `UPDATE events SET end_ms = GREATEST(start_ms, COALESCE($3::int8, (extract(epoch FROM updated_at) * 1000)::int8)), updated_at = now()
       WHERE node = $1 AND end_ms IS NULL AND ($2::text IS NULL OR camera_id = $2) RETURNING id`,
      [node, camera, atMs],
    );
    return rows.length;
  }

  /**
   * Deletes the events older than their camera's `motion.retainDays` (not those an operator protected),
   * a batch at a time; returns how many went.
   */
  async applyRetention(nowMs = Date.now()): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await this.db.query<{ id: number }>(
        `DELETE FROM events WHERE id IN (
           SELECT e.id FROM events e JOIN cameras c ON c.id = e.camera_id
            WHERE e.protected_id IS NULL AND e.end_ms IS NOT NULL
              AND COALESCE((c.motion->>'retainDays')::float8, 365) > 0
              AND e.start_ms < $1::int8 - COALESCE((c.motion->>'retainDays')::float8, 365) * 86400000
            LIMIT 5000)
         RETURNING id`,
        [nowMs],
      );
      total += rows.length;
      if (rows.length < 5000) return total;
    }
  }

  async get(id: number): Promise<MotionEvent | null> {
    const rows = await this.db.query<EventRow>(`SELECT ${COLUMNS} FROM events WHERE id = $1`, [id]);
    return rows[0] ? toEvent(rows[0]) : null;
  }

  async thumbnail(id: number): Promise<Buffer | null> {
    const rows = await this.db.query<{ thumbnail: Uint8Array | null }>('SELECT thumbnail FROM events WHERE id = $1', [id]);
    return rows[0]?.thumbnail ? Buffer.from(rows[0].thumbnail) : null;
  }

  /**
   * Events newest first, keyset-paginated by (start, id): each page is an index range scan however deep
   * it is, so a year of events pages as fast as a day.
   */
  async search(q: EventQuery): Promise<MotionEvent[]> {
    if (q.cameras.length === 0) return [];
    const params: unknown[] = [q.cameras, q.fromMs, q.toMs];
    let where = 'camera_id = ANY($1::text[]) AND start_ms >= $2 AND start_ms < $3';
    if (q.after) {
      params.push(q.after.startMs, q.after.id);
      where += ` AND (start_ms, id) < ($${params.length - 1}::int8, $${params.length}::int8)`;
    }
    if (q.zone) {
      params.push([q.zone]);
      where += ` AND zones @> $${params.length}::text[]`;
    }
    if (q.minScore !== undefined && q.minScore > 0) {
      params.push(q.minScore);
      where += ` AND peak_score >= $${params.length}`;
    }
    params.push(q.limit);
    const rows = await this.db.query<EventRow>(`SELECT ${COLUMNS} FROM events WHERE ${where} ORDER BY start_ms DESC, id DESC LIMIT $${params.length}`, params);
    return rows.map(toEvent);
  }

  /** Keeps an event's footage (with a margin either side) from retention; returns the protected range. */
  async protect(id: number, by: string): Promise<number | null> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{ camera_id: string; start_ms: string | number; end_ms: string | number | null; protected_id: string | number | null }>(
        'SELECT camera_id, start_ms, end_ms, protected_id FROM events WHERE id = $1 FOR UPDATE', [id],
      );
      const e = rows[0];
      if (!e) return null;
      if (e.protected_id !== null) return Number(e.protected_id);
      // An event in progress is protected to a minute past now; protecting again after it ended extends nothing.
      const end = e.end_ms === null ? Date.now() + 60_000 : Number(e.end_ms);
      const p = await tx.query<{ id: string | number }>(
        'INSERT INTO protected_ranges (camera_id, start_ms, end_ms, reason, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id',
        [e.camera_id, Number(e.start_ms) - PROTECT_MARGIN_MS, end + PROTECT_MARGIN_MS, `event ${id}`, by],
      );
      const pid = Number(p[0]!.id);
      await tx.query('UPDATE events SET protected_id = $2, updated_at = now() WHERE id = $1', [id, pid]);
      return pid;
    });
  }

  /** Lets retention have an event's footage again; false when it was not protected. */
  async unprotect(id: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{ protected_id: string | number | null }>('SELECT protected_id FROM events WHERE id = $1 FOR UPDATE', [id]);
      const pid = rows[0]?.protected_id;
      if (pid === null || pid === undefined) return false;
      await tx.query('DELETE FROM protected_ranges WHERE id = $1', [pid]);
      await tx.query('UPDATE events SET protected_id = NULL, updated_at = now() WHERE id = $1', [id]);
      return true;
    });
  }
}

/**
 * A JPEG of an I420 frame with the moving region outlined (the box in shares of the picture), made by
 * ffmpeg. Events are rare next to frames, so one short ffmpeg per thumbnail is cheap enough.
 */
export async function eventThumbnail(ffmpeg: string, frame: Buffer, width: number, height: number, box: MotionEvent['box']): Promise<Buffer> {
  const draw = box
    ? `,drawbox=x=${Math.round(box.x * width)}:y=${Math.round(box.y * height)}:w=${Math.max(2, Math.round(box.w * width))}:h=${Math.max(2, Math.round(box.h * height))}:color=red@0.9:t=2`
    : '';
  const child = spawnGuarded(ffmpeg, [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', `${width}x${height}`, '-i', 'pipe:0',
    '-vf', `format=yuv420p${draw}`, '-frames:v', '1', '-q:v', '5', '-f', 'mjpeg', 'pipe:1',
  ], ['pipe', 'pipe', 'pipe']);
  const out: Buffer[] = [];
  let err = '';
  child.stdout?.on('data', (d: Buffer) => out.push(d));
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin?.on('error', () => {});
  child.stdin?.end(frame);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`ffmpeg could not make a thumbnail: ${err.trim().slice(-300)}`);
  return Buffer.concat(out);
}
