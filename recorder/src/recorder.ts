import { createHash } from 'node:crypto';
import { open, readdir, rm, rmdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  TypedEmitter, counter, createLogger, gauge, histogram, isDatabaseUnavailable, requireExecutable,
  type CameraConfig, type Config, type Database,
} from '@cctv/core';
import { Archive, RANGE_JOIN_MS, initStoragePath, storagePath, type SegmentRow } from './archive.js';
import { Segmenter, recoverSpool, type SpooledSegment, type StreamSource } from './segmenter.js';
import { Storage, type StorageStatus } from './storage.js';
import { applyRetention, type RetentionResult } from './retention.js';

const log = createLogger('recorder');

const segmentsWritten = counter('cctv_recorder_segments_total', 'Segments recorded (finished, hashed and entered in the database).', ['camera']);
const bytesWritten = counter('cctv_recorder_bytes_total', 'Bytes of segments recorded.', ['camera']);
const spoolSegments = gauge('cctv_recorder_spool_segments', 'Segments waiting in the spool for the storage.');
const spoolBytes = gauge('cctv_recorder_spool_bytes', 'Bytes waiting in the spool for the storage.');
const spoolOldest = gauge('cctv_recorder_spool_oldest_age_seconds', 'Age of the oldest segment waiting in the spool.');
const spoolDropped = counter('cctv_recorder_spool_dropped_total', 'Spooled segments given up because the spool reached its size limit.', ['camera']);
const uploadSeconds = histogram('cctv_recorder_upload_seconds', 'Time to copy a segment to the storage, read it back and check it.', [], [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
const uploadFailures = counter('cctv_recorder_upload_failures_total', 'Segment copies to the storage that failed.', ['problem']);
const gapSeconds = counter('cctv_recorder_gap_seconds_total', 'Seconds between the end of one recording run and the start of the next, per camera.', ['camera']);
const recording = gauge('cctv_recorder_recording', 'Whether the camera is being recorded now (1) or waits for video (0).', ['camera']);

export interface RecorderOptions {
  config: Readonly<Config>;
  db: Database;
  /** This recorder's id (its node id). */
  id: string;
  /** The site the archive belongs to (in the storage's identity file). */
  site: string;
  source: StreamSource;
  /** Address the SFU sends RTP to; default 127.0.0.1. */
  listenHost?: string;
  /** Record of what retention deleted, for the audit log. */
  onDeleted?: (r: RetentionResult) => void;
}

export interface RecorderStatus {
  id: string;
  storage: StorageStatus;
  spool: { dir: string; segments: number; bytes: number; oldestAgeS: number | null; maxBytes: number; warning: string | null };
  cameras: Array<{ id: string; recording: boolean; lastPacketAt: number }>;
}

export interface RecorderEvents extends Record<string, unknown[]> {
  /** A segment was entered in the database. */
  segment: [{ camera: string; id: number; startMs: number; durationMs: number }];
  /** A segment is on the storage, verified. */
  stored: [{ camera: string; id: number }];
  storage: [StorageStatus];
}

/**
 * The recorder role: records each camera it is given into the spool (one Segmenter per camera), enters
 * every finished segment in the database with its SHA-256 in the camera's chain, copies it to the
 * storage (fsync, read back, compare) and only then removes it from the spool. The storage can vanish,
 * hang, fill or turn read-only at any time: recording goes on into the spool, and the copies resume when
 * it is back.
 */
export class Recorder extends TypedEmitter<RecorderEvents> {
  readonly id: string;
  readonly archive: Archive;
  readonly storage: Storage;
  readonly spoolDir: string;
  readonly #o: RecorderOptions;
  readonly #segmenters = new Map<string, Segmenter>();
  #cameras = new Map<string, CameraConfig>();
  readonly #ingestQueue: SpooledSegment[] = [];
  #ingesting = false;
  #uploadWake: (() => void) | null = null;
  #uploading: Promise<void> = Promise.resolve();
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  readonly #inits = new Map<string, string>();
  readonly #lastRunEnd = new Map<string, number>();
  #ffmpeg = '';
  #spool = { segments: 0, bytes: 0, oldestMs: null as number | null };
  #retention: Promise<unknown> = Promise.resolve();

  constructor(o: RecorderOptions) {
    super();
    this.#o = o;
    this.id = o.id;
    this.archive = new Archive(o.db);
    const rc = o.config.recorder;
    this.spoolDir = resolve(rc.spoolDir ?? join(o.config.dataDir, 'spool'));
    const storage = rc.storage ?? { id: 'nas', path: join(o.config.dataDir, 'archive'), requireMount: false, minFreeBytes: 1024 ** 3 };
    this.storage = new Storage({ config: { ...storage, path: resolve(storage.path) }, db: o.db, site: o.site, ioTimeoutMs: rc.ioTimeoutMs });
    this.storage.on('status', (s) => {
      this.safeEmit('storage', s);
      if (s.available) this.#wake();
    });
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'recorder listener failed');
  }

  async start(): Promise<void> {
    this.#ffmpeg = requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(this.spoolDir, { recursive: true });
    const st = await this.storage.check();
    if (!st.available) log.warn({ storage: st.id, problem: st.problem, detail: st.detail }, 'the storage is not available; recording into the spool until it is');
    await this.#refreshSpool();
    await this.#recoverSpool();
    this.#uploading = this.#uploadLoop();
    this.#timers.push(setInterval(() => void this.storage.check().then(() => this.#wake()), 10_000));
    this.#timers.push(setInterval(() => void this.#refreshSpool(), 5000));
    this.#timers.push(setInterval(() => this.runRetention(), this.#o.config.recorder.retentionIntervalS * 1000));
    for (const t of this.#timers) t.unref();
    log.info({ recorder: this.id, spool: this.spoolDir, storage: this.storage.path }, 'recorder running');
  }

  /** Records exactly these cameras (those with recording enabled); starts and stops segmenters to match. */
  setCameras(cameras: CameraConfig[]): Promise<void> {
    // One change at a time, in the order asked; none once closing.
    const next = this.#setting.then(() => (this.#closing ? undefined : this.#applyCameras(cameras)));
    this.#setting = next.catch((error: unknown) => log.error({ err: error }, 'cannot apply the cameras to record'));
    return next;
  }

  #setting: Promise<void> = Promise.resolve();
  readonly #storageCodec = new Map<string, string>();
  #closing = false;

  async #applyCameras(cameras: CameraConfig[]): Promise<void> {
    const want = new Map(cameras.filter((c) => c.enabled && c.recording.enabled).map((c) => [c.id, c]));
    this.#cameras = new Map(cameras.map((c) => [c.id, c]));
    for (const [id, seg] of this.#segmenters) {
      // A changed storage codec takes a new segmenter (a new run).
      if (!want.has(id) || this.#storageCodec.get(id) !== want.get(id)!.recording.storageCodec) {
        this.#segmenters.delete(id);
        recording.set({ camera: id }, 0);
        await seg.close();
      }
    }
    for (const id of want.keys()) {
      if (this.#segmenters.has(id) || this.#closed) continue;
      const seg = new Segmenter({
        camera: id, spoolDir: this.spoolDir, source: this.#o.source, ffmpeg: this.#ffmpeg,
        segmentSeconds: this.#o.config.recorder.segmentSeconds, ...(this.#o.listenHost ? { listenHost: this.#o.listenHost } : {}),
        ...(want.get(id)!.recording.storageCodec === 'H265' ? { h265: this.#o.config.recorder.h265 } : {}),
      });
      this.#storageCodec.set(id, want.get(id)!.recording.storageCodec);
      seg.on('segment', (s) => this.#enqueue(s));
      seg.on('state', (s) => {
        recording.set({ camera: id }, s === 'recording' ? 1 : 0);
        if (s === 'recording') {
          const end = this.#lastRunEnd.get(id);
          if (end) gapSeconds.inc({ camera: id }, Math.max(0, (Date.now() - end) / 1000));
        } else this.#lastRunEnd.set(id, Date.now());
      });
      seg.on('runEnded', (e) => {
        if (e.reason !== 'rotation') this.#endReasons.set(id, e.reason);
        void this.#cleanSpool(id);
      });
      this.#segmenters.set(id, seg);
      await seg.start();
    }
  }

  /** The UDP port each recorded camera's RTP is to be sent to. */
  ports(): Record<string, number> {
    return Object.fromEntries([...this.#segmenters.values()].filter((s) => s.port > 0).map((s) => [s.camera, s.port]));
  }

  status(): RecorderStatus {
    const maxBytes = this.#o.config.recorder.spoolMaxBytes;
    const warn = this.#spool.bytes > maxBytes * this.#o.config.recorder.spoolWarnRatio
      ? `the spool holds ${this.#spool.bytes} of its ${maxBytes} bytes`
      : null;
    return {
      id: this.id,
      storage: this.storage.status,
      spool: {
        dir: this.spoolDir, segments: this.#spool.segments, bytes: this.#spool.bytes, maxBytes, warning: warn,
        oldestAgeS: this.#spool.oldestMs === null ? null : Math.max(0, (Date.now() - this.#spool.oldestMs) / 1000),
      },
      cameras: [...this.#segmenters.values()].map((s) => ({ id: s.camera, recording: s.recording, lastPacketAt: s.lastPacketAt })),
    };
  }

  #enqueue(s: SpooledSegment): void {
    this.#ingestQueue.push(s);
    void this.#ingest();
  }

  /** Syncs, hashes and enters spooled segments in the database, in order. */
  async #ingest(): Promise<void> {
    if (this.#ingesting) return;
    this.#ingesting = true;
    try {
      while (this.#ingestQueue.length > 0 && !this.#closedHard) {
        const s = this.#ingestQueue[0]!;
        try {
          await this.#ingestOne(s);
          this.#ingestQueue.shift();
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
            log.warn({ camera: s.camera, path: s.path }, 'a listed segment is not in the spool; skipped');
            this.#ingestQueue.shift();
            continue;
          }
          log.warn({ camera: s.camera, err: error }, isDatabaseUnavailable(error) ? 'cannot enter segments while the database is away; they wait in the spool' : 'cannot enter a segment; will retry');
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    } finally {
      this.#ingesting = false;
    }
  }

  #closedHard = false;

  async #ingestOne(s: SpooledSegment): Promise<void> {
    const abs = join(this.spoolDir, s.path);
    const fh = await open(abs, 'r+');
    let data: Buffer;
    try {
      await fh.sync();
      data = await fh.readFile();
    } finally {
      await fh.close();
    }
    const sha256 = createHash('sha256').update(data).digest('hex');
    let initSha = this.#inits.get(s.initPath);
    if (!initSha) {
      const ifh = await open(join(this.spoolDir, s.initPath), 'r');
      try {
        initSha = await this.archive.addInit(s.camera, await ifh.readFile());
      } finally {
        await ifh.close();
      }
      this.#inits.set(s.initPath, initSha);
    }
    const r = await this.archive.addSegment({
      camera: s.camera, run: s.run, seq: s.seq, startMs: s.startMs, durationMs: s.durationMs, bytes: data.length, sha256, initSha256: initSha, path: s.path, recorder: this.id,
    });
    if (!r.added) return;
    if (!this.#seenRuns.has(s.run)) {
      this.#seenRuns.add(s.run);
      await this.#recordGap(s.camera, s.startMs);
    }
    segmentsWritten.inc({ camera: s.camera });
    bytesWritten.inc({ camera: s.camera }, data.length);
    this.#spool.segments++;
    this.#spool.bytes += data.length;
    this.#spool.oldestMs ??= s.startMs;
    this.safeEmit('segment', { camera: s.camera, id: r.id, startMs: s.startMs, durationMs: s.durationMs });
    await this.#enforceSpoolLimit();
    this.#wake();
  }

  readonly #seenRuns = new Set<string>();
  /** Why the last run of each camera ended, as this process saw it. */
  readonly #endReasons = new Map<string, string>();

  /**
   * A new run's first segment: the time since the camera's recording last ended is a gap, written to the
   * gap records with why (what ended the last run, or a restart of the recorder) unless the cluster has
   * already recorded one there.
   */
  async #recordGap(camera: string, startMs: number): Promise<void> {
    const prev = await this.archive.db.query<{ end_ms: number }>(
      'SELECT max(start_ms + duration_ms) AS end_ms FROM segments WHERE camera_id = $1 AND start_ms < $2', [camera, startMs]);
    const endMs = prev[0]?.end_ms == null ? null : Number(prev[0].end_ms);
    if (endMs === null || startMs - endMs < RANGE_JOIN_MS) return;
    const why = this.#endReasons.get(camera);
    const reason = why === 'no packets' ? 'recorder: no video from the SFU'
      : why === 'new stream' ? 'recorder: the stream moved to another SFU'
      : why === 'ffmpeg exited' ? 'recorder: its ffmpeg failed'
      : why ? `recorder: ${why}` : 'recorder: not recording (a recorder restarted, or took the camera over from one that stopped)';
    await this.archive.db.query(
      `INSERT INTO gaps (camera_id, start_at, end_at, reason)
       SELECT $1, to_timestamp($2 / 1000.0), to_timestamp($3 / 1000.0), $4
       WHERE NOT EXISTS (SELECT 1 FROM gaps WHERE camera_id = $1 AND start_at < to_timestamp($3 / 1000.0) AND end_at > to_timestamp($2 / 1000.0))
       ON CONFLICT (camera_id, start_at) DO NOTHING`,
      [camera, endMs, startMs, reason],
    );
  }

  /**
   * What an earlier run of this recorder left in the spool, for every camera there (also those it no
   * longer records): segments ffmpeg finished and listed but that were not entered yet.
   */
  async #recoverSpool(): Promise<void> {
    let cameras: string[] = [];
    try {
      cameras = (await readdir(this.spoolDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      return;
    }
    for (const camera of cameras) {
      await recoverSpool(this.spoolDir, camera, (s) => this.#enqueue(s)).catch((error: unknown) => log.warn({ camera, err: error }, 'cannot read what the spool holds for a camera'));
    }
  }

  async #refreshSpool(): Promise<void> {
    let was = this.#spool.bytes;
    try {
      const t = await this.archive.spoolTotals(this.id);
      was = this.#spool.bytes;
      this.#spool = { segments: t.count, bytes: t.bytes, oldestMs: t.oldestMs };
    } catch {
      // Keep the running count while the database is away.
    }
    const warnAt = this.#o.config.recorder.spoolMaxBytes * this.#o.config.recorder.spoolWarnRatio;
    if (this.#spool.bytes > warnAt && was <= warnAt) {
      log.warn({ bytes: this.#spool.bytes, maxBytes: this.#o.config.recorder.spoolMaxBytes, storage: this.storage.status.problem }, 'the spool is filling: past its warning mark; the oldest segments are dropped at its limit');
    }
    spoolSegments.set(this.#spool.segments);
    spoolBytes.set(this.#spool.bytes);
    spoolOldest.set(this.#spool.oldestMs === null ? 0 : Math.max(0, (Date.now() - this.#spool.oldestMs) / 1000));
  }

  /** Past the spool's limit, the oldest spooled segments are given up (kept as rows marked dropped). */
  async #enforceSpoolLimit(): Promise<void> {
    const max = this.#o.config.recorder.spoolMaxBytes;
    if (this.#spool.bytes <= max) return;
    const rows = await this.archive.spooled(this.id, 100);
    for (const r of rows) {
      if (this.#spool.bytes <= max) break;
      await rm(join(this.spoolDir, r.path), { force: true });
      await this.archive.markDropped(r.id);
      this.#spool.bytes -= r.bytes;
      this.#spool.segments--;
      spoolDropped.inc({ camera: r.camera_id });
      log.error({ camera: r.camera_id, segment: r.id, spoolMaxBytes: max }, 'the spool is full: dropped its oldest segment');
    }
  }

  #wakeRequested = false;

  /** Wakes the copy loop now (a new segment, the storage back, closing). */
  #wake(): void {
    if (this.#uploadWake) this.#uploadWake();
    else this.#wakeRequested = true;
  }

  /** Copies spooled segments to the storage, oldest first, while it is available. */
  async #uploadLoop(): Promise<void> {
    let backoff = 500;
    while (!this.#closed) {
      let rows: SegmentRow[] = [];
      if (this.storage.available) {
        try {
          rows = await this.archive.spooled(this.id, 50);
        } catch (error) {
          log.debug({ err: error }, 'cannot read the spool queue now');
        }
      }
      let failed = false;
      for (const r of rows) {
        if (this.#closed) return;
        try {
          await this.#upload(r);
          backoff = 500;
        } catch (error) {
          failed = true;
          uploadFailures.inc({ problem: Storage.problemOf(error) });
          if ((error as NodeJS.ErrnoException).code === 'ENOENT' && (error as { spool?: boolean }).spool) {
            log.error({ camera: r.camera_id, segment: r.id, path: r.path }, 'a spooled segment is missing from the spool');
            await this.archive.markDropped(r.id).catch(() => {});
            continue;
          }
          if (!isDatabaseUnavailable(error)) this.storage.fail(error);
          log.warn({ camera: r.camera_id, segment: r.id, err: error }, 'cannot copy a segment to the storage; will retry');
          break;
        }
      }
      if (rows.length === 50 && !failed) continue;
      const wait = failed ? backoff : 60_000;
      if (failed) backoff = Math.min(backoff * 2, 30_000);
      if (this.#closed) return;
      // A wake that came while we were busy is not lost: no wait then (unless backing off a failure).
      if (this.#wakeRequested && !failed) {
        this.#wakeRequested = false;
        continue;
      }
      this.#wakeRequested = false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, wait);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.#uploadWake = done;
      });
      this.#uploadWake = null;
      if (failed && !this.storage.available) await this.storage.check();
    }
  }

  async #upload(r: SegmentRow): Promise<void> {
    const started = performance.now();
    const src = join(this.spoolDir, r.path);
    if (!existsSync(src)) throw Object.assign(new Error(`${src} is missing`), { code: 'ENOENT', spool: true });
    if (!this.#initsStored.has(r.init_sha256)) {
      const data = await this.archive.init(r.init_sha256);
      if (data) await this.storage.putData(initStoragePath(r.camera_id, r.init_sha256), data, r.init_sha256);
      this.#initsStored.add(r.init_sha256);
    }
    const dest = storagePath(r.camera_id, r.start_ms, r.id);
    await this.storage.put(src, dest, r.sha256);
    await this.archive.markStored(r.id, this.storage.id, dest);
    await rm(src, { force: true });
    uploadSeconds.observe((performance.now() - started) / 1000);
    this.#spool.segments = Math.max(0, this.#spool.segments - 1);
    this.#spool.bytes = Math.max(0, this.#spool.bytes - r.bytes);
    this.safeEmit('stored', { camera: r.camera_id, id: r.id });
    void this.#cleanRunDir(dirname(src));
  }

  readonly #initsStored = new Set<string>();

  /** Removes run directories whose run has ended and whose segments have all gone to the storage. */
  async #cleanRunDir(dir: string): Promise<void> {
    try {
      if (!existsSync(join(dir, 'closed'))) return;
      const files = await readdir(dir);
      if (files.some((f) => f.endsWith('.m4s'))) return;
      await rm(dir, { recursive: true, force: true });
    } catch {
      // Tried again after the next upload.
    }
  }

  async #cleanSpool(camera: string): Promise<void> {
    const base = join(this.spoolDir, camera);
    try {
      for (const run of await readdir(base)) await this.#cleanRunDir(join(base, run));
      if ((await readdir(base)).length === 0) await rmdir(base).catch(() => {});
    } catch {
      // Nothing spooled for it.
    }
  }

  /** Runs retention once now (it also runs every `recorder.retentionIntervalS`). */
  runRetention(): Promise<unknown> {
    this.#retention = this.#retention.then(async () => {
      try {
        const r = await applyRetention({ archive: this.archive, storage: this.storage, cameras: [...this.#cameras.values()] });
        if (r.deleted > 0) this.#o.onDeleted?.(r);
        return r;
      } catch (error) {
        log.warn({ err: error }, 'retention did not finish; it runs again later');
        return null;
      }
    });
    return this.#retention;
  }

  /** Stops every camera (their last segments are finished and entered), then the copies. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const t of this.#timers) clearInterval(t);
    await this.#setting;
    await Promise.all([...this.#segmenters.values()].map((s) => s.close()));
    this.#segmenters.clear();
    // Let what the cameras finished be entered, for a moment.
    const deadline = Date.now() + 5000;
    while ((this.#ingestQueue.length > 0 || this.#ingesting) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    this.#closed = true;
    this.#closedHard = true;
    this.#wake();
    await this.#uploading;
    await this.#retention;
    this.storage.close();
    this.removeAllListeners();
  }
}

