import { randomBytes } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { createTOTPKeyURI, generateHOTP } from '@oslojs/otp';
import { encodeBase32UpperCaseNoPadding } from '@oslojs/encoding';
import { ValidationError, type Database, type Queryable } from '@cctv/core';
import { z } from 'zod';
import { parseWith } from '@cctv/core';
import { CAMERA_PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Role } from './permissions.js';
import { randomId, safeEqual, tokenId } from './crypto.js';

/** A user as the service sees it (never the password hash or TOTP key outside this module). */
export interface User {
  id: string;
  username: string;
  role: Role;
  /** null: every camera with the role's permissions; otherwise permissions per camera. */
  cameraGrants: Record<string, string[]> | null;
  disabled: boolean;
  totpEnabled: boolean;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  camera_grants: Record<string, string[]> | null;
  disabled: boolean;
  totp_key: Uint8Array | null;
  totp_pending_key: Uint8Array | null;
  totp_last_step: number | null;
  created_at: Date;
  updated_at: Date;
}

function toUser(r: Row): User {
  return {
    id: r.id,
    username: r.username,
    role: r.role,
    cameraGrants: typeof r.camera_grants === 'string' ? JSON.parse(r.camera_grants) : r.camera_grants,
    disabled: r.disabled,
    totpEnabled: r.totp_key !== null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** RFC 6238 defaults every authenticator app uses: SHA-1, 30 s steps, 6 digits. */
const TOTP_STEP_S = 30;
const TOTP_DIGITS = 6;
/** Steps accepted either side of now, for clocks a little off (RFC 6238 §5.2). */
const TOTP_WINDOW = 1;
const RECOVERY_CODES = 10;

// argon2id parameters (OWASP's minimum: m=19 MiB, t=2, p=1).
const ARGON2 = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
// Verified against when the user does not exist, so that an unknown name takes as long as a wrong password.
let dummyHash: Promise<string> | null = null;

export const USERNAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9._@-]{0,63}$/;
const password = z.string().min(10, 'must be at least 10 characters long').max(256);
const grants = z
  .record(z.string().min(1).max(64), z.array(z.enum(CAMERA_PERMISSIONS)))
  .nullable();

export const NewUserSchema = z.strictObject({
  username: z.string().regex(USERNAME_PATTERN, 'must be 1–64 letters, digits, . _ @ or -, starting with a letter or digit'),
  password,
  role: z.enum(ROLES),
  /** null or absent: every camera. */
  cameras: grants.optional(),
});
export const UserChangeSchema = z.strictObject({
  role: z.enum(ROLES).optional(),
  disabled: z.boolean().optional(),
  cameras: grants.optional(),
  password: password.optional(),
  /**
   * Turns the user's 2FA off (a lost phone and lost recovery codes): their sessions end; where their role
   * requires 2FA they set it up again at their next sign-in.
   */
  resetTwoFactor: z.literal(true).optional(),
});
export const PasswordSchema = password;

/**
 * Users, their passwords (argon2id), TOTP keys and recovery codes. Input is validated here.
 */
export class UserStore {
  readonly #db: Database;

  constructor(db: Database) {
    this.#db = db;
  }

  async count(): Promise<number> {
    const [r] = await this.#db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM users');
    return r?.n ?? 0;
  }

  async list(): Promise<User[]> {
    return (await this.#db.query<Row>('SELECT * FROM users ORDER BY lower(username)')).map(toUser);
  }

  async get(id: string): Promise<User | null> {
    const [r] = await this.#db.query<Row>('SELECT * FROM users WHERE id = $1', [id]);
    return r ? toUser(r) : null;
  }

  async getByName(username: string): Promise<User | null> {
    const [r] = await this.#db.query<Row>('SELECT * FROM users WHERE lower(username) = lower($1)', [username]);
    return r ? toUser(r) : null;
  }

  /** Creates a user; null when the name is taken. */
  async create(input: unknown): Promise<User | null> {
    const u = parseWith(NewUserSchema, input);
    checkGrants(u.role, u.cameras ?? null);
    const hash = await argon2Hash(u.password, ARGON2);
    const rows = await this.#db.query<Row>(
      `INSERT INTO users (id, username, password_hash, role, camera_grants) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT DO NOTHING RETURNING *`,
      [randomId(), u.username, hash, u.role, u.cameras ?? null],
    );
    return rows[0] ? toUser(rows[0]) : null;
  }

  /** Changes role, disabled, camera grants or password. */
  async update(id: string, input: unknown): Promise<User | null> {
    const c = parseWith(UserChangeSchema, input);
    const cur = await this.get(id);
    if (!cur) return null;
    const role = c.role ?? cur.role;
    let grants = c.cameras === undefined ? cur.cameraGrants : c.cameras;
    // A new role without new grants: keep what of the old grants the new role can hold.
    if (c.cameras === undefined && role !== cur.role && grants) {
      grants = role === 'admin' ? null : Object.fromEntries(Object.entries(grants).map(([cam, ps]) => [cam, ps.filter((p) => ROLE_PERMISSIONS[role].includes(p as never))]));
    }
    checkGrants(role, grants);
    const hash = c.password ? await argon2Hash(c.password, ARGON2) : null;
    const [r] = await this.#db.query<Row>(
      `UPDATE users SET role = $2, disabled = $3, camera_grants = $4, password_hash = coalesce($5, password_hash), updated_at = now()
       WHERE id = $1 RETURNING *`,
      [id, role, c.disabled ?? cur.disabled, grants, hash],
    );
    return r ? toUser(r) : null;
  }

  async remove(id: string): Promise<boolean> {
    return (await this.#db.query('DELETE FROM users WHERE id = $1 RETURNING id', [id])).length > 0;
  }

  /** The user when the password is right (and the user exists); null otherwise, in about the same time. */
  async checkPassword(username: string, pass: string): Promise<User | null> {
    const [r] = await this.#db.query<Row>('SELECT * FROM users WHERE lower(username) = lower($1)', [username]);
    if (!r) {
      dummyHash ??= argon2Hash(randomBytes(16).toString('hex'), ARGON2);
      await argon2Verify(await dummyHash, pass).catch(() => false);
      return null;
    }
    const ok = await argon2Verify(r.password_hash, pass).catch(() => false);
    return ok ? toUser(r) : null;
  }

  /** Starts 2FA set-up: a new pending key and its otpauth:// URI for the QR code. */
  async beginTotp(id: string, issuer: string): Promise<{ secret: string; uri: string } | null> {
    const user = await this.get(id);
    if (!user) return null;
    const key = new Uint8Array(randomBytes(20));
    await this.#db.query('UPDATE users SET totp_pending_key = $2 WHERE id = $1', [id, Buffer.from(key)]);
    return { secret: encodeBase32UpperCaseNoPadding(key), uri: createTOTPKeyURI(issuer, user.username, key, TOTP_STEP_S, TOTP_DIGITS) };
  }

  /**
   * Enables 2FA when `code` matches the pending key; returns ten new recovery codes (shown once), or
   * null when the code is wrong or there is no pending key.
   */
  async confirmTotp(id: string, code: string): Promise<string[] | null> {
    return this.#db.transaction(async (tx) => {
      const [r] = await tx.query<Row>('SELECT * FROM users WHERE id = $1 FOR UPDATE', [id]);
      if (!r?.totp_pending_key) return null;
      const step = matchingStep(new Uint8Array(r.totp_pending_key), code, null);
      if (step === null) return null;
      await tx.query('UPDATE users SET totp_key = totp_pending_key, totp_pending_key = NULL, totp_last_step = $2, updated_at = now() WHERE id = $1', [id, step]);
      return this.#newRecoveryCodes(tx, id);
    });
  }

  /** Turns 2FA off and drops the recovery codes. */
  async disableTotp(id: string): Promise<void> {
    await this.#db.transaction(async (tx) => {
      await tx.query('UPDATE users SET totp_key = NULL, totp_pending_key = NULL, totp_last_step = NULL, updated_at = now() WHERE id = $1', [id]);
      await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [id]);
    });
  }

  /** Checks a TOTP code; a code is accepted once (RFC 6238 §5.2: no reuse of a time step). */
  async verifyTotp(id: string, code: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const [r] = await tx.query<Row>('SELECT * FROM users WHERE id = $1 FOR UPDATE', [id]);
      if (!r?.totp_key) return false;
      const step = matchingStep(new Uint8Array(r.totp_key), code, r.totp_last_step);
      if (step === null) return false;
      await tx.query('UPDATE users SET totp_last_step = $2 WHERE id = $1', [id, step]);
      return true;
    });
  }

  /** Uses up a recovery code; false when it is not one of the user's unused codes. */
  async useRecoveryCode(id: string, code: string): Promise<boolean> {
    const normalized = code.trim().toLowerCase().replace(/[\s-]/g, '');
    const rows = await this.#db.query('UPDATE recovery_codes SET used_at = now() WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL RETURNING user_id', [id, tokenId(normalized)]);
    return rows.length === 1;
  }

  /** Replaces the recovery codes with ten new ones (shown once). */
  async regenerateRecoveryCodes(id: string): Promise<string[]> {
    return this.#db.transaction((tx) => this.#newRecoveryCodes(tx, id));
  }

  async unusedRecoveryCodes(id: string): Promise<number> {
    const [r] = await this.#db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL', [id]);
    return r?.n ?? 0;
  }

  async #newRecoveryCodes(tx: Queryable, id: string): Promise<string[]> {
    await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [id]);
    const codes: string[] = [];
    for (let i = 0; i < RECOVERY_CODES; i++) {
      // 10 characters of base32 (50 bits), shown as xxxxx-xxxxx.
      const raw = encodeBase32UpperCaseNoPadding(randomBytes(7)).slice(0, 10).toLowerCase();
      codes.push(`${raw.slice(0, 5)}-${raw.slice(5)}`);
      await tx.query('INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)', [id, tokenId(raw)]);
    }
    return codes;
  }
}

