import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes, type Route } from './app.js';
import { contentTypes, isSchema, openApiDocument, openApiPath, pathParams, responsesOf, type OpenApiDocument } from './openapi.js';
import { call, harness, type Harness } from './testing/harness.js';
import { SAMPLES } from './testing/samples.js';

/**
 * The OpenAPI document against the route table, and the app's answers against the document's schemas:
 * every sample request of the access matrix is made as the admin and as an anonymous caller, and each
 * answer must have a status the route declares, in the declared media type, inside the declared schema.
 */

let h: Harness;
let table: Route[];
let doc: OpenApiDocument;
let n = 0;
let targetId = '';

const key = (r: Pick<Route, 'method' | 'path'>) => `${r.method} ${r.path}`;

async function reseed(): Promise<void> {
  if (!(await h.store.get('cam1'))) await h.store.create({ id: 'cam1', source: { kind: 'test' } });
  if (!(await h.store.get('cam2'))) await h.store.create({ id: 'cam2', source: { kind: 'test' } });
}

beforeAll(async () => {
  h = await harness({ security: { limits: { signInPerAddress: [{ max: 100_000, windowS: 60 }], apiPerPrincipal: [{ max: 100_000, windowS: 60 }], whepPerPrincipal: [{ max: 100_000, windowS: 60 }] } } });
  targetId = (await h.user('target', 'viewer')).id;
  table = routes(h.deps);
  doc = openApiDocument(table, 'test');
  await reseed();
});
afterAll(async () => {
  await h?.close();
});

/** Every `$ref` in a value, with where it was found. */
function refs(v: unknown, at = '#'): Array<{ ref: string; at: string }> {
  if (Array.isArray(v)) return v.flatMap((x, i) => refs(x, `${at}/${i}`));
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) => (k === '$ref' && typeof x === 'string' ? [{ ref: x, at }] : refs(x, `${at}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`)));
}

function resolve(root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined;
  return ref.slice(2).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce<unknown>((node, part) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[part] : undefined), root);
}

