import {
  CameraSchema, MotionSchema, TypedEmitter, ValidationError, canonicalJson, createLogger, isDatabaseUnavailable, parseWith,
  type CameraConfig, type CameraSource, type Database, type Queryable,
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
  placement: CameraConfig['placement'];
  recording: Partial<CameraConfig['recording']>;
  motion: unknown;
  version: number;
  created_at: Date;
  updated_at: Date;
}

const json = <T>(v: T | string): T => (typeof v === 'string' ? (JSON.parse(v) as T) : v);

function fromRow(r: Row): StoredCamera {
  const p: Partial<CameraConfig['placement']> = json(r.placement ?? {});
  const placement: CameraConfig['placement'] = { require: p.require ?? {}, prefer: p.prefer ?? {}, ...(p.node ? { node: p.node } : {}) };
  const rec: Partial<CameraConfig['recording']> = json(r.recording ?? {});
  const recording: CameraConfig['recording'] = { enabled: rec.enabled ?? true, retainDays: rec.retainDays ?? 30, retainBytes: rec.retainBytes ?? 0, storageCodec: rec.storageCodec ?? 'copy' };
  // Motion settings are stored as they were validated; defaults added since fill what is missing.
  const motion = MotionSchema.safeParse(json(r.motion ?? {}));
  return {
    config: { id: r.id, name: r.name, enabled: r.enabled, source: json(r.source), placement, recording, motion: motion.success ? motion.data : MotionSchema.parse({}) },
    version: Number(r.version),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

const COLUMNS = 'id, name, enabled, source, placement, recording, motion, version, created_at, updated_at';

/**
 * Cameras in the database, the source of truth. Input is validated here, once, and a change is stored
 * before it is announced. The last cameras read are kept, and served while the database is away (reads
 * only: a change needs the database).
 */
export class CameraStore extends TypedEmitter<CameraStoreEvents> {
  readonly #db: Database;
  #cache: Map<string, StoredCamera> | null = null;

  constructor(db: Database) {
    super();
    this.#db = db;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'camera listener failed');
  }

  async list(): Promise<StoredCamera[]> {
    try {
      const rows = await this.#db.query<Row>(`SELECT ${COLUMNS} FROM cameras ORDER BY id`);
      const list = rows.map(fromRow);
      this.#cache = new Map(list.map((c) => [c.config.id, c]));
      return list;
    } catch (error) {
      if (isDatabaseUnavailable(error) && this.#cache) return [...this.#cache.values()];
      throw error;
    }
  }

  async get(id: string): Promise<StoredCamera | null> {
    try {
      const rows = await this.#db.query<Row>(`SELECT ${COLUMNS} FROM cameras WHERE id = $1`, [id]);
      const cam = rows[0] ? fromRow(rows[0]) : null;
      if (this.#cache) {
        if (cam) this.#cache.set(id, cam);
        else this.#cache.delete(id);
      }
      return cam;
    } catch (error) {
      if (isDatabaseUnavailable(error) && this.#cache) return this.#cache.get(id) ?? null;
      throw error;
    }
  }

  /** The camera as last read, without asking the database. */
  cached(id: string): StoredCamera | null {
    return this.#cache?.get(id) ?? null;
  }

  /**
   * What an update would store, computed from the last read camera, without writing (to check a change
   * that must wait for the database). Null when the camera is not known.
   */
  preview(id: string, input: unknown, mode: 'replace' | 'merge'): CameraConfig | null {
    const cur = this.cached(id);
    if (!cur) return null;
    return mergeConfig(id, cur.config, input, mode);
  }

  /** Validates and stores a new camera; returns null when the id is taken. */
  async create(input: unknown): Promise<StoredCamera | null> {
    const cfg = parseWith(CameraSchema, input);
    const cam = await this.#db.transaction(async (tx) => {
      const rows = await tx.query<Row>(
        `INSERT INTO cameras (id, name, enabled, source, placement, recording, motion) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO NOTHING RETURNING ${COLUMNS}`,
        [cfg.id, cfg.name ?? cfg.id, cfg.enabled, cfg.source, cfg.placement, cfg.recording, cfg.motion],
      );
      if (rows[0]) await bumpConfigVersion(tx);
      return rows[0] ? fromRow(rows[0]) : null;
    });
    if (cam) {
      this.#cache?.set(cam.config.id, cam);
      this.safeEmit('changed', cam);
    }
    return cam;
  }

  /** The config version (bumped at every change of any camera) and the highest master epoch that wrote. */
  async clusterState(): Promise<{ configVersion: number; epoch: number }> {
    const [r] = await this.#db.query<{ v: number; e: number }>('SELECT config_version AS v, epoch AS e FROM cluster_state WHERE id = 1');
    return { configVersion: Number(r?.v ?? 0), epoch: Number(r?.e ?? 0) };
  }

  /**
   * Replaces a camera's config (PUT) or merges fields into it (PATCH). A source given without its
   * password keeps the stored one when the URL is unchanged, so that a client can send back what it read.
   */
  async update(id: string, input: unknown, mode: 'replace' | 'merge'): Promise<StoredCamera | null> {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ValidationError('', 'the body must be a JSON object');
    return this.#db.transaction(async (tx) => {
      const rows = await tx.query<Row>(`SELECT ${COLUMNS} FROM cameras WHERE id = $1 FOR UPDATE`, [id]);
      if (!rows[0]) return null;
      const cfg = mergeConfig(id, fromRow(rows[0]).config, input, mode);
      const out = await tx.query<Row>(
        `UPDATE cameras SET name = $2, enabled = $3, source = $4, placement = $5, recording = $6, motion = $7, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, cfg.name ?? id, cfg.enabled, cfg.source, cfg.placement, cfg.recording, cfg.motion],
      );
      await bumpConfigVersion(tx);
      return fromRow(out[0]!);
    }).then((cam) => {
      if (cam) {
      this.#cache?.set(cam.config.id, cam);
      this.safeEmit('changed', cam);
    }
      return cam;
    });
  }

  /** Removes a camera; false when there was none. */
  async remove(id: string): Promise<boolean> {
    const rows = await this.#db.transaction(async (tx) => {
      const r = await tx.query<{ id: string }>('DELETE FROM cameras WHERE id = $1 RETURNING id', [id]);
      if (r.length) await bumpConfigVersion(tx);
      return r;
    });
    if (rows.length === 0) return false;
    this.#cache?.delete(id);
    this.safeEmit('removed', id);
    return true;
  }

  /** Creates or replaces a camera from the config file (at start). */
  async upsert(cfg: CameraConfig): Promise<void> {
    const cur = await this.get(cfg.id);
    if (!cur) await this.create(cfg);
    else if (canonicalJson(cur.config) !== canonicalJson({ ...cfg, name: cfg.name ?? cfg.id })) await this.update(cfg.id, cfg, 'replace');
  }

  /** Reads a small setting. */
  async setting<T>(key: string): Promise<T | undefined> {
    const rows = await this.#db.query<{ value: T }>('SELECT value FROM settings WHERE key = $1', [key]);
    return rows[0]?.value;
  }

  async setSetting(key: string, value: unknown): Promise<void> {
    await this.#db.query(
      // As JSON text cast to jsonb: a bare boolean or number would otherwise be sent as that type.
      'INSERT INTO settings (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()',
      [key, JSON.stringify(value)],
    );
  }
}

/** A camera's config after a PUT (`replace`) or PATCH (`merge`) body, validated. */
function mergeConfig(id: string, cur: CameraConfig, input: unknown, mode: 'replace' | 'merge'): CameraConfig {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new ValidationError('', 'the body must be a JSON object');
  const body = input as Record<string, unknown>;
  if (body.id !== undefined && body.id !== id) throw new ValidationError('id', `must be '${id}' (the id in the URL) or left out`);
  const merged: Record<string, unknown> = mode === 'merge' ? { ...cur, ...body, id } : { ...body, id };
  if (merged.source && typeof merged.source === 'object') merged.source = keepSecrets(merged.source as Record<string, unknown>, cur.source);
  return parseWith(CameraSchema, merged);
}

async function bumpConfigVersion(tx: Queryable): Promise<void> {
  await tx.query('UPDATE cluster_state SET config_version = config_version + 1 WHERE id = 1');
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
