import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256 } from '@oslojs/crypto/sha2';
import { encodeBase32LowerCaseNoPadding, encodeHexLowerCase } from '@oslojs/encoding';

/** A secret of 20 random bytes (160 bits), base32 lowercase without padding (Lucia's session token). */
export function randomToken(): string {
  return encodeBase32LowerCaseNoPadding(randomBytes(20));
}

/** How a token is stored: the hex SHA-256 of it, so a database leak does not leak usable tokens. */
export function tokenId(token: string): string {
  return encodeHexLowerCase(sha256(new TextEncoder().encode(token)));
}

/** Compares two strings in constant time (for codes typed by people). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A random id for rows (users): 12 bytes, hex. */
export function randomId(): string {
  return randomBytes(12).toString('hex');
}
