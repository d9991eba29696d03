import type { Request, Response } from 'express';
import QRCode from 'qrcode';
import { z } from 'zod';
import { parseWith } from '@cctv/core';
import { ApiError } from '../errors.js';
import type { Route } from '../app.js';
import { AuditAction } from './audit.js';
import { ALL_PERMISSIONS, CAMERA_PERMISSIONS, Permission, ROLE_PERMISSIONS, type Principal } from './permissions.js';
import { SecuritySettingsSchema, isSecureRequest, sessionCookie, type AuthService, type RequestMeta } from './service.js';
import { NewUserSchema, PasswordSchema, UserChangeSchema, type User } from './users.js';
import { ErrorBodySchema, IsoTime } from '../schemas.js';
import type { Session } from './sessions.js';
import type { ApiToken } from './tokens.js';

/** The principal the route wrapper resolved for this request. */
export function principal(res: Response): Principal {
  return res.locals.principal as Principal;
}

/** Client address and user agent of a request (X-Forwarded-For only when the proxy is trusted). */
export function requestMeta(req: Request, trustProxy: boolean): RequestMeta {
  const fwd = trustProxy ? String(req.headers['x-forwarded-for'] ?? '').split(',')[0]!.trim().slice(0, 64) : '';
  // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; the audit log wants a.b.c.d.
  const ip = (fwd || req.socket.remoteAddress || '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');
  return { ip: ip || null, userAgent: req.headers['user-agent']?.slice(0, 300) ?? null };
}

const userView = (u: User) => ({
  id: u.id, username: u.username, role: u.role, cameras: u.cameraGrants, disabled: u.disabled, totpEnabled: u.totpEnabled, createdAt: u.createdAt, updatedAt: u.updatedAt,
});
const sessionView = (s: Session, current: string | null) => ({
  id: s.id, createdAt: s.createdAt, expiresAt: s.expiresAt, lastSeenAt: s.lastSeenAt, twoFactorVerified: s.twoFactorVerified, ip: s.ip, userAgent: s.userAgent, current: s.id === current,
});
const tokenView = (t: ApiToken) => ({
  id: t.id, name: t.name, kind: t.kind, prefix: t.prefix, permissions: t.permissions, cameras: t.cameras, createdAt: t.createdAt, expiresAt: t.expiresAt, lastUsedAt: t.lastUsedAt, revokedAt: t.revokedAt,
});

