import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * The Standard Webhooks scheme (https://www.standardwebhooks.com, spec v1): every message carries
 * `webhook-id`, `webhook-timestamp` (s since the epoch) and `webhook-signature`, a space-separated list of
 * `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. The key is the secret `whsec_<base64>` decoded.
 */

/** What a secret starts with. */
export const SECRET_PREFIX = 'whsec_';
/** What a message id starts with. */
export const MESSAGE_ID_PREFIX = 'msg_';
/** Timestamps further than this from now are refused by `verify`, s. */
export const DEFAULT_TOLERANCE_S = 300;

const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;

/** A message that does not pass `verify`; the message says which check failed. */
export class WebhookVerificationError extends Error {
  override name = 'WebhookVerificationError';
}

/** A new secret: `whsec_` and the base64 of `bytes` random bytes (24–64; default 32). */
export function newSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES) {
    throw new TypeError(`argument 'bytes' must be an integer of ${MIN_SECRET_BYTES}–${MAX_SECRET_BYTES}`);
  }
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/** A new message id, `msg_` and 22 random URL-safe characters (128 bits). */
export function newMessageId(): string {
  return MESSAGE_ID_PREFIX + randomBytes(16).toString('base64url');
}

/** The HMAC key of a secret; throws a TypeError saying what is wrong with it. */
export function secretKey(secret: string): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith(SECRET_PREFIX)) throw new TypeError(`argument 'secret' must start with '${SECRET_PREFIX}'`);
  const b64 = secret.slice(SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new TypeError(`argument 'secret' must be '${SECRET_PREFIX}' followed by base64`);
  const key = Buffer.from(b64, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new TypeError(`argument 'secret' must hold ${MIN_SECRET_BYTES}–${MAX_SECRET_BYTES} bytes, not ${key.length}`);
  }
  return key;
}

function mac(key: Buffer, msgId: string, timestampS: number, body: string | Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${msgId}.${timestampS}.`).update(body).digest();
}

/** The `webhook-signature` value of a message: `v1,<base64 HMAC-SHA256 of "msgId.timestampS.body">`. */
export function sign(secret: string, msgId: string, timestampS: number, body: string | Uint8Array): string {
  if (typeof msgId !== 'string' || msgId.length === 0 || msgId.includes('.')) throw new TypeError("argument 'msgId' must be a non-empty text without '.'");
  if (!Number.isSafeInteger(timestampS) || timestampS < 0) throw new TypeError("argument 'timestampS' must be whole seconds since 1970");
  return `v1,${mac(secretKey(secret), msgId, timestampS, body).toString('base64')}`;
}

/** The three headers of a message sent now (or at `timestampS`). */
export function signatureHeaders(secret: string, msgId: string, body: string | Uint8Array, timestampS = Math.floor(Date.now() / 1000)): Record<string, string> {
  return { 'webhook-id': msgId, 'webhook-timestamp': String(timestampS), 'webhook-signature': sign(secret, msgId, timestampS, body) };
}

/** Headers as `fetch` gives them, or as `node:http` does (lowercase names, maybe repeated). */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

function header(headers: HeadersLike, name: string): string | null {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
  const rec = headers as Record<string, string | string[] | undefined>;
  let v = rec[name];
  if (v === undefined) {
    const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
    v = key === undefined ? undefined : rec[key];
  }
  if (Array.isArray(v)) return v.join(' ');
  return v ?? null;
}

/**
 * Checks a received message: the headers are there, the timestamp is within `toleranceS` of now (either
 * way: a replayed old message and a message from the future are both refused), and one of the `v1`
 * signatures in `webhook-signature` is right (compared in constant time). Throws a
 * WebhookVerificationError naming the failed check; returns the message's id and timestamp.
 */
export function verify(
  secret: string,
  headers: HeadersLike,
  body: string | Uint8Array,
  toleranceS = DEFAULT_TOLERANCE_S,
  nowS = Math.floor(Date.now() / 1000),
): { id: string; timestampS: number } {
  const key = secretKey(secret);
  const id = header(headers, 'webhook-id');
  const ts = header(headers, 'webhook-timestamp');
  const sigs = header(headers, 'webhook-signature');
  if (!id) throw new WebhookVerificationError('the webhook-id header is missing');
  if (!ts) throw new WebhookVerificationError('the webhook-timestamp header is missing');
  if (!sigs) throw new WebhookVerificationError('the webhook-signature header is missing');
  if (!/^\d{1,15}$/.test(ts.trim())) throw new WebhookVerificationError(`the webhook-timestamp header must be whole seconds since 1970, not '${ts.slice(0, 40)}'`);
  const timestampS = Number(ts.trim());
  if (nowS - timestampS > toleranceS) throw new WebhookVerificationError(`the message timestamp is ${nowS - timestampS} s old, more than the ${toleranceS} s allowed (a replay, or a clock off)`);
  if (timestampS - nowS > toleranceS) throw new WebhookVerificationError(`the message timestamp is ${timestampS - nowS} s in the future, more than the ${toleranceS} s allowed (a clock off)`);
  const expected = mac(key, id, timestampS, body);
  let versions = 0;
  for (const s of sigs.split(' ')) {
    const comma = s.indexOf(',');
    if (comma < 0 || s.slice(0, comma) !== 'v1') continue;
    versions++;
    const got = Buffer.from(s.slice(comma + 1), 'base64');
    if (got.length === expected.length && timingSafeEqual(got, expected)) return { id, timestampS };
  }
  if (versions === 0) throw new WebhookVerificationError('the webhook-signature header has no v1 signature');
  throw new WebhookVerificationError('no signature matches: the secret, the body or the headers differ from what was signed');
}
