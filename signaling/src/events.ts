import type { Request, Response } from 'express';
import { z } from 'zod';
import { CAMERA_ID_PATTERN } from '@cctv/core';
import type { Archive, EventStore, MotionEvent } from '@cctv/recorder';
import { AuditAction, type AuditLog } from './auth/audit.js';
import { principal, requestMeta } from './auth/routes.js';
import { Permission, can, canSeeCamera, type Principal } from './auth/permissions.js';
import { timeRange } from './archive.js';
import type { CameraStore } from './cameras.js';
import { ApiError } from './errors.js';
import { TimeParam } from './schemas.js';
import type { Route } from './app.js';

const DAY = 86_400_000;

/** An event as the API shows it: its fields and where its thumbnail is. */
export type EventView = MotionEvent & { thumbnailUrl: string | null };

export function eventView(e: MotionEvent): EventView {
  return { ...e, thumbnailUrl: e.hasThumbnail ? `/api/events/${e.id}/thumbnail.jpg` : null };
}

/** The opaque cursor of the next page: the last event's start and id. */
function encodeCursor(e: MotionEvent): string {
  return Buffer.from(`${e.startMs}:${e.id}`).toString('base64url');
}

function decodeCursor(raw: unknown): { startMs: number; id: number } | null {
  if (raw === undefined) return null;
  const m = typeof raw === 'string' ? /^(\d{1,16}):(\d{1,16})$/.exec(Buffer.from(raw, 'base64url').toString()) : null;
  if (!m) throw new ApiError('VALIDATION_FAILED', "'cursor' is not one this API gave out", { field: 'cursor' });
  return { startMs: Number(m[1]), id: Number(m[2]) };
}

/** `?camera=a&camera=b` or `?camera=a,b`. */
function listParam(req: Request, name: string): string[] {
  const v = req.query[name];
  const all = (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => (typeof x === 'string' ? x.split(',') : []));
  return all.map((s) => s.trim()).filter(Boolean);
}

function numberParam(req: Request, name: string, min: number, max: number, fallback: number): number {
  const v = req.query[name];
  if (v === undefined) return fallback;
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < min || n > max) throw new ApiError('VALIDATION_FAILED', `'${name}' must be a number from ${min} to ${max}`, { field: name });
  return n;
}

/** Checked by hand in the handler (its messages name the field); this describes it. */
const EventsQuerySchema = z.strictObject({
  camera: z.string().optional().describe('Camera ids, comma-separated or repeated; default every camera you may see'),
  from: TimeParam.optional(),
  to: TimeParam.optional(),
  zone: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/).optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
  minScore: z.coerce.number().min(0).max(1).optional(),
  cursor: z.string().optional().describe('The `next` of the previous page'),
});
const EventViewSchema = z.strictObject({
  id: z.number().int(), camera: z.string(), kind: z.literal('motion'), startMs: z.number(), endMs: z.number().nullable(),
  peakScore: z.number(), zones: z.array(z.string()),
  box: z.strictObject({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }).nullable(),
  node: z.string(), hasThumbnail: z.boolean(), protectedId: z.number().int().nullable(), thumbnailUrl: z.string().nullable(),
});
const EventPageSchema = z.strictObject({ events: z.array(EventViewSchema), next: z.string().nullable() });
const EventDetailSchema = EventViewSchema.extend({
  recording: z.strictObject({ from: z.number(), to: z.number(), playlistUrl: z.string() }).nullable(),
});

