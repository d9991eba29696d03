import { randomBytes } from 'node:crypto';
import { CAMERA_ID_PATTERN, ValidationError, type Database, type Queryable } from '@cctv/core';
import { newSecret } from './standardWebhooks.js';

/**
 * The alert tables (migration 0005): webhook endpoints, one delivery per message and receiver, one
 * attempt row per try. A delivery is sent by the node that claims it (`claimed_by` until
 * `claim_until_ms`); when that runs out, another node may claim it.
 */

/** Where a delivery goes. */
export const AlertChannel = { Webhook: 'webhook', Mqtt: 'mqtt' } as const;
export type AlertChannel = (typeof AlertChannel)[keyof typeof AlertChannel];

/** Where a delivery stands: waiting for (another) try, done, or given up (the dead letters). */
export const DeliveryState = { Pending: 'pending', Delivered: 'delivered', Dead: 'dead' } as const;
export type DeliveryState = (typeof DeliveryState)[keyof typeof DeliveryState];

/** What a message says happened. */
export const AlertType = { EventStart: 'event.start', EventEnd: 'event.end', Test: 'webhook.test' } as const;
export type AlertType = (typeof AlertType)[keyof typeof AlertType];

/** One message to one receiver. Times are ms since the epoch. */
export interface Delivery {
  /** The message id (`msg_…`), sent as the webhook-id header on every try. */
  id: string;
  eventId: number;
  camera: string;
  channel: AlertChannel;
  /** The endpoint, for channel webhook. */
  webhookId: string | null;
  type: string;
  /** The message (the Standard Webhooks body; for MQTT the event JSON). */
  payload: unknown;
  state: DeliveryState;
  /** Tries since it was made or last retried by hand. */
  attempts: number;
  /** When the next try is due. */
  nextMs: number;
  claimedBy: string | null;
  claimUntilMs: number | null;
  /** The HTTP status of the last try; null after a network error or for MQTT. */
  lastStatus: number | null;
  lastError: string | null;
  /** The event's first moving frame. */
  motionMs: number;
  deliveredMs: number | null;
  createdMs: number;
}

