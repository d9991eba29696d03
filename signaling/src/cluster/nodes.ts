import { generateKeys, type Database, type KeyPair, type Role } from '@cctv/core';
import { randomToken, tokenId } from '../auth/crypto.js';

/** An enrolled node as the master knows it. */
export interface EnrolledNode {
  id: string;
  roles: Role[];
  publicKey: string;
  boxPublicKey: string;
  drained: boolean;
  enrolledAt: Date;
}

interface Row {
  id: string;
  roles: Role[];
  public_key: string;
  box_public_key: string;
  drained: boolean;
  enrolled_at: Date;
}

const toNode = (r: Row): EnrolledNode => ({ id: r.id, roles: r.roles, publicKey: r.public_key, boxPublicKey: r.box_public_key, drained: r.drained, enrolledAt: r.enrolled_at });
const COLUMNS = 'id, roles, public_key, box_public_key, drained, enrolled_at';

/**
 * The site key (signs the master's commands; nodes check it) and the enrolled nodes' public keys (the
 * master checks every heartbeat, answer and event against them). Keys are cached in memory, so a node
 * is still recognised while the database is away.
 */
export class NodeStore {
  readonly #db: Database;
  #keys = new Map<string, EnrolledNode>();

  constructor(db: Database) {
    this.#db = db;
  }

  /** The site's key pair, made on the first start of the first signaling instance. */
  async siteKey(): Promise<KeyPair> {
    const made = generateKeys();
    // The first instance's key wins a race: ON CONFLICT keeps what is there.
    await this.#db.query("INSERT INTO settings (key, value) VALUES ('site_key', $1) ON CONFLICT (key) DO NOTHING", [made]);
    const [r] = await this.#db.query<{ value: KeyPair | string }>("SELECT value FROM settings WHERE key = 'site_key'");
    return typeof r!.value === 'string' ? (JSON.parse(r!.value) as KeyPair) : r!.value;
  }

  /** Loads every enrolled node's key; returns them. */
  async load(): Promise<EnrolledNode[]> {
    const rows = await this.#db.query<Row>(`SELECT ${COLUMNS} FROM nodes WHERE revoked_at IS NULL ORDER BY id`);
    this.#keys = new Map(rows.map((r) => [r.id, toNode(r)]));
    return [...this.#keys.values()];
  }

  /** The public key of an enrolled node (from the cache). */
  publicKey(id: string): string | undefined {
    return this.#keys.get(id)?.publicKey;
  }

  get(id: string): EnrolledNode | undefined {
    return this.#keys.get(id);
  }

  all(): EnrolledNode[] {
    return [...this.#keys.values()];
  }

  /**
   * Enrols (or re-enrols, with a new key) a node. A node id already enrolled with another key is taken
   * over only through an enrolment, which needs a token or the deployment's secret.
   */
  async enroll(id: string, roles: Role[], publicKey: string, boxPublicKey: string): Promise<EnrolledNode> {
    const [r] = await this.#db.query<Row>(
      `INSERT INTO nodes (id, roles, public_key, box_public_key) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET roles = EXCLUDED.roles, public_key = EXCLUDED.public_key, box_public_key = EXCLUDED.box_public_key, revoked_at = NULL, enrolled_at = now()
       RETURNING ${COLUMNS}`,
      [id, roles, publicKey, boxPublicKey],
    );
    const n = toNode(r!);
    this.#keys.set(id, n);
    return n;
  }

  async setDrained(id: string, drained: boolean): Promise<EnrolledNode | null> {
    const [r] = await this.#db.query<Row>(`UPDATE nodes SET drained = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLUMNS}`, [id, drained]);
    if (!r) return null;
    const n = toNode(r);
    this.#keys.set(id, n);
    return n;
  }

  /** Revokes a node: its messages are dropped from now on. */
  async revoke(id: string): Promise<boolean> {
    const rows = await this.#db.query('UPDATE nodes SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id', [id]);
    this.#keys.delete(id);
    return rows.length > 0;
  }

  /** Makes a one-time enrolment token (shown once). */
  async createToken(roles: Role[], createdBy: string, ttlMs: number): Promise<{ token: string; expiresAt: Date }> {
    const token = `cctv_enroll_${randomToken()}`;
    const expiresAt = new Date(Date.now() + ttlMs);
    await this.#db.query('INSERT INTO enrollment_tokens (id, roles, created_by, expires_at) VALUES ($1, $2, $3, $4)', [tokenId(token), roles, createdBy, expiresAt]);
    return { token, expiresAt };
  }

  /** Uses up a token for a node; the roles it allows, or null when it is unknown, used or expired. */
  async useToken(token: string, nodeId: string): Promise<Role[] | null> {
    const [r] = await this.#db.query<{ roles: Role[] }>(
      'UPDATE enrollment_tokens SET used_at = now(), used_by = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > now() RETURNING roles',
      [tokenId(token), nodeId],
    );
    return r?.roles ?? null;
  }
}
