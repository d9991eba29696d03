import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { z, type ZodType } from 'zod';
import { CAMERA_ID_PATTERN, CameraSchema, createLogger, isDatabaseUnavailable, metricsText, type Config, type Database } from '@cctv/core';
import type { ChangeQueue, QueuedChange } from './changes.js';
import { MAX_SDP_BYTES } from '@cctv/sfu';
import { publicSource, type CameraStore, type StoredCamera } from './cameras.js';
import { ApiError, toApiError } from './errors.js';
import type { CameraRuntime, WhepTarget, WhipTarget } from './cluster/runtime.js';
import { GraphqlApi } from './graphql/api.js';
import type { Cluster } from './cluster/cluster.js';
import { clusterRoutes } from './cluster/routes.js';
import { AuditAction } from './auth/audit.js';
import { archiveRoutes, type ArchiveAccess } from './archive.js';
import { eventRoutes } from './events.js';
import { alertRoutes, type AlertAdmin } from './alerts.js';
import type { EventStore } from '@cctv/recorder';
import { ANONYMOUS, CAMERA_PERMISSIONS, Permission, can, canSeeCamera, type Principal, type Requirement } from './auth/permissions.js';
import { authRoutes, principal, requestMeta } from './auth/routes.js';
import { docsRoutes } from './openapi.js';
import { CameraViewSchema, ErrorBodySchema, QueuedChangeSchema } from './schemas.js';
import type { AuthService } from './auth/service.js';

const log = createLogger('signaling:http');

export interface AppDeps {
  config: Readonly<Config>;
  db: Database;
  store: CameraStore;
  runtime: CameraRuntime;
  whep: WhepTarget;
  /** Where WHIP offers go (RFC 9725); without it `whip` cameras cannot be published to (503). */
  whip?: WhipTarget | null;
  auth: AuthService;
  /** The cluster parts of this instance (registry, master, nodes). */
  cluster: Cluster;
  /** Where camera changes wait while the database is away; without it they are refused (503). */
  changes?: ChangeQueue | null;
  /** The archive this instance serves (timeline, playlists, segments, verify); null without one. */
  archive?: ArchiveAccess | null;
  /** The motion events (in the database every instance shares). */
  events?: EventStore | null;
  /** Webhook endpoints and alert deliveries. */
  alerts?: AlertAdmin | null;
  /** GraphQL (its WebSocket is served by the server's upgrade router); made here for HTTP alone when absent. */
  graphql?: GraphqlApi | null;
  /** Folder of the built dashboard, or null when it is not built. */
  webDir: string | null;
  version: string;
}

/** HTTP methods the route table uses. */
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * What a route answers with one status: a JSON body described by its schema, no body (`'empty'`), or a
 * body of another media type (a list when it depends on what is asked for).
 */
export type ResponseSpec = ZodType | 'empty' | { contentType: string | readonly string[] };

/**
 * What a route takes, as schemas. A schema named here is the one the route (or the service it calls)
 * validates with, so the OpenAPI document and the check cannot drift apart.
 */
export interface RouteRequest {
  /** The JSON body (with `body: 'json'`). */
  body?: ZodType;
  /** The query string, an object schema: one parameter per key. */
  query?: ZodType;
  /** The path parameters, an object schema keyed by the `:name`s of the path; default: strings. */
  params?: ZodType;
}

/**
 * One entry of the route table. Every API route is declared here with the permission it needs; the
 * wrapper in buildApp checks it, so no route can be reached without its check (tests walk the table).
 */