/** The motion events' routes: search (keyset pages), one event, its thumbnail, protection. */
export function eventRoutes(deps: { events: EventStore | null; archive: Archive | null; store: CameraStore; audit: Pick<AuditLog, 'append'>; trustProxy: boolean }): Route[] {
  const need = (): EventStore => {
    if (!deps.events) throw new ApiError('NO_ARCHIVE', 'this server has no database of events');
    return deps.events;
  };
  const eventId = (req: Request): number => {
    const m = /^\d{1,15}$/.exec(String(req.params.event ?? ''));
    if (!m) throw new ApiError('EVENT_NOT_FOUND', `no event '${String(req.params.event ?? '').slice(0, 40)}'`);
    return Number(m[0]);
  };
  /** An event the caller may see with `permission` on its camera; otherwise as if it did not exist. */
  const visible = async (req: Request, res: Response, permission: Permission): Promise<MotionEvent> => {
    const id = eventId(req);
    const e = await need().get(id);
    const p = principal(res);
    if (!e || !canSeeCamera(p, e.camera) || !can(p, Permission.Archive, e.camera)) throw new ApiError('EVENT_NOT_FOUND', `no event ${id}`);
    if (!can(p, permission, e.camera)) throw new ApiError('FORBIDDEN', `this needs the permission ${permission}`);
    return e;
  };
  const audit = (req: Request, res: Response, action: string, e: MotionEvent, details: Record<string, unknown>) => {
    const p = principal(res);
    return deps.audit.append({ actor: p.username ?? 'anonymous', actorKind: p.kind === 'anonymous' ? 'anonymous' : p.kind, action, cameraId: e.camera, ip: requestMeta(req, deps.trustProxy).ip, details: { event: e.id, ...details } });
  };
  return [
    {
      method: 'GET', path: '/api/events', permission: Permission.Archive,
      summary: 'Motion events, newest first: by cameras, time range (default the last 24 h), zone and minimum score; `next` is the cursor of the next page',
      request: { query: EventsQuerySchema },
      responses: { 200: EventPageSchema },
      handler: async (req, res) => {
        const p: Principal = principal(res);
        const { fromMs, toMs } = timeRange(req, DAY, 400 * DAY);
        const asked = listParam(req, 'camera');
        for (const c of asked) if (!CAMERA_ID_PATTERN.test(c)) throw new ApiError('VALIDATION_FAILED', `'camera' has a value that is no camera id: '${c.slice(0, 40)}'`, { field: 'camera' });
        const all = asked.length > 0 ? asked : (await deps.store.list()).map((c) => c.config.id);
        const cameras = all.filter((c) => canSeeCamera(p, c) && can(p, Permission.Archive, c));
        const zone = typeof req.query.zone === 'string' && req.query.zone !== '' ? req.query.zone : undefined;
        if (zone !== undefined && !/^[a-zA-Z0-9][a-zA-Z0-9_-]{0,31}$/.test(zone)) throw new ApiError('VALIDATION_FAILED', "'zone' must be a zone name (letters, digits, _ or -)", { field: 'zone' });
        const limit = Math.floor(numberParam(req, 'limit', 1, 200, 50));
        const minScore = numberParam(req, 'minScore', 0, 1, 0);
        const events = await need().search({ cameras, fromMs, toMs, limit, minScore, after: decodeCursor(req.query.cursor), ...(zone ? { zone } : {}) });
        res.json({ events: events.map(eventView), next: events.length === limit ? encodeCursor(events[events.length - 1]!) : null });
      },
    },
    {
      method: 'GET', path: '/api/events/:event', permission: Permission.Archive,
      summary: 'One motion event, with the recording around it when the archive has one',
      responses: { 200: EventDetailSchema },
      handler: async (req, res) => {
        const e = await visible(req, res, Permission.Archive);
        let recording: { from: number; to: number; playlistUrl: string } | null = null;
        if (deps.archive) {
          // The footage around it: a few seconds either side, while the event lasts.
          const from = e.startMs - 5000;
          const to = (e.endMs ?? Date.now()) + 5000;
          const rows = await deps.archive.segments(e.camera, from, to);
          if (rows.length > 0) recording = { from, to, playlistUrl: `/api/cameras/${e.camera}/archive/playlist.m3u8?from=${from}&to=${to}` };
        }
        res.json({ ...eventView(e), recording });
      },
    },
    {
      method: 'GET', path: '/api/events/:event/thumbnail.jpg', permission: Permission.Archive,
      summary: 'The frame of an event with the moving region outlined (JPEG)',
      responses: { 200: { contentType: 'image/jpeg' } },
      handler: async (req, res) => {
        const e = await visible(req, res, Permission.Archive);
        const jpeg = e.hasThumbnail ? await need().thumbnail(e.id) : null;
        if (!jpeg) throw new ApiError('EVENT_NOT_FOUND', `event ${e.id} has no thumbnail (yet)`);
        res.type('image/jpeg').setHeader('Cache-Control', e.endMs === null ? 'no-store' : 'private, max-age=86400');
        res.send(jpeg);
      },
    },
    {
      method: 'POST', path: '/api/events/:event/protect', permission: Permission.Export,
      summary: 'Keep an event\'s footage (10 s either side) from retention',
      responses: { 200: z.strictObject({ protectedId: z.number().int() }) },
      handler: async (req, res) => {
        const e = await visible(req, res, Permission.Export);
        const p = principal(res);
        const protectedId = await need().protect(e.id, p.username ?? p.tokenId ?? 'unknown');
        if (protectedId === null) throw new ApiError('EVENT_NOT_FOUND', `no event ${e.id}`);
        void audit(req, res, AuditAction.ArchiveProtected, e, { protectedId });
        res.json({ protectedId });
      },
    },
    {
      method: 'DELETE', path: '/api/events/:event/protect', permission: Permission.Export,
      summary: 'Let retention have an event\'s footage again',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const e = await visible(req, res, Permission.Export);
        if (!(await need().unprotect(e.id))) throw new ApiError('EVENT_NOT_FOUND', `event ${e.id} is not protected`);
        void audit(req, res, AuditAction.ArchiveUnprotected, e, { protectedId: e.protectedId });
        res.status(204).end();
      },
    },
  ];
}
