import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routes, type Route } from './app.js';
import { call, harness, type Harness } from './testing/harness.js';
import { SAMPLES } from './testing/samples.js';

/**
 * Every route × every kind of caller, generated from the route table: a route added without a sample
 * request here fails the test, so no route escapes the matrix.
 *
 * What each caller may do is written out here from the role table of docs/architecture.md, not read
 * from the code: the test checks the code against the specification.
 */

type Held =
  | 'cameras:read' | 'cameras:manage' | 'camera:live' | 'camera:archive' | 'camera:export' | 'camera:control'
  | 'users:manage' | 'audit:read' | 'settings:manage' | 'metrics:read' | 'nodes:read' | 'nodes:manage' | 'alerts:manage';
const ADMIN: Held[] = ['cameras:read', 'cameras:manage', 'camera:live', 'camera:archive', 'camera:export', 'camera:control', 'users:manage', 'audit:read', 'settings:manage', 'metrics:read', 'nodes:read', 'nodes:manage', 'alerts:manage'];
const OPERATOR: Held[] = ['cameras:read', 'cameras:manage', 'camera:live', 'camera:archive', 'camera:export', 'camera:control', 'nodes:read'];
const VIEWER: Held[] = ['cameras:read', 'camera:live', 'camera:archive'];

/** A caller: how to make its headers, and what it holds (null: not signed in, or not valid). */
interface Caller {
  name: string;
  headers: (h: Harness) => Promise<Record<string, string>>;
  /** Permissions held; null when the credentials are missing or not valid. */
  holds: Held[] | null;
  /** Cameras it may see (null: all). */
  cameras?: string[] | null;
  /** A session that still owes its 2FA code. */
  pending?: boolean;
  /** Signed in with the cookie (CSRF applies) or a token. */
  kind?: 'cookie' | 'token';
  /** A cookie request without an Origin header (a cross-site form, say). */
  noOrigin?: boolean;
}

const CALLERS: Caller[] = [
  { name: 'anonymous', headers: async () => ({}), holds: null },
  { name: 'admin session', headers: (h) => h.session('admin'), holds: ADMIN, kind: 'cookie' },
  { name: 'operator session', headers: (h) => h.session('op'), holds: OPERATOR, kind: 'cookie' },
  { name: 'viewer session', headers: (h) => h.session('vw'), holds: VIEWER, kind: 'cookie' },
  { name: 'viewer of cam2 only', headers: (h) => h.session('vw2'), holds: ['cameras:read', 'camera:live'], cameras: ['cam2'], kind: 'cookie' },
  { name: 'admin session owing its 2FA code', headers: (h) => h.session('twofa', { twoFactorVerified: false }), holds: ADMIN, pending: true, kind: 'cookie' },
  { name: 'admin session without Origin', headers: async (h) => { const { origin: _o, ...rest } = await h.session('admin'); return rest; }, holds: ADMIN, kind: 'cookie', noOrigin: true },
  {
    name: 'expired session',
    headers: async (h) => {
      const s = await h.session('admin');
      await h.db.query("UPDATE sessions SET expires_at = now() - interval '1 minute'");
      return s;
    },
    holds: null,
  },
  {
    name: 'revoked session',
    headers: async (h) => {
      const s = await h.session('admin');
      await h.auth.sessions.invalidateUser((await h.auth.users.getByName('admin'))!.id);
      return s;
    },
    holds: null,
  },
  { name: 'admin token', headers: (h) => h.token('admin'), holds: ADMIN, kind: 'token' },
  { name: 'token scoped to cameras:read', headers: (h) => h.token('admin', { permissions: ['cameras:read'] }), holds: ['cameras:read'], kind: 'token' },
  { name: 'token scoped to cam1 live', headers: (h) => h.token('op', { permissions: ['cameras:read', 'camera:live'], cameras: ['cam1'] }), holds: ['cameras:read', 'camera:live'], cameras: ['cam1'], kind: 'token' },
  {
    name: 'expired token',
    headers: async (h) => {
      const t = await h.token('admin', { ttlMs: 60_000 });
      await h.db.query("UPDATE api_tokens SET expires_at = now() - interval '1 minute'");
      return t;
    },
    holds: null,
  },
  {
    name: 'revoked token',
    headers: async (h) => {
      const t = await h.token('admin');
      await h.db.query('UPDATE api_tokens SET revoked_at = now()');
      return t;
    },
    holds: null,
  },
  { name: 'malformed token', headers: async () => ({ authorization: 'Bearer cctv_not-a-token' }), holds: null },
];


/** Codes that mean "access refused", as opposed to an answer from the route itself. */
const DENIALS = ['UNAUTHENTICATED', 'FORBIDDEN', 'CSRF_FAILED', 'SECOND_FACTOR_PENDING', 'ENROLLMENT_REQUIRED'];
const UNSAFE = ['POST', 'PUT', 'PATCH', 'DELETE'];
const PER_CAMERA: Held[] = ['camera:live', 'camera:archive', 'camera:export', 'camera:control'];

