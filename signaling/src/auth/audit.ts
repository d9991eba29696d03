import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson, createLogger, isDatabaseUnavailable, type Database } from '@cctv/core';

const log = createLogger('signaling:audit');

/** What happened, named `area.verb`. */
export const AuditAction = {
  SignIn: 'auth.sign_in',
  SignInFailed: 'auth.sign_in_failed',
  SignInLocked: 'auth.sign_in_locked',
  SignOut: 'auth.sign_out',
  SignOutEverywhere: 'auth.sign_out_everywhere',
  SecondFactor: 'auth.2fa_verified',
  SecondFactorFailed: 'auth.2fa_failed',
  RecoveryCodeUsed: 'auth.recovery_code_used',
  TokenIssued: 'auth.token_issued',
  PasswordChanged: 'auth.password_changed',
  TwoFactorEnabled: 'auth.2fa_enabled',
  TwoFactorDisabled: 'auth.2fa_disabled',
  RecoveryCodesRenewed: 'auth.recovery_codes_renewed',
  SessionRevoked: 'auth.session_revoked',
  UserCreated: 'user.created',
  UserChanged: 'user.changed',
  UserDeleted: 'user.deleted',
  ApiTokenCreated: 'token.created',
  ApiTokenRevoked: 'token.revoked',
  CameraCreated: 'camera.created',
  CameraChanged: 'camera.changed',
  CameraDeleted: 'camera.deleted',
  CameraChangeFailed: 'camera.change_failed',
  SettingsChanged: 'settings.changed',
  NodeEnrolled: 'node.enrolled',
  NodeEnrollmentRefused: 'node.enrollment_refused',
  NodeEnrollmentTokenCreated: 'node.enrollment_token_created',
  NodeDrained: 'node.drained',
  NodeUndrained: 'node.undrained',
  NodeRevoked: 'node.revoked',
  LiveStarted: 'view.live_started',
  PublishStarted: 'live.publish_started',
  ArchivePlayed: 'view.archive_played',
  Exported: 'view.exported',
  ArchiveVerified: 'archive.verified',
  ArchiveDeleted: 'archive.deleted',
  ArchiveProtected: 'archive.protected',
  ArchiveUnprotected: 'archive.unprotected',
  WebhookCreated: 'alerts.webhook_created',
  WebhookDeleted: 'alerts.webhook_deleted',
  WebhookChanged: 'alerts.webhook_changed',
  DeliveryRetried: 'alerts.delivery_retried',
} as const;
export type AuditAction = (typeof AuditAction)[keyof typeof AuditAction];

/** One audit entry. */
export interface AuditEntry {
  seq: number;
  at: Date;
  /** Who: a username, `system`, or `anonymous`. */
  actor: string;
  actorKind: 'user' | 'token' | 'system' | 'anonymous';
  action: string;
  /** What it was done to (a user, a token, a session), when not a camera. */
  target: string | null;
  cameraId: string | null;
  /** Where from (the client's address). */
  ip: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export type AuditInput = Omit<AuditEntry, 'seq' | 'at' | 'prevHash' | 'hash' | 'target' | 'cameraId' | 'ip' | 'details'> &
  Partial<Pick<AuditEntry, 'target' | 'cameraId' | 'ip' | 'details'>> & {
    /** When it happened, when not now (an entry kept while the database was away). */
    at?: Date;
  };

/** The hash before the first entry. */
export const GENESIS = '0'.repeat(64);

interface Row {
  seq: number;
  at: Date;
  actor: string;
  actor_kind: AuditEntry['actorKind'];
  action: string;
  target: string | null;
  camera_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const toEntry = (r: Row): AuditEntry => ({
  seq: Number(r.seq),
  at: r.at,
  actor: r.actor,
  actorKind: r.actor_kind,
  action: r.action,
  target: r.target,
  cameraId: r.camera_id,
  ip: r.ip,
  details: typeof r.details === 'string' ? JSON.parse(r.details) : r.details,
  prevHash: r.prev_hash,
  hash: r.hash,
});

/** hash = SHA-256(previous hash, newline, the entry's fields as canonical JSON). */
export function entryHash(prevHash: string, e: Omit<AuditEntry, 'prevHash' | 'hash'>): string {
  const body = canonicalJson({ seq: e.seq, at: e.at.toISOString(), actor: e.actor, actorKind: e.actorKind, action: e.action, target: e.target, cameraId: e.cameraId, ip: e.ip, details: e.details });
  return createHash('sha256').update(`${prevHash}\n${body}`).digest('hex');
}

/** One place where the chain does not hold. */
export interface ChainBreak {
  /** The entry at which the break shows. */
  seq: number;
  kind: 'altered' | 'missing' | 'inserted' | 'reordered';
  message: string;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  cameraId?: string;
  from?: Date;
  to?: Date;
  /** Entries before this sequence number (pagination, newest first). */
  before?: number;
  limit?: number;
}

// Every instance serializes appends on this lock, so the chain stays a line across processes.
const LOCK_KEY = 7_244_213_002;

/**
 * The append-only audit log. Each entry carries the hash of the one before, so an entry deleted, edited
 * or inserted behind the application's back is found by `verify()`.
 */
export class AuditLog {
  readonly #db: Database;
  /** Entries not yet written because the database was away, oldest first; also on disk. */
  readonly #backlog: AuditInput[] = [];
  readonly #backlogFile: string | null;
  #flushing = false;
  #timer: NodeJS.Timeout | undefined;

