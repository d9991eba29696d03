import { STATUS_CODES } from 'node:http';
import { z, type ZodType } from 'zod';
import type { ResponseSpec, Route } from './app.js';
import { SESSION_COOKIE } from './auth/service.js';
import { ErrorBodySchema } from './schemas.js';

/**
 * The API's OpenAPI 3.1 document, made from the route table: the schemas that describe a route's body,
 * query and answers are the ones its handler (or the service it calls) validates with, turned into
 * JSON Schema 2020-12 (the dialect of OpenAPI 3.1) by `z.toJSONSchema`.
 */

type JsonSchema = Record<string, unknown>;

/** An OpenAPI 3.1 document (the parts this module writes). */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  jsonSchemaDialect: string;
  tags: Array<{ name: string; description: string }>;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, JsonSchema> };
}

/** One operation of the document, with the route's permission as `x-permission`. */
export interface Operation {
  operationId: string;
  summary: string;
  tags: string[];
  security: Array<Record<string, string[]>>;
  'x-permission': string;
  'x-per-camera'?: true;
  parameters?: Parameter[];
  requestBody?: { required: boolean; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: JsonSchema }> }>;
}

interface Parameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

const ERROR_REF = { $ref: '#/components/schemas/Error' };

const TAGS: Record<string, string> = {
  system: 'Health and metrics',
  cameras: 'Cameras and their configuration',
  live: 'Live viewing (WHEP) and publishing (WHIP)',
  archive: 'Recordings: timeline, playback, exports, protection, verification',
  events: 'Motion events',
  auth: 'Sign-in, 2FA, sessions and your tokens',
  users: 'Users, roles and site security',
  audit: 'The audit log',
  cluster: 'Nodes, enrolment and the cluster',
  alerts: 'Webhooks and alert deliveries',
  docs: 'This description of the API',
};

/** The document's section for a route, from its path. */
export function tagOf(path: string): string {
  if (path === '/metrics' || path === '/api/health') return 'system';
  if (/\/wh[ei]p(\/|$)/.test(path)) return 'live';
  if (path.startsWith('/api/cameras/:id/archive') || path.startsWith('/api/archive')) return 'archive';
  const first = path.split('/')[2] ?? '';
  const byPrefix: Record<string, string> = {
    cameras: 'cameras', events: 'events', auth: 'auth', tokens: 'auth', users: 'users', roles: 'users', security: 'users',
    audit: 'audit', nodes: 'cluster', cluster: 'cluster', gaps: 'cluster', webhooks: 'alerts', alerts: 'alerts',
    openapi: 'docs', 'openapi.json': 'docs', docs: 'docs',
  };
  return byPrefix[first] ?? 'system';
}

/** `/api/cameras/:id` → `/api/cameras/{id}`. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

/** The `:name`s of an express path, in order. */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
}

/** `GET /api/cameras/:id/whep/:session` → `getCamerasByIdWhepBySession`. */
export function operationId(r: Pick<Route, 'method' | 'path'>): string {
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const words = r.path.split('/').filter((s) => s && s !== 'api').map((s) =>
    s.startsWith(':') ? `By${cap(s.slice(1))}` : s.split(/[^A-Za-z0-9]+/).filter(Boolean).map(cap).join(''));
  return r.method.toLowerCase() + words.join('');
}

/**
 * Everything a route may answer, by status: what it declares, and the errors every route of its kind may
 * answer — 401/403/429 behind a permission (access and rate limits), 400/413/415 with a body, 400 with a
 * query, 404 with path parameters, and 500/503 anywhere (a bug; the database or a service away).
 */
export function responsesOf(r: Route): Map<number, ResponseSpec> {
  const out = new Map<number, ResponseSpec>();
  for (const [status, spec] of Object.entries(r.responses ?? {})) out.set(Number(status), spec);
  const error = (...statuses: number[]) => {
    for (const s of statuses) if (!out.has(s)) out.set(s, ErrorBodySchema);
  };
  if (r.permission !== 'public') error(401, 403, 429);
  if (r.body) error(400, 413, 415);
  if (r.request?.query) error(400);
  if (pathParams(r.path).length > 0) error(404);
  error(500, 503);
  return new Map([...out].sort(([a], [b]) => a - b));
}

/** Whether an answer is JSON described by a schema (rather than empty, or of another media type). */
export function isSchema(spec: ResponseSpec): spec is ZodType {
  return typeof spec === 'object' && typeof (spec as Partial<ZodType>).safeParse === 'function';
}

/** The media types of a non-JSON answer. */
export function contentTypes(spec: { contentType: string | readonly string[] }): readonly string[] {
  return typeof spec.contentType === 'string' ? [spec.contentType] : spec.contentType;
}

