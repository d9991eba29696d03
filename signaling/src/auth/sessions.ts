import type { Database } from '@cctv/core';
import { randomToken, tokenId } from './crypto.js';

/** A browser session (Lucia's design): stored by the SHA-256 of its token, which only the cookie holds. */
export interface Session {
  id: string;
  userId: string;
  createdAt: Date;
  expiresAt: Date;
  lastSeenAt: Date;
  twoFactorVerified: boolean;
  ip: string | null;
  userAgent: string | null;
}

interface Row {
  id: string;
  user_id: string;
  created_at: Date;
  expires_at: Date;
  last_seen_at: Date;
  two_factor_verified: boolean;
  ip: string | null;
  user_agent: string | null;
}

const toSession = (r: Row): Session => ({
  id: r.id,
  userId: r.user_id,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastSeenAt: r.last_seen_at,
  twoFactorVerified: r.two_factor_verified,
  ip: r.ip,
  userAgent: r.user_agent,
});

const DAY = 24 * 60 * 60 * 1000;
/** A session lives 30 days, and is pushed out again when used in its second half (sliding expiry). */
export const SESSION_LIFETIME_MS = 30 * DAY;
const RENEW_WITHIN_MS = 15 * DAY;
// last_seen_at is written at most this often, not at every request.
const SEEN_GRANULARITY_MS = 60_000;

export class SessionStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Opens a session; the token goes in the cookie and is not kept. */
  async create(userId: string, meta: { twoFactorVerified: boolean; ip: string | null; userAgent: string | null }): Promise<{ token: string; session: Session }> {
    const token = randomToken();
    const [r] = await this.#db.query<Row>(
      `INSERT INTO sessions (id, user_id, expires_at, two_factor_verified, ip, user_agent) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
      [tokenId(token), userId, new Date(Date.now() + SESSION_LIFETIME_MS), meta.twoFactorVerified, meta.ip, meta.userAgent?.slice(0, 300) ?? null],
    );
    return { token, session: toSession(r!) };
  }

  /** The session of a token, renewed when in its second half; null when unknown or expired (then deleted). */
  async validate(token: string): Promise<Session | null> {
    if (!/^[a-z2-7]{32}$/.test(token)) return null;
    const id = tokenId(token);
    const [r] = await this.#db.query<Row>('SELECT * FROM sessions WHERE id = $1', [id]);
    if (!r) return null;
    const now = Date.now();
    if (r.expires_at.getTime() <= now) {
      await this.#db.query('DELETE FROM sessions WHERE id = $1', [id]);
      return null;
    }
    const renew = r.expires_at.getTime() - now < RENEW_WITHIN_MS;
    if (renew || now - r.last_seen_at.getTime() > SEEN_GRANULARITY_MS) {
      const [u] = await this.#db.query<Row>(
        'UPDATE sessions SET last_seen_at = now(), expires_at = CASE WHEN $2 THEN $3::timestamptz ELSE expires_at END WHERE id = $1 RETURNING *',
        [id, renew, new Date(now + SESSION_LIFETIME_MS)],
      );
      if (u) return toSession(u);
    }
    return toSession(r);
  }

  async markTwoFactorVerified(id: string): Promise<void> {
    await this.#db.query('UPDATE sessions SET two_factor_verified = true WHERE id = $1', [id]);
  }

  async listForUser(userId: string): Promise<Session[]> {
    return (await this.#db.query<Row>('SELECT * FROM sessions WHERE user_id = $1 AND expires_at > now() ORDER BY last_seen_at DESC', [userId])).map(toSession);
  }

  async get(id: string): Promise<Session | null> {
    const [r] = await this.#db.query<Row>('SELECT * FROM sessions WHERE id = $1', [id]);
    return r ? toSession(r) : null;
  }

  /** Ends one session; false when there was none (or it belongs to someone else, when `userId` is given). */
  async invalidate(id: string, userId?: string): Promise<boolean> {
    const rows = userId
      ? await this.#db.query('DELETE FROM sessions WHERE id = $1 AND user_id = $2 RETURNING id', [id, userId])
      : await this.#db.query('DELETE FROM sessions WHERE id = $1 RETURNING id', [id]);
    return rows.length > 0;
  }

  /** Ends every session of a user (sign-out everywhere), except one when given. Returns how many. */
  async invalidateUser(userId: string, except?: string): Promise<number> {
    const rows = except
      ? await this.#db.query('DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id', [userId, except])
      : await this.#db.query('DELETE FROM sessions WHERE user_id = $1 RETURNING id', [userId]);
    return rows.length;
  }
}