  /** `backlogFile`: where entries wait while the database is away (they survive a restart). */
  constructor(db: Database, backlogFile: string | null = null) {
    this.#db = db;
    this.#backlogFile = backlogFile;
    if (backlogFile) {
      try {
        const saved = JSON.parse(readFileSync(backlogFile, 'utf8')) as Array<AuditInput & { at: string }>;
        for (const e of saved) this.#backlog.push({ ...e, at: new Date(e.at) });
      } catch {
        // none kept
      }
      this.#timer = setInterval(() => void this.flush(), 2000);
      this.#timer.unref();
    }
  }

  /** Entries waiting for the database. */
  get backlog(): number {
    return this.#backlog.length;
  }

  /**
   * Appends an entry. Never throws: while the database is away the entry waits (in order, on disk) and is
   * written when it returns, with the time it happened; any other failure is logged.
   */
  async append(input: AuditInput): Promise<AuditEntry | null> {
    const entry = { ...input, at: input.at ?? new Date() };
    if (this.#backlog.length) {
      // Behind entries that wait: the chain keeps the order things happened in.
      this.#keep(entry);
      void this.flush();
      return null;
    }
    const r = await this.#write(entry);
    if (r === 'unavailable') {
      this.#keep(entry);
      return null;
    }
    return r;
  }

