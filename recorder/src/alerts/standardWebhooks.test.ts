import { describe, expect, it } from 'vitest';
import { WebhookVerificationError, newMessageId, newSecret, secretKey, sign, signatureHeaders, verify } from './standardWebhooks.js';

// The example of the Standard Webhooks reference libraries.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const BODY = '{"test": 2432232314}';
const SIG = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const headers = (signature = SIG, ts = TS) => ({ 'webhook-id': ID, 'webhook-timestamp': String(ts), 'webhook-signature': signature });

describe('Standard Webhooks', () => {
  it('signs as the reference libraries do', () => {
    expect(sign(SECRET, ID, TS, BODY)).toBe(SIG);
    expect(sign(SECRET, ID, TS, Buffer.from(BODY))).toBe(SIG);
    expect(signatureHeaders(SECRET, ID, BODY, TS)).toEqual(headers());
  });

  it('makes secrets of 24–64 random bytes and message ids', () => {
    const s = newSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(secretKey(s)).toHaveLength(32);
    expect(secretKey(newSecret(24))).toHaveLength(24);
    expect(newSecret()).not.toBe(s);
    expect(() => newSecret(16)).toThrow(/'bytes' must be an integer of 24–64/);
    expect(newMessageId()).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
  });

  it('refuses secrets that are not whsec_ and 24–64 bytes of base64', () => {
    expect(() => sign('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', ID, TS, BODY)).toThrow(/must start with 'whsec_'/);
    expect(() => sign('whsec_not base64!', ID, TS, BODY)).toThrow(/followed by base64/);
    expect(() => sign('whsec_AAAA', ID, TS, BODY)).toThrow(/24–64 bytes, not 3/);
  });

  it('verifies a message, also among several signatures and from fetch Headers', () => {
    expect(verify(SECRET, headers(), BODY, 300, TS + 10)).toEqual({ id: ID, timestampS: TS });
    const other = sign(newSecret(), ID, TS, BODY);
    expect(verify(SECRET, headers(`v2,abc ${other} ${SIG}`), BODY, 300, TS)).toEqual({ id: ID, timestampS: TS });
    expect(verify(SECRET, new Headers(headers()), BODY, 300, TS)).toEqual({ id: ID, timestampS: TS });
    expect(verify(SECRET, { 'Webhook-Id': ID, 'Webhook-Timestamp': String(TS), 'Webhook-Signature': SIG }, BODY, 300, TS).id).toBe(ID);
  });

  it('refuses a changed body, a wrong secret, stale and future timestamps, and missing headers, saying why', () => {
    const fails = (f: () => unknown, message: RegExp) => {
      expect(f).toThrow(WebhookVerificationError);
      expect(f).toThrow(message);
    };
    fails(() => verify(SECRET, headers(), '{"test": 2432232315}', 300, TS), /no signature matches/);
    fails(() => verify(newSecret(), headers(), BODY, 300, TS), /no signature matches/);
    fails(() => verify(SECRET, headers(), BODY, 300, TS + 301), /301 s old, more than the 300 s allowed/);
    fails(() => verify(SECRET, headers(), BODY, 300, TS - 400), /400 s in the future/);
    fails(() => verify(SECRET, headers(SIG, TS), BODY, 60, TS + 61), /61 s old, more than the 60 s allowed/);
    fails(() => verify(SECRET, { 'webhook-timestamp': String(TS), 'webhook-signature': SIG }, BODY, 300, TS), /webhook-id header is missing/);
    fails(() => verify(SECRET, { 'webhook-id': ID, 'webhook-signature': SIG }, BODY, 300, TS), /webhook-timestamp header is missing/);
    fails(() => verify(SECRET, { 'webhook-id': ID, 'webhook-timestamp': String(TS) }, BODY, 300, TS), /webhook-signature header is missing/);
    fails(() => verify(SECRET, { ...headers(), 'webhook-timestamp': 'soon' }, BODY, 300, TS), /whole seconds since 1970, not 'soon'/);
    fails(() => verify(SECRET, headers('v2,abc'), BODY, 300, TS), /no v1 signature/);
    // A signature of another message (other id) does not pass for this one.
    fails(() => verify(SECRET, headers(sign(SECRET, 'msg_other', TS, BODY)), BODY, 300, TS), /no signature matches/);
    fails(() => verify(SECRET, headers('v1,short'), BODY, 300, TS), /no signature matches/);
  });
});