/** A zod schema as JSON Schema 2020-12, fit to sit inside the document (no `$schema` of its own). */
export function jsonSchema(schema: ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function parameters(r: Route): Parameter[] {
  const out: Parameter[] = [];
  const declared = r.request?.params ? jsonSchema(r.request.params, 'input') : null;
  const declaredProps = (declared?.properties ?? {}) as Record<string, JsonSchema>;
  for (const name of pathParams(r.path)) {
    const schema = declaredProps[name] ?? { type: 'string' };
    out.push({ name, in: 'path', required: true, ...(r.camera && name === 'id' ? { description: 'A camera id' } : {}), schema });
  }
  if (r.request?.query) {
    const q = jsonSchema(r.request.query, 'input');
    const required = new Set((q.required ?? []) as string[]);
    for (const [name, prop] of Object.entries((q.properties ?? {}) as Record<string, JsonSchema>)) {
      const { description, ...schema } = prop;
      out.push({ name, in: 'query', required: required.has(name), ...(typeof description === 'string' ? { description } : {}), schema });
    }
  }
  return out;
}

function contentOf(spec: ResponseSpec): Record<string, { schema: JsonSchema }> | undefined {
  if (spec === 'empty') return undefined;
  if (spec === ErrorBodySchema) return { 'application/json': { schema: ERROR_REF } };
  if (!isSchema(spec)) {
    const types = contentTypes(spec);
    return Object.fromEntries(types.map((t) => [t, { schema: t.startsWith('text/') || t === 'application/sdp' || t.includes('mpegurl') ? { type: 'string' } : t === 'application/json' ? { type: 'object' } : { contentMediaType: t } }]));
  }
  return { 'application/json': { schema: jsonSchema(spec, 'output') } };
}

function operation(r: Route): Operation {
  const params = parameters(r);
  const op: Operation = {
    operationId: operationId(r),
    summary: r.summary,
    tags: [tagOf(r.path)],
    security: r.permission === 'public' ? [] : [{ bearerAuth: [] }, { sessionCookie: [] }],
    'x-permission': r.permission,
    ...(r.camera ? { 'x-per-camera': true as const } : {}),
    ...(params.length ? { parameters: params } : {}),
    responses: {},
  };
  if (r.body === 'json') {
    op.requestBody = { required: true, content: { 'application/json': { schema: r.request?.body ? jsonSchema(r.request.body, 'input') : { type: 'object' } } } };
  } else if (r.body === 'sdp') {
    op.requestBody = { required: true, content: { 'application/sdp': { schema: { type: 'string' } } } };
  }
  for (const [status, spec] of responsesOf(r)) {
    const content = contentOf(spec);
    op.responses[String(status)] = { description: STATUS_CODES[status] ?? String(status), ...(content ? { content } : {}) };
  }
  return op;
}

/** The OpenAPI 3.1 document of a route table. */
export function openApiDocument(table: readonly Route[], version: string): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  for (const r of table) (paths[openApiPath(r.path)] ??= {})[r.method.toLowerCase()] = operation(r);
  const used = new Set(table.map((r) => tagOf(r.path)));
  return {
    openapi: '3.1.0',
    info: {
      title: 'CCTV API',
      version,
      description: 'Every operation names the permission it needs (`x-permission`); `public` ones need no credentials. '
        + 'Errors are `{ "error": { "code", "message", "field"? } }` with a stable code. Writes made with the session cookie need this site\'s Origin header.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: Object.entries(TAGS).filter(([name]) => used.has(name)).map(([name, description]) => ({ name, description })),
    paths,
    components: {
      schemas: { Error: jsonSchema(ErrorBodySchema, 'output') },
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token (`cctv_…`) or a short-lived token from POST /api/auth/token' },
        sessionCookie: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE, description: 'The dashboard\'s session, set by POST /api/auth/login' },
      },
    },
  };
}

const OpenApiDocumentSchema = z.looseObject({
  openapi: z.literal('3.1.0'),
  info: z.looseObject({ title: z.string(), version: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.looseObject({ operationId: z.string() }))),
  components: z.looseObject({}),
});