  #keep(entry: AuditInput): void {
    this.#backlog.push(entry);
    if (this.#backlogFile) {
      try {
        mkdirSync(dirname(this.#backlogFile), { recursive: true });
        writeFileSync(this.#backlogFile + '.tmp', JSON.stringify(this.#backlog));
        renameSync(this.#backlogFile + '.tmp', this.#backlogFile);
      } catch (error) {
        log.error({ err: error }, 'cannot keep an audit entry on disk');
      }
    }
    if (this.#backlog.length === 1) log.warn({ action: entry.action }, 'the database is unavailable: audit entries wait and are written when it returns');
  }

  /** Writes the entries that waited, in order; stops at the first that cannot be written yet. */
  async flush(): Promise<void> {
    if (this.#flushing || this.#backlog.length === 0) return;
    this.#flushing = true;
    try {
      while (this.#backlog.length) {
        const r = await this.#write(this.#backlog[0]!);
        if (r === 'unavailable') return;
        this.#backlog.shift();
        if (this.#backlogFile) {
          writeFileSync(this.#backlogFile + '.tmp', JSON.stringify(this.#backlog));
          renameSync(this.#backlogFile + '.tmp', this.#backlogFile);
        }
      }
      log.info('audit entries that waited for the database are written');
    } catch (error) {
      log.error({ err: error }, 'cannot update the audit backlog file');
    } finally {
      this.#flushing = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #write(input: AuditInput): Promise<AuditEntry | null | 'unavailable'> {
    try {
      return await this.#db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
        const [last] = await tx.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
        const e = {
          seq: (last ? Number(last.seq) : 0) + 1,
          // Millisecond precision, as Postgres gives it back (timestamptz keeps microseconds).
          at: new Date(Math.floor((input.at ?? new Date()).getTime())),
          actor: input.actor,
          actorKind: input.actorKind,
          action: input.action,
          target: input.target ?? null,
          cameraId: input.cameraId ?? null,
          ip: input.ip ?? null,
          details: input.details ?? {},
        };
        const prevHash = last?.hash ?? GENESIS;
        const hash = entryHash(prevHash, e);
        await tx.query(
          `INSERT INTO audit_log (seq, at, actor, actor_kind, action, target, camera_id, ip, details, prev_hash, hash)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
          [e.seq, e.at, e.actor, e.actorKind, e.action, e.target, e.cameraId, e.ip, e.details, prevHash, hash],
        );
        return { ...e, prevHash, hash };
      });
    } catch (error) {
      if (isDatabaseUnavailable(error)) return 'unavailable';
      log.error({ err: error, action: input.action }, 'could not write an audit entry');
      return null;
    }
  }

  /** Entries matching the filters, newest first. */
  async search(q: AuditQuery = {}): Promise<AuditEntry[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (q.actor) add('actor = ?', q.actor);
    if (q.action) add(q.action.endsWith('.*') ? 'action LIKE ?' : 'action = ?', q.action.endsWith('.*') ? `${q.action.slice(0, -1).replace(/[%_\\]/g, '\\$&')}%` : q.action);
    if (q.cameraId) add('camera_id = ?', q.cameraId);
    if (q.from) add('at >= ?', q.from);
    if (q.to) add('at < ?', q.to);
    if (q.before) add('seq < ?', q.before);
    params.push(Math.min(Math.max(q.limit ?? 100, 1), 1000));
    const rows = await this.#db.query<Row>(
      `SELECT * FROM audit_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${params.length}`,
      params,
    );
    return rows.map(toEntry);
  }

  /**
   * Walks the whole chain and names every place it breaks: an entry whose content no longer matches its
   * hash (altered), a gap in the sequence (missing), an entry whose previous hash is not its
   * predecessor's (inserted or reordered).
   */
  async verify(): Promise<{ ok: boolean; entries: number; breaks: ChainBreak[] }> {
    const breaks: ChainBreak[] = [];
    let prev: { seq: number; hash: string } | null = null;
    let entries = 0;
    const PAGE = 1000;
    for (let after = 0; ; ) {
      const rows = await this.#db.query<Row>('SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2', [after, PAGE]);
      for (const r of rows) {
        const e = toEntry(r);
        entries++;
        const expectedSeq: number = prev ? prev.seq + 1 : 1;
        if (e.seq > expectedSeq) {
          const gap = e.seq - 1 > expectedSeq ? `entries ${expectedSeq}–${e.seq - 1} are` : `entry ${expectedSeq} is`;
          breaks.push({ seq: e.seq, kind: 'missing', message: `${gap} missing before entry ${e.seq}` });
        }
        const expectedPrev = prev?.hash ?? GENESIS;
        if (e.prevHash !== expectedPrev && e.seq === expectedSeq) {
          breaks.push({ seq: e.seq, kind: 'inserted', message: `entry ${e.seq} does not follow entry ${prev?.seq ?? 0}: its previous hash is not that entry's hash (inserted or replaced)` });
        }
        if (entryHash(e.prevHash, e) !== e.hash) {
          breaks.push({ seq: e.seq, kind: 'altered', message: `entry ${e.seq} (${e.action} by ${e.actor}) was altered: its content does not match its hash` });
        }
        prev = { seq: e.seq, hash: e.hash };
        after = e.seq;
      }
      if (rows.length < PAGE) break;
    }
    return { ok: breaks.length === 0, entries, breaks };
  }
}