/** One try of a delivery. */
export interface DeliveryAttempt {
  /** 1, 2, … over the delivery's whole life (a retry by hand goes on counting). */
  n: number;
  atMs: number;
  /** The HTTP status; null when no answer came. */
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** A webhook endpoint, without its secret. */
export interface Webhook {
  id: string;
  url: string;
  /** The cameras it gets events of; null: every camera. */
  cameras: string[] | null;
  enabled: boolean;
  createdBy: string;
  createdAt: string;
}

/** A delivery being made, as the rows are written. */
export interface NewDelivery {
  id: string;
  eventId: number;
  camera: string;
  channel: AlertChannel;
  webhookId: string | null;
  type: string;
  payload: unknown;
  motionMs: number;
  /** The node that sends it now, and until when it holds it. */
  claimedBy: string;
  claimUntilMs: number;
}

interface DeliveryRow {
  id: string;
  event_id: number;
  camera_id: string;
  channel: AlertChannel;
  webhook_id: string | null;
  type: string;
  payload: unknown;
  state: DeliveryState;
  attempts: number;
  next_ms: number;
  claimed_by: string | null;
  claim_until_ms: number | null;
  last_status: number | null;
  last_error: string | null;
  motion_ms: number;
  delivered_ms: number | null;
  created_ms: number;
}

interface WebhookRow {
  id: string;
  url: string;
  secret: string;
  cameras: string[] | null;
  enabled: boolean;
  created_by: string;
  created_at: Date;
}

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function delivery(r: DeliveryRow): Delivery {
  return {
    id: r.id, eventId: Number(r.event_id), camera: r.camera_id, channel: r.channel, webhookId: r.webhook_id, type: r.type,
    payload: typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload,
    state: r.state, attempts: Number(r.attempts), nextMs: Number(r.next_ms), claimedBy: r.claimed_by, claimUntilMs: num(r.claim_until_ms),
    lastStatus: num(r.last_status), lastError: r.last_error, motionMs: Number(r.motion_ms), deliveredMs: num(r.delivered_ms), createdMs: Number(r.created_ms),
  };
}

function webhook(r: WebhookRow): Webhook {
  return { id: r.id, url: r.url, cameras: r.cameras, enabled: r.enabled, createdBy: r.created_by, createdAt: new Date(r.created_at).toISOString() };
}

/** What a try came to, as written to the delivery. */
export interface AttemptOutcome {
  state: DeliveryState;
  /** Tries counted after this one. */
  attempts: number;
  nextMs: number;
  claimUntilMs: number | null;
  status: number | null;
  error: string | null;
  deliveredMs: number | null;
}

/** The `before` cursor of the dead letters: `<createdMs>.<id>` as `listDead` hands it out, or a bare time in ms. */
function parseCursor(before: string | undefined): { ms: number; id: string } | null {
  if (before === undefined || before === '') return null;
  const m = /^(\d{1,15})(?:\.(msg_[A-Za-z0-9_-]{1,64}))?$/.exec(before);
  if (!m) throw new ValidationError('before', "must be a cursor from a previous page ('next') or a time in ms since 1970");
  // A bare time takes every delivery made before it; '' sorts before any id.
  return { ms: Number(m[1]), id: m[2] ?? '' };
}

/** Rows of the deliveries and their attempts. */
export class Deliveries {
  readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Enters new deliveries, pending and claimed by their sender, due now. */
  async insert(rows: readonly NewDelivery[], now = Date.now()): Promise<void> {
    if (rows.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const d of rows) {
        await tx.query(
          `INSERT INTO alert_deliveries (id, event_id, camera_id, channel, webhook_id, type, payload, state, attempts, next_ms, claimed_by, claim_until_ms, motion_ms, created_ms)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 'pending', 0, $8, $9, $10, $11, $8)`,
          [d.id, d.eventId, d.camera, d.channel, d.webhookId, d.type, JSON.stringify(d.payload), now, d.claimedBy, d.claimUntilMs, d.motionMs],
        );
      }
    });
  }

  async get(id: string): Promise<Delivery | null> {
    const rows = await this.db.query<DeliveryRow>('SELECT * FROM alert_deliveries WHERE id = $1', [id]);
    return rows[0] ? delivery(rows[0]) : null;
  }

  /**
   * Renews `node`'s claim on a pending delivery until `untilMs`, before a try; null when it is not
   * pending any more or another node holds it now.
   */
  async renew(id: string, node: string, untilMs: number): Promise<Delivery | null> {
    const rows = await this.db.query<DeliveryRow>(
      "UPDATE alert_deliveries SET claim_until_ms = $3 WHERE id = $1 AND state = 'pending' AND claimed_by = $2 RETURNING *", [id, node, untilMs]);
    return rows[0] ? delivery(rows[0]) : null;
  }

  /**
   * Claims pending deliveries of `channel` whose claim ran out (their node stopped, or let go when it
   * closed) for `node`, each until its next try is due plus `holdMs`. Rows locked by another node's
   * claim right now are skipped, so two nodes never claim the same delivery.
   */
  async claimExpired(node: string, channel: AlertChannel, now: number, holdMs: number, limit = 100): Promise<Delivery[]> {
    const rows = await this.db.query<DeliveryRow>(
      `UPDATE alert_deliveries SET claimed_by = $1, claim_until_ms = GREATEST(next_ms, $3) + $4
       WHERE id IN (
         SELECT id FROM alert_deliveries
         WHERE state = 'pending' AND channel = $2 AND (claim_until_ms IS NULL OR claim_until_ms < $3)
         ORDER BY next_ms LIMIT $5
         FOR UPDATE SKIP LOCKED
       )
       RETURNING *`,
      [node, channel, now, holdMs, limit],
    );
    return rows.map(delivery).sort((a, b) => a.nextMs - b.nextMs);
  }

  /** Holds `node`'s pending deliveries of `channel` until `untilMs` (MQTT messages wait in the client until the broker acks). */
  async holdClaims(node: string, channel: AlertChannel, untilMs: number): Promise<void> {
    await this.db.query("UPDATE alert_deliveries SET claim_until_ms = $3 WHERE claimed_by = $1 AND channel = $2 AND state = 'pending'", [node, channel, untilMs]);
  }

  /** Lets go of `node`'s pending deliveries of `channel`, so another node claims them at once. */
  async release(node: string, channel: AlertChannel): Promise<number> {
    const rows = await this.db.query<{ id: string }>(
      "UPDATE alert_deliveries SET claimed_by = NULL, claim_until_ms = NULL WHERE claimed_by = $1 AND channel = $2 AND state = 'pending' RETURNING id", [node, channel]);
    return rows.length;
  }

  /**
   * Writes one try: its attempt row and the delivery's new state. The attempt is numbered after the
   * delivery's last one. The delivery is only changed while `node` holds it.
   */
  async recordAttempt(id: string, node: string, at: { atMs: number; durationMs: number }, o: AttemptOutcome): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE alert_deliveries SET state = $3, attempts = $4, next_ms = $5, claim_until_ms = $6, last_status = $7, last_error = $8, delivered_ms = $9
         WHERE id = $1 AND claimed_by = $2 AND state = 'pending'`,
        [id, node, o.state, o.attempts, o.nextMs, o.claimUntilMs, o.status, o.error, o.deliveredMs],
      );
      await this.#attempt(tx, id, at.atMs, o.status, o.error, at.durationMs);
    });
  }

  async #attempt(q: Queryable, id: string, atMs: number, status: number | null, error: string | null, durationMs: number): Promise<void> {
    await q.query(
      `INSERT INTO alert_attempts (delivery_id, n, at_ms, status, error, duration_ms)
       SELECT $1, COALESCE(max(n), 0) + 1, $2, $3, $4, $5 FROM alert_attempts WHERE delivery_id = $1
       ON CONFLICT DO NOTHING`,
      [id, atMs, status, error?.slice(0, 1000) ?? null, Math.round(durationMs)],
    );
  }

  /** Ends a delivery without a try (its endpoint is gone or off): dead, with why. */
  async kill(id: string, node: string | null, error: string): Promise<void> {
    await this.db.query(
      "UPDATE alert_deliveries SET state = 'dead', last_error = $3, claim_until_ms = NULL WHERE id = $1 AND state = 'pending' AND ($2::text IS NULL OR claimed_by = $2)",
      [id, node, error],
    );
  }

  /** Marks an MQTT delivery done: delivered (the broker acked) or dead, with one attempt row. */
  async settleMqtt(id: string, node: string, ok: boolean, at: { atMs: number; durationMs: number }, error: string | null, now = Date.now()): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `UPDATE alert_deliveries SET state = $3, attempts = attempts + 1, claim_until_ms = NULL, last_error = $4, delivered_ms = $5
         WHERE id = $1 AND claimed_by = $2 AND state = 'pending'`,
        [id, node, ok ? DeliveryState.Delivered : DeliveryState.Dead, error, ok ? now : null],
      );
      await this.#attempt(tx, id, at.atMs, null, error, at.durationMs);
    });
  }

  /** Gives up MQTT deliveries of other nodes whose claim ran out: their messages went with their client. */
  async expireMqtt(now: number): Promise<number> {
    const rows = await this.db.query<{ id: string }>(
      `UPDATE alert_deliveries SET state = 'dead', claim_until_ms = NULL,
         last_error = 'the node publishing it stopped before the broker acknowledged it'
       WHERE channel = 'mqtt' AND state = 'pending' AND (claim_until_ms IS NULL OR claim_until_ms < $1) RETURNING id`,
      [now],
    );
    return rows.length;
  }

  /** A dead delivery back to pending, due now, its tries counted from 0, claimed by `node`; null when there is no dead delivery `id`. */
  async revive(id: string, node: string, claimUntilMs: number, now = Date.now()): Promise<Delivery | null> {
    const rows = await this.db.query<DeliveryRow>(
      `UPDATE alert_deliveries SET state = 'pending', attempts = 0, next_ms = $3, claimed_by = $2, claim_until_ms = $4
       WHERE id = $1 AND state = 'dead' RETURNING *`,
      [id, node, now, claimUntilMs],
    );
    return rows[0] ? delivery(rows[0]) : null;
  }

  /** The start messages of an event: which channels and endpoints were alerted, and for which rules. */
  async startsOf(eventId: number): Promise<Array<{ channel: AlertChannel; webhookId: string | null; rules: string[] }>> {
    const rows = await this.db.query<{ channel: AlertChannel; webhook_id: string | null; payload: unknown }>(
      "SELECT channel, webhook_id, payload FROM alert_deliveries WHERE event_id = $1 AND type = 'event.start' ORDER BY created_ms, id", [eventId]);
    return rows.map((r) => {
      const p = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as { data?: { rules?: unknown }; rules?: unknown };
      const rules = p.data?.rules ?? p.rules;
      return { channel: r.channel, webhookId: r.webhook_id, rules: Array.isArray(rules) ? rules.filter((x): x is string => typeof x === 'string') : [] };
    });
  }

  /** The dead letters, newest first, `limit` (1–500, default 50) a page; `next` is the cursor of the next page. */
  async dead(o: { limit?: number; before?: string } = {}): Promise<{ deliveries: Delivery[]; next: string | null }> {
    const limit = o.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new ValidationError('limit', 'must be a whole number of 1–500');
    const c = parseCursor(o.before);
    const rows = await this.db.query<DeliveryRow>(
      `SELECT * FROM alert_deliveries WHERE state = 'dead' AND ($1::bigint IS NULL OR (created_ms, id) < ($1::bigint, $2::text))
       ORDER BY created_ms DESC, id DESC LIMIT $3`,
      [c?.ms ?? null, c?.id ?? '', limit],
    );
    const last = rows.length === limit ? rows[rows.length - 1] : undefined;
    return { deliveries: rows.map(delivery), next: last ? `${Number(last.created_ms)}.${last.id}` : null };
  }

  /** Every delivery of an event, oldest first, each with its tries. */
  async ofEvent(eventId: number): Promise<Array<Delivery & { tries: DeliveryAttempt[] }>> {
    const rows = await this.db.query<DeliveryRow>('SELECT * FROM alert_deliveries WHERE event_id = $1 ORDER BY created_ms, id', [eventId]);
    if (rows.length === 0) return [];
    const tries = await this.db.query<{ delivery_id: string; n: number; at_ms: number; status: number | null; error: string | null; duration_ms: number }>(
      'SELECT * FROM alert_attempts WHERE delivery_id = ANY($1::text[]) ORDER BY delivery_id, n', [rows.map((r) => r.id)]);
    return rows.map((r) => ({
      ...delivery(r),
      tries: tries.filter((t) => t.delivery_id === r.id).map((t) => ({ n: Number(t.n), atMs: Number(t.at_ms), status: num(t.status), error: t.error, durationMs: Number(t.duration_ms) })),
    }));
  }

  /** The tries of one delivery, in order. */
  async attemptsOf(id: string): Promise<DeliveryAttempt[]> {
    const rows = await this.db.query<{ n: number; at_ms: number; status: number | null; error: string | null; duration_ms: number }>(
      'SELECT n, at_ms, status, error, duration_ms FROM alert_attempts WHERE delivery_id = $1 ORDER BY n', [id]);
    return rows.map((t) => ({ n: Number(t.n), atMs: Number(t.at_ms), status: num(t.status), error: t.error, durationMs: Number(t.duration_ms) }));
  }
}

/** Longest endpoint URL, characters. */
const MAX_URL = 2000;

/** Checks an endpoint URL: http or https, absolute, no longer than 2000 characters. */
export function checkWebhookUrl(url: unknown): string {
  if (typeof url !== 'string' || url.length === 0) throw new ValidationError('url', 'must be an http:// or https:// URL');
  if (url.length > MAX_URL) throw new ValidationError('url', `must be at most ${MAX_URL} characters`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ValidationError('url', `must be an http:// or https:// URL, not '${url.slice(0, 80)}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ValidationError('url', `must be an http:// or https:// URL, not ${u.protocol}`);
  if (!u.hostname) throw new ValidationError('url', 'must name a host');
  return u.toString();
}

