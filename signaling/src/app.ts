import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import { CAMERA_ID_PATTERN, createLogger, metricsText, type Config, type Database } from '@cctv/core';
import { MAX_SDP_BYTES } from '@cctv/sfu';
import { publicSource, type CameraStore, type StoredCamera } from './cameras.js';
import { ApiError, toApiError } from './errors.js';
import type { CameraRuntime, WhepTarget } from './local.js';

const log = createLogger('signaling:http');

export interface AppDeps {
  config: Readonly<Config>;
  db: Database;
  store: CameraStore;
  runtime: CameraRuntime;
  whep: WhepTarget;
  /** Folder of the built dashboard, or null when it is not built. */
  webDir: string | null;
  version: string;
}

/** HTTP methods the route table uses. */
export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One entry of the route table: every API route is declared here, so tests can walk them all. */
export interface Route {
  method: Method;
  /** Express path, e.g. `/api/cameras/:id`. */
  path: string;
  /** One line saying what it does. */
  summary: string;
  /** The body it takes, if any. */
  body?: 'json' | 'sdp';
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
  };
}

function cameraId(req: Request): string {
  const id = String(req.params.id ?? '');
  if (!CAMERA_ID_PATTERN.test(id)) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${id.slice(0, 80)}'`);
  return id;
}

/** The API's routes. */
export function routes(deps: AppDeps): Route[] {
  const { store, runtime, whep } = deps;
  const startedAt = Date.now();
  const mustGet = async (id: string): Promise<StoredCamera> => {
    const cam = await store.get(id);
    if (!cam) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${id}'`);
    return cam;
  };
  return [
    {
      method: 'GET',
      path: '/api/health',
      summary: 'Whether the process is up, with its version and roles',
      handler: async (_req, res) => {
        res.json({
          status: 'ok',
          version: deps.version,
          node: deps.config.node.id,
          database: deps.db.kind,
          uptimeS: Math.round((Date.now() - startedAt) / 1000),
        });
      },
    },
    {
      method: 'GET',
      path: '/api/cameras',
      summary: 'Every camera with its status',
      handler: async (_req, res) => {
        res.json((await store.list()).map((c) => cameraView(c, runtime)));
      },
    },
    {
      method: 'POST',
      path: '/api/cameras',
      summary: 'Add a camera: { id, name?, enabled?, source: { kind, … } }',
      body: 'json',
      handler: async (req, res) => {
        const cam = await store.create(req.body);
        if (!cam) throw new ApiError('CAMERA_EXISTS', `a camera with id '${String((req.body as { id?: unknown }).id)}' exists`, { field: 'id' });
        res.status(201).location(`/api/cameras/${cam.config.id}`).json(cameraView(cam, runtime));
      },
    },
    {
      method: 'GET',
      path: '/api/cameras/:id',
      summary: 'One camera with its status',
      handler: async (req, res) => {
        res.json(cameraView(await mustGet(cameraId(req)), runtime));
      },
    },
    {
      method: 'PUT',
      path: '/api/cameras/:id',
      summary: "Replace a camera's configuration",
      body: 'json',
      handler: async (req, res) => {
        const cam = await store.update(cameraId(req), req.body, 'replace');
        if (!cam) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${cameraId(req)}'`);
        res.json(cameraView(cam, runtime));
      },
    },
    {
      method: 'PATCH',
      path: '/api/cameras/:id',
      summary: "Change some fields of a camera's configuration",
      body: 'json',
      handler: async (req, res) => {
        const cam = await store.update(cameraId(req), req.body, 'merge');
        if (!cam) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${cameraId(req)}'`);
        res.json(cameraView(cam, runtime));
      },
    },
    {
      method: 'DELETE',
      path: '/api/cameras/:id',
      summary: 'Remove a camera',
      handler: async (req, res) => {
        if (!(await store.remove(cameraId(req)))) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${cameraId(req)}'`);
        res.status(204).end();
      },
    },
    {
      method: 'POST',
      path: '/api/cameras/:id/whep',
      summary: 'Watch a camera: WHEP offer (application/sdp) → 201 with the SDP answer and Location',
      body: 'sdp',
      handler: async (req, res) => {
        const id = cameraId(req);
        await mustGet(id);
        if (typeof req.body !== 'string') throw new ApiError('BAD_SDP', 'the body must be an SDP offer');
        try {
          const answer = await whep.createViewer(id, req.body);
          res
            .status(201)
            .location(`/api/cameras/${id}/whep/${answer.id}`)
            .type('application/sdp')
            .send(answer.sdp);
        } catch (error) {
          throw toApiError(error, { validation: 'BAD_SDP', notFound: 'CAMERA_NOT_FOUND' });
        }
      },
    },
    {
      method: 'DELETE',
      path: '/api/cameras/:id/whep/:session',
      summary: 'Stop watching (the Location returned by the WHEP POST)',
      handler: async (req, res) => {
        const id = cameraId(req);
        try {
          await whep.deleteViewer(id, String(req.params.session));
        } catch (error) {
          throw toApiError(error, { notFound: 'SESSION_NOT_FOUND' });
        }
        res.status(200).end();
      },
    },
    {
      method: 'PATCH',
      path: '/api/cameras/:id/whep/:session',
      summary: 'Trickle ICE and ICE restart are not supported (WHEP allows 405); the answer already has every candidate',
      handler: (_req, res) => {
        res.setHeader('Allow', 'DELETE');
        throw new ApiError('METHOD_NOT_ALLOWED', 'trickle ICE and ICE restarts are not supported; the answer carries every candidate');
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      summary: 'Prometheus metrics of this process',
      handler: async (_req, res) => {
        const m = await metricsText();
        res.type(m.contentType).send(m.body);
      },
    },
  ];
}

/** Builds the HTTP app (without listening), so routes can be tested without a port. */
export function buildApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('trust proxy', false);
  const table = routes(deps);
  const jsonBody = express.json({ limit: deps.config.http.bodyLimitBytes, strict: true, type: () => true });
  const sdpBody = express.text({ limit: MAX_SDP_BYTES, type: () => true });

  for (const r of table) {
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
    const chain = r.body ? [checkType, r.body === 'sdp' ? sdpBody : jsonBody, wrap] : [wrap];
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
    else log.debug({ code: api.code, method: req.method, path: req.path, msg: api.message }, 'request refused');
    if (api.retryAfterS !== undefined) res.setHeader('Retry-After', String(api.retryAfterS));
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
