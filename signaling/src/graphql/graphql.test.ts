import { getIntrospectionQuery } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStore } from '@cctv/recorder';
import { routes } from '../app.js';
import { call, harness, type Harness } from '../testing/harness.js';
import { GraphqlApi } from './api.js';
import { DEFAULT_LIMITS } from './limits.js';

/**
 * GraphQL over HTTP on the real app (embedded database): each field answers what its REST route answers,
 * to the same callers; mutations change and audit what REST does; depth and cost are refused before
 * anything runs. (Subscriptions over WebSocket: test/e2e/graphql.test.ts.)
 */

let h: Harness;
let admin: Record<string, string>;
let viewer2: Record<string, string>;
let operator: Record<string, string>;
let eventId = 0;

interface Result<T = Record<string, unknown>> {
  data?: T | null;
  errors?: Array<{ message: string; path?: string[]; extensions?: { code: string; field?: string } }>;
}

async function gql<T = Record<string, unknown>>(headers: Record<string, string>, query: string, variables?: Record<string, unknown>): Promise<{ status: number; body: Result<T> }> {
  const res = await call(h, 'POST', '/api/graphql', headers, { query, ...(variables ? { variables } : {}) });
  return { status: res.statusCode, body: res.json() as Result<T> };
}

async function rest(headers: Record<string, string>, url: string): Promise<unknown> {
  const res = await call(h, 'GET', url, headers);
  expect(res.statusCode, `GET ${url}: ${res.body}`).toBe(200);
  return res.json();
}

const codes = (r: Result) => (r.errors ?? []).map((e) => e.extensions?.code);

// Every field of the REST answers, asked for by name (the GraphQL objects have the same ones).
const CAMERA = 'id name enabled source version createdAt updatedAt status { id state since lastError input viewers } placementRules recording motion placement { cameraNode sfu recorder detector problem since }';
const EVENT = 'id camera kind startMs endMs peakScore zones box { x y w h } node hasThumbnail protectedId thumbnailUrl';
const NODE = 'id roles state since deathReason drained enrolled leader labels version startedAt lastHeartbeatAt addresses load cameras { id state } rooms clock { offsetMs warning ntp } config { applied current upToDate } history';
const USER = 'id username role cameras disabled totpEnabled createdAt updatedAt';
const AUDIT = 'seq at actor actorKind action target cameraId ip details prevHash hash';

beforeAll(async () => {
  h = await harness({ security: { limits: { apiPerPrincipal: [{ max: 100_000, windowS: 60 }] } } });
  await h.user('op', 'operator');
  await h.user('vw2', 'viewer', { cam2: ['camera:live', 'camera:archive'] });
  await h.store.create({ id: 'cam1', source: { kind: 'test' } });
  await h.store.create({ id: 'cam2', source: { kind: 'test' } });
  const events = new EventStore(h.db);
  const now = Date.now();
  for (const [i, camera] of ['cam1', 'cam2', 'cam2'].entries()) {
    const e = await events.insert({ camera, kind: 'motion', startMs: now - 60_000 + i * 1000, endMs: now - 50_000 + i * 1000, peakScore: 0.5 + i / 10, zones: ['all'], box: { x: 0.1, y: 0.2, w: 0.3, h: 0.4 }, node: 'detector-1' }, null);
    eventId = e.id;
  }
  admin = await h.session('admin');
  operator = await h.token('op');
  viewer2 = await h.session('vw2');
});

afterAll(async () => {
  await h?.close();
});