export interface Route {
  method: Method;
  /** Express path, e.g. `/api/cameras/:id`. */
  path: string;
  /** One line saying what it does. */
  summary: string;
  /** What the caller must hold: a permission, any signed-in principal, or nothing. */
  permission: Requirement;
  /** The route's `:id` is a camera: camera permissions are checked on it, and it must be visible. */
  camera?: boolean;
  /** Reachable while a sign-in still owes a 2FA step: `verify` (a code) or `enroll` (set-up), to finish or leave it. */
  allowPending?: ReadonlyArray<'verify' | 'enroll'>;
  /** The body it takes, if any. */
  body?: 'json' | 'sdp';
  /** Extra limit on top of the per-principal API limit. */
  limit?: 'whep';
  /** Schemas of the body, query and path parameters it takes (openapi.ts documents them). */
  request?: RouteRequest;
  /**
   * What it answers, by status: its successes, and errors beyond those every route of its kind may
   * answer (openapi.ts `responsesOf` adds those: 401/403/429 behind a permission, 400/413/415 with a body…).
   */
  responses?: Readonly<Record<number, ResponseSpec>>;
  handler: (req: Request, res: Response) => Promise<void> | void;
}

/** The camera as the API shows it: config without secrets, and its live status. */
export function cameraView(cam: StoredCamera, runtime: CameraRuntime): Record<string, unknown> {
  const { config } = cam;
  return {
    id: config.id,
    name: config.name ?? config.id,
    enabled: config.enabled,
    source: publicSource(config.source),
    version: cam.version,
    createdAt: cam.createdAt,
    updatedAt: cam.updatedAt,
    status: runtime.status(config.id),
    /** Where it may run (its config: pin, required and preferred labels). */
    placementRules: config.placement,
    recording: config.recording,
    motion: config.motion,
    /** Where it runs now. */
    placement: placementView(runtime, config.id),
  };
}

function placementView(runtime: CameraRuntime, id: string): Record<string, unknown> | null {
  const p = runtime.placement?.(id);
  return p ? { cameraNode: p.cameraNode, sfu: p.sfu, recorder: p.recorder ?? null, detector: p.detector ?? null, problem: p.problem, since: p.since } : null;
}

const SDP = { contentType: 'application/sdp' } as const;

const HealthSchema = z.strictObject({
  status: z.literal('ok'),
  version: z.string(),
  /** This instance's node id. */
  node: z.string(),
  database: z.string(),
  bus: z.string(),
  leading: z.boolean(),
  uptimeS: z.number().int(),
});

/**
 * PUT and PATCH bodies. The store checks the merged result against CameraSchema itself (a source sent
 * back as read keeps its stored credentials), so these describe what a client sends.
 */
const CameraReplaceSchema = CameraSchema.partial({ id: true });
const CameraMergeSchema = CameraSchema.partial();

function cameraId(req: Request): string {
  const id = String(req.params.id ?? '');
  if (!CAMERA_ID_PATTERN.test(id)) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${id.slice(0, 80)}'`);
  return id;
}

