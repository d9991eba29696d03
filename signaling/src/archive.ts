import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Request, Response } from 'express';
import { z } from 'zod';
import { CAMERA_ID_PATTERN } from '@cctv/core';
import { requireExecutable } from '@cctv/core';
import { exportClip, minuteThumbnail, timeline, verifyArchive, vodPlaylist, type Archive, type Recorder, type SegmentRow, type Storage } from '@cctv/recorder';
import { AuditAction, type AuditLog } from './auth/audit.js';
import { principal, requestMeta } from './auth/routes.js';
import { Permission } from './auth/permissions.js';
import { ApiError } from './errors.js';
import { IsoTime, TimeParam } from './schemas.js';
import type { Route } from './app.js';

/** What the archive routes read: the database rows, the storage (read through its worker), the local spool. */
export interface ArchiveAccess {
  archive: Archive;
  /** The storage recordings are read from; null when this server cannot reach it. */
  storage: Storage | null;
  /** The spool of a recorder in this process (segments not yet on the storage are read from it). */
  spoolDir: string | null;
  recorder: Recorder | null;
  /** The site's key pair (PEM): manifests are checked and exports signed with it. */
  siteKey: { publicKey: string; privateKey: string };
  /** Where exported clips and their proofs are kept for download. */
  exportDir: string;
  /** Where minute thumbnails are kept once made. */
  thumbnailDir: string;
}

const DAY = 86_400_000;
// One playlist spans at most this much (a day of 4 s segments is 21,600 entries).
const MAX_PLAYLIST_MS = DAY;

function camera(req: Request): string {
  const id = String(req.params.id ?? '');
  if (!CAMERA_ID_PATTERN.test(id)) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${id.slice(0, 80)}'`);
  return id;
}

/** Reads `from`/`to` (ISO 8601 or ms since the epoch) from the query; `to` defaults to now, `from` to `to` − `defaultSpan`. */
export function timeRange(req: Request, defaultSpanMs: number, maxSpanMs: number): { fromMs: number; toMs: number } {
  const parse = (name: string): number | null => {
    const v = req.query[name];
    if (v === undefined) return null;
    if (typeof v !== 'string') throw new ApiError('VALIDATION_FAILED', `'${name}' must be one value`, { field: name });
    const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(n)) throw new ApiError('VALIDATION_FAILED', `'${name}' must be an ISO 8601 time or milliseconds since 1970, not '${v.slice(0, 40)}'`, { field: name });
    return n;
  };
  const toMs = parse('to') ?? Date.now();
  const fromMs = parse('from') ?? toMs - defaultSpanMs;
  if (fromMs >= toMs) throw new ApiError('VALIDATION_FAILED', "'from' must be before 'to'", { field: 'from' });
  if (toMs - fromMs > maxSpanMs) throw new ApiError('VALIDATION_FAILED', `the range may span at most ${Math.round(maxSpanMs / DAY)} days`, { field: 'to' });
  return { fromMs, toMs };
}

/** `{ from, to }` of a JSON body (ISO 8601 or ms since the epoch), `from` before `to`. */
function bodyRange(body: unknown): { fromMs: number; toMs: number } {
  const b = (body ?? {}) as { from?: unknown; to?: unknown };
  const t = (name: 'from' | 'to'): number => {
    const v = b[name];
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
    if (!Number.isFinite(n)) throw new ApiError('VALIDATION_FAILED', `'${name}' must be an ISO 8601 time or milliseconds since 1970`, { field: name });
    return n;
  };
  const fromMs = t('from');
  const toMs = t('to');
  if (fromMs >= toMs) throw new ApiError('VALIDATION_FAILED', "'from' must be before 'to'", { field: 'from' });
  return { fromMs, toMs };
}

