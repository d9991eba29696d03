import type { IncomingMessage } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { createLogger, isDatabaseUnavailable, type Bus, type Config, type Database } from '@cctv/core';
import { ApiError } from '../errors.js';
import { AuditAction, AuditLog } from './audit.js';
import { Lockout, RateLimiter } from './rateLimit.js';
import { SessionStore, type Session } from './sessions.js';
import { TokenStore, type ApiToken } from './tokens.js';
import { UserStore, type User } from './users.js';
import { ANONYMOUS, ROLES, narrowScope, userScope, type Principal, type Role } from './permissions.js';
import { z } from 'zod';
import { parseWith } from '@cctv/core';

const log = createLogger('signaling:auth');

/** Name of the session cookie. */
export const SESSION_COOKIE = 'cctv_session';

/** Site-wide security settings an admin changes at runtime (stored in the database). */
export const SecuritySettingsSchema = z.strictObject({
  /** Who must use 2FA: everyone, or the listed roles. */
  require2fa: z.strictObject({ all: z.boolean(), roles: z.array(z.enum(ROLES)) }),
});
export type SecuritySettings = z.infer<typeof SecuritySettingsSchema>;
const DEFAULT_SECURITY: SecuritySettings = { require2fa: { all: false, roles: [] } };

/** Where a request comes from, for the audit log and the limits. */
export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
}

export interface AuthDeps {
  db: Database;
  bus: Bus;
  config: Readonly<Config>;
  /** Where audit entries wait while the database is away (default: kept in memory only). */
  auditBacklogFile?: string;
}

/** How long a signed-in caller stays recognised while the database is away, ms. */
const OUTAGE_GRACE_MS = 60 * 60_000;
const OUTAGE_CACHE_SIZE = 10_000;

/**
 * Users, sessions, tokens, 2FA, lockout and the audit log behind one door. Resolves who makes a request
 * (a Principal) from its cookie or Bearer token.
 */
export class AuthService {
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly tokens: TokenStore;
  readonly audit: AuditLog;
  readonly limiter: RateLimiter;
  readonly #lockout: Lockout;
  readonly #db: Database;
  readonly #config: Readonly<Config>;
  #security: SecuritySettings = DEFAULT_SECURITY;
  /** Callers recognised lately, by a hash of their credential (used only while the database is away). */
  readonly #recent = new Map<string, { p: Principal; at: number }>();

  constructor(deps: AuthDeps) {
    this.#db = deps.db;
    this.#config = deps.config;
    this.users = new UserStore(deps.db);
    this.sessions = new SessionStore(deps.db);
    this.tokens = new TokenStore(deps.db);
    this.audit = new AuditLog(deps.db, deps.auditBacklogFile ?? null);
    this.limiter = new RateLimiter(deps.bus);
    this.#lockout = new Lockout(deps.bus, deps.config.security.lockout);
  }

  /**
   * Loads settings and makes sure there is an admin: on a first start (no users) the `admin` account
   * is created with CCTV_ADMIN_PASSWORD, or with a generated password that is returned to be shown once.
   */
  async initialize(adminPassword: string | undefined): Promise<{ createdAdmin: boolean; generatedPassword: string | null }> {
    this.#security = await this.#loadSecurity();
    if ((await this.users.count()) > 0) return { createdAdmin: false, generatedPassword: null };
    const generated = adminPassword ? null : randomBytes(12).toString('base64url');
    const user = await this.users.create({ username: 'admin', password: adminPassword ?? generated, role: 'admin' });
    if (user) await this.audit.append({ actor: 'system', actorKind: 'system', action: AuditAction.UserCreated, target: 'admin', details: { role: 'admin', firstStart: true } });
    return { createdAdmin: true, generatedPassword: generated };
  }

  get security(): SecuritySettings {
    return this.#security;
  }