/** The API's routes: cameras, live viewing, and (from auth/routes.ts) users, sessions, tokens, audit. */
export function routes(deps: AppDeps): Route[] {
  const { store, runtime, whep, auth } = deps;
  const whip = deps.whip ?? null;
  const startedAt = Date.now();
  const trustProxy = deps.config?.http.trustProxy ?? false;
  const mustGet = async (id: string): Promise<StoredCamera> => {
    const cam = await store.get(id);
    if (!cam) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${id}'`);
    return cam;
  };
  const audit = (req: Request, res: Response, action: string, cameraIdOf: string, details: Record<string, unknown> = {}) => {
    const p = principal(res);
    return auth.audit.append({ actor: p.username ?? 'anonymous', actorKind: p.kind === 'anonymous' ? 'anonymous' : p.kind, action, cameraId: cameraIdOf, ip: requestMeta(req, trustProxy).ip, details });
  };
  // A camera change while the database is away: queued (202) when this instance keeps a queue.
  const orQueue = async (req: Request, res: Response, op: QueuedChange['op'], camera: string, body: unknown, write: () => Promise<void>) => {
    try {
      await write();
    } catch (error) {
      if (!isDatabaseUnavailable(error) || !deps.changes) throw error;
      const p = principal(res);
      const q = deps.changes.add({ op, camera, body, actor: p.username ?? 'unknown', actorKind: p.kind === 'token' ? 'token' : 'user', ip: requestMeta(req, trustProxy).ip });
      res.status(202).json({
        queued: true,
        change: { id: q.id, op: q.op, camera: q.camera, at: new Date(q.at).toISOString() },
        error: { code: 'DATABASE_UNAVAILABLE', message: 'the database is unavailable: the change was checked and is queued on this server; it is applied when the database is back (see GET /api/cluster)' },
      });
    }
  };
  const table: Route[] = [
    {
      method: 'GET', path: '/api/health', permission: 'public',
      summary: 'Whether the process is up, with its version',
      responses: { 200: HealthSchema },
      handler: async (_req, res) => {
        res.json({
          status: 'ok', version: deps.version, node: deps.cluster.id, database: deps.db.kind, bus: deps.cluster.bus.kind,
          leading: deps.cluster.leadership.isLeader, uptimeS: Math.round((Date.now() - startedAt) / 1000),
        });
      },
    },
    {
      method: 'GET', path: '/api/cameras', permission: Permission.CamerasRead,
      summary: 'The cameras you may see, with their status',
      responses: { 200: z.array(CameraViewSchema) },
      handler: async (_req, res) => {
        const p = principal(res);
        res.json((await store.list()).filter((c) => canSeeCamera(p, c.config.id)).map((c) => cameraView(c, runtime)));
      },
    },
    {
      method: 'POST', path: '/api/cameras', permission: Permission.CamerasManage, body: 'json',
      summary: 'Add a camera: { id, name?, enabled?, source: { kind, … } }',
      request: { body: CameraSchema },
      responses: { 201: CameraViewSchema, 202: QueuedChangeSchema, 409: ErrorBodySchema },
      handler: (req, res) =>
        orQueue(req, res, 'create', String((req.body as { id?: unknown })?.id ?? ''), req.body, async () => {
          const cam = await store.create(req.body);
          if (!cam) throw new ApiError('CAMERA_EXISTS', `a camera with id '${String((req.body as { id?: unknown }).id)}' exists`, { field: 'id' });
          await audit(req, res, AuditAction.CameraCreated, cam.config.id, { source: publicSource(cam.config.source), enabled: cam.config.enabled });
          res.status(201).location(`/api/cameras/${cam.config.id}`).json(cameraView(cam, runtime));
        }),
    },
    {
      method: 'GET', path: '/api/cameras/:id', permission: Permission.CamerasRead, camera: true,
      summary: 'One camera with its status',
      responses: { 200: CameraViewSchema },
      handler: async (req, res) => {
        res.json(cameraView(await mustGet(cameraId(req)), runtime));
      },
    },
    {
      method: 'PUT', path: '/api/cameras/:id', permission: Permission.CamerasManage, camera: true, body: 'json',
      summary: "Replace a camera's configuration",
      request: { body: CameraReplaceSchema },
      responses: { 200: CameraViewSchema, 202: QueuedChangeSchema },
      handler: (req, res) =>
        orQueue(req, res, 'replace', cameraId(req), req.body, async () => {
          const cam = await store.update(cameraId(req), req.body, 'replace');
          if (!cam) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${cameraId(req)}'`);
          await audit(req, res, AuditAction.CameraChanged, cam.config.id, { name: cam.config.name, enabled: cam.config.enabled, source: publicSource(cam.config.source) });
          res.json(cameraView(cam, runtime));
        }),
    },
    {
      method: 'PATCH', path: '/api/cameras/:id', permission: Permission.CamerasManage, camera: true, body: 'json',
      summary: "Change some fields of a camera's configuration",
      request: { body: CameraMergeSchema },
      responses: { 200: CameraViewSchema, 202: QueuedChangeSchema },
      handler: (req, res) =>
        orQueue(req, res, 'merge', cameraId(req), req.body, async () => {
          const cam = await store.update(cameraId(req), req.body, 'merge');
          if (!cam) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${cameraId(req)}'`);
          await audit(req, res, AuditAction.CameraChanged, cam.config.id, { name: cam.config.name, enabled: cam.config.enabled, source: publicSource(cam.config.source) });
          res.json(cameraView(cam, runtime));
        }),
    },
    {
      method: 'DELETE', path: '/api/cameras/:id', permission: Permission.CamerasManage, camera: true,
      summary: 'Remove a camera',
      responses: { 204: 'empty', 202: QueuedChangeSchema },
      handler: (req, res) =>
        orQueue(req, res, 'remove', cameraId(req), undefined, async () => {
          if (!(await store.remove(cameraId(req)))) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${cameraId(req)}'`);
          await audit(req, res, AuditAction.CameraDeleted, cameraId(req));
          res.status(204).end();
        }),
    },
    {
      method: 'POST', path: '/api/cameras/:id/whep', permission: Permission.Live, camera: true, body: 'sdp', limit: 'whep',
      summary: 'Watch a camera: WHEP offer (application/sdp) → 201 with the SDP answer and Location',
      responses: { 201: SDP, 406: ErrorBodySchema, 409: ErrorBodySchema },
      handler: async (req, res) => {
        const id = cameraId(req);
        await mustGet(id);
        if (typeof req.body !== 'string') throw new ApiError('BAD_SDP', 'the body must be an SDP offer');
        let answer: { id: string; sdp: string };
        try {
          answer = await whep.createViewer(id, req.body);
        } catch (error) {
          throw toApiError(error, { validation: 'BAD_SDP', notFound: 'CAMERA_NOT_FOUND' });
        }
        res.status(201).location(`/api/cameras/${id}/whep/${answer.id}`).type('application/sdp').send(answer.sdp);
        // Recorded after the answer is on its way: the viewer's first frame does not wait for the write.
        void audit(req, res, AuditAction.LiveStarted, id, { session: answer.id, userAgent: requestMeta(req, trustProxy).userAgent });
      },
    },
    {
      method: 'DELETE', path: '/api/cameras/:id/whep/:session', permission: Permission.Live, camera: true,
      summary: 'Stop watching (the Location returned by the WHEP POST)',
      responses: { 200: 'empty' },
      handler: async (req, res) => {
        try {
          await whep.deleteViewer(cameraId(req), String(req.params.session));
        } catch (error) {
          throw toApiError(error, { notFound: 'SESSION_NOT_FOUND' });
        }
        res.status(200).end();
      },
    },
    {
      method: 'PATCH', path: '/api/cameras/:id/whep/:session', permission: Permission.Live, camera: true,
      summary: 'Trickle ICE and ICE restart are not supported (WHEP allows 405); the answer already has every candidate',
      responses: { 405: ErrorBodySchema },
      handler: (_req, res) => {
        res.setHeader('Allow', 'DELETE');
        throw new ApiError('METHOD_NOT_ALLOWED', 'trickle ICE and ICE restarts are not supported; the answer carries every candidate');
      },
    },
    {
      method: 'POST', path: '/api/cameras/:id/whip', permission: Permission.Control, camera: true, body: 'sdp',
      summary: 'Publish to a whip camera: WHIP offer (application/sdp, RFC 9725) → 201 with the SDP answer and Location; a new publisher replaces the one before',
      responses: { 201: SDP, 406: ErrorBodySchema, 409: ErrorBodySchema },
      handler: async (req, res) => {
        const id = cameraId(req);
        const cam = await mustGet(id);
        if (cam.config.source.kind !== 'whip') throw new ApiError('NOT_WHIP_CAMERA', `camera ${id} is a ${cam.config.source.kind} camera; only a camera with source kind whip takes WHIP publishers`);
        if (typeof req.body !== 'string') throw new ApiError('BAD_SDP', 'the body must be an SDP offer');
        if (!whip) throw new ApiError('UNAVAILABLE', 'this server does not take WHIP publishers', { retryAfterS: 30 });
        let answer: { id: string; sdp: string };
        try {
          answer = await whip.createPublisher(id, req.body);
        } catch (error) {
          throw toApiError(error, { validation: 'BAD_SDP', notFound: 'CAMERA_NOT_FOUND' });
        }
        // RFC 9725 §4.2: 201 Created, the session URL in Location, the answer as application/sdp.
        res.status(201).location(`/api/cameras/${id}/whip/${answer.id}`).type('application/sdp').send(answer.sdp);
        void audit(req, res, AuditAction.PublishStarted, id, { session: answer.id, userAgent: requestMeta(req, trustProxy).userAgent });
      },
    },
    {
      method: 'DELETE', path: '/api/cameras/:id/whip/:session', permission: Permission.Control, camera: true,
      summary: 'Stop publishing (the Location returned by the WHIP POST)',
      responses: { 200: 'empty' },
      handler: async (req, res) => {
        if (!whip) throw new ApiError('SESSION_NOT_FOUND', 'this server does not take WHIP publishers');
        try {
          await whip.deletePublisher(cameraId(req), String(req.params.session));
        } catch (error) {
          throw toApiError(error, { notFound: 'SESSION_NOT_FOUND' });
        }
        res.status(200).end();
      },
    },
    {
      method: 'PATCH', path: '/api/cameras/:id/whip/:session', permission: Permission.Control, camera: true,
      summary: 'Trickle ICE and ICE restart are not supported (WHIP allows 405); the answer already has every candidate',
      responses: { 405: ErrorBodySchema },
      handler: (_req, res) => {
        res.setHeader('Allow', 'DELETE');
        throw new ApiError('METHOD_NOT_ALLOWED', 'trickle ICE and ICE restarts are not supported; the offer must carry every candidate');
      },
    },
    {
      method: 'GET', path: '/metrics', permission: Permission.MetricsRead,
      summary: 'Prometheus metrics of this process (a token with metrics:read for the scraper)',
      responses: { 200: { contentType: 'text/plain' } },
      handler: async (_req, res) => {
        const m = await metricsText();
        res.type(m.contentType).send(m.body);
      },
    },
    ...authRoutes(auth, { trustProxy, issuer: 'CCTV' }),
    ...clusterRoutes(deps.cluster, auth, deps.config, deps.changes ?? null),
    ...archiveRoutes(deps.archive ?? null, auth, trustProxy),
    ...alertRoutes(deps.alerts ?? null, { append: (e) => auth.audit.append(e) }, trustProxy),
    ...eventRoutes({ events: deps.events ?? null, archive: deps.archive?.archive ?? null, store, audit: { append: (e) => auth.audit.append(e) }, trustProxy }),
  ];
  // GraphQL runs the routes of this table (each field is one of them).
  const graphql = deps.graphql ?? new GraphqlApi({ auth, sources: { statuses: runtime, motion: deps.cluster?.registry ?? null }, apiLimit: deps.config?.security.limits.apiPerPrincipal ?? [] });
  table.push(...graphql.routes(() => table));
  // The API's own description, made from this table (read when asked for, so it is always the whole table).
  table.push(...docsRoutes(() => table, deps.version));
  return table;
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * The one place where access is decided, for every route: who is asking, whether a 2FA step is owed,
 * the route's permission (on its camera), CSRF for cookie-authenticated writes, and the rate limits.
 * A camera the caller may not see answers 404, as if it did not exist.
 */
export async function authorize(route: Route, req: Request, res: Response, deps: Pick<AppDeps, 'auth' | 'config'>): Promise<Principal> {
  if (route.permission === 'public') {
    // Credentials are not needed here; bad ones are ignored rather than refused.
    const p = await deps.auth.resolve(req).catch(() => ANONYMOUS);
    res.locals.principal = p;
    return p;
  }
  const p = await deps.auth.resolve(req);
  res.locals.principal = p;
  if (p.kind === 'anonymous') throw new ApiError('UNAUTHENTICATED');
  // Lucia's CSRF rule: a write made with the session cookie must come from a page of this site.
  if (p.kind === 'user' && UNSAFE.has(req.method) && !sameOrigin(req)) {
    throw new ApiError('CSRF_FAILED', 'a request with the session cookie that changes something must come from this site (Origin header)');
  }
  if (p.pending && !route.allowPending?.includes(p.pending)) throw new ApiError(p.pending === 'verify' ? 'SECOND_FACTOR_PENDING' : 'ENROLLMENT_REQUIRED');
  checkPermission(route, p, route.camera ? String(req.params.id ?? '') : undefined);
  const who = p.tokenId ?? p.userId!;
  const limits = deps.config.security.limits;
  const d = await deps.auth.limiter.hit(`api:${who}`, limits.apiPerPrincipal);
  if (!d.ok) throw new ApiError('RATE_LIMITED', `too many requests; try again in ${d.retryAfterS} s`, { retryAfterS: d.retryAfterS });
  if (route.limit === 'whep') {
    const w = await deps.auth.limiter.hit(`whep:${who}`, limits.whepPerPrincipal);
    if (!w.ok) throw new ApiError('RATE_LIMITED', `too many new viewing sessions; try again in ${w.retryAfterS} s`, { retryAfterS: w.retryAfterS });
  }
  return p;
}

/**
 * The route's permission, on its camera for a camera route (`camera`: the route's `:id`). A camera the
 * principal may not see answers 404, as if it did not exist. GraphQL's fields are checked with this too.
 */
export function checkPermission(route: Pick<Route, 'permission' | 'camera'>, p: Principal, camera: string | undefined): void {
  if (route.permission === 'public' || route.permission === 'authenticated') return;
  if (route.camera && camera !== undefined && !canSeeCamera(p, camera)) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${camera.slice(0, 80)}'`);
  const perCamera = (CAMERA_PERMISSIONS as readonly string[]).includes(route.permission);
  if (!can(p, route.permission, perCamera ? camera : undefined)) throw new ApiError('FORBIDDEN', `this needs the permission ${route.permission}`);
}

/** Whether the request's Origin is this server (scheme and host as the request reached us). */
export function sameOrigin(req: Request): boolean {
  const origin = req.headers.origin;
  if (!origin) return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Builds the HTTP app (without listening), so routes can be tested without a port. */
export function buildApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const tls = deps.config.http.tls.mode !== 'off';
  app.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          'default-src': ["'self'"],
          'script-src': ["'self'"],
          'style-src': ["'self'"],
          'img-src': ["'self'", 'data:', 'blob:'],
          'media-src': ["'self'", 'blob:'],
          'connect-src': ["'self'"],
          'object-src': ["'none'"],
          'base-uri': ["'self'"],
          'form-action': ["'self'"],
          'frame-ancestors': ["'none'"],
        },
      },
      // HSTS only means something over HTTPS.
      strictTransportSecurity: tls ? { maxAge: 31_536_000, includeSubDomains: false } : false,
      crossOriginEmbedderPolicy: false,
    }),
  );
  // CORS for listed origins only, and only for Bearer-token calls (cookies are never sent cross-site).
  const corsOrigins = new Set(deps.config.http.corsOrigins);
  app.use((req, res, next) => {
    const origin = req.headers.origin;
    if (origin && corsOrigins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Expose-Headers', 'Location, Retry-After');
      if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
        res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE');
        res.setHeader('Access-Control-Allow-Headers', 'Authorization, Content-Type');
        res.setHeader('Access-Control-Max-Age', '600');
        res.status(204).end();
        return;
      }
    }
    next();
  });

  const table = routes(deps);
  const jsonBody = express.json({ limit: deps.config.http.bodyLimitBytes, strict: true, type: () => true });
  const sdpBody = express.text({ limit: MAX_SDP_BYTES, type: () => true });

  for (const r of table) {
    const guard = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      try {
        await authorize(r, req, res, deps);
        next();
      } catch (error) {
        next(error);
      }
    };
    const wrap = async (req: Request, res: Response, next: NextFunction): Promise<void> => {
      try {
        await r.handler(req, res);
      } catch (error) {
        next(error);
      }
    };
    const checkType = (req: Request, _res: Response, next: NextFunction): void => {
      const want = r.body === 'sdp' ? 'application/sdp' : 'application/json';
      if (!req.is(want)) return next(new ApiError('UNSUPPORTED_MEDIA_TYPE', `the Content-Type must be ${want}`));
      next();
    };
    // Access is decided before the body is read: an anonymous caller cannot make us parse 1 MiB.
    const chain = r.body ? [guard, checkType, r.body === 'sdp' ? sdpBody : jsonBody, wrap] : [guard, wrap];
    app[r.method.toLowerCase() as 'get'](r.path, ...chain);
  }

  // A known path with another method: 405 with the methods it has.
  const byPath = new Map<string, Method[]>();
  for (const r of table) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r.method]);
  for (const [path, methods] of byPath) {
    app.all(path, (req, res, next) => {
      if (req.method === 'OPTIONS') {
        res.setHeader('Allow', [...methods, 'OPTIONS'].join(', '));
        res.status(204).end();
        return;
      }
      res.setHeader('Allow', methods.join(', '));
      next(new ApiError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${methods.join(', ')}`));
    });
  }
  app.use('/api', (req, _res, next) => next(new ApiError('NOT_FOUND', `no API route ${req.method} ${req.baseUrl}${req.path}`)));

  // The dashboard: static files, and index.html for the app's own paths.
  if (deps.webDir && existsSync(join(deps.webDir, 'index.html'))) {
    const webDir = deps.webDir;
    app.use(express.static(webDir, { index: 'index.html', maxAge: '1h', setHeaders: (res, path) => {
      if (path.endsWith('index.html')) res.setHeader('Cache-Control', 'no-cache');
    } }));
    app.get(/^\/(?!api\/|metrics$).*/, (_req, res) => {
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(join(webDir, 'index.html'));
    });
  } else {
    app.get('/', (_req, res) => {
      res.type('text/plain').send('The dashboard is not built. Run `npm run build` (npm start does it for you).\n');
    });
  }

  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const api = fromExpress(error) ?? toApiError(error);
    if (api.code === 'INTERNAL') log.error({ err: error, method: req.method, path: req.path }, 'request failed');
    else log.debug({ code: api.code, method: req.method, path: req.path }, 'request refused');
    if (api.retryAfterS !== undefined) res.setHeader('Retry-After', String(api.retryAfterS));
    if (api.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="cctv"');
    res.status(api.status).json({ error: { code: api.code, message: api.message, ...(api.field ? { field: api.field } : {}) } });
  });
  return app;
}

// body-parser's errors carry a `type`; turn them into catalog errors.
function fromExpress(error: unknown): ApiError | null {
  const e = error as { type?: string; status?: number; limit?: number };
  if (e?.type === 'entity.too.large') return new ApiError('BODY_TOO_LARGE', `the body is larger than ${e.limit ?? 0} bytes`);
  if (e?.type === 'entity.parse.failed') return new ApiError('MALFORMED_JSON', 'the body is not valid JSON');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') return new ApiError('UNSUPPORTED_MEDIA_TYPE', 'the body encoding is not supported');
  if (e?.type === 'request.aborted') return new ApiError('BAD_REQUEST', 'the request was aborted');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && !(error instanceof ApiError)) return new ApiError('BAD_REQUEST', (error as Error).message);
  return null;
}