// The archive's query and body checks are written by hand (their messages name the field); these
// schemas describe them for the API document.
const TimeRangeQuerySchema = z.strictObject({ from: TimeParam.optional(), to: TimeParam.optional() });
const BodyTime = z.union([z.number(), IsoTime]).describe('ISO 8601 time or milliseconds since 1970');
const RangeBodySchema = z.strictObject({ from: BodyTime, to: BodyTime });
const ProtectBodySchema = z.strictObject({ from: BodyTime, to: BodyTime, reason: z.string().min(1).max(500) });
const VerifyBodySchema = z.strictObject({ cameras: z.array(z.string().regex(CAMERA_ID_PATTERN)).optional(), rehash: z.boolean().optional() });
const Range = { startMs: z.number(), endMs: z.number() };
const TimelineSchema = z.strictObject({
  camera: z.string(), fromMs: z.number(), toMs: z.number(),
  recorded: z.array(z.strictObject(Range)),
  gaps: z.array(z.strictObject({ ...Range, reason: z.string().nullable() })),
  recordedMs: z.number(), bytes: z.number(),
});
const ExportSchema = z.strictObject({ mp4: z.string(), proof: z.string(), sha256: z.string(), bytes: z.number().int(), segments: z.number().int() });
const ProtectedSchema = z.strictObject({
  protected: z.array(z.strictObject({ id: z.number().int(), from: IsoTime, to: IsoTime, reason: z.string(), by: z.string(), at: IsoTime })),
});
const ArchiveStateSchema = z.strictObject({
  recorder: z.looseObject({ id: z.string() }).nullable(),
  storage: z.looseObject({ id: z.string(), available: z.boolean() }).nullable(),
  cameras: z.array(z.strictObject({ id: z.string(), bytes: z.number() })),
});
const VerifyReportSchema = z.looseObject({
  ok: z.boolean(), cameras: z.array(z.string()), segments: z.number().int(), bytes: z.number(),
  findings: z.array(z.looseObject({ camera: z.string(), detail: z.string() })), manifests: z.number().int(), durationMs: z.number(),
});