const SignInSchema = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(256) });
const TokenRequestSchema = z.strictObject({ username: z.string().min(1).max(64), password: z.string().min(1).max(256), totp: z.string().max(16).optional() });
const SecondFactorSchema = z.strictObject({ code: z.string().max(16).optional(), recoveryCode: z.string().max(32).optional() });
const CodeSchema = z.strictObject({ code: z.string().min(1).max(16) });
const PasswordChangeSchema = z.strictObject({ current: z.string().min(1).max(256), password: PasswordSchema });
const DisableTotpSchema = z.strictObject({ password: z.string().min(1).max(256) });
const NewTokenSchema = z.strictObject({
  name: z.string().min(1).max(100),
  /** Default: the user's permissions. */
  permissions: z.array(z.enum(ALL_PERMISSIONS as [Permission, ...Permission[]])).optional(),
  /** Default: every camera the user may use. */
  cameras: z.array(z.string().min(1).max(64)).optional(),
  /** Default: never expires. */
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});
const AuditQuerySchema = z.strictObject({
  actor: z.string().max(64).optional(),
  action: z.string().max(64).optional(),
  camera: z.string().max(64).optional(),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

const UserViewSchema = z.strictObject({
  id: z.string(), username: z.string(), role: z.string(),
  /** null: every camera with the role's permissions; otherwise permissions per camera. */
  cameras: z.record(z.string(), z.array(z.string())).nullable(),
  disabled: z.boolean(), totpEnabled: z.boolean(), createdAt: IsoTime, updatedAt: IsoTime,
});
const SessionViewSchema = z.strictObject({
  id: z.string(), createdAt: IsoTime, expiresAt: IsoTime, lastSeenAt: IsoTime, twoFactorVerified: z.boolean(),
  ip: z.string().nullable(), userAgent: z.string().nullable(), current: z.boolean(),
});
const TokenViewSchema = z.strictObject({
  id: z.string(), name: z.string(), kind: z.enum(['short', 'api']), prefix: z.string(),
  permissions: z.array(z.string()).nullable(), cameras: z.array(z.string()).nullable(),
  createdAt: IsoTime, expiresAt: IsoTime.nullable(), lastUsedAt: IsoTime.nullable(), revokedAt: IsoTime.nullable(),
});
const Pending = z.enum(['verify', 'enroll']).nullable();
const SignedInSchema = z.strictObject({ user: UserViewSchema, pending: Pending });
const MeSchema = z.strictObject({
  user: UserViewSchema, kind: z.enum(['user', 'token']), pending: Pending, permissions: z.array(z.string()),
  /** null: every camera; otherwise the permissions held on each camera. */
  cameras: z.record(z.string(), z.array(z.string())).nullable(),
  require2fa: z.boolean(),
});
const ShortTokenSchema = z.strictObject({ token: z.string(), expiresAt: IsoTime });
const TotpSetupSchema = z.strictObject({ secret: z.string(), uri: z.string(), qrSvg: z.string() });
const RecoveryCodesSchema = z.strictObject({ recoveryCodes: z.array(z.string()) });
const RolesSchema = z.strictObject({ roles: z.record(z.string(), z.array(z.string())), cameraPermissions: z.array(z.string()) });
const AuditEntrySchema = z.strictObject({
  seq: z.number().int(), at: IsoTime, actor: z.string(), actorKind: z.enum(['user', 'token', 'system', 'anonymous']), action: z.string(),
  target: z.string().nullable(), cameraId: z.string().nullable(), ip: z.string().nullable(), details: z.record(z.string(), z.unknown()),
  prevHash: z.string(), hash: z.string(),
});
const AuditPageSchema = z.strictObject({ entries: z.array(AuditEntrySchema), next: z.number().int().nullable() });
const AuditVerifySchema = z.strictObject({
  ok: z.boolean(), entries: z.number().int(),
  breaks: z.array(z.looseObject({ seq: z.number().int(), kind: z.string(), message: z.string() })),
});

/** Sign-in, 2FA, sessions, tokens, users, security settings and the audit log. */
export function authRoutes(auth: AuthService, opts: { trustProxy: boolean; issuer: string }): Route[] {
  const meta = (req: Request) => requestMeta(req, opts.trustProxy);
  const me = async (res: Response): Promise<User> => {
    const u = await auth.users.get(principal(res).userId!);
    if (!u) throw new ApiError('UNAUTHENTICATED');
    return u;
  };
  const audit = (res: Response, req: Request, action: string, extra: { target?: string; details?: Record<string, unknown> } = {}) => {
    const p = principal(res);
    return auth.audit.append({ actor: p.username ?? 'anonymous', actorKind: p.kind === 'anonymous' ? 'anonymous' : p.kind, action, ip: meta(req).ip, ...extra });
  };
  const mustUser = async (id: string): Promise<User> => {
    const u = await auth.users.get(id);
    if (!u) throw new ApiError('USER_NOT_FOUND', `no user with id '${id.slice(0, 64)}'`);
    return u;
  };

  return [
    {
      method: 'POST', path: '/api/auth/login', permission: 'public', body: 'json',
      summary: 'Sign in with { username, password }: sets the session cookie; says whether a 2FA step is owed',
      request: { body: SignInSchema },
      responses: { 200: SignedInSchema, 401: ErrorBodySchema, 429: ErrorBodySchema },
      handler: async (req, res) => {
        const b = parseWith(SignInSchema, req.body);
        const r = await auth.signIn(b.username, b.password, meta(req));
        res.setHeader('Set-Cookie', sessionCookie(r.token, r.session.expiresAt, isSecureRequest(req, opts.trustProxy)));
        res.json({ user: userView(r.user), pending: r.pending });
      },
    },
    {
      method: 'POST', path: '/api/auth/2fa/verify', permission: 'authenticated', allowPending: ['verify'], body: 'json',
      summary: 'Finish a sign-in with { code } from the authenticator app or { recoveryCode }',
      request: { body: SecondFactorSchema },
      responses: { 204: 'empty', 409: ErrorBodySchema },
      handler: async (req, res) => {
        const b = parseWith(SecondFactorSchema, req.body);
        if (principal(res).pending !== 'verify') throw new ApiError('TWO_FACTOR_STATE', 'this session has no 2FA code owed');
        await auth.verifySecondFactor(principal(res), b, meta(req));
        res.status(204).end();
      },
    },
    {
      method: 'POST', path: '/api/auth/logout', permission: 'authenticated', allowPending: ['verify', 'enroll'],
      summary: 'Sign out of this session',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const p = principal(res);
        if (p.sessionId) await auth.sessions.invalidate(p.sessionId);
        await audit(res, req, AuditAction.SignOut);
        res.setHeader('Set-Cookie', sessionCookie(null, undefined, isSecureRequest(req, opts.trustProxy)));
        res.status(204).end();
      },
    },
    {
      method: 'POST', path: '/api/auth/logout-all', permission: 'authenticated', allowPending: ['verify', 'enroll'],
      summary: 'Sign out everywhere: end every session of this user',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const n = await auth.sessions.invalidateUser(principal(res).userId!);
        await audit(res, req, AuditAction.SignOutEverywhere, { details: { sessions: n } });
        res.setHeader('Set-Cookie', sessionCookie(null, undefined, isSecureRequest(req, opts.trustProxy)));
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/auth/me', permission: 'authenticated', allowPending: ['verify', 'enroll'],
      summary: 'Who is signed in: user, pending 2FA step, permissions and cameras',
      responses: { 200: MeSchema },
      handler: async (_req, res) => {
        const p = principal(res);
        const u = await me(res);
        res.json({
          user: userView(u), kind: p.kind, pending: p.pending, permissions: [...p.permissions],
          cameras: p.cameras === null ? null : Object.fromEntries([...p.cameras].map(([c, s]) => [c, [...s]])),
          require2fa: auth.requires2fa(u.role),
        });
      },
    },
    {
      method: 'POST', path: '/api/auth/token', permission: 'public', body: 'json',
      summary: 'A short-lived Bearer token for scripts and WHEP clients: { username, password, totp? } → { token, expiresAt }',
      request: { body: TokenRequestSchema },
      responses: { 200: ShortTokenSchema, 401: ErrorBodySchema, 403: ErrorBodySchema, 429: ErrorBodySchema },
      handler: async (req, res) => {
        const b = parseWith(TokenRequestSchema, req.body);
        res.json(await auth.issueShortToken(b, meta(req)));
      },
    },
    {
      method: 'POST', path: '/api/auth/password', permission: 'authenticated', body: 'json',
      summary: 'Change your password: { current, password }; other sessions end',
      request: { body: PasswordChangeSchema },
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const b = parseWith(PasswordChangeSchema, req.body);
        const u = await me(res);
        if (!(await auth.users.checkPassword(u.username, b.current))) throw new ApiError('BAD_CREDENTIALS', 'the current password is not right', { field: 'current' });
        await auth.users.update(u.id, { password: b.password });
        await auth.sessions.invalidateUser(u.id, principal(res).sessionId ?? undefined);
        await audit(res, req, AuditAction.PasswordChanged, { target: u.username });
        res.status(204).end();
      },
    },
    {
      method: 'POST', path: '/api/auth/2fa/setup', permission: 'authenticated', allowPending: ['enroll'],
      summary: 'Start 2FA set-up: a new key as an otpauth URI, its QR code (SVG) and the key in text',
      responses: { 200: TotpSetupSchema, 409: ErrorBodySchema },
      handler: async (_req, res) => {
        const u = await me(res);
        if (u.totpEnabled) throw new ApiError('TWO_FACTOR_STATE', '2FA is already on; turn it off first to change the key');
        const t = (await auth.users.beginTotp(u.id, opts.issuer))!;
        const qrSvg = await QRCode.toString(t.uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
        res.json({ secret: t.secret, uri: t.uri, qrSvg });
      },
    },
    {
      method: 'POST', path: '/api/auth/2fa/enable', permission: 'authenticated', allowPending: ['enroll'], body: 'json',
      summary: 'Confirm 2FA set-up with { code }: turns 2FA on and returns ten recovery codes, shown once',
      request: { body: CodeSchema },
      responses: { 200: RecoveryCodesSchema },
      handler: async (req, res) => {
        const p = principal(res);
        const b = parseWith(CodeSchema, req.body);
        const codes = await auth.users.confirmTotp(p.userId!, b.code);
        if (!codes) throw new ApiError('BAD_CREDENTIALS', 'the code does not match the key being set up (or no set-up was started)', { field: 'code' });
        if (p.sessionId) await auth.sessions.markTwoFactorVerified(p.sessionId);
        await audit(res, req, AuditAction.TwoFactorEnabled, { target: p.username! });
        res.json({ recoveryCodes: codes });
      },
    },
    {
      method: 'POST', path: '/api/auth/2fa/disable', permission: 'authenticated', body: 'json',
      summary: 'Turn 2FA off, confirmed with { password }; refused when the site requires 2FA for your role',
      request: { body: DisableTotpSchema },
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const b = parseWith(DisableTotpSchema, req.body);
        const u = await me(res);
        if (auth.requires2fa(u.role)) throw new ApiError('FORBIDDEN', 'this site requires 2FA for your role');
        if (!(await auth.users.checkPassword(u.username, b.password))) throw new ApiError('BAD_CREDENTIALS', 'the password is not right', { field: 'password' });
        await auth.users.disableTotp(u.id);
        await audit(res, req, AuditAction.TwoFactorDisabled, { target: u.username });
        res.status(204).end();
      },
    },
    {
      method: 'POST', path: '/api/auth/2fa/recovery-codes', permission: 'authenticated', body: 'json',
      summary: 'Replace your recovery codes, confirmed with { code }: ten new ones, shown once',
      request: { body: CodeSchema },
      responses: { 200: RecoveryCodesSchema, 409: ErrorBodySchema },
      handler: async (req, res) => {
        const b = parseWith(CodeSchema, req.body);
        const u = await me(res);
        if (!u.totpEnabled) throw new ApiError('TWO_FACTOR_STATE', '2FA is not on');
        if (!(await auth.users.verifyTotp(u.id, b.code))) throw new ApiError('BAD_CREDENTIALS', 'the code is not right (or was already used)', { field: 'code' });
        const codes = await auth.users.regenerateRecoveryCodes(u.id);
        await audit(res, req, AuditAction.RecoveryCodesRenewed, { target: u.username });
        res.json({ recoveryCodes: codes });
      },
    },
    {
      method: 'GET', path: '/api/auth/sessions', permission: 'authenticated',
      summary: 'Your sessions (browsers signed in), the current one marked',
      responses: { 200: z.array(SessionViewSchema) },
      handler: async (_req, res) => {
        const p = principal(res);
        res.json((await auth.sessions.listForUser(p.userId!)).map((s) => sessionView(s, p.sessionId)));
      },
    },
    {
      method: 'DELETE', path: '/api/auth/sessions/:session', permission: 'authenticated',
      summary: 'End one of your sessions',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const p = principal(res);
        if (!(await auth.sessions.invalidate(String(req.params.session), p.userId!))) throw new ApiError('SESSION_NOT_FOUND', 'no such session of yours');
        await audit(res, req, AuditAction.SessionRevoked, { target: p.username!, details: { session: String(req.params.session).slice(0, 12) } });
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/tokens', permission: 'authenticated',
      summary: 'Your API tokens that still work (never the token itself)',
      responses: { 200: z.array(TokenViewSchema) },
      handler: async (_req, res) => {
        res.json((await auth.tokens.listForUser(principal(res).userId!)).filter((t) => t.kind === 'api').map(tokenView));
      },
    },
    {
      method: 'POST', path: '/api/tokens', permission: 'authenticated', body: 'json',
      summary: 'Make an API token { name, permissions?, cameras?, expiresInDays? }; the token is in the answer only',
      request: { body: NewTokenSchema },
      responses: { 201: TokenViewSchema.extend({ token: z.string() }) },
      handler: async (req, res) => {
        const p = principal(res);
        if (p.kind === 'token') throw new ApiError('FORBIDDEN', 'a token cannot make tokens; sign in');
        const b = parseWith(NewTokenSchema, req.body);
        const notHeld = (b.permissions ?? []).filter((x) => !p.permissions.has(x));
        if (notHeld.length) throw new ApiError('FORBIDDEN', `you do not hold ${notHeld.join(', ')}`, { field: 'permissions' });
        const { token, record } = await auth.tokens.create(p.userId!, { name: b.name, kind: 'api', permissions: b.permissions ?? null, cameras: b.cameras ?? null, ttlMs: b.expiresInDays ? b.expiresInDays * 86_400_000 : null });
        await audit(res, req, AuditAction.ApiTokenCreated, { target: record.prefix, details: { name: b.name, permissions: b.permissions ?? 'all of the user', cameras: b.cameras ?? 'all of the user' } });
        res.status(201).json({ token, ...tokenView(record) });
      },
    },
    {
      method: 'DELETE', path: '/api/tokens/:token', permission: 'authenticated',
      summary: 'Revoke one of your API tokens',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const p = principal(res);
        if (!(await auth.tokens.revoke(String(req.params.token), p.userId!))) throw new ApiError('TOKEN_NOT_FOUND', 'no such token of yours');
        await audit(res, req, AuditAction.ApiTokenRevoked, { target: String(req.params.token).slice(0, 12) });
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/roles', permission: 'authenticated',
      summary: 'What each role may do, and which permissions apply per camera',
      responses: { 200: RolesSchema },
      handler: (_req, res) => {
        res.json({ roles: ROLE_PERMISSIONS, cameraPermissions: CAMERA_PERMISSIONS });
      },
    },
    {
      method: 'GET', path: '/api/users', permission: Permission.UsersManage,
      summary: 'Every user, with role and 2FA state',
      responses: { 200: z.array(UserViewSchema) },
      handler: async (_req, res) => {
        res.json((await auth.users.list()).map(userView));
      },
    },
    {
      method: 'POST', path: '/api/users', permission: Permission.UsersManage, body: 'json',
      summary: 'Add a user { username, password, role, cameras? } (cameras: { cameraId: [permissions] }, or null for all)',
      request: { body: NewUserSchema },
      responses: { 201: UserViewSchema, 409: ErrorBodySchema },
      handler: async (req, res) => {
        const u = await auth.users.create(req.body);
        if (!u) throw new ApiError('USER_EXISTS', `a user named '${String((req.body as { username?: unknown }).username)}' exists`, { field: 'username' });
        await audit(res, req, AuditAction.UserCreated, { target: u.username, details: { role: u.role, cameras: u.cameraGrants } });
        res.status(201).location(`/api/users/${u.id}`).json(userView(u));
      },
    },
    {
      method: 'GET', path: '/api/users/:user', permission: Permission.UsersManage,
      summary: 'One user, with role and 2FA state',
      responses: { 200: UserViewSchema },
      handler: async (req, res) => {
        res.json(userView(await mustUser(String(req.params.user))));
      },
    },
    {
      method: 'PATCH', path: '/api/users/:user', permission: Permission.UsersManage, body: 'json',
      summary: "Change a user's role, cameras, disabled flag or password, or reset their 2FA ({ resetTwoFactor: true }); disabling, a new password or a 2FA reset ends their sessions",
      request: { body: UserChangeSchema },
      responses: { 200: UserViewSchema },
      handler: async (req, res) => {
        const target = await mustUser(String(req.params.user));
        const p = principal(res);
        const body = (req.body ?? {}) as { role?: string; disabled?: boolean; password?: string; resetTwoFactor?: boolean };
        if (target.id === p.userId && ((body.role !== undefined && body.role !== 'admin') || body.disabled === true)) {
          throw new ApiError('FORBIDDEN', 'you cannot demote or disable yourself (another admin can)');
        }
        if (target.id === p.userId && body.resetTwoFactor === true) {
          throw new ApiError('FORBIDDEN', 'turn your own 2FA off on your account page (it asks for your password); another admin can reset it');
        }
        let u = (await auth.users.update(target.id, req.body))!;
        if (body.resetTwoFactor === true) {
          await auth.users.disableTotp(u.id);
          u = (await auth.users.get(u.id))!;
        }
        if (body.disabled === true || body.password !== undefined || body.resetTwoFactor === true) await auth.sessions.invalidateUser(u.id);
        await audit(res, req, AuditAction.UserChanged, { target: u.username, details: { role: u.role, disabled: u.disabled, cameras: u.cameraGrants, passwordReset: body.password !== undefined, twoFactorReset: body.resetTwoFactor === true } });
        res.json(userView(u));
      },
    },
    {
      method: 'DELETE', path: '/api/users/:user', permission: Permission.UsersManage,
      summary: 'Remove a user (their sessions and tokens go with them)',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const target = await mustUser(String(req.params.user));
        if (target.id === principal(res).userId) throw new ApiError('FORBIDDEN', 'you cannot remove yourself');
        await auth.users.remove(target.id);
        await audit(res, req, AuditAction.UserDeleted, { target: target.username });
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/users/:user/sessions', permission: Permission.UsersManage,
      summary: "A user's sessions",
      responses: { 200: z.array(SessionViewSchema) },
      handler: async (req, res) => {
        const u = await mustUser(String(req.params.user));
        res.json((await auth.sessions.listForUser(u.id)).map((s) => sessionView(s, principal(res).sessionId)));
      },
    },
    {
      method: 'DELETE', path: '/api/users/:user/sessions', permission: Permission.UsersManage,
      summary: "End every session of a user",
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const u = await mustUser(String(req.params.user));
        const n = await auth.sessions.invalidateUser(u.id);
        await audit(res, req, AuditAction.SessionRevoked, { target: u.username, details: { sessions: n } });
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/users/:user/tokens', permission: Permission.UsersManage,
      summary: "A user's tokens, also revoked and expired ones",
      responses: { 200: z.array(TokenViewSchema) },
      handler: async (req, res) => {
        const u = await mustUser(String(req.params.user));
        res.json((await auth.tokens.listForUser(u.id, true)).map(tokenView));
      },
    },
    {
      method: 'DELETE', path: '/api/users/:user/tokens/:token', permission: Permission.UsersManage,
      summary: "Revoke a user's token",
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const u = await mustUser(String(req.params.user));
        if (!(await auth.tokens.revoke(String(req.params.token), u.id))) throw new ApiError('TOKEN_NOT_FOUND', 'no such token of that user');
        await audit(res, req, AuditAction.ApiTokenRevoked, { target: String(req.params.token).slice(0, 12), details: { user: u.username } });
        res.status(204).end();
      },
    },
    {
      method: 'GET', path: '/api/security', permission: Permission.SettingsManage,
      summary: 'Site security settings: who must use 2FA',
      responses: { 200: SecuritySettingsSchema },
      handler: (_req, res) => {
        res.json(auth.security);
      },
    },
    {
      method: 'PUT', path: '/api/security', permission: Permission.SettingsManage, body: 'json',
      summary: 'Set who must use 2FA: { require2fa: { all, roles } }',
      request: { body: SecuritySettingsSchema },
      responses: { 200: SecuritySettingsSchema },
      handler: async (req, res) => {
        const before = auth.security;
        const s = await auth.setSecurity(req.body);
        await audit(res, req, AuditAction.SettingsChanged, { target: 'security', details: { before, after: s } });
        res.json(s);
      },
    },
    {
      method: 'GET', path: '/api/audit', permission: Permission.AuditRead,
      summary: 'Search the audit log: ?actor=&action= (or area.*)&camera=&from=&to= (ISO 8601)&before=<seq>&limit=',
      request: { query: AuditQuerySchema },
      responses: { 200: AuditPageSchema },
      handler: async (req, res) => {
        const q = parseWith(AuditQuerySchema, req.query);
        const entries = await auth.audit.search({
          ...(q.actor ? { actor: q.actor } : {}),
          ...(q.action ? { action: q.action } : {}),
          ...(q.camera ? { cameraId: q.camera } : {}),
          ...(q.from ? { from: new Date(q.from) } : {}),
          ...(q.to ? { to: new Date(q.to) } : {}),
          ...(q.before ? { before: q.before } : {}),
          ...(q.limit ? { limit: q.limit } : {}),
        });
        const limit = q.limit ?? 100;
        // A full page may have more behind it; a short one is the last.
        res.json({ entries, next: entries.length === limit ? entries[entries.length - 1]!.seq : null });
      },
    },
    {
      method: 'GET', path: '/api/audit/verify', permission: Permission.AuditRead,
      summary: 'Check the audit chain: every altered, missing or inserted entry',
      responses: { 200: AuditVerifySchema },
      handler: async (_req, res) => {
        res.json(await auth.audit.verify());
      },
    },
  ];
}
