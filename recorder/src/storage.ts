import { fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TimeoutError, TypedEmitter, UnavailableError, createLogger, gauge, counter, type Database, type StorageConfig } from '@cctv/core';
import type { ProbeResult, StorageIdentity, WorkerRequest } from './storageProtocol.js';

const log = createLogger('recorder:storage');

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Why a storage cannot be written to now. */
export const StorageProblem = {
  /** The directory does not exist. */
  Missing: 'missing',
  /** `requireMount` is set and the path is not a mount point, or it is empty where an archive was (not mounted). */
  NotMounted: 'not-mounted',
  /** It has an identity file of another storage, or none where the database says there should be one. */
  IdentityMismatch: 'identity-mismatch',
  ReadOnly: 'read-only',
  Full: 'full',
  /** Operations fail with ENOTCONN, ESTALE, EIO…: a FUSE daemon, NFS or SMB server went away. */
  Disconnected: 'disconnected',
  /** An operation did not finish within `ioTimeoutMs`: the mount hangs. */
  Hung: 'hung',
  Error: 'error',
} as const;
export type StorageProblem = (typeof StorageProblem)[keyof typeof StorageProblem];

export interface StorageStatus {
  id: string;
  path: string;
  available: boolean;
  problem: StorageProblem | null;
  detail: string | null;
  freeBytes: number | null;
  totalBytes: number | null;
  /** When the last check ran, ms. */
  checkedAt: number;
  /** Since when it has been unavailable, ms (0 while available). */
  unavailableSince: number;
}

export interface StorageEvents extends Record<string, unknown[]> {
  status: [StorageStatus];
}

const storageUp = gauge('cctv_storage_available', 'Whether the storage can be written to (1) or not (0).', ['storage']);
const storageFree = gauge('cctv_storage_free_bytes', 'Free bytes on the storage, as last checked.', ['storage']);
const storageOpsFailed = counter('cctv_storage_operation_failures_total', 'Storage operations that failed or timed out, by problem.', ['storage', 'problem']);

const DISCONNECTED_CODES = new Set(['ENOTCONN', 'ESTALE', 'EIO', 'EHOSTDOWN', 'ECONNABORTED', 'ECONNRESET', 'ENXIO', 'ENODEV']);
// Workers stuck in an uninterruptible wait cannot be killed; past this many we stop making new ones.
const MAX_STUCK_WORKERS = 4;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

class StorageError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'StorageError';
    this.code = code;
  }
}

function workerEntry(): { file: string; execArgv: string[] } {
  const self = fileURLToPath(import.meta.url);
  if (self.endsWith('.ts')) return { file: self.replace(/storage\.ts$/, 'storageWorker.ts'), execArgv: ['--import', 'tsx'] };
  return { file: self.replace(/storage\.js$/, 'storageWorker.js'), execArgv: [] };
}

export interface StorageOptions {
  config: StorageConfig;
  db: Database;
  /** The site this archive belongs to (written in the identity file). */
  site: string;
  ioTimeoutMs: number;
}

/**
 * One storage directory (a NAS share or a disk), reached only through a worker process with a deadline
 * on every operation. Before anything is written its identity file must match the database; an empty
 * directory where an archive was is taken for an unmounted share and never written to.
 */
export class Storage extends TypedEmitter<StorageEvents> {
  readonly id: string;
  readonly path: string;
  readonly #o: StorageOptions;
  #worker: ChildProcess | null = null;
  #stuck = 0;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #status: StorageStatus;
  #remounting = false;
  #closed = false;