describe('the OpenAPI document', () => {
  it('has every route of the table with its method, and nothing else', () => {
    const fromTable = table.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.path)}`).sort();
    const fromDoc = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${path}`)).sort();
    expect(fromDoc).toEqual(fromTable);
    expect(new Set(fromTable).size, 'a method and path twice in the table').toBe(fromTable.length);
  });

  it('is valid OpenAPI 3.1', async () => {
    const validator = new Validator();
    const result = await validator.validate(JSON.parse(JSON.stringify(doc)) as Record<string, unknown>);
    expect(validator.version).toBe('3.1');
    expect(result.errors ?? [], 'validation errors').toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('resolves every $ref inside the document', () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(0);
    expect(all.filter((r) => resolve(doc, r.ref) === undefined)).toEqual([]);
  });

  it('declares every path parameter, and no other', () => {
    const wrong: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths)) {
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!).sort();
      for (const [method, op] of Object.entries(ops)) {
        const declared = (op.parameters ?? []).filter((p) => p.in === 'path');
        const names = declared.map((p) => p.name).sort();
        if (JSON.stringify(names) !== JSON.stringify(inPath) || declared.some((p) => !p.required)) wrong.push(`${method} ${path}: ${names.join(',')} for ${inPath.join(',')}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('gives every operation a unique operationId, a tag and its permission', () => {
    const ops = Object.values(doc.paths).flatMap((o) => Object.values(o));
    const ids = ops.map((o) => o.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const tags = new Set(doc.tags.map((t) => t.name));
    expect(ops.filter((o) => o.tags.length !== 1 || !tags.has(o.tags[0]!)).map((o) => o.operationId)).toEqual([]);
    for (const r of table) {
      const op = doc.paths[openApiPath(r.path)]![r.method.toLowerCase()]!;
      expect(op['x-permission'], key(r)).toBe(r.permission);
      expect(op.security, key(r)).toEqual(r.permission === 'public' ? [] : [{ bearerAuth: [] }, { sessionCookie: [] }]);
    }
  });

  it('describes every route: a success answer, and the schema of a JSON body', () => {
    const noSuccess = table.filter((r) => ![...responsesOf(r).keys()].some((s) => s < 400) && !(r.responses?.[405])).map(key);
    expect(noSuccess, 'routes that declare no success answer').toEqual([]);
    expect(table.filter((r) => r.body === 'json' && !r.request?.body).map(key), 'JSON bodies without a schema').toEqual([]);
    expect(table.filter((r) => pathParams(r.path).length === 0 && r.request?.params).map(key)).toEqual([]);
  });

  it('is served at /api/openapi.json and as a page at /api/docs, without credentials', async () => {
    const json = await call(h, 'GET', '/api/openapi.json', {});
    expect(json.statusCode).toBe(200);
    expect(json.json()).toEqual(JSON.parse(JSON.stringify(openApiDocument(routes(h.deps), 'test'))));
    const page = await call(h, 'GET', '/api/docs', {});
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).not.toMatch(/<script|src="http/);
    for (const r of table) expect(page.body, key(r)).toContain(`<code>${openApiPath(r.path)}</code>`);
  });
});

/** What is wrong with an answer, or null when it is inside what the route declares. */
function mismatch(route: Route, res: Awaited<ReturnType<typeof call>>): string | null {
  const declared = responsesOf(route);
  const spec = declared.get(res.statusCode);
  const body = res.statusCode >= 400 ? ` (${res.body.slice(0, 200)})` : '';
  if (spec === undefined) return `answered ${res.statusCode}, which it does not declare (it declares ${[...declared.keys()].join(', ')})${body}`;
  const type = String(res.headers['content-type'] ?? '');
  if (spec === 'empty') return res.rawPayload.length === 0 ? null : `answered ${res.statusCode} with a body, declared empty`;
  if (!isSchema(spec)) {
    const want = contentTypes(spec);
    return want.some((t) => type.startsWith(t)) ? null : `answered ${res.statusCode} as '${type}', declared ${want.join(' or ')}`;
  }
  if (!type.startsWith('application/json')) return `answered ${res.statusCode} as '${type}', declared JSON`;
  const parsed = spec.safeParse(res.json());
  if (parsed.success) return null;
  const first = parsed.error.issues[0]!;
  return `answered ${res.statusCode} outside its schema: at '${first.path.join('.')}': ${first.message}${body}`;
}

describe('answers stay inside their schemas', () => {
  const callers: Array<{ name: string; headers: () => Promise<Record<string, string>> }> = [
    { name: 'the admin', headers: () => h.session('admin') },
    { name: 'an anonymous caller', headers: async () => ({}) },
  ];
  for (const c of callers) {
    it(`for every sample request, made by ${c.name}`, async () => {
      const wrong: string[] = [];
      let checked = 0;
      for (const route of table) {
        const sample = SAMPLES[key(route)];
        if (!sample) {
          wrong.push(`${key(route)}: no sample request in testing/samples.ts`);
          continue;
        }
        const url = sample.url.replace('{n}', String(++n)).replace('{target}', targetId);
        const body = typeof sample.body === 'object' ? JSON.parse(JSON.stringify(sample.body).replaceAll('{n}', String(n))) : sample.body;
        // A fresh session each time: one sample signs out.
        const res = await call(h, route.method, url, await c.headers(), body, sample.type);
        const wrongHere = mismatch(route, res);
        if (wrongHere) wrong.push(`${key(route)}: ${wrongHere}`);
        checked++;
        await reseed();
      }
      expect(checked).toBe(table.length);
      expect(wrong).toEqual([]);
    });
  }

  it('for the successes of routes whose sample request is refused', async () => {
    const admin = await h.session('admin');
    const wrong: string[] = [];
    const find = (method: Route['method'], path: string) => table.find((r) => r.method === method && r.path === path)!;
    const check = async (method: Route['method'], path: string, url: string, body?: unknown) => {
      const res = await call(h, method, url, admin, body);
      const w = mismatch(find(method, path), res);
      if (w) wrong.push(`${method} ${path}: ${w}`);
      return res;
    };
    const hook = (await check('POST', '/api/webhooks', '/api/webhooks', { url: 'http://127.0.0.1:9/extra' })).json() as { id: string };
    await check('PATCH', '/api/webhooks/:webhook', `/api/webhooks/${hook.id}`, { enabled: false });
    await check('GET', '/api/webhooks', '/api/webhooks');
    await check('DELETE', '/api/webhooks/:webhook', `/api/webhooks/${hook.id}`);
    const made = (await check('POST', '/api/tokens', '/api/tokens', { name: 'extra' })).json() as { id: string };
    await check('GET', '/api/tokens', '/api/tokens');
    await check('GET', '/api/users/:user/tokens', `/api/users/${(await h.auth.users.getByName('admin'))!.id}/tokens`);
    await check('DELETE', '/api/tokens/:token', `/api/tokens/${made.id}`);
    const pr = (await check('POST', '/api/cameras/:id/archive/protected', '/api/cameras/cam1/archive/protected', { from: 0, to: 1000, reason: 'extra' })).json() as { id: number };
    await check('GET', '/api/cameras/:id/archive/protected', '/api/cameras/cam1/archive/protected');
    await check('DELETE', '/api/cameras/:id/archive/protected/:pid', `/api/cameras/cam1/archive/protected/${pr.id}`);
    await check('POST', '/api/nodes/enrollment-tokens', '/api/nodes/enrollment-tokens', { roles: ['sfu'] });
    await check('GET', '/api/auth/sessions', '/api/auth/sessions');
    await check('GET', '/api/audit', '/api/audit?limit=50');
    expect(wrong).toEqual([]);
  });
});
