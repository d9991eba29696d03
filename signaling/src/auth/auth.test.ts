import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeBase32 } from '@oslojs/encoding';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureLogging, loadConfig, migrate, openBus, openDatabase } from '@cctv/core';
import { createTestDatabase } from '../../../core/src/db/testing/testDatabase.js';
import { call, harness, ORIGIN, type Harness } from '../testing/harness.js';
import { AuthService, SESSION_COOKIE } from './service.js';
import { entryHash } from './audit.js';
import { tokenId } from './crypto.js';
import { totpNow } from './users.js';

// Sign-in, sessions, 2FA, tokens, lockout and the audit log, through the HTTP app.

let h: Harness;
beforeAll(async () => {
  h = await harness({ security: { lockout: { maxFailures: 3, windowS: 60, lockS: 2 }, limits: { signInPerAddress: [{ max: 1000, windowS: 60 }] } } });
});
afterAll(async () => {
  await h?.close();
});

/** Signs in through the API; returns the cookie headers of the new session and the answer. */
async function login(username: string, password: string, ip = '10.0.0.1') {
  const res = await call(h, 'POST', '/api/auth/login', { 'x-forwarded-for': ip }, { username, password });
  const set = String(res.headers['set-cookie'] ?? '');
  const token = /cctv_session=([^;]*)/.exec(set)?.[1] ?? '';
  return { res, setCookie: set, headers: { cookie: `${SESSION_COOKIE}=${token}`, origin: ORIGIN } };
}

describe('sign-in and sessions', () => {
  it('sets a HttpOnly, SameSite=Lax cookie (Secure when the browser will keep it), and the session works until sign-out', async () => {
    await h.user('alice', 'viewer');
    const { res, setCookie, headers } = await login('alice', 'alice-password-1');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ user: { username: 'alice', role: 'viewer' }, pending: null });
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Lax/);
    expect(setCookie).toMatch(/Path=\//);
    // Plain HTTP to another host: a Secure cookie would be dropped by the browser, so it is not Secure.
    expect(setCookie).not.toMatch(/Secure/);
    const local = await call(h, 'POST', '/api/auth/login', { host: 'localhost:8080' }, { username: 'alice', password: 'alice-password-1' });
    expect(String(local.headers['set-cookie'])).toMatch(/; Secure/);
    // The database holds the SHA-256 of the token, never the token.
    const token = headers.cookie.split('=')[1]!;
    expect((await h.db.query('SELECT id FROM sessions WHERE id = $1', [token])).length).toBe(0);
    expect((await call(h, 'GET', '/api/auth/me', headers)).json()).toMatchObject({ user: { username: 'alice' }, permissions: expect.arrayContaining(['camera:live']) });
    const out = await call(h, 'POST', '/api/auth/logout', headers);
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/);
    expect((await call(h, 'GET', '/api/auth/me', headers)).statusCode).toBe(401);
  });

  it('refuses a wrong password and an unknown user the same way', async () => {
    const a = await login('alice', 'not-her-password');
    const b = await login('nobody-here', 'whatever-password');
    expect(a.res.statusCode).toBe(401);
    expect(b.res.statusCode).toBe(401);
    expect(a.res.json().error).toEqual(b.res.json().error);
    expect(a.setCookie).toBe('');
  });

  it('lists sessions, ends one, and signs out everywhere', async () => {
    await h.user('bob', 'viewer');
    const one = await login('bob', 'bob-password-1');
    const two = await login('bob', 'bob-password-1');
    const list = (await call(h, 'GET', '/api/auth/sessions', one.headers)).json() as Array<{ id: string; current: boolean }>;
    expect(list).toHaveLength(2);
    const other = list.find((s) => !s.current)!;
    expect((await call(h, 'DELETE', `/api/auth/sessions/${other.id}`, one.headers)).statusCode).toBe(204);
    expect((await call(h, 'GET', '/api/auth/me', two.headers)).statusCode).toBe(401);
    const three = await login('bob', 'bob-password-1');
    expect((await call(h, 'POST', '/api/auth/logout-all', one.headers)).statusCode).toBe(204);
    expect((await call(h, 'GET', '/api/auth/me', three.headers)).statusCode).toBe(401);
    expect((await call(h, 'GET', '/api/auth/me', one.headers)).statusCode).toBe(401);
  });

  it('pushes the expiry out when a session is used in its second half (sliding expiry)', async () => {
    const { headers } = await login('bob', 'bob-password-1');
    const id = tokenId(headers.cookie.split('=')[1]!);
    await h.db.query("UPDATE sessions SET expires_at = now() + interval '2 days', last_seen_at = now() - interval '1 hour' WHERE id = $1", [id]);
    expect((await call(h, 'GET', '/api/auth/me', headers)).statusCode).toBe(200);
    const [s] = await h.db.query<{ expires_at: Date }>('SELECT expires_at FROM sessions WHERE id = $1', [id]);
    expect(s!.expires_at.getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
  });

  it('lets an admin list and end the sessions of a user; a disabled user is signed out and cannot sign in', async () => {
    const carol = await h.user('carol', 'operator');
    const { headers } = await login('carol', 'carol-password-1');
    const admin = await h.token('admin');
    expect(((await call(h, 'GET', `/api/users/${carol.id}/sessions`, admin)).json() as unknown[]).length).toBe(1);
    expect((await call(h, 'PATCH', `/api/users/${carol.id}`, admin, { disabled: true })).statusCode).toBe(200);
    expect((await call(h, 'GET', '/api/auth/me', headers)).statusCode).toBe(401);
    expect((await login('carol', 'carol-password-1')).res.statusCode).toBe(401);
    await call(h, 'PATCH', `/api/users/${carol.id}`, admin, { disabled: false });
    expect((await login('carol', 'carol-password-1')).res.statusCode).toBe(200);
    expect((await call(h, 'DELETE', `/api/users/${carol.id}/sessions`, admin)).statusCode).toBe(204);
    expect(((await call(h, 'GET', `/api/users/${carol.id}/sessions`, admin)).json() as unknown[]).length).toBe(0);
  });
});