/** The document (`/api/openapi.json`) and a page to read it (`/api/docs`), both public. */
export function docsRoutes(table: () => readonly Route[], version: string): Route[] {
  let doc: OpenApiDocument | null = null;
  let page: string | null = null;
  // Made once, when first asked for: by then the table is complete.
  const document = () => (doc ??= openApiDocument(table(), version));
  return [
    {
      method: 'GET', path: '/api/openapi.json', permission: 'public',
      summary: 'This API described in OpenAPI 3.1 (JSON Schema 2020-12), generated from the route table',
      responses: { 200: OpenApiDocumentSchema },
      handler: (_req, res) => {
        res.setHeader('Cache-Control', 'no-cache');
        res.json(document());
      },
    },
    {
      method: 'GET', path: '/api/docs', permission: 'public',
      summary: 'A page to read the API reference: every operation, its permission, parameters and schemas',
      responses: { 200: { contentType: 'text/html' } },
      handler: (_req, res) => {
        page ??= docsPage(document());
        res.setHeader('Cache-Control', 'no-cache');
        // The page has its style inline and no script; nothing else may load.
        res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
        res.type('text/html').send(page);
      },
    },
  ];
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pretty = (v: unknown) => `<pre>${esc(JSON.stringify(v, null, 2))}</pre>`;

/** The reference page, rendered here: self-contained HTML without scripts (the CSP allows none). */
export function docsPage(doc: OpenApiDocument): string {
  const ops = Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.entries(byMethod).map(([method, op]) => ({ path, method, op })));
  const sections = doc.tags.map((tag) => {
    const mine = ops.filter((o) => o.op.tags.includes(tag.name));
    const items = mine.map(({ path, method, op }) => {
      const params = op.parameters?.length
        ? `<table><tr><th>Parameter</th><th>In</th><th>Required</th><th>Schema</th></tr>${op.parameters.map((p) =>
          `<tr><td><code>${esc(p.name)}</code>${p.description ? `<br><small>${esc(p.description)}</small>` : ''}</td><td>${p.in}</td><td>${p.required ? 'yes' : 'no'}</td><td><code>${esc(JSON.stringify(p.schema))}</code></td></tr>`).join('')}</table>`
        : '';
      const body = op.requestBody
        ? Object.entries(op.requestBody.content).map(([type, c]) => `<details><summary>Request body <code>${esc(type)}</code></summary>${pretty(c.schema)}</details>`).join('')
        : '';
      const responses = Object.entries(op.responses).map(([status, r]) => {
        const content = Object.entries(r.content ?? {});
        const label = `<code>${status}</code> ${esc(r.description)}${content.length ? ` <small>${content.map(([t]) => esc(t)).join(', ')}</small>` : ''}`;
        const schema = content.find(([t]) => t === 'application/json')?.[1].schema;
        return schema && !('$ref' in schema) ? `<details><summary>${label}</summary>${pretty(schema)}</details>` : `<div class="r">${label}</div>`;
      }).join('');
      const perm = op['x-permission'];
      return `<section class="op" id="${esc(op.operationId)}"><h3><span class="m ${method}">${method.toUpperCase()}</span> <code>${esc(path)}</code></h3>
<p>${esc(op.summary)}</p><p class="perm">${perm === 'public' ? 'Public: no credentials needed' : `Needs <code>${esc(perm)}</code>${op['x-per-camera'] ? ' on the camera' : ''}`} · <code>${esc(op.operationId)}</code></p>
${params}${body}<div class="resp">${responses}</div></section>`;
    }).join('\n');
    return `<h2 id="tag-${esc(tag.name)}">${esc(tag.name)} <small>${esc(tag.description)}</small></h2>\n${items}`;
  }).join('\n');
  const toc = doc.tags.map((t) => `<a href="#tag-${esc(t.name)}">${esc(t.name)}</a>`).join(' · ');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(doc.info.title)} ${esc(doc.info.version)} reference</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:70rem;padding:1rem 1.5rem;color:#1b1f24}
h2{border-bottom:2px solid #d0d7de;margin-top:2.5rem}h2 small{font-weight:normal;color:#57606a;font-size:.6em}
.op{border:1px solid #d0d7de;border-radius:6px;padding:.2rem 1rem .8rem;margin:1rem 0}.op h3{margin:.6rem 0 .2rem}
.m{display:inline-block;min-width:4.2rem;text-align:center;border-radius:4px;color:#fff;font-size:.8em;padding:.1rem .3rem}
.get{background:#1f6feb}.post{background:#1a7f37}.put{background:#9a6700}.patch{background:#8250df}.delete{background:#cf222e}
.perm{color:#57606a;font-size:.9em}pre{background:#f6f8fa;padding:.6rem;overflow:auto;font-size:12px;max-height:30rem}
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #d0d7de;padding:.2rem .5rem;text-align:left;vertical-align:top}
details,.r{margin:.15rem 0}summary{cursor:pointer}
</style></head><body>
<h1>${esc(doc.info.title)} <small>${esc(doc.info.version)}</small></h1>
<p>${esc(doc.info.description)}</p>
<p>The machine-readable document: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1). Error answers use the <code>Error</code> schema:</p>
${pretty(doc.components.schemas.Error)}
<nav>${toc}</nav>
${sections}
</body></html>
`;
}