  constructor(o: StorageOptions) {
    super();
    this.#o = o;
    this.id = o.config.id;
    this.path = o.config.path;
    this.#status = { id: this.id, path: this.path, available: false, problem: StorageProblem.Error, detail: 'not checked yet', freeBytes: null, totalBytes: null, checkedAt: 0, unavailableSince: Date.now() };
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'storage listener failed');
  }

  get status(): StorageStatus {
    return this.#status;
  }

  /** The free-space floor retention keeps. */
  get minFreeBytes(): number {
    return this.#o.config.minFreeBytes;
  }

  get available(): boolean {
    return this.#status.available;
  }

  #ensureWorker(): ChildProcess {
    if (this.#worker && this.#worker.connected) return this.#worker;
    if (this.#stuck >= MAX_STUCK_WORKERS) throw new StorageError('EHUNG', `${this.#stuck} storage workers are stuck on ${this.path}; not starting another`);
    const { file, execArgv } = workerEntry();
    const w = fork(file, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    w.stderr?.on('data', (d: Buffer) => log.debug({ storage: this.id }, d.toString().trim()));
    w.on('message', (m: { id: number; ok: boolean; result?: unknown; error?: { code: string; message: string } }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.ok) p.resolve(m.result);
      else p.reject(new StorageError(m.error?.code ?? 'EIO', m.error?.message ?? 'storage operation failed'));
    });
    w.on('exit', () => {
      if (this.#worker === w) this.#worker = null;
      for (const [id, p] of this.#pending) {
        if ((p as Pending & { worker?: ChildProcess }).worker !== w) continue;
        this.#pending.delete(id);
        clearTimeout(p.timer);
        p.reject(new StorageError('EWORKER', 'the storage worker exited'));
      }
    });
    w.on('error', () => {});
    this.#worker = w;
    return w;
  }

  /** Sends one request to the worker; past the deadline the worker is killed and the request fails as hung. */
  async #call<T>(req: DistributiveOmit<WorkerRequest, 'id'>, timeoutMs = this.#o.ioTimeoutMs): Promise<T> {
    if (this.#closed) throw new UnavailableError('STORAGE_CLOSED', `storage ${this.id} is closed`, 1);
    const w = this.#ensureWorker();
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        // A hung mount: this worker may never come back. Kill it and forget it; the next call gets a new one.
        log.warn({ storage: this.id, op: req.op, timeoutMs }, 'storage operation timed out; abandoning its worker');
        if (this.#worker === w) this.#worker = null;
        this.#stuck++;
        w.once('exit', () => this.#stuck--);
        w.kill('SIGKILL');
        for (const [other, p] of this.#pending) {
          if ((p as Pending & { worker?: ChildProcess }).worker === w) {
            this.#pending.delete(other);
            clearTimeout(p.timer);
            p.reject(new StorageError('EHUNG', `storage ${this.id} did not answer within ${timeoutMs} ms`));
          }
        }
        reject(new StorageError('EHUNG', `storage ${this.id} did not answer a ${req.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      const p: Pending & { worker: ChildProcess } = { resolve: resolve as (v: unknown) => void, reject, timer, worker: w };
      this.#pending.set(id, p);
      w.send({ ...req, id } as WorkerRequest, (error) => {
        if (!error) return;
        this.#pending.delete(id);
        clearTimeout(timer);
        reject(new StorageError('EWORKER', `cannot reach the storage worker: ${error.message}`));
      });
    });
  }

  /** The problem an operation's error stands for. */
  static problemOf(error: unknown): StorageProblem {
    const code = (error as { code?: string })?.code ?? '';
    if (code === 'EHUNG') return StorageProblem.Hung;
    if (code === 'ENOTMOUNTED') return StorageProblem.NotMounted;
    if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return StorageProblem.ReadOnly;
    if (code === 'ENOSPC' || code === 'EDQUOT') return StorageProblem.Full;
    if (DISCONNECTED_CODES.has(code)) return StorageProblem.Disconnected;
    if (code === 'ENOENT') return StorageProblem.Missing;
    return StorageProblem.Error;
  }

  /**
   * Checks the storage: mounted, identity matching the database (a new, empty storage is initialised
   * here), writable, free space. Updates and returns the status; never throws.
   */
  async check(): Promise<StorageStatus> {
    let problem: StorageProblem | null = null;
    let detail: string | null = null;
    let free: number | null = this.#status.freeBytes;
    let total: number | null = this.#status.totalBytes;
    try {
      const pr = await this.#call<ProbeResult>({ op: 'probe', root: this.path, requireMount: this.#o.config.requireMount });
      free = pr.freeBytes;
      total = pr.totalBytes;
      const rows = await this.#o.db.query<{ id: string }>('SELECT id FROM storages WHERE id = $1', [this.id]);
      const known = rows.length > 0;
      if (!pr.exists && !known && !this.#o.config.requireMount) {
        // A first start: the archive directory is made (a NAS mount point is never made: requireMount).
        await this.#call({ op: 'mkdir', root: this.path });
        return this.check();
      } else if (!pr.exists) {
        problem = StorageProblem.Missing;
        detail = `${this.path} does not exist`;
      } else if (this.#o.config.requireMount && !pr.isMount) {
        problem = StorageProblem.NotMounted;
        detail = `${this.path} is not a mount point (requireMount is set): the share is not mounted`;
      } else if (!pr.identity) {
        if (known) {
          problem = pr.entries === 0 ? StorageProblem.NotMounted : StorageProblem.IdentityMismatch;
          detail = pr.entries === 0
            ? `${this.path} is empty but the database has storage ${this.id} there: the share is not mounted`
            : `${this.path} has no identity file but the database has storage ${this.id} there`;
        } else if (pr.entries > 0) {
          problem = StorageProblem.IdentityMismatch;
          detail = `${this.path} is not empty and has no identity file; give the archive an empty directory`;
        } else {
          const identity: StorageIdentity = { storageId: this.id, site: this.#o.site, createdAt: new Date().toISOString() };
          await this.#call({ op: 'init', root: this.path, identity });
          await this.#o.db.query('INSERT INTO storages (id, path) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [this.id, this.path]);
          log.info({ storage: this.id, path: this.path }, 'initialised a new storage (identity file written)');
          return this.check();
        }
      } else if (pr.identity.storageId !== this.id || pr.identity.site !== this.#o.site) {
        problem = StorageProblem.IdentityMismatch;
        detail = `${this.path} belongs to storage ${pr.identity.storageId} of site ${pr.identity.site}, not ${this.id} of ${this.#o.site}`;
      } else if (!known) {
        // The identity file is ours (same site): the database lost the row (restored elsewhere). Re-attach.
        await this.#o.db.query('INSERT INTO storages (id, path) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [this.id, this.path]);
        log.info({ storage: this.id, path: this.path }, 're-attached a storage found with this site\'s identity');
      } else if (!pr.writable) {
        problem = Storage.problemOf(pr.writeError);
        if (problem === StorageProblem.Missing || problem === StorageProblem.Error) problem = StorageProblem.Error;
        detail = `cannot write to ${this.path}: ${pr.writeError?.message ?? 'unknown error'}`;
      }
      if (!problem && pr.freeBytes < Math.min(this.#o.config.minFreeBytes / 4, 64 * 1024 * 1024)) {
        problem = StorageProblem.Full;
        detail = `${this.path} has ${pr.freeBytes} bytes free`;
      }
    } catch (error) {
      problem = Storage.problemOf(error);
      detail = (error as Error).message;
    }
    this.#setStatus(problem, detail, free, total);
    return this.#status;
  }

  /** Marks the storage unavailable after an operation failed with `error` (a check brings it back). */
  fail(error: unknown): void {
    const problem = Storage.problemOf(error);
    storageOpsFailed.inc({ storage: this.id, problem });
    this.#setStatus(problem, (error as Error).message, this.#status.freeBytes, this.#status.totalBytes);
  }

  #setStatus(problem: StorageProblem | null, detail: string | null, free: number | null, total: number | null): void {
    const was = this.#status;
    const available = problem === null;
    this.#status = {
      id: this.id, path: this.path, available, problem, detail, freeBytes: free, totalBytes: total, checkedAt: Date.now(),
      unavailableSince: available ? 0 : was.available || was.unavailableSince === 0 ? Date.now() : was.unavailableSince,
    };
    storageUp.set({ storage: this.id }, available ? 1 : 0);
    if (free !== null) storageFree.set({ storage: this.id }, free);
    if (was.available !== available || was.problem !== problem) {
      if (available) log.info({ storage: this.id, path: this.path }, 'storage available');
      else log.error({ storage: this.id, path: this.path, problem, detail }, 'storage unavailable; recordings wait in the spool');
      this.safeEmit('status', this.#status);
      if (!available) this.#remount();
    }
  }

  #remount(): void {
    const cmd = this.#o.config.remountCommand;
    if (!cmd || this.#remounting) return;
    this.#remounting = true;
    log.info({ storage: this.id }, 'running the remount command');
    const child = spawn('sh', ['-c', cmd], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      this.#remounting = false;
      log.info({ storage: this.id, code }, 'remount command finished');
    });
    child.on('error', () => {});
  }

  /** Copies a spooled file to `rel`, syncs it, reads it back and checks its SHA-256. */
  async put(src: string, rel: string, sha256: string): Promise<void> {
    await this.#call({ op: 'put', root: this.path, rel, src, sha256, requireMount: this.#o.config.requireMount });
  }

  async putData(rel: string, data: Buffer, sha256: string): Promise<void> {
    await this.#call({ op: 'putData', root: this.path, rel, data: new Uint8Array(data), sha256, requireMount: this.#o.config.requireMount });
  }

  async hash(rel: string): Promise<{ sha256: string; bytes: number }> {
    return this.#call({ op: 'hash', root: this.path, rel }, Math.max(this.#o.ioTimeoutMs, 30_000));
  }

  async read(rel: string): Promise<Buffer> {
    const r = await this.#call<{ data: Uint8Array }>({ op: 'read', root: this.path, rel });
    return Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength);
  }

  async remove(rel: string): Promise<void> {
    await this.#call({ op: 'remove', root: this.path, rel });
  }

  async list(rel: string): Promise<string[]> {
    return (await this.#call<{ files: string[] }>({ op: 'list', root: this.path, rel }, Math.max(this.#o.ioTimeoutMs, 60_000))).files;
  }

  close(): void {
    this.#closed = true;
    for (const [, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new StorageError('ECLOSED', 'storage closed'));
    }
    this.#pending.clear();
    this.#worker?.kill('SIGKILL');
    this.#worker = null;
    this.removeAllListeners();
  }
}

export { StorageError, TimeoutError };