describe('two-factor authentication (RFC 6238)', () => {
  let secret: Uint8Array;
  let recovery: string[];

  it('enrols with a QR code and a confirming code, and gives ten single-use recovery codes', async () => {
    await h.user('dave', 'operator');
    const { headers } = await login('dave', 'dave-password-1');
    const setup = await call(h, 'POST', '/api/auth/2fa/setup', headers);
    expect(setup.statusCode).toBe(200);
    const body = setup.json() as { secret: string; uri: string; qrSvg: string };
    expect(body.uri).toMatch(/^otpauth:\/\/totp\/CCTV:dave\?/);
    expect(body.qrSvg).toMatch(/^<svg/);
    secret = decodeBase32(body.secret);
    expect((await call(h, 'POST', '/api/auth/2fa/enable', headers, { code: '000000' })).statusCode).toBe(401);
    const enable = await call(h, 'POST', '/api/auth/2fa/enable', headers, { code: totpNow(secret) });
    expect(enable.statusCode).toBe(200);
    recovery = (enable.json() as { recoveryCodes: string[] }).recoveryCodes;
    expect(recovery).toHaveLength(10);
    expect(new Set(recovery).size).toBe(10);
    // Stored hashed, never as they are.
    const stored = await h.db.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes');
    for (const c of recovery) expect(stored.map((s) => s.code_hash)).not.toContain(c.replace('-', ''));
  });

  it('requires the code at the next sign-in, refuses it twice, and takes a recovery code once', async () => {
    const first = await login('dave', 'dave-password-1');
    expect(first.res.json().pending).toBe('verify');
    // Until the code is given the session can do nothing else.
    expect((await call(h, 'GET', '/api/cameras', first.headers)).json().error.code).toBe('SECOND_FACTOR_PENDING');
    expect((await call(h, 'POST', '/api/auth/2fa/verify', first.headers, { code: '123456' })).statusCode).toBe(401);
    // The code the enrolment used was taken: the next time step is needed, or wait for it.
    const code = totpNow(secret, Date.now() + 30_000);
    expect((await call(h, 'POST', '/api/auth/2fa/verify', first.headers, { code })).statusCode).toBe(204);
    expect((await call(h, 'GET', '/api/cameras', first.headers)).statusCode).toBe(200);
    const second = await login('dave', 'dave-password-1');
    expect((await call(h, 'POST', '/api/auth/2fa/verify', second.headers, { code })).statusCode, 'a code is accepted once').toBe(401);
    expect((await call(h, 'POST', '/api/auth/2fa/verify', second.headers, { recoveryCode: recovery[0] })).statusCode).toBe(204);
    const third = await login('dave', 'dave-password-1');
    expect((await call(h, 'POST', '/api/auth/2fa/verify', third.headers, { recoveryCode: recovery[0] })).statusCode, 'a recovery code is used once').toBe(401);
    expect((await call(h, 'POST', '/api/auth/2fa/verify', third.headers, { recoveryCode: recovery[1]!.toUpperCase() })).statusCode).toBe(204);
  });

  it('asks scripts for the code too: POST /api/auth/token', async () => {
    const noCode = await call(h, 'POST', '/api/auth/token', {}, { username: 'dave', password: 'dave-password-1' });
    expect(noCode.json().error).toMatchObject({ code: 'SECOND_FACTOR_REQUIRED', field: 'totp' });
    // Codes of the steps already used are refused; let time move on (as 30 s would) for a fresh one.
    await h.db.query("UPDATE users SET totp_last_step = totp_last_step - 3 WHERE username = 'dave'");
    const ok = await call(h, 'POST', '/api/auth/token', {}, { username: 'dave', password: 'dave-password-1', totp: totpNow(secret, Date.now() - 30_000) });
    expect(ok.statusCode).toBe(200);
    const { token, expiresAt } = ok.json() as { token: string; expiresAt: string };
    expect(token).toMatch(/^cctv_[a-z2-7]{32}$/);
    expect(new Date(expiresAt).getTime() - Date.now()).toBeLessThanOrEqual(3600_000);
    expect((await call(h, 'GET', '/api/cameras', { authorization: `Bearer ${token}` })).statusCode).toBe(200);
    // Short-lived: past its expiry it is refused.
    await h.db.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE kind = 'short'");
    expect((await call(h, 'GET', '/api/cameras', { authorization: `Bearer ${token}` })).statusCode).toBe(401);
  });

  it('makes everyone of a role enrol when the site requires it', async () => {
    const admin = await h.token('admin');
    expect((await call(h, 'PUT', '/api/security', admin, { require2fa: { all: false, roles: ['viewer'] } })).statusCode).toBe(200);
    await h.user('erin', 'viewer');
    const s = await login('erin', 'erin-password-1');
    expect(s.res.json().pending).toBe('enroll');
    expect((await call(h, 'GET', '/api/cameras', s.headers)).json().error.code).toBe('ENROLLMENT_REQUIRED');
    expect((await call(h, 'POST', '/api/auth/token', {}, { username: 'erin', password: 'erin-password-1' })).json().error.code).toBe('ENROLLMENT_REQUIRED');
    const setup = (await call(h, 'POST', '/api/auth/2fa/setup', s.headers)).json() as { secret: string };
    expect((await call(h, 'POST', '/api/auth/2fa/enable', s.headers, { code: totpNow(decodeBase32(setup.secret)) })).statusCode).toBe(200);
    expect((await call(h, 'GET', '/api/cameras', s.headers)).statusCode).toBe(200);
    expect((await call(h, 'POST', '/api/auth/2fa/disable', s.headers, { password: 'erin-password-1' })).json().error.code).toBe('FORBIDDEN');
    await call(h, 'PUT', '/api/security', admin, { require2fa: { all: false, roles: [] } });
  });

  it('lets an admin reset the 2FA of a user who lost their phone and their recovery codes', async () => {
    const admin = await h.token('admin');
    expect((await call(h, 'PUT', '/api/security', admin, { require2fa: { all: false, roles: ['operator'] } })).statusCode).toBe(200);
    await h.user('gina', 'operator');
    const s = await login('gina', 'gina-password-1');
    const setup = (await call(h, 'POST', '/api/auth/2fa/setup', s.headers)).json() as { secret: string };
    expect((await call(h, 'POST', '/api/auth/2fa/enable', s.headers, { code: totpNow(decodeBase32(setup.secret)) })).statusCode).toBe(200);
    const gina = (await h.auth.users.getByName('gina'))!;
    expect(gina.totpEnabled).toBe(true);

    // Only someone with users:manage, and not on themselves (their account page asks for the password).
    const op = await h.token('dave');
    expect((await call(h, 'PATCH', `/api/users/${gina.id}`, op, { resetTwoFactor: true })).statusCode).toBe(403);
    const me = (await h.auth.users.getByName('admin'))!;
    const self = await call(h, 'PATCH', `/api/users/${me.id}`, admin, { resetTwoFactor: true });
    expect(self.json().error).toMatchObject({ code: 'FORBIDDEN' });
    expect((await call(h, 'PATCH', `/api/users/${gina.id}`, admin, { resetTwoFactor: false })).json().error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'resetTwoFactor' });

    const reset = await call(h, 'PATCH', `/api/users/${gina.id}`, admin, { resetTwoFactor: true });
    expect(reset.statusCode).toBe(200);
    expect(reset.json()).toMatchObject({ username: 'gina', totpEnabled: false });
    // Her sessions ended; her recovery codes are gone; the audit log says who did it.
    expect((await call(h, 'GET', '/api/cameras', s.headers)).statusCode).toBe(401);
    expect(await h.db.query('SELECT 1 FROM recovery_codes WHERE user_id = $1', [gina.id])).toEqual([]);
    const entry = (await call(h, 'GET', '/api/audit?action=user.changed&limit=1', admin)).json() as { entries: Array<{ actor: string; target: string; details: { twoFactorReset: boolean } }> };
    expect(entry.entries[0]).toMatchObject({ actor: 'admin', target: 'gina', details: { twoFactorReset: true } });
    // Her role requires 2FA: the next sign-in must set it up again before anything else.
    const next = await login('gina', 'gina-password-1');
    expect(next.res.json().pending).toBe('enroll');
    await call(h, 'PUT', '/api/security', admin, { require2fa: { all: false, roles: [] } });
  });
});