/** The webhook endpoints. */
export class WebhookEndpoints {
  readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  /** Adds an endpoint; the answer holds its secret, which is never shown again. */
  async create(o: { url: string; cameras?: readonly string[] | null | undefined; createdBy: string }): Promise<Webhook & { secret: string }> {
    const url = checkWebhookUrl(o.url);
    let cameras: string[] | null = null;
    if (o.cameras !== undefined && o.cameras !== null) {
      if (!Array.isArray(o.cameras) || o.cameras.length === 0) throw new ValidationError('cameras', 'must name at least one camera, or be left out for every camera');
      o.cameras.forEach((c, i) => {
        if (typeof c !== 'string' || !CAMERA_ID_PATTERN.test(c)) throw new ValidationError(`cameras.${i}`, 'must be a camera id');
      });
      cameras = [...new Set(o.cameras)];
    }
    if (typeof o.createdBy !== 'string' || o.createdBy.length === 0) throw new TypeError("argument 'createdBy' must be a non-empty text");
    const id = `wh_${randomBytes(9).toString('base64url')}`;
    const secret = newSecret();
    const rows = await this.db.query<WebhookRow>(
      'INSERT INTO webhooks (id, url, secret, cameras, created_by) VALUES ($1, $2, $3, $4::text[], $5) RETURNING *', [id, url, secret, cameras, o.createdBy]);
    return { ...webhook(rows[0]!), secret };
  }