/** What the specification says the caller gets: 'allowed', or the refusal code. */
function expected(route: Route, c: Caller): string {
  if (route.permission === 'public') return 'allowed';
  if (c.holds === null) return 'UNAUTHENTICATED';
  if (c.kind === 'cookie' && c.noOrigin && UNSAFE.includes(route.method)) return 'CSRF_FAILED';
  if (c.pending && !route.allowPending?.includes('verify')) return 'SECOND_FACTOR_PENDING';
  // Tokens cannot make tokens (a leaked token must not mint others).
  if (route.method === 'POST' && route.path === '/api/tokens' && c.kind === 'token') return 'FORBIDDEN';
  if (route.permission === 'authenticated') return 'allowed';
  const camera = route.camera ? 'cam1' : null;
  if (camera && c.cameras && !c.cameras.includes(camera)) return 'CAMERA_NOT_FOUND';
  if (camera && !c.holds.some((p) => PER_CAMERA.includes(p))) return 'CAMERA_NOT_FOUND';
  return c.holds.includes(route.permission as Held) ? 'allowed' : 'FORBIDDEN';
}

let h: Harness;
let n = 0;
let targetId = '';

async function reseed(): Promise<void> {
  if (!(await h.store.get('cam1'))) await h.store.create({ id: 'cam1', source: { kind: 'test' } });
  if (!(await h.store.get('cam2'))) await h.store.create({ id: 'cam2', source: { kind: 'test' } });
}

beforeAll(async () => {
  // Limits high enough not to get in the way of 600 requests from one address.
  h = await harness({ security: { limits: { signInPerAddress: [{ max: 100_000, windowS: 60 }], apiPerPrincipal: [{ max: 100_000, windowS: 60 }], whepPerPrincipal: [{ max: 100_000, windowS: 60 }] } } });
  await h.user('op', 'operator');
  await h.user('vw', 'viewer');
  await h.user('vw2', 'viewer', { cam2: ['camera:live'] });
  targetId = (await h.user('target', 'viewer')).id;
  const twofa = await h.user('twofa', 'admin');
  const key = await h.auth.users.beginTotp(twofa.id, 'test');
  const { totpNow } = await import('./auth/users.js');
  const { decodeBase32 } = await import('@oslojs/encoding');
  await h.auth.users.confirmTotp(twofa.id, totpNow(decodeBase32(key!.secret)));
  await reseed();
});
afterAll(async () => {
  await h?.close();
});

describe('access matrix: every route × every caller', () => {
  it('has a sample request for every route in the table', () => {
    const missing = routes(h.deps).map((r) => `${r.method} ${r.path}`).filter((k) => !(k in SAMPLES));
    expect(missing, 'routes without a sample request in access.test.ts').toEqual([]);
  });

  it('registers no route outside the table', () => {
    const table = new Set(routes(h.deps).map((r) => `${r.method} ${r.path}`));
    const stack = (h.app as unknown as { router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> } }).router.stack;
    // Routes registered for one method (app.get, app.post…); app.all() answers 405/OPTIONS for table paths.
    const registered = stack
      .filter((l) => l.route && typeof l.route.path === 'string' && l.route.path.startsWith('/api') && Object.keys(l.route.methods).length < 10)
      .flatMap((l) => Object.keys(l.route!.methods).map((m) => `${m.toUpperCase()} ${l.route!.path}`));
    expect(registered.length).toBeGreaterThan(10);
    expect(registered.filter((k) => !table.has(k))).toEqual([]);
  });

  for (const c of CALLERS) {
    it(`gives ${c.name} what it may have and nothing else`, async () => {
      const wrong: string[] = [];
      for (const route of routes(h.deps)) {
        const sample = SAMPLES[`${route.method} ${route.path}`]!;
        const headers = await c.headers(h);
        const url = sample.url.replace('{n}', String(++n)).replace('{target}', targetId);
        const body = typeof sample.body === 'object' ? JSON.parse(JSON.stringify(sample.body).replaceAll('{n}', String(n))) : sample.body;
        const res = await call(h, route.method, url, headers, body, sample.type);
        const code = res.statusCode >= 400 ? (res.json() as { error: { code: string } }).error.code : null;
        const got = code && (DENIALS.includes(code) || (code === 'CAMERA_NOT_FOUND' && route.camera)) ? code : 'allowed';
        const want = expected(route, c);
        if (got !== want) wrong.push(`${route.method} ${url}: expected ${want}, got ${res.statusCode} ${code ?? ''}`);
        await reseed();
      }
      expect(wrong).toEqual([]);
    });
  }
});