  async setSecurity(input: unknown): Promise<SecuritySettings> {
    const s = parseWith(SecuritySettingsSchema, input);
    await this.#db.query(
      'INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()',
      ['security', s],
    );
    this.#security = s;
    return s;
  }

  async #loadSecurity(): Promise<SecuritySettings> {
    const [r] = await this.#db.query<{ value: unknown }>('SELECT value FROM settings WHERE key = $1', ['security']);
    if (!r) return DEFAULT_SECURITY;
    try {
      return parseWith(SecuritySettingsSchema, typeof r.value === 'string' ? JSON.parse(r.value) : r.value);
    } catch (error) {
      log.error({ err: error }, 'stored security settings are not valid; using the defaults');
      return DEFAULT_SECURITY;
    }
  }

  /** Whether the site requires 2FA of this role. */
  requires2fa(role: Role): boolean {
    return this.#security.require2fa.all || this.#security.require2fa.roles.includes(role);
  }

  /**
   * Who makes the request: from `Authorization: Bearer`, else the session cookie, else anonymous. While
   * the database is away, a caller recognised in the last hour is still recognised as it was (nothing
   * can be revoked meanwhile: revoking needs the database too), so people can keep watching.
   */
  async resolve(req: IncomingMessage): Promise<Principal> {
    const credential = req.headers.authorization ?? readCookie(req.headers.cookie, SESSION_COOKIE);
    const key = credential ? createHash('sha256').update(credential).digest('base64url') : null;
    try {
      const p = await this.#resolve(req);
      if (key && p.kind !== 'anonymous') {
        this.#recent.delete(key);
        this.#recent.set(key, { p, at: Date.now() });
        if (this.#recent.size > OUTAGE_CACHE_SIZE) this.#recent.delete(this.#recent.keys().next().value!);
      }
      return p;
    } catch (error) {
      const hit = key ? this.#recent.get(key) : undefined;
      if (isDatabaseUnavailable(error) && hit && Date.now() - hit.at < OUTAGE_GRACE_MS) return hit.p;
      throw error;
    }
  }

  /** Stops the audit backlog's timer. */
  close(): void {
    this.audit.close();
  }

  async #resolve(req: IncomingMessage): Promise<Principal> {
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      if (!m) throw new ApiError('UNAUTHENTICATED', 'the Authorization header must be `Bearer <token>`');
      const token = await this.tokens.validate(m[1]!);
      if (!token) throw new ApiError('UNAUTHENTICATED', 'the token is not valid (unknown, expired or revoked)');
      const user = await this.users.get(token.userId);
      if (!user || user.disabled) throw new ApiError('UNAUTHENTICATED', 'the token belongs to a disabled or removed user');
      return this.#tokenPrincipal(user, token);
    }
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (!cookie) return ANONYMOUS;
    const session = await this.sessions.validate(cookie);
    if (!session) return ANONYMOUS;
    const user = await this.users.get(session.userId);
    if (!user || user.disabled) {
      await this.sessions.invalidate(session.id);
      return ANONYMOUS;
    }
    return this.#sessionPrincipal(user, session);
  }

  #sessionPrincipal(user: User, session: Session): Principal {
    const pending = session.twoFactorVerified ? null : user.totpEnabled ? 'verify' : this.requires2fa(user.role) ? 'enroll' : null;
    return { kind: 'user', userId: user.id, username: user.username, role: user.role, ...userScope(user.role, user.cameraGrants), sessionId: session.id, tokenId: null, pending };
  }

  #tokenPrincipal(user: User, token: ApiToken): Principal {
    const scope = narrowScope(userScope(user.role, user.cameraGrants), token.permissions, token.cameras);
    return { kind: 'token', userId: user.id, username: user.username, role: user.role, ...scope, sessionId: null, tokenId: token.id, pending: null };
  }

  /**
   * Password sign-in, behind the address limit and the account lockout. Returns the new session's token
   * and what is still owed (a 2FA code, or enrolment when the site requires 2FA).
   */
  async signIn(username: string, password: string, meta: RequestMeta): Promise<{ token: string; session: Session; user: User; pending: Principal['pending'] }> {
    await this.#checkAddress(meta);
    const user = await this.#checkPassword(username, password, meta);
    const pending = user.totpEnabled ? 'verify' : this.requires2fa(user.role) ? 'enroll' : null;
    const { token, session } = await this.sessions.create(user.id, { twoFactorVerified: false, ip: meta.ip, userAgent: meta.userAgent });
    if (pending === null) await this.sessions.markTwoFactorVerified(session.id);
    await this.audit.append({ actor: user.username, actorKind: 'user', action: AuditAction.SignIn, ip: meta.ip, details: { secondFactor: pending ?? 'none-required' } });
    return { token, session, user, pending };
  }

  /** The second step of a sign-in: a TOTP code or a recovery code. */
  async verifySecondFactor(p: Principal, input: { code?: string | undefined; recoveryCode?: string | undefined }, meta: RequestMeta): Promise<void> {
    if (!p.userId || !p.sessionId) throw new ApiError('UNAUTHENTICATED');
    // No per-address limit here: only a session that passed the password gets this far, and the
    // account lockout counts wrong codes.
    const locked = await this.#lockout.lockedFor(p.username!);
    if (locked > 0) throw new ApiError('ACCOUNT_LOCKED', `too many failed attempts; try again in ${locked} s`, { retryAfterS: locked });
    let ok = false;
    if (input.code) ok = await this.users.verifyTotp(p.userId, input.code);
    else if (input.recoveryCode) {
      ok = await this.users.useRecoveryCode(p.userId, input.recoveryCode);
      if (ok) await this.audit.append({ actor: p.username!, actorKind: 'user', action: AuditAction.RecoveryCodeUsed, ip: meta.ip, details: { left: await this.users.unusedRecoveryCodes(p.userId) } });
    } else throw new ApiError('VALIDATION_FAILED', "give 'code' (from the authenticator app) or 'recoveryCode'", { field: 'code' });
    if (!ok) {
      const lock = await this.#lockout.fail(p.username!);
      await this.audit.append({ actor: p.username!, actorKind: 'user', action: AuditAction.SecondFactorFailed, ip: meta.ip, details: { locked: lock > 0 } });
      if (lock > 0) throw new ApiError('ACCOUNT_LOCKED', `too many wrong codes; try again in ${lock} s`, { retryAfterS: lock });
      throw new ApiError('BAD_CREDENTIALS', input.code ? 'the code is not right (or was already used)' : 'the recovery code is not right (or was already used)');
    }
    await this.#lockout.succeed(p.username!);
    await this.sessions.markTwoFactorVerified(p.sessionId);
    await this.audit.append({ actor: p.username!, actorKind: 'user', action: AuditAction.SecondFactor, ip: meta.ip });
  }

  /** POST /api/auth/token: a short-lived Bearer token for scripts, after the password (and the TOTP code when enrolled). */
  async issueShortToken(input: { username: string; password: string; totp?: string | undefined }, meta: RequestMeta): Promise<{ token: string; expiresAt: Date }> {
    await this.#checkAddress(meta);
    const user = await this.#checkPassword(input.username, input.password, meta);
    if (user.totpEnabled) {
      if (!input.totp) throw new ApiError('SECOND_FACTOR_REQUIRED', "this account uses 2FA: give 'totp', the code from the authenticator app", { field: 'totp' });
      if (!(await this.users.verifyTotp(user.id, input.totp))) {
        await this.#lockout.fail(user.username);
        throw new ApiError('BAD_CREDENTIALS', 'the code is not right (or was already used)', { field: 'totp' });
      }
    } else if (this.requires2fa(user.role)) {
      throw new ApiError('ENROLLMENT_REQUIRED', 'this site requires 2FA for your role: sign in to the dashboard and set it up first');
    }
    const ttlMs = this.#config.security.shortTokenTtlS * 1000;
    const { token, record } = await this.tokens.create(user.id, { name: 'sign-in token', kind: 'short', permissions: null, cameras: null, ttlMs });
    await this.audit.append({ actor: user.username, actorKind: 'user', action: AuditAction.TokenIssued, target: record.prefix, ip: meta.ip, details: { ttlS: this.#config.security.shortTokenTtlS } });
    return { token, expiresAt: record.expiresAt! };
  }

  async #checkAddress(meta: RequestMeta): Promise<void> {
    const d = await this.limiter.hit(`signin:${meta.ip ?? 'unknown'}`, this.#config.security.limits.signInPerAddress);
    if (!d.ok) throw new ApiError('RATE_LIMITED', `too many sign-in attempts from this address; try again in ${d.retryAfterS} s`, { retryAfterS: d.retryAfterS });
  }

  async #checkPassword(username: string, password: string, meta: RequestMeta): Promise<User> {
    const locked = await this.#lockout.lockedFor(username);
    if (locked > 0) {
      await this.audit.append({ actor: username.slice(0, 64), actorKind: 'anonymous', action: AuditAction.SignInLocked, ip: meta.ip });
      throw new ApiError('ACCOUNT_LOCKED', `too many failed sign-ins for this account; try again in ${locked} s`, { retryAfterS: locked });
    }
    const user = await this.users.checkPassword(username, password);
    if (!user || user.disabled) {
      const lock = await this.#lockout.fail(username);
      await this.audit.append({ actor: username.slice(0, 64), actorKind: 'anonymous', action: AuditAction.SignInFailed, ip: meta.ip, details: { locked: lock > 0, ...(user?.disabled ? { disabled: true } : {}) } });
      if (lock > 0) throw new ApiError('ACCOUNT_LOCKED', `too many failed sign-ins for this account; try again in ${lock} s`, { retryAfterS: lock });
      throw new ApiError('BAD_CREDENTIALS', 'the username or password is not right');
    }
    await this.#lockout.succeed(username);
    return user;
  }
}

/** A cookie's value from a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return decodeURIComponent(part.slice(i + 1).trim());
  }
  return null;
}

/**
 * Set-Cookie for a session (HttpOnly, SameSite=Lax, Lucia's attributes), or to clear it. `Secure` is set
 * whenever the page is HTTPS (or localhost, which browsers treat as secure); on plain HTTP to another
 * host a browser would drop a Secure cookie and nobody could sign in, so it goes without.
 */
export function sessionCookie(token: string | null, expiresAt: Date | undefined, secure: boolean): string {
  const base = `${SESSION_COOKIE}=${token ?? ''}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
  return token ? `${base}; Expires=${expiresAt!.toUTCString()}` : `${base}; Max-Age=0`;
}

/** Whether the browser sees this request as secure: TLS, a trusted proxy that says https, or localhost. */
export function isSecureRequest(req: IncomingMessage & { secure?: boolean }, trustProxy: boolean): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted) return true;
  if (trustProxy && String(req.headers['x-forwarded-proto'] ?? '').split(',')[0]!.trim() === 'https') return true;
  const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]';
}
