import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@cctv/core';
import { startSystem, type System } from '@cctv/signaling';
import { until } from '../support/cluster.js';

// GraphQL subscriptions over WebSocket (graphql-ws) on the whole system with real test cameras: who may
// connect and how, each status only to those who may see its camera, mutations over the socket, the
// limits, and the socket closed when its session ends. (Motion events: test/motion/live.test.ts.)
const PASSWORD = 'graphql-ws-password';
let dir: string;
let system: System;
let adminToken = '';
let viewerToken = '';
const clients: Client[] = [];

const url = () => `ws://127.0.0.1:${system.port}/api/graphql`;
const api = async <T>(path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: T; headers: Headers }> => {
  const r = await fetch(`http://127.0.0.1:${system.port}${path}`, { ...init, headers: { authorization: `Bearer ${init.token ?? adminToken}`, 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) } });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : null) as T, headers: r.headers };
};

/** A graphql-ws client; `headers` go with the upgrade, `params` in connection_init. */
function client(opts: { headers?: Record<string, string>; params?: Record<string, unknown> } = {}): { client: Client; closed: Promise<{ code: number; reason: string }> } {
  let closedWith: (c: { code: number; reason: string }) => void = () => {};
  const closed = new Promise<{ code: number; reason: string }>((r) => (closedWith = r));
  const headers = opts.headers ?? {};
  const c = createClient({
    url: url(),
    webSocketImpl: class extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols, { headers });
      }
    },
    ...(opts.params ? { connectionParams: opts.params } : {}),
    retryAttempts: 0,
    lazy: false,
    on: { closed: (e) => closedWith({ code: (e as { code: number }).code, reason: String((e as { reason?: string }).reason ?? '') }) },
    onNonLazyError: () => {},
  });
  clients.push(c);
  return { client: c, closed };
}

/** Collects a subscription's items (and its errors) until it is disposed. */
function collect<T>(c: Client, query: string, variables?: Record<string, unknown>) {
  const items: T[] = [];
  const errors: unknown[] = [];
  let done = false;
  const dispose = c.subscribe<T>({ query, ...(variables ? { variables } : {}) }, {
    next: (r) => {
      if (r.errors) errors.push(...r.errors);
      if (r.data) items.push(r.data as T);
    },
    error: (e) => errors.push(e),
    complete: () => (done = true),
  });
  return { items, errors, dispose, get done() { return done; } };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-graphql-'));
  const config = loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } }, dataDir: dir, demoCamera: false,
      cameras: [
        { id: 'front', source: { kind: 'test', width: 320, height: 180, fps: 10 }, recording: { enabled: false } },
        { id: 'back', source: { kind: 'test', width: 320, height: 180, fps: 10 }, recording: { enabled: false } },
      ],
    },
  });
  system = await startSystem({ config, adminPassword: PASSWORD });
  const t = await fetch(`http://127.0.0.1:${system.port}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
  adminToken = ((await t.json()) as { token: string }).token;
  expect((await api('/api/users', { method: 'POST', body: JSON.stringify({ username: 'backonly', password: 'back-only-password', role: 'viewer', cameras: { back: ['camera:live'] } }) })).status).toBe(201);
  const v = await fetch(`http://127.0.0.1:${system.port}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'backonly', password: 'back-only-password' }) });
  viewerToken = ((await v.json()) as { token: string }).token;
}, 60_000);

