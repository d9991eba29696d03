import type { Database } from '@cctv/core';
import { randomToken, tokenId } from './crypto.js';

/** A Bearer token's record (never the token itself, which is shown once). */
export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  kind: 'short' | 'api';
  /** null: the user's permissions. */
  permissions: string[] | null;
  /** null: every camera the user may use. */
  cameras: string[] | null;
  /** The first characters, to tell tokens apart in a list. */
  prefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

interface Row {
  id: string;
  user_id: string;
  name: string;
  kind: 'short' | 'api';
  permissions: string[] | null;
  cameras: string[] | null;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const toToken = (r: Row): ApiToken => ({
  id: r.id,
  userId: r.user_id,
  name: r.name,
  kind: r.kind,
  permissions: r.permissions,
  cameras: r.cameras,
  prefix: r.prefix,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

/** Every token starts with this, so a leaked one is recognisable (secret scanners, logs). */
export const TOKEN_PREFIX = 'cctv_';
const USED_GRANULARITY_MS = 60_000;

export class TokenStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  /** Issues a token; the returned `token` is the only copy. */
  async create(userId: string, t: { name: string; kind: 'short' | 'api'; permissions: string[] | null; cameras: string[] | null; ttlMs: number | null }): Promise<{ token: string; record: ApiToken }> {
    const secret = randomToken();
    const token = TOKEN_PREFIX + secret;
    const [r] = await this.#db.query<Row>(
      `INSERT INTO api_tokens (id, user_id, name, kind, permissions, cameras, prefix, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      [tokenId(token), userId, t.name, t.kind, t.permissions, t.cameras, token.slice(0, TOKEN_PREFIX.length + 6), t.ttlMs === null ? null : new Date(Date.now() + t.ttlMs)],
    );
    return { token, record: toToken(r!) };
  }

  /** The record of a valid token (known, not expired, not revoked); null otherwise. */
  async validate(token: string): Promise<ApiToken | null> {
    if (!token.startsWith(TOKEN_PREFIX) || !/^[a-z2-7]{32}$/.test(token.slice(TOKEN_PREFIX.length))) return null;
    const [r] = await this.#db.query<Row>('SELECT * FROM api_tokens WHERE id = $1', [tokenId(token)]);
    if (!r || r.revoked_at || (r.expires_at && r.expires_at.getTime() <= Date.now())) return null;
    if (!r.last_used_at || Date.now() - r.last_used_at.getTime() > USED_GRANULARITY_MS) {
      await this.#db.query('UPDATE api_tokens SET last_used_at = now() WHERE id = $1', [r.id]);
    }
    return toToken(r);
  }

  /** A user's tokens that still work (or all of them, for admins looking back). */
  async listForUser(userId: string, includeEnded = false): Promise<ApiToken[]> {
    const rows = await this.#db.query<Row>(
      `SELECT * FROM api_tokens WHERE user_id = $1 ${includeEnded ? '' : 'AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())'} ORDER BY created_at DESC`,
      [userId],
    );
    return rows.map(toToken);
  }

  async get(id: string): Promise<ApiToken | null> {
    const [r] = await this.#db.query<Row>('SELECT * FROM api_tokens WHERE id = $1', [id]);
    return r ? toToken(r) : null;
  }

  /** Revokes a token (its owner's, when `userId` is given); false when there was none to revoke. */
  async revoke(id: string, userId?: string): Promise<boolean> {
    const rows = userId
      ? await this.#db.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL RETURNING id', [id, userId])
      : await this.#db.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]);
    return rows.length > 0;
  }
}
