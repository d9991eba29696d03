import {
  CameraSchema, TypedEmitter, ValidationError, createLogger, parseWith,
  type CameraConfig, type CameraSource, type Database,
} from '@cctv/core';

const log = createLogger('signaling:cameras');

/** A camera as stored: its validated config and bookkeeping. */
export interface StoredCamera {
  config: CameraConfig;
  /** Bumped at every change. */
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface CameraStoreEvents extends Record<string, unknown[]> {
  /** A camera was created or changed. */
  changed: [StoredCamera];
  removed: [string];
}

interface Row {
  id: string;
  name: string;
  enabled: boolean;
  source: CameraSource;
  version: number;
  created_at: Date;
  updated_at: Date;
}

function fromRow(r: Row): StoredCamera {
  return {
    config: { id: r.id, name: r.name, enabled: r.enabled, source: typeof r.source === 'string' ? JSON.parse(r.source) : r.source },
    version: Number(r.version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const COLUMNS = 'id, name, enabled, source, version, created_at, updated_at';

/**
 * Cameras in the database, the source of truth. Input is validated here, once, and a change is stored
 * before it is announced.
 */
export class CameraStore extends TypedEmitter<CameraStoreEvents> {
  readonly #db: Database;

  constructor(db: Database) {
    super();
    this.#db = db;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'camera listener failed');
  }

  async list(): Promise<StoredCamera[]> {
    const rows = await this.#db.query<Row>(`SELECT ${COLUMNS} FROM cameras ORDER BY id`);
    return rows.map(fromRow);
  }

  async get(id: string): Promise<StoredCamera | null> {
    const rows = await this.#db.query<Row>(`SELECT ${COLUMNS} FROM cameras WHERE id = $1`, [id]);
    return rows[0] ? fromRow(rows[0]) : null;
  }

  /** Validates and stores a new camera; returns null when the id is taken. */
  async create(input: unknown): Promise<StoredCamera | null> {
    const cfg = parseWith(CameraSchema, input);
    const rows = await this.#db.query<Row>(
      `INSERT INTO cameras (id, name, enabled, source) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
      [cfg.id, cfg.name ?? cfg.id, cfg.enabled, cfg.source],
    );
    if (!rows[0]) return null;
    const cam = fromRow(rows[0]);
    this.safeEmit('changed', cam);
    return cam;
  }

  /**
   * Replaces a camera's config (PUT) or merges fields into it (PATCH). A source given without its
   * password keeps the stored one when the URL is unchanged, so that a client can send back what it read.
   */
  async update(id: string, input: unknown, mode: 'replace' | 'merge'): Promise<StoredCamera | null> {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ValidationError('', 'the body must be a JSON object');
    const body = input as Record<string, unknown>;
    if (body.id !== undefined && body.id !== id) throw new ValidationError('id', `must be '${id}' (the id in the URL) or left out`);
    return this.#db.transaction(async (tx) => {
      const rows = await tx.query<Row>(`SELECT ${COLUMNS} FROM cameras WHERE id = $1 FOR UPDATE`, [id]);
      if (!rows[0]) return null;
      const cur = fromRow(rows[0]).config;
      const merged: Record<string, unknown> = mode === 'merge' ? { ...cur, ...body, id } : { ...body, id };
      if (merged.source && typeof merged.source === 'object') merged.source = keepSecrets(merged.source as Record<string, unknown>, cur.source);
      const cfg = parseWith(CameraSchema, merged);
      const out = await tx.query<Row>(
        `UPDATE cameras SET name = $2, enabled = $3, source = $4, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, cfg.name ?? id, cfg.enabled, cfg.source],
      );
      return fromRow(out[0]!);
    }).then((cam) => {
      if (cam) this.safeEmit('changed', cam);
      return cam;
    });
  }

  /** Removes a camera; false when there was none. */
  async remove(id: string): Promise<boolean> {
    const rows = await this.#db.query<{ id: string }>('DELETE FROM cameras WHERE id = $1 RETURNING id', [id]);
    if (rows.length === 0) return false;
    this.safeEmit('removed', id);
    return true;
  }

  /** Creates or replaces a camera from the config file (at start). */
  async upsert(cfg: CameraConfig): Promise<void> {
    const cur = await this.get(cfg.id);
    if (!cur) await this.create(cfg);
    else if (JSON.stringify(cur.config) !== JSON.stringify({ ...cfg, name: cfg.name ?? cfg.id })) await this.update(cfg.id, cfg, 'replace');
  }

  /** Reads a small setting. */
  async setting<T>(key: string): Promise<T | undefined> {
    const rows = await this.#db.query<{ value: T }>('SELECT value FROM settings WHERE key = $1', [key]);
    return rows[0]?.value;
  }

  async setSetting(key: string, value: unknown): Promise<void> {
    await this.#db.query(
      'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()',
      [key, value],
    );
  }
}

/**
 * Lets a client send back the source it read: a URL whose credentials read `***@` gets the stored
 * credentials again, and a left-out password is kept while the URL stays the same.
 */
function keepSecrets(next: Record<string, unknown>, cur: CameraSource): Record<string, unknown> {
  // `hasPassword` is what we show instead of the password; it is not part of the config.
  const { hasPassword: _shown, ...out } = next;
  if (out.kind !== 'rtsp' || cur.kind !== 'rtsp') return out;
  if (typeof out.url === 'string' && /^rtsps?:\/\/\*\*\*@/i.test(out.url)) {
    if (out.url !== publicSource(cur).url) throw new ValidationError('source.url', "has '***' for credentials but is not the stored URL; give the credentials again");
    out.url = cur.url;
  }
  if (out.password === undefined && cur.password !== undefined && out.url === cur.url) out.password = cur.password;
  if (out.username === undefined && cur.username !== undefined && out.url === cur.url) out.username = cur.username;
  return out;
}

/** A source fit to show: no password, credentials in the URL replaced by `***`. */
export function publicSource(s: CameraSource): Record<string, unknown> {
  if (s.kind !== 'rtsp') return { ...s };
  const { password, ...rest } = s;
  return { ...rest, url: s.url.replace(/^(rtsps?:\/\/)[^/@\s]*@/i, '$1***@'), hasPassword: password !== undefined || /^rtsps?:\/\/[^/@\s]*:[^/@\s]*@/i.test(s.url) };
}
