import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CameraSchema, TypedEmitter, ValidationError, createLogger, isDatabaseUnavailable, parseWith } from '@cctv/core';
import type { CameraStore } from './cameras.js';
import { AuditAction, type AuditLog } from './auth/audit.js';

const log = createLogger('signaling:changes');

/** A camera change made while the database was away, waiting to be stored. */
export interface QueuedChange {
  id: string;
  /** When it was asked for, ms. */
  at: number;
  op: 'create' | 'replace' | 'merge' | 'remove';
  camera: string;
  body?: unknown;
  actor: string;
  actorKind: 'user' | 'token';
  ip: string | null;
}

/** A queued change that could not be applied when the database returned. */
export interface FailedChange extends QueuedChange {
  failedAt: number;
  error: string;
}

export interface ChangeQueueEvents extends Record<string, unknown[]> {
  applied: [QueuedChange];
  failed: [FailedChange];
}

/**
 * Camera changes asked for while Postgres is away: checked now (a change that could never apply is
 * refused at once), kept in order in a file of the data folder (they survive a restart), and applied
 * when the database returns, each audited with the time it was asked for. One that no longer applies
 * then (the camera was removed meanwhile, say) is kept in the failed list with why.
 */
export class ChangeQueue extends TypedEmitter<ChangeQueueEvents> {
  readonly #file: string;
  readonly #store: CameraStore;
  readonly #audit: AuditLog;
  #queue: QueuedChange[] = [];
  readonly #failed: FailedChange[] = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing = false;

  constructor(file: string, store: CameraStore, audit: AuditLog) {
    super();
    this.#file = file;
    this.#store = store;
    this.#audit = audit;
    try {
      this.#queue = JSON.parse(readFileSync(file, 'utf8')) as QueuedChange[];
    } catch {
      this.#queue = [];
    }
    this.#timer = setInterval(() => void this.flush(), 2000);
    this.#timer.unref();
  }

  list(): QueuedChange[] {
    return [...this.#queue];
  }

  failed(): FailedChange[] {
    return [...this.#failed];
  }

  /** Checks a change against the cameras as last read and queues it; throws ValidationError when it cannot apply. */
  add(c: Omit<QueuedChange, 'id' | 'at'>): QueuedChange {
    const queuedIds = (op: QueuedChange['op']) => new Set(this.#queue.filter((q) => q.op === op).map((q) => q.camera));
    const exists = (id: string) => (!!this.#store.cached(id) || queuedIds('create').has(id)) && !queuedIds('remove').has(id);
    if (c.op === 'create') {
      const cfg = parseWith(CameraSchema, c.body);
      if (exists(cfg.id)) throw new ValidationError('id', `a camera with id '${cfg.id}' exists`);
      c = { ...c, camera: cfg.id };
    } else if (!exists(c.camera)) {
      throw new ValidationError('id', `no camera with id '${c.camera}' is known while the database is away`);
    } else if (c.op !== 'remove' && this.#store.cached(c.camera)) {
      this.#store.preview(c.camera, c.body, c.op);
    }
    const q: QueuedChange = { ...c, id: randomUUID(), at: Date.now() };
    this.#queue.push(q);
    this.#save();
    log.warn({ camera: q.camera, op: q.op, queued: this.#queue.length }, 'the database is away: camera change queued');
    return q;
  }

  #save(): void {
    mkdirSync(dirname(this.#file), { recursive: true });
    writeFileSync(this.#file + '.tmp', JSON.stringify(this.#queue));
    renameSync(this.#file + '.tmp', this.#file);
  }

  /** Applies queued changes in order; stops at the first that must still wait. */
  async flush(): Promise<void> {
    if (this.#flushing || this.#queue.length === 0) return;
    this.#flushing = true;
    try {
      while (this.#queue.length) {
        const q = this.#queue[0]!;
        let error: string | null = null;
        try {
          const ok =
            q.op === 'create' ? !!(await this.#store.create(q.body))
            : q.op === 'remove' ? await this.#store.remove(q.camera)
            : !!(await this.#store.update(q.camera, q.body, q.op));
          if (!ok) error = q.op === 'create' ? `a camera with id '${q.camera}' exists` : `no camera with id '${q.camera}'`;
        } catch (e) {
          if (isDatabaseUnavailable(e)) return;
          error = (e as Error).message;
        }
        this.#queue.shift();
        this.#save();
        const details = { queuedAt: new Date(q.at).toISOString(), op: q.op, ...(error ? { error } : {}) };
        const action = error ? AuditAction.CameraChangeFailed : q.op === 'create' ? AuditAction.CameraCreated : q.op === 'remove' ? AuditAction.CameraDeleted : AuditAction.CameraChanged;
        await this.#audit.append({ actor: q.actor, actorKind: q.actorKind, action, cameraId: q.camera, ip: q.ip, details });
        if (error) {
          const f: FailedChange = { ...q, failedAt: Date.now(), error };
          this.#failed.push(f);
          if (this.#failed.length > 100) this.#failed.shift();
          log.error({ camera: q.camera, op: q.op, error }, 'a queued camera change could not be applied');
          this.safeEmit('failed', f);
        } else {
          log.info({ camera: q.camera, op: q.op }, 'queued camera change applied');
          this.safeEmit('applied', q);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