/** The archive's routes: timeline, VOD playlist, init sections and segments, protection, status, verify. */
export function archiveRoutes(access: ArchiveAccess | null, auth: { audit: AuditLog }, trustProxy: boolean): Route[] {
  const need = (): ArchiveAccess => {
    if (!access) throw new ApiError('NO_ARCHIVE', 'this server has no archive (no recorder role, no storage)');
    return access;
  };
  const record = (req: Request, res: Response, action: string, cameraId: string | null, details: Record<string, unknown>) => {
    const p = principal(res);
    return auth.audit.append({ actor: p.username ?? 'anonymous', actorKind: p.kind === 'anonymous' ? 'anonymous' : p.kind, action, cameraId, ip: requestMeta(req, trustProxy).ip, details });
  };
  const readSegmentFile = async (a: ArchiveAccess, state: string, path: string): Promise<Buffer> => {
    if (state === 'spool') {
      if (!a.spoolDir) throw new ApiError('STORAGE_UNAVAILABLE', 'this recording is still in its recorder\'s spool, not on the storage yet');
      return readFile(join(a.spoolDir, path));
    }
    if (!a.storage) throw new ApiError('STORAGE_UNAVAILABLE', 'this server cannot reach the archive storage');
    try {
      return await a.storage.read(path);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'ENOENT') throw new ApiError('SEGMENT_NOT_FOUND', 'the recording\'s file is missing from the storage (run verify)');
      throw new ApiError('STORAGE_UNAVAILABLE', `the archive storage cannot be read: ${(error as Error).message}`);
    }
  };
  return [
    {
      method: 'GET', path: '/api/cameras/:id/archive/timeline', permission: Permission.Archive, camera: true,
      summary: 'Recorded ranges and gaps (with reasons) of a camera between from and to (default the last 24 h; at most 400 days)',
      request: { query: TimeRangeQuerySchema },
      responses: { 200: TimelineSchema },
      handler: async (req, res) => {
        const { fromMs, toMs } = timeRange(req, DAY, 400 * DAY);
        res.json(await timeline(need().archive, camera(req), fromMs, toMs));
      },
    },
    {
      method: 'GET', path: '/api/cameras/:id/archive/playlist.m3u8', permission: Permission.Archive, camera: true,
      summary: 'A VOD HLS playlist (fMP4) of a camera between from and to (default the last hour; at most 24 h), across gaps',
      request: { query: TimeRangeQuerySchema },
      responses: { 200: { contentType: 'application/vnd.apple.mpegurl' } },
      handler: async (req, res) => {
        const { fromMs, toMs } = timeRange(req, 3_600_000, MAX_PLAYLIST_MS);
        const id = camera(req);
        const rows = await need().archive.segments(id, fromMs, toMs);
        if (rows.length === 0) throw new ApiError('SEGMENT_NOT_FOUND', `camera ${id} has no recordings between ${new Date(fromMs).toISOString()} and ${new Date(toMs).toISOString()}`);
        res.type('application/vnd.apple.mpegurl').setHeader('Cache-Control', 'no-store');
        res.send(vodPlaylist(rows));
        void record(req, res, AuditAction.ArchivePlayed, id, { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), segments: rows.length, userAgent: requestMeta(req, trustProxy).userAgent });
      },
    },
    {
      method: 'GET', path: '/api/cameras/:id/archive/init/:file', permission: Permission.Archive, camera: true,
      summary: 'The init section (fMP4 ftyp+moov) a playlist names, by its SHA-256',
      responses: { 200: { contentType: 'video/mp4' } },
      handler: async (req, res) => {
        const m = /^([0-9a-f]{64})\.mp4$/.exec(String(req.params.file));
        if (!m) throw new ApiError('SEGMENT_NOT_FOUND', 'no such init section');
        const rows = await need().archive.db.query<{ data: Uint8Array }>('SELECT data FROM recording_inits WHERE sha256 = $1 AND camera_id = $2', [m[1], camera(req)]);
        if (!rows[0]) throw new ApiError('SEGMENT_NOT_FOUND', 'no such init section for this camera');
        res.type('video/mp4').setHeader('Cache-Control', 'private, max-age=31536000, immutable');
        res.send(Buffer.from(rows[0].data));
      },
    },
    {
      method: 'GET', path: '/api/cameras/:id/archive/segments/:file', permission: Permission.Archive, camera: true,
      summary: 'One recorded segment (fMP4) a playlist names',
      responses: { 200: { contentType: 'video/iso.segment' } },
      handler: async (req, res) => {
        const m = /^(\d{1,15})\.m4s$/.exec(String(req.params.file));
        if (!m) throw new ApiError('SEGMENT_NOT_FOUND', 'no such segment');
        const a = need();
        const row = await a.archive.segment(Number(m[1]));
        if (!row || row.camera_id !== camera(req) || (row.state !== 'stored' && row.state !== 'spool')) throw new ApiError('SEGMENT_NOT_FOUND', `camera ${camera(req)} has no segment ${m[1]}`);
        const data = await readSegmentFile(a, row.state, row.path);
        res.type('video/iso.segment').setHeader('Cache-Control', 'private, max-age=31536000, immutable');
        res.setHeader('X-Content-SHA256', row.sha256);
        res.send(data);
      },
    },
    {
      method: 'POST', path: '/api/cameras/:id/archive/exports', permission: Permission.Export, camera: true, body: 'json',
      summary: 'Export a range (at most 6 h) as one MP4 with a signed proof: { from, to } → links to both',
      request: { body: RangeBodySchema },
      responses: { 201: ExportSchema },
      handler: async (req, res) => {
        const a = need();
        const { fromMs, toMs } = bodyRange(req.body);
        if (toMs - fromMs > 6 * 3_600_000) throw new ApiError('VALIDATION_FAILED', 'an export may span at most 6 hours', { field: 'to' });
        const id = camera(req);
        await mkdir(a.exportDir, { recursive: true });
        const name = `${id}-${new Date(fromMs).toISOString().replace(/[:.]/g, '-')}-${randomUUID().slice(0, 8)}`;
        const who = principal(res).username ?? 'unknown';
        let proof;
        try {
          proof = await exportClip({
            archive: a.archive, camera: id, fromMs, toMs, read: (r: SegmentRow) => readSegmentFile(a, r.state, r.path),
            ffmpeg: requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg'),
            out: join(a.exportDir, `${name}.mp4`), createdBy: who, siteKey: a.siteKey,
          });
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code === 'ENOENT') throw new ApiError('SEGMENT_NOT_FOUND', (error as Error).message);
          if (code === 'EVERIFY') throw new ApiError('INTERNAL', (error as Error).message);
          throw error;
        }
        await writeFile(join(a.exportDir, `${name}.proof.json`), JSON.stringify(proof, null, 2) + '\n');
        await record(req, res, AuditAction.Exported, id, { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), file: `${name}.mp4`, sha256: proof.file.sha256, segments: proof.segments.length });
        res.status(201).json({
          mp4: `/api/cameras/${id}/archive/exports/${name}.mp4`,
          proof: `/api/cameras/${id}/archive/exports/${name}.proof.json`,
          sha256: proof.file.sha256, bytes: proof.file.bytes, segments: proof.segments.length,
        });
      },
    },
    {
      method: 'GET', path: '/api/cameras/:id/archive/exports/:file', permission: Permission.Export, camera: true,
      summary: 'Download an exported clip (.mp4) or its proof (.proof.json)',
      responses: { 200: { contentType: ['video/mp4', 'application/json'] } },
      handler: async (req, res) => {
        const id = camera(req);
        const file = String(req.params.file);
        const ok = file.startsWith(`${id}-`) && /^[a-zA-Z0-9_.-]+\.(mp4|proof\.json)$/.test(file) && !file.includes('..');
        const path = join(need().exportDir, file);
        if (!ok || !existsSync(path)) throw new ApiError('NOT_FOUND', 'no such export of this camera');
        res.setHeader('Content-Disposition', `attachment; filename="${file}"`);
        res.type(file.endsWith('.mp4') ? 'video/mp4' : 'application/json').sendFile(path);
      },
    },
    {
      method: 'GET', path: '/api/cameras/:id/archive/thumbnail', permission: Permission.Archive, camera: true,
      summary: 'A small JPEG of the minute holding ?at= (ISO 8601 or ms): its first keyframe, made once and kept',
      request: { query: z.strictObject({ at: TimeParam }) },
      responses: { 200: { contentType: 'image/jpeg' } },
      handler: async (req, res) => {
        const a = need();
        const v = req.query.at;
        const at = typeof v === 'string' ? (/^\d+$/.test(v) ? Number(v) : Date.parse(v)) : NaN;
        if (!Number.isFinite(at)) throw new ApiError('VALIDATION_FAILED', "'at' must be an ISO 8601 time or milliseconds since 1970", { field: 'at' });
        const jpeg = await minuteThumbnail({
          archive: a.archive, camera: camera(req), minuteMs: at, cacheDir: a.thumbnailDir,
          read: (r: SegmentRow) => readSegmentFile(a, r.state, r.path), ffmpeg: requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg'),
        });
        if (!jpeg) throw new ApiError('SEGMENT_NOT_FOUND', `camera ${camera(req)} recorded nothing in the minute of ${new Date(at).toISOString()}`);
        res.type('image/jpeg').setHeader('Cache-Control', 'private, max-age=86400');
        res.send(jpeg);
      },
    },
    {
      method: 'GET', path: '/api/cameras/:id/archive/protected', permission: Permission.Archive, camera: true,
      summary: 'Ranges of a camera protected from retention',
      responses: { 200: ProtectedSchema },
      handler: async (req, res) => {
        const rows = await need().archive.db.query<{ id: number; start_ms: number; end_ms: number; reason: string; created_by: string; created_at: Date }>(
          'SELECT id, start_ms, end_ms, reason, created_by, created_at FROM protected_ranges WHERE camera_id = $1 ORDER BY start_ms', [camera(req)]);
        res.json({ protected: rows.map((r) => ({ id: Number(r.id), from: new Date(Number(r.start_ms)).toISOString(), to: new Date(Number(r.end_ms)).toISOString(), reason: r.reason, by: r.created_by, at: r.created_at })) });
      },
    },
    {
      method: 'POST', path: '/api/cameras/:id/archive/protected', permission: Permission.Export, camera: true, body: 'json',
      summary: 'Protect a range of a camera from retention: { from, to, reason }',
      request: { body: ProtectBodySchema },
      responses: { 201: z.strictObject({ id: z.number().int() }) },
      handler: async (req, res) => {
        const b = (req.body ?? {}) as { reason?: unknown };
        const { fromMs, toMs } = bodyRange(req.body);
        if (typeof b.reason !== 'string' || b.reason.trim().length === 0 || b.reason.length > 500) throw new ApiError('VALIDATION_FAILED', "'reason' must be a text of 1–500 characters", { field: 'reason' });
        const id = camera(req);
        const who = principal(res).username ?? 'unknown';
        const rows = await need().archive.db.query<{ id: number }>(
          'INSERT INTO protected_ranges (camera_id, start_ms, end_ms, reason, created_by) VALUES ($1, $2, $3, $4, $5) RETURNING id', [id, fromMs, toMs, b.reason.trim(), who]);
        await record(req, res, AuditAction.ArchiveProtected, id, { from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), reason: b.reason.trim() });
        res.status(201).json({ id: Number(rows[0]!.id) });
      },
    },
    {
      method: 'DELETE', path: '/api/cameras/:id/archive/protected/:pid', permission: Permission.Export, camera: true,
      summary: 'Lift a protection (retention may then remove the range)',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const pid = Number(req.params.pid);
        if (!Number.isInteger(pid)) throw new ApiError('NOT_FOUND', 'no such protection');
        const rows = await need().archive.db.query<{ start_ms: number; end_ms: number; reason: string }>(
          'DELETE FROM protected_ranges WHERE id = $1 AND camera_id = $2 RETURNING start_ms, end_ms, reason', [pid, camera(req)]);
        if (!rows[0]) throw new ApiError('NOT_FOUND', 'no such protection on this camera');
        await record(req, res, AuditAction.ArchiveUnprotected, camera(req), { from: new Date(Number(rows[0].start_ms)).toISOString(), to: new Date(Number(rows[0].end_ms)).toISOString(), reason: rows[0].reason });
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/archive/site-key', permission: 'authenticated',
      summary: "The site's public key (PEM), which signs the archive's manifests and every export's proof: give it to `cctv verify-export --site-key`",
      responses: { 200: { contentType: 'application/x-pem-file' } },
      handler: (_req, res) => {
        res.type('application/x-pem-file').send(need().siteKey.publicKey);
      },
    },
    {
      method: 'GET', path: '/api/archive', permission: Permission.NodesRead,
      summary: 'The archive\'s state: storage (available, problem, free space), spool backlog, cameras recording',
      responses: { 200: ArchiveStateSchema },
      handler: async (_req, res) => {
        const a = need();
        const totals = await a.archive.bytesByCamera();
        res.json({
          recorder: a.recorder?.status() ?? null,
          storage: a.storage?.status ?? null,
          cameras: [...totals].map(([id, bytes]) => ({ id, bytes })),
        });
      },
    },
    {
      method: 'POST', path: '/api/archive/verify', permission: Permission.AuditRead, body: 'json',
      summary: 'Re-hash the archive and walk its chains: names every altered, missing, inserted or edited segment ({ cameras?, rehash? })',
      request: { body: VerifyBodySchema },
      responses: { 200: VerifyReportSchema },
      handler: async (req, res) => {
        const a = need();
        if (!a.storage) throw new ApiError('STORAGE_UNAVAILABLE', 'this server cannot reach the archive storage');
        const b = (req.body ?? {}) as { cameras?: unknown; rehash?: unknown };
        if (b.cameras !== undefined && (!Array.isArray(b.cameras) || !b.cameras.every((c) => typeof c === 'string' && CAMERA_ID_PATTERN.test(c)))) {
          throw new ApiError('VALIDATION_FAILED', "'cameras' must be a list of camera ids", { field: 'cameras' });
        }
        if (b.rehash !== undefined && typeof b.rehash !== 'boolean') throw new ApiError('VALIDATION_FAILED', "'rehash' must be true or false", { field: 'rehash' });
        const report = await verifyArchive({
          db: a.archive.db, storage: a.storage, spoolDir: a.spoolDir ?? '', sitePublicKey: a.siteKey.publicKey,
          ...(b.cameras ? { cameras: b.cameras as string[] } : {}), ...(b.rehash === false ? { rehash: false } : {}),
        });
        await record(req, res, AuditAction.ArchiveVerified, null, { ok: report.ok, segments: report.segments, findings: report.findings.length });
        res.json(report);
      },
    },
  ];
}