describe('GraphQL over HTTP', () => {
  it('answers what the REST routes answer, field for field', async () => {
    const r = await gql(admin, `{
      me { user { ${USER} } kind permissions cameras require2fa }
      cameras { ${CAMERA} }
      camera(id: "cam2") { id name }
      nodes { ${NODE} }
      cluster
      archive
      events(first: 10) { events { ${EVENT} } next }
      users { ${USER} }
      audit(limit: 5) { entries { ${AUDIT} } next }
    }`);
    expect(r.body.errors).toBeUndefined();
    const d = r.body.data as Record<string, unknown>;
    const me = (await rest(admin, '/api/auth/me')) as Record<string, unknown>;
    expect(d.me).toEqual({ user: me.user, kind: me.kind, permissions: me.permissions, cameras: me.cameras, require2fa: me.require2fa });
    expect(d.cameras).toEqual(await rest(admin, '/api/cameras'));
    expect(d.camera).toEqual({ id: 'cam2', name: 'cam2' });
    expect(d.nodes).toEqual(await rest(admin, '/api/nodes'));
    expect(d.cluster).toEqual(await rest(admin, '/api/cluster'));
    expect(d.archive).toEqual(await rest(admin, '/api/archive'));
    // Event ids are GraphQL IDs (strings); the rest is the same.
    const events = (await rest(admin, '/api/events?limit=10')) as { events: Array<{ id: number }>; next: string | null };
    expect(d.events).toEqual({ events: events.events.map((e) => ({ ...e, id: String(e.id) })), next: events.next });
    expect(d.users).toEqual(await rest(admin, '/api/users'));
    const audit = (await rest(admin, '/api/audit?limit=5')) as { entries: Array<{ seq: number }>; next: number | null };
    expect(d.audit).toEqual(audit);
  });

  it('reaches nested REST routes from a camera: timeline, its events, protected ranges; an event\'s recording', async () => {
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const to = new Date().toISOString();
    const r = await gql<{ camera: { timeline: unknown; events: { events: Array<{ id: string; camera: string; recording: unknown }> }; protectedRanges: unknown[] } }>(admin, `query ($from: String, $to: String) {
      camera(id: "cam2") { timeline(from: $from, to: $to) { camera fromMs toMs recorded { startMs endMs } gaps { startMs endMs reason } recordedMs bytes } events(first: 5) { events { id camera recording { from to playlistUrl } } } protectedRanges { id from to reason by at } }
    }`, { from, to });
    expect(r.body.errors).toBeUndefined();
    const c = r.body.data!.camera;
    // The timeline's gap up to now moves with the clock: compare everything but the times computed from it.
    const timeline = (await rest(admin, `/api/cameras/cam2/archive/timeline?from=${from}&to=${to}`)) as Record<string, unknown>;
    expect(c.timeline).toMatchObject({ camera: 'cam2', fromMs: timeline.fromMs, toMs: timeline.toMs, recorded: timeline.recorded, recordedMs: timeline.recordedMs, bytes: timeline.bytes });
    expect(c.events.events.map((e) => e.camera)).toEqual(['cam2', 'cam2']);
    expect(c.events.events[0]!.recording).toEqual(((await rest(admin, `/api/events/${c.events.events[0]!.id}`)) as { recording: unknown }).recording);
    expect(c.protectedRanges).toEqual(((await rest(admin, '/api/cameras/cam2/archive/protected')) as { protected: unknown[] }).protected);
  });

  it('gives each caller what the REST routes give it: only its cameras, null for others, refusals by code', async () => {
    const r = await gql<{ cameras: Array<{ id: string }>; camera: unknown; events: { events: Array<{ camera: string }> } }>(viewer2, '{ cameras { id } camera(id: "cam1") { id } events { events { camera } } }');
    expect(r.body.errors).toBeUndefined();
    expect(r.body.data!.cameras.map((c) => c.id)).toEqual(['cam2']);
    expect(r.body.data!.camera).toBeNull();
    expect(r.body.data!.events.events.map((e) => e.camera)).toEqual(['cam2', 'cam2']);
    const users = await gql(viewer2, '{ users { id } }');
    expect(users.status).toBe(200);
    expect(users.body.data).toEqual({ users: null });
    expect(users.body.errors).toMatchObject([{ path: ['users'], extensions: { code: 'FORBIDDEN' } }]);
    expect(users.body.errors![0]!.message).toMatch(/users:manage/);
    // A field refused leaves the others answered.
    const mixed = await gql<{ cameras: unknown[]; nodes: unknown }>(viewer2, '{ cameras { id } nodes { id } }');
    expect(mixed.body.data).toEqual({ cameras: [{ id: 'cam2' }], nodes: null });
    expect(codes(mixed.body)).toEqual(['FORBIDDEN']);
    // The same principal rules as every route: no credentials, or a sign-in owing its 2FA code.
    expect((await call(h, 'POST', '/api/graphql', {}, { query: '{ cameras { id } }' })).json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    const twofa = await h.user('twofa', 'admin');
    const key = await h.auth.users.beginTotp(twofa.id, 'test');
    const { totpNow } = await import('../auth/users.js');
    const { decodeBase32 } = await import('@oslojs/encoding');
    await h.auth.users.confirmTotp(twofa.id, totpNow(decodeBase32(key!.secret)));
    const pending = await call(h, 'POST', '/api/graphql', await h.session('twofa', { twoFactorVerified: false }), { query: '{ cameras { id } }' });
    expect(pending.statusCode).toBe(403);
    expect(pending.json()).toMatchObject({ error: { code: 'SECOND_FACTOR_PENDING' } });
  });

  it('changes what REST changes, with the same checks and the same audit entries', async () => {
    const created = await gql<{ createCamera: { applied: boolean; camera: { id: string; name: string } } }>(operator, 'mutation ($c: JSON!) { createCamera(camera: $c) { applied camera { id name } } }', { c: { id: 'gq1', name: 'Made by GraphQL', source: { kind: 'test' } } });
    expect(created.body).toEqual({ data: { createCamera: { applied: true, camera: { id: 'gq1', name: 'Made by GraphQL' } } } });
    expect((await h.store.get('gq1'))?.config.name).toBe('Made by GraphQL');
    const entries = (await rest(admin, '/api/audit?action=camera.created&limit=1')) as { entries: Array<{ actor: string; cameraId: string; actorKind: string }> };
    expect(entries.entries[0]).toMatchObject({ actor: 'op', actorKind: 'token', cameraId: 'gq1' });

    // The camera schema's own message names the field, as REST's 400 does.
    const bad = await gql(operator, 'mutation { updateCamera(id: "gq1", changes: { source: { kind: "rtsp", url: "http://x" } }) { applied } }');
    expect(bad.body.errors).toMatchObject([{ extensions: { code: 'VALIDATION_FAILED' } }]);
    expect(bad.body.errors![0]!.message).toMatch(/source/);
    expect((await h.store.get('gq1'))?.config.source.kind).toBe('test');

    // A viewer may not; nothing changes.
    const refused = await gql(viewer2, 'mutation { deleteCamera(id: "gq1") { applied } }');
    expect(codes(refused.body)).toEqual(['CAMERA_NOT_FOUND']);
    expect(await h.store.get('gq1')).not.toBeNull();

    const protect = await gql<{ protectEvent: { id: string; protectedId: number | null } }>(admin, `mutation { protectEvent(id: "${eventId}") { id protectedId } }`);
    expect(protect.body.errors).toBeUndefined();
    expect(protect.body.data!.protectEvent.protectedId).toBeGreaterThan(0);
    const unprotect = await gql<{ unprotectEvent: { protectedId: number | null } }>(admin, `mutation { unprotectEvent(id: "${eventId}") { protectedId } }`);
    expect(unprotect.body.data!.unprotectEvent.protectedId).toBeNull();

    const removed = await gql(operator, 'mutation { deleteCamera(id: "gq1") { applied camera { id } queued { id } } }');
    expect(removed.body).toEqual({ data: { deleteCamera: { applied: true, camera: null, queued: null } } });
    expect(await h.store.get('gq1')).toBeNull();

    // Users, as REST manages them: only with users:manage; the store's messages name the field.
    const made = await gql<{ createUser: { id: string; username: string; role: string } }>(admin, 'mutation ($u: JSON!) { createUser(user: $u) { id username role } }', { u: { username: 'gqluser', password: 'gql-user-password', role: 'viewer' } });
    expect(made.body.errors).toBeUndefined();
    expect(made.body.data!.createUser).toMatchObject({ username: 'gqluser', role: 'viewer' });
    const weak = await gql(admin, 'mutation { createUser(user: { username: "weak", password: "short", role: "viewer" }) { id } }');
    expect(weak.body.errors).toMatchObject([{ extensions: { code: 'VALIDATION_FAILED', field: 'password' } }]);
    expect(codes((await gql(operator, `mutation { updateUser(id: "${made.body.data!.createUser.id}", changes: { role: "admin" }) { role } }`)).body)).toEqual(['FORBIDDEN']);
    const promoted = await gql<{ updateUser: { role: string } }>(admin, `mutation { updateUser(id: "${made.body.data!.createUser.id}", changes: { role: "operator" }) { role } }`);
    expect(promoted.body.data!.updateUser.role).toBe('operator');
    expect((await gql(admin, `mutation { deleteUser(id: "${made.body.data!.createUser.id}") }`)).body).toEqual({ data: { deleteUser: true } });
    expect(await h.auth.users.getByName('gqluser')).toBeNull();
    const trail = (await rest(admin, '/api/audit?action=user.*&limit=3')) as { entries: Array<{ action: string; target: string }> };
    expect(trail.entries.map((e) => e.action)).toEqual(['user.deleted', 'user.changed', 'user.created']);

    // A mutation with the session cookie from another site is refused like any cookie write.
    const { origin: _o, ...noOrigin } = admin;
    const csrf = await call(h, 'POST', '/api/graphql', noOrigin, { query: 'mutation { deleteCamera(id: "cam1") { applied } }' });
    expect(csrf.statusCode).toBe(403);
    expect((csrf.json() as { error: { code: string } }).error.code).toBe('CSRF_FAILED');
    expect(await h.store.get('cam1')).not.toBeNull();
  });

  it('refuses operations deeper or costlier than the limits before running them', async () => {
    // Within the limits: fragments and aliases are fine, introspection is not counted.
    const fine = await gql(admin, `fragment N on Node { cameras { id camera { id } } }
      { me { user { id } } cameras { events(first: 5) { events { box { x } recording { from } } } } a: cameras { placement { since } } nodes { ...N } }`);
    expect(fine.body.errors).toBeUndefined();
    const introspection = await gql(admin, getIntrospectionQuery());
    expect(introspection.body.errors).toBeUndefined();
    expect(JSON.stringify(introspection.body.data)).toContain('cameraStatus');

    // Deep: camera → its events → each one's camera → …, small pages so only the depth is over.
    let inner = 'id';
    for (let i = 0; i < 3; i++) inner = `events(first: 1) { events { id cameraInfo { ${inner} } } }`;
    const tooDeep = await gql(admin, `{ camera(id: "cam1") { ${inner} } }`);
    expect(tooDeep.body.data).toBeUndefined();
    expect(codes(tooDeep.body)).toEqual(['QUERY_TOO_DEEP']);
    expect(tooDeep.body.errors![0]!.message).toMatch(new RegExp(`at most ${DEFAULT_LIMITS.maxDepth}`));
    // The same through a fragment.
    const viaFragment = await gql(admin, `fragment E on Camera { ${inner} } { camera(id: "cam1") { ...E } }`);
    expect(codes(viaFragment.body)).toEqual(['QUERY_TOO_DEEP']);

    // Costly: every camera's 200 events with their camera (50 cameras counted × 200 × 3 objects).
    const costly = await gql(admin, '{ cameras { events(first: 200) { events { box { x } cameraInfo { id } } } } }');
    expect(costly.body.data).toBeUndefined();
    expect(codes(costly.body)).toEqual(['QUERY_TOO_COSTLY']);
    expect(costly.body.errors![0]!.message).toMatch(/at most 20000/);
    // The same with the page size in a variable: the variable's value counts.
    const small = await gql(admin, 'query ($n: Int) { cameras { events(first: $n) { events { id } } } }', { n: 2 });
    expect(small.body.errors).toBeUndefined();
    const big = await gql(admin, 'query ($n: Int) { cameras { events(first: $n) { events { box { x } cameraInfo { id } } } } }', { n: 200 });
    expect(codes(big.body)).toEqual(['QUERY_TOO_COSTLY']);
    // Aliases multiply too.
    const aliases = Array.from({ length: 40 }, (_, i) => `a${i}: events(first: 200) { events { box { x } cameraInfo { id } } }`).join(' ');
    expect(codes((await gql(admin, `{ ${aliases} }`)).body)).toEqual(['QUERY_TOO_COSTLY']);
  });

  it('names what is wrong with a request', async () => {
    const syntax = await gql(admin, '{ cameras { id }');
    expect(syntax.status).toBe(200);
    expect(codes(syntax.body)).toEqual(['GRAPHQL_PARSE_FAILED']);
    const unknown = await gql(admin, '{ cameras { id colour } }');
    expect(codes(unknown.body)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    expect(unknown.body.errors![0]!.message).toMatch(/colour/);
    const sub = await gql(admin, 'subscription { cameraStatus { id } }');
    expect(codes(sub.body)).toEqual(['SUBSCRIPTION_OVER_HTTP']);
    const badArg = await gql(admin, '{ events(minScore: 2) { next } }');
    expect(codes(badArg.body)).toEqual(['VALIDATION_FAILED']);
    expect(badArg.body.errors![0]!.message).toMatch(/minScore/);
    const noQuery = await call(h, 'POST', '/api/graphql', admin, { variables: {} });
    expect(noQuery.statusCode).toBe(400);
    expect(noQuery.json()).toMatchObject({ error: { code: 'VALIDATION_FAILED', field: 'query' } });
    const extra = await call(h, 'POST', '/api/graphql', admin, { query: '{ me { kind } }', colour: 1 });
    expect(extra.statusCode).toBe(400);
    const schema = await call(h, 'GET', '/api/graphql/schema', {});
    expect(schema.statusCode).toBe(200);
    expect(schema.body).toContain('type Subscription');
  });

  it('names, for every field that reads or changes something, a REST route of the table', () => {
    const api = new GraphqlApi({ auth: h.auth, sources: { statuses: h.deps.runtime, motion: h.cluster.registry }, apiLimit: [] });
    const table = new Set(routes(h.deps).map((r) => `${r.method} ${r.path}`));
    const types = ['Query', 'Mutation', 'Camera', 'Event', 'NodeCamera'] as const;
    const missing: string[] = [];
    for (const t of types) {
      const fields = (api.schema.getType(t) as unknown as { getFields(): Record<string, { description?: string | null }> }).getFields();
      for (const [name, f] of Object.entries(fields)) {
        const named = /\b(GET|POST|PUT|PATCH|DELETE) (\/api\/[^\s),?]+)/.exec(f.description ?? '');
        // The objects' plain fields are the REST answer's own; the ones with a route say so.
        if (!named) {
          if (t === 'Query' || t === 'Mutation') missing.push(`${t}.${name}: no route named`);
          continue;
        }
        const key = `${named[1]} ${named[2]!.replace(/\.$/, '')}`;
        if (!table.has(key)) missing.push(`${t}.${name}: ${key} is not in the table`);
      }
    }
    expect(missing).toEqual([]);
  });
});