  async list(): Promise<Webhook[]> {
    return (await this.db.query<WebhookRow>('SELECT * FROM webhooks ORDER BY created_at, id')).map(webhook);
  }

  /** One endpoint with its secret (for signing); null when there is none. */
  async withSecret(id: string): Promise<(Webhook & { secret: string }) | null> {
    const rows = await this.db.query<WebhookRow>('SELECT * FROM webhooks WHERE id = $1', [id]);
    return rows[0] ? { ...webhook(rows[0]), secret: rows[0].secret } : null;
  }

  /** The enabled endpoints that take a camera's events. */
  async forCamera(camera: string): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>('SELECT id FROM webhooks WHERE enabled AND (cameras IS NULL OR $1 = ANY(cameras)) ORDER BY id', [camera]);
    return rows.map((r) => r.id);
  }

  /** Which of these endpoints still exist and are enabled. */
  async enabledOf(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.query<{ id: string }>('SELECT id FROM webhooks WHERE enabled AND id = ANY($1::text[])', [ids]);
    return new Set(rows.map((r) => r.id));
  }

  /** Removes an endpoint; its pending deliveries go to the dead letters. False when there is none. */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.query<{ id: string }>('DELETE FROM webhooks WHERE id = $1 RETURNING id', [id]);
      if (rows.length === 0) return false;
      await tx.query("UPDATE alert_deliveries SET state = 'dead', last_error = 'the endpoint was deleted', claim_until_ms = NULL WHERE webhook_id = $1 AND state = 'pending'", [id]);
      return true;
    });
  }

  /** Turns an endpoint on or off; null when there is none. */
  async setEnabled(id: string, enabled: boolean): Promise<Webhook | null> {
    const rows = await this.db.query<WebhookRow>('UPDATE webhooks SET enabled = $2 WHERE id = $1 RETURNING *', [id, enabled]);
    return rows[0] ? webhook(rows[0]) : null;
  }
}