describe('brute force', () => {
  it('locks an account after repeated failures: the right password is refused until the lock ends', async () => {
    await h.user('frank', 'viewer');
    expect((await login('frank', 'wrong-password-x')).res.statusCode).toBe(401);
    expect((await login('frank', 'wrong-password-x')).res.statusCode).toBe(401);
    // The failure that locks the account already says so.
    const third = await login('frank', 'wrong-password-x');
    expect(third.res.json().error.code).toBe('ACCOUNT_LOCKED');
    const locked = await login('frank', 'frank-password-1');
    expect(locked.res.statusCode).toBe(429);
    expect(locked.res.json().error.code).toBe('ACCOUNT_LOCKED');
    expect(Number(locked.res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await sleep(2100);
    expect((await login('frank', 'frank-password-1')).res.statusCode).toBe(200);
  });

  it('limits sign-in attempts per address with 429 and Retry-After', async () => {
    const tight = await harness({ security: { limits: { signInPerAddress: [{ max: 3, windowS: 60 }] } } });
    try {
      const tries = [];
      for (let i = 0; i < 5; i++) tries.push(await call(tight, 'POST', '/api/auth/login', { 'x-forwarded-for': '10.9.9.9' }, { username: `u${i}`, password: 'whatever-pass' }));
      expect(tries.map((r) => r.statusCode)).toEqual([401, 401, 401, 429, 429]);
      expect(tries[3]!.json().error.code).toBe('RATE_LIMITED');
      expect(Number(tries[3]!.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await tight.close();
    }
  });

  it('limits API calls per token', async () => {
    const tight = await harness({ security: { limits: { apiPerPrincipal: [{ max: 5, windowS: 60 }] } } });
    try {
      const t = await tight.token('admin');
      const codes = [];
      for (let i = 0; i < 7; i++) codes.push((await call(tight, 'GET', '/api/cameras', t)).statusCode);
      expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
    } finally {
      await tight.close();
    }
  });

  it('holds the lockout across two signaling instances sharing Redis', async () => {
    const prefix = `lock-${Date.now()}`;
    const dbA = await openDatabase({ dataDir: 'memory://' });
    await migrate(dbA);
    const config = loadConfig({ env: {}, overrides: { security: { lockout: { maxFailures: 2, windowS: 60, lockS: 60 }, limits: { signInPerAddress: [{ max: 100, windowS: 60 }] } } } });
    const busA = await openBus({ url: 'redis://127.0.0.1:6379', prefix });
    const busB = await openBus({ url: 'redis://127.0.0.1:6379', prefix });
    try {
      const a = new AuthService({ db: dbA, bus: busA, config });
      const b = new AuthService({ db: dbA, bus: busB, config });
      await a.initialize('admin-password-0');
      const meta = { ip: '10.1.1.1', userAgent: null };
      await expect(a.signIn('admin', 'wrong-one-1', meta)).rejects.toMatchObject({ code: 'BAD_CREDENTIALS' });
      // The second failure, on the other instance, is the one that locks.
      await expect(b.signIn('admin', 'wrong-one-2', meta)).rejects.toMatchObject({ code: 'ACCOUNT_LOCKED' });
      // Two failures on two instances: locked on both, also for the right password.
      await expect(a.signIn('admin', 'admin-password-0', meta)).rejects.toMatchObject({ code: 'ACCOUNT_LOCKED' });
      await expect(b.signIn('admin', 'admin-password-0', meta)).rejects.toMatchObject({ code: 'ACCOUNT_LOCKED' });
    } finally {
      await busA.close();
      await busB.close();
      await dbA.close();
    }
  });
});

describe('API tokens', () => {
  it('are shown once, stored hashed, scoped, and revocable by their owner and by an admin', async () => {
    const grace = await h.user('grace', 'operator');
    const { headers } = await login('grace', 'grace-password-1');
    const made = await call(h, 'POST', '/api/tokens', headers, { name: 'nvr script', permissions: ['cameras:read'] });
    expect(made.statusCode).toBe(201);
    const { token, id } = made.json() as { token: string; id: string };
    expect((await h.db.query('SELECT 1 FROM api_tokens WHERE id = $1', [token])).length).toBe(0);
    const listed = (await call(h, 'GET', '/api/tokens', headers)).json() as Array<Record<string, unknown>>;
    expect(listed.map((t) => t.id)).toContain(id);
    expect(JSON.stringify(listed)).not.toContain(token);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await call(h, 'GET', '/api/cameras', bearer)).statusCode).toBe(200);
    expect((await call(h, 'POST', '/api/cameras', bearer, { id: 'nope', source: { kind: 'test' } })).json().error.code).toBe('FORBIDDEN');
    // A token cannot ask for more than its user holds.
    expect((await call(h, 'POST', '/api/tokens', headers, { name: 'too much', permissions: ['users:manage'] })).json().error.code).toBe('FORBIDDEN');
    expect((await call(h, 'DELETE', `/api/tokens/${id}`, headers)).statusCode).toBe(204);
    expect((await call(h, 'GET', '/api/cameras', bearer)).statusCode).toBe(401);
    const other = (await call(h, 'POST', '/api/tokens', headers, { name: 'second' })).json() as { token: string; id: string };
    const admin = await h.token('admin');
    expect((await call(h, 'DELETE', `/api/users/${grace.id}/tokens/${other.id}`, admin)).statusCode).toBe(204);
    expect((await call(h, 'GET', '/api/cameras', { authorization: `Bearer ${other.token}` })).statusCode).toBe(401);
  });
});

describe('input at the edge', () => {
  it('refuses bad user input with the field named, and changes nothing', async () => {
    const admin = await h.token('admin');
    const before = (await call(h, 'GET', '/api/users', admin)).json() as unknown[];
    const cases: Array<[unknown, string]> = [
      [{ username: '../etc', password: 'long-enough-pw', role: 'viewer' }, 'username'],
      [{ username: 'x', password: 'short', role: 'viewer' }, 'password'],
      [{ username: 'x', password: 'long-enough-pw', role: 'root' }, 'role'],
      [{ username: "o'brien; drop table users", password: 'long-enough-pw', role: 'viewer' }, 'username'],
      [{ username: 'x', password: 'long-enough-pw', role: 'viewer', extra: true }, 'extra'],
      [{ username: 'x', password: 'long-enough-pw', role: 'viewer', cameras: { cam: ['camera:fly'] } }, 'cameras.cam[0]'],
      [{ username: 'x', password: 'long-enough-pw', role: 'viewer', cameras: { cam: ['camera:export'] } }, 'cameras.cam'],
      [{ username: 'x', password: 'long-enough-pw', role: 'admin', cameras: { cam: ['camera:live'] } }, 'cameras'],
    ];
    for (const [body, field] of cases) {
      const r = await call(h, 'POST', '/api/users', admin, body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().error.field).toBe(field);
    }
    expect((await call(h, 'POST', '/api/users', admin, '{"username":')).json().error.code).toBe('MALFORMED_JSON');
    expect((await call(h, 'POST', '/api/users', admin, { username: 'big', password: 'x'.repeat(5000), role: 'viewer' })).statusCode).toBe(413);
    expect((await call(h, 'GET', '/api/users/..%2F..%2Fetc', admin)).statusCode).toBe(404);
    expect((await call(h, 'GET', '/api/users', admin)).json()).toEqual(before);
  });

  it('refuses cookie-authenticated writes from another site (CSRF) and allows only listed CORS origins', async () => {
    const s = await h.session('admin');
    const evil = await call(h, 'POST', '/api/cameras', { ...s, origin: 'https://evil.example' }, { id: 'csrf', source: { kind: 'test' } });
    expect(evil.json().error.code).toBe('CSRF_FAILED');
    expect(await h.store.get('csrf')).toBeNull();
    const cors = await harness({ http: { corsOrigins: ['https://player.example'] } });
    try {
      const pre = await call(cors, 'OPTIONS', '/api/cameras/x/whep', { origin: 'https://player.example', 'access-control-request-method': 'POST' });
      expect(pre.headers['access-control-allow-origin']).toBe('https://player.example');
      const other = await call(cors, 'OPTIONS', '/api/cameras/x/whep', { origin: 'https://other.example', 'access-control-request-method': 'POST' });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await cors.close();
    }
  });

  it('sends security headers', async () => {
    const r = await call(h, 'GET', '/api/health', {});
    expect(r.headers['content-security-policy']).toContain("default-src 'self'");
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(r.headers['referrer-policy']).toBe('no-referrer');
    // This harness runs without TLS: no HSTS (see the HTTPS test in tls.test.ts).
    expect(r.headers['strict-transport-security']).toBeUndefined();
  });
});

describe('secrets in logs', () => {
  it('never logs a password, a session token or a Bearer token', async () => {
    const lines: string[] = [];
    configureLogging({ level: 'trace', destination: new Writable({ write(c, _e, cb) { lines.push(String(c)); cb(); } }) as never });
    try {
      await h.user('heidi', 'viewer');
      const { headers } = await login('heidi', 'heidi-password-1');
      await login('heidi', 'heidi-wrong-password');
      const tok = (await call(h, 'POST', '/api/auth/token', {}, { username: 'heidi', password: 'heidi-password-1' })).json() as { token: string };
      await call(h, 'GET', '/api/cameras', { authorization: `Bearer ${tok.token}` });
      await call(h, 'GET', '/api/cameras', { authorization: 'Bearer cctv_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' });
      await call(h, 'POST', '/api/cameras', { ...headers, origin: 'https://evil.example' }, { id: 'x', source: { kind: 'rtsp', url: 'rtsp://u:camera-secret-9@10.0.0.1/s' } });
      const session = headers.cookie.split('=')[1]!;
      const text = lines.join('');
      expect(lines.length).toBeGreaterThan(0);
      for (const secret of ['heidi-password-1', 'heidi-wrong-password', tok.token, session, 'camera-secret-9']) expect(text).not.toContain(secret);
    } finally {
      configureLogging({ level: 'silent' });
    }
  });
});

describe('audit log (on Postgres)', () => {
  it('records who did what from where, is searchable, and verify names every altered, deleted or inserted entry', async () => {
    const t = await createTestDatabase();
    const db = await openDatabase({ url: t.url });
    try {
      await migrate(db);
      const bus = await openBus({ prefix: 'audit' });
      const auth = new AuthService({ db, bus, config: loadConfig({ env: {} }) });
      await auth.initialize('admin-password-0');
      const meta = { ip: '192.0.2.7', userAgent: 'test' };
      await auth.signIn('admin', 'admin-password-0', meta);
      await expect(auth.signIn('admin', 'bad-password', meta)).rejects.toThrow();
      for (let i = 0; i < 5; i++) await auth.audit.append({ actor: 'admin', actorKind: 'user', action: 'view.live_started', cameraId: `cam${i}`, ip: meta.ip });
      await bus.close();

      const found = await auth.audit.search({ action: 'view.*', cameraId: 'cam3' });
      expect(found).toHaveLength(1);
      expect(found[0]).toMatchObject({ actor: 'admin', ip: '192.0.2.7', cameraId: 'cam3' });
      expect((await auth.audit.search({ action: 'auth.sign_in_failed' }))[0]).toMatchObject({ actor: 'admin', ip: '192.0.2.7' });
      const clean = await auth.audit.verify();
      expect(clean).toMatchObject({ ok: true, breaks: [] });
      const n = clean.entries;
      // The application cannot change an entry…
      await expect(db.query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3")).rejects.toThrow(/append-only/);
      await expect(db.query('DELETE FROM audit_log WHERE seq = 3')).rejects.toThrow(/append-only/);
      // …someone with the database's keys can; verify finds it.
      await db.exec('ALTER TABLE audit_log DISABLE TRIGGER USER');
      await db.query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
      await db.query('DELETE FROM audit_log WHERE seq = 5');
      const [last] = await db.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = $1', [n]);
      // An entry added at the end with a made-up hash…
      await db.query(
        `INSERT INTO audit_log (seq, at, actor, actor_kind, action, details, prev_hash, hash) VALUES ($1, now(), 'mallory', 'user', 'view.exported', '{}', $2, 'f00d')`,
        [n + 1, last!.hash],
      );
      // …and one whose hash is right for its content, but which was not made after its predecessor.
      const forged = { seq: n + 2, at: new Date(), actor: 'mallory', actorKind: 'user' as const, action: 'view.exported', target: null, cameraId: null, ip: null, details: {} };
      const prev = 'a'.repeat(64);
      await db.query(
        `INSERT INTO audit_log (seq, at, actor, actor_kind, action, details, prev_hash, hash) VALUES ($1, $2, 'mallory', 'user', 'view.exported', '{}', $3, $4)`,
        [forged.seq, forged.at, prev, entryHash(prev, forged)],
      );
      const broken = await auth.audit.verify();
      expect(broken.ok).toBe(false);
      const said = broken.breaks.map((b) => `${b.seq}:${b.kind}`);
      expect(said).toEqual(['3:altered', '6:missing', `${n + 1}:altered`, `${n + 2}:inserted`]);
      expect(broken.breaks.find((b) => b.kind === 'missing')!.message).toBe('entry 5 is missing before entry 6');
    } finally {
      await db.close();
      await t.drop();
    }
  });
});

describe('first start', () => {
  it('creates the admin with a generated password once, and never again', async () => {
    const db = await openDatabase({ dataDir: 'memory://' });
    const bus = await openBus({ prefix: 'first' });
    try {
      await migrate(db);
      const a = new AuthService({ db, bus, config: loadConfig({ env: {} }) });
      const first = await a.initialize(undefined);
      expect(first.createdAdmin).toBe(true);
      expect(first.generatedPassword).toMatch(/^[A-Za-z0-9_-]{16}$/);
      expect(await a.users.checkPassword('admin', first.generatedPassword!)).not.toBeNull();
      const again = await new AuthService({ db, bus, config: loadConfig({ env: {} }) }).initialize(undefined);
      expect(again).toEqual({ createdAdmin: false, generatedPassword: null });
    } finally {
      await bus.close();
      await db.close();
    }
  });
});