/**
 * Camera grants narrow a role; they cannot widen it. An admin sees every camera (no grants), and a grant
 * must not hold a permission the role does not have (it would be stored and never apply).
 */
function checkGrants(role: Role, grants: Record<string, string[]> | null): void {
  if (grants === null) return;
  if (role === 'admin') throw new ValidationError('cameras', 'must be null for an admin, who may use every camera');
  for (const [camera, perms] of Object.entries(grants)) {
    const beyond = perms.filter((p) => !ROLE_PERMISSIONS[role].includes(p as never));
    if (beyond.length) throw new ValidationError(`cameras.${camera}`, `holds ${beyond.join(', ')}, which a ${role} cannot have`);
  }
}

/** The time step `code` is valid for (now ± the window, after `lastStep`), or null. */
function matchingStep(key: Uint8Array, code: string, lastStep: number | null): number | null {
  if (!/^\d{6}$/.test(code.trim())) return null;
  const now = Math.floor(Date.now() / 1000 / TOTP_STEP_S);
  for (let d = -TOTP_WINDOW; d <= TOTP_WINDOW; d++) {
    const step = now + d;
    if (lastStep !== null && step <= lastStep) continue;
    if (safeEqual(generateHOTP(key, BigInt(step), TOTP_DIGITS), code.trim())) return step;
  }
  return null;
}

/** The TOTP code for a key now (tests and the CLI use it). */
export function totpNow(secretBase32OrKey: Uint8Array, atMs = Date.now()): string {
  return generateHOTP(secretBase32OrKey, BigInt(Math.floor(atMs / 1000 / TOTP_STEP_S)), TOTP_DIGITS);
}