afterAll(async () => {
  for (const c of clients) await c.dispose();
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Status = { cameraStatus: { id: string; state: string; viewers: number } };

describe('GraphQL subscriptions over WebSocket', () => {
  it('streams camera states to those who may see them, and runs mutations on the same socket', async () => {
    const admin = client({ params: { authorization: `Bearer ${adminToken}` } }).client;
    const viewer = client({ headers: { authorization: `Bearer ${viewerToken}` } }).client;
    const all = collect<Status>(admin, 'subscription { cameraStatus { id state viewers } }');
    const front = collect<Status>(admin, 'subscription ($c: [ID!]) { cameraStatus(cameras: $c) { id state } }', { c: ['front'] });
    const mine = collect<Status>(viewer, 'subscription { cameraStatus { id state } }');
    await until(() => all.items.some((i) => i.cameraStatus.id === 'front' && i.cameraStatus.state === 'live'), 'front live on the admin subscription', 20_000, 50);
    await until(() => mine.items.some((i) => i.cameraStatus.id === 'back' && i.cameraStatus.state === 'live'), 'back live on the viewer subscription', 20_000, 50);

    // Disable the front camera over the socket: the state change arrives on the subscriptions that may see it.
    const r = await new Promise<{ data?: unknown; errors?: unknown }>((resolve, reject) => {
      let got: { data?: unknown; errors?: unknown } = {};
      admin.subscribe({ query: 'mutation { updateCamera(id: "front", changes: { enabled: false }) { applied camera { id enabled } } }' }, {
        next: (x) => (got = x as typeof got), error: reject, complete: () => resolve(got),
      });
    });
    expect(r).toEqual({ data: { updateCamera: { applied: true, camera: { id: 'front', enabled: false } } } });
    await until(() => front.items.some((i) => i.cameraStatus.state === 'stopped'), 'front stopped on the filtered subscription', 20_000, 50);
    expect(front.items.every((i) => i.cameraStatus.id === 'front')).toBe(true);
    // Only changes of state: no two items in a row with the same state for a camera.
    const states = front.items.map((i) => i.cameraStatus.state);
    expect(states.filter((s, i) => s === states[i - 1])).toEqual([]);
    await api('/api/cameras/front', { method: 'PATCH', body: JSON.stringify({ enabled: true }) });
    await until(() => front.items.filter((i) => i.cameraStatus.state === 'live').length >= 2, 'front live again', 20_000, 50);

    // The viewer of the back camera heard nothing of the front one, and may not change cameras.
    expect(mine.items.length).toBeGreaterThan(0);
    expect(mine.items.filter((i) => i.cameraStatus.id !== 'back')).toEqual([]);
    const refused = await new Promise<{ errors?: Array<{ extensions?: { code: string } }> }>((resolve) => {
      let got = {};
      viewer.subscribe({ query: 'mutation { updateCamera(id: "front", changes: { enabled: false }) { applied } }' }, { next: (x) => (got = x), error: (e) => resolve({ errors: e as never }), complete: () => resolve(got) });
    });
    expect(refused.errors?.[0]?.extensions?.code).toBe('CAMERA_NOT_FOUND');
    expect(all.errors).toEqual([]);
    all.dispose();
    front.dispose();
    mine.dispose();
  }, 60_000);

  it('refuses a socket without credentials, a cross-site cookie, an unknown path; checks limits on the socket', async () => {
    const anon = client();
    expect((await anon.closed).code).toBe(4403);
    const wrong = client({ params: { authorization: 'Bearer cctv_not-a-token' } });
    expect((await wrong.closed).code).toBe(4403);

    // Cookie sessions must come from a page of this site (the upgrade is refused with the API's error body).
    const login = await fetch(`http://127.0.0.1:${system.port}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${system.port}` }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      const ws = new WebSocket(url(), 'graphql-transport-ws', { headers: { cookie, origin: 'https://elsewhere.example' } });
      ws.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'CSRF_FAILED' } });
    const nowhere = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${system.port}/api/nowhere`, { headers: { authorization: `Bearer ${adminToken}` } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    });
    expect(nowhere).toBe(404);

    // The same cookie from this site's page is taken; the dashboard's /api/ws is still served beside it.
    const same = client({ headers: { cookie, origin: `http://127.0.0.1:${system.port}` } }).client;
    const me = await new Promise<unknown>((resolve, reject) => {
      let got: unknown;
      same.subscribe({ query: '{ me { user { username } kind } }' }, { next: (x) => (got = x), error: reject, complete: () => resolve(got) });
    });
    expect(me).toEqual({ data: { me: { user: { username: 'admin' }, kind: 'user' } } });
    const hub = new WebSocket(`ws://127.0.0.1:${system.port}/api/ws`, { headers: { authorization: `Bearer ${adminToken}` } });
    const first = await new Promise<{ type: string }>((resolve, reject) => hub.once('message', (d) => resolve(JSON.parse(d.toString()))).once('error', reject));
    expect(first.type).toBe('snapshot');
    hub.close();

    // Depth and cost are checked on the socket too, before anything runs.
    const costly = await new Promise<unknown>((resolve) => {
      same.subscribe({ query: '{ cameras { events(first: 200) { events { box { x } cameraInfo { id } } } } }' }, { next: () => {}, error: (e) => resolve(e), complete: () => resolve(null) });
    });
    expect(JSON.stringify(costly)).toContain('QUERY_TOO_COSTLY');
  }, 60_000);

  it('closes the socket (4401) when its session is signed out', async () => {
    const login = await fetch(`http://127.0.0.1:${system.port}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', origin: `http://127.0.0.1:${system.port}` }, body: JSON.stringify({ username: 'backonly', password: 'back-only-password' }) });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const origin = `http://127.0.0.1:${system.port}`;
    const { client: c, closed } = client({ headers: { cookie, origin } });
    const sub = collect<Status>(c, 'subscription { cameraStatus { id state } }');
    await until(() => sub.items.length > 0, 'the first status', 20_000, 50);
    const out = await fetch(`http://127.0.0.1:${system.port}/api/auth/logout`, { method: 'POST', headers: { cookie, origin } });
    expect(out.status).toBeLessThan(300);
    const signedOut = Date.now();
    expect((await closed).code).toBe(4401);
    console.log(`MEASURED graphql_ws_closed_after_signout_ms=${Date.now() - signedOut} (recheck every 5 s)`);
  }, 30_000);
});
