import { TypedEmitter, createLogger, type Database } from '@cctv/core';
import type { NodeEntry } from './registry.js';

const log = createLogger('signaling:gaps');

/** An interval in which a camera's video did not reach any SFU. */
export interface Gap {
  camera: string;
  start: number;
  end: number;
  reason: string;
}

export interface GapEvents extends Record<string, unknown[]> {
  gap: [Gap];
}


/**
 * Finds gaps from the SFUs' room reports, in every signaling instance (so a new master knows the history):
 * a room whose current run of packets began after the last packet seen for its camera — on any SFU —
 * closes a gap from that last packet to the new start. An SFU starts a new run when the sender changes
 * (the camera moved) or after a second of silence, so jitter is not a gap but every interruption is.
 */
export class GapTracker extends TypedEmitter<GapEvents> {
  /** Per camera: the last packet seen on any SFU, ms (that SFU's clock). */
  readonly #last = new Map<string, number>();
  /** Per camera: why it was last moved, and when, to say why a gap happened. */
  readonly #causes = new Map<string, { at: number; reason: string }>();

  /** Notes why a camera was moved (a node died, was drained…). */
  cause(camera: string, reason: string, at = Date.now()): void {
    this.#causes.set(camera, { at, reason });
  }

  forget(camera: string): void {
    this.#last.delete(camera);
    this.#causes.delete(camera);
  }

  /** Feeds an SFU's heartbeat. */
  observe(n: NodeEntry): void {
    for (const r of n.heartbeat.rooms) {
      if (!r.lastPacketAt) continue;
      const last = this.#last.get(r.camera);
      if (last !== undefined && r.streamStartAt > last && r.lastPacketAt >= r.streamStartAt) {
        const cause = this.#causes.get(r.camera);
        const reason = cause && cause.at >= last - 2000 && cause.at <= r.streamStartAt ? cause.reason : 'no video from the source';
        this.safeEmit('gap', { camera: r.camera, start: last, end: r.streamStartAt, reason });
      }
      if (last === undefined || r.lastPacketAt > last) this.#last.set(r.camera, r.lastPacketAt);
    }
  }
}

/** Gaps kept in Postgres; those that cannot be written yet are kept and written when it returns. */
export class GapStore {
  readonly #db: Database;
  readonly #pending: Gap[] = [];
  #flushing = false;

  constructor(db: Database) {
    this.#db = db;
  }

  add(g: Gap): void {
    this.#pending.push(g);
    if (this.#pending.length > 100_000) this.#pending.shift();
    void this.flush();
  }

  get pending(): number {
    return this.#pending.length;
  }

  async flush(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#pending.length) {
        const g = this.#pending[0]!;
        await this.#db.query(
          'INSERT INTO gaps (camera_id, start_at, end_at, reason) VALUES ($1, $2, $3, $4) ON CONFLICT (camera_id, start_at) DO NOTHING',
          [g.camera, new Date(g.start), new Date(g.end), g.reason],
        );
        this.#pending.shift();
        log.info({ camera: g.camera, ms: g.end - g.start, reason: g.reason }, 'gap recorded');
      }
    } catch (error) {
      log.warn({ err: error, pending: this.#pending.length }, 'cannot record gaps now; kept for later');
    } finally {
      this.#flushing = false;
    }
  }

  async list(q: { camera?: string; from?: Date; to?: Date; limit?: number }): Promise<Gap[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.camera) where.push(`camera_id = $${params.push(q.camera)}`);
    if (q.from) where.push(`end_at >= $${params.push(q.from)}`);
    if (q.to) where.push(`start_at <= $${params.push(q.to)}`);
    const rows = await this.#db.query<{ camera_id: string; start_at: Date; end_at: Date; reason: string }>(
      `SELECT camera_id, start_at, end_at, reason FROM gaps ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY start_at DESC LIMIT ${Math.min(1000, Math.max(1, q.limit ?? 100))}`,
      params,
    );
    return rows.map((r) => ({ camera: r.camera_id, start: r.start_at.getTime(), end: r.end_at.getTime(), reason: r.reason }));
  }
}
