import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Ed25519 keys and signed envelopes. Every message a node puts on the bus is signed with its own key;
 * every command from the master is signed with the site's key. A message whose signature does not check
 * out against the key enrolled for its sender is dropped: a process that was not enrolled cannot
 * register, heartbeat, answer or command.
 */

/** A key pair as stored: PEM strings (PKCS#8 private, SPKI public). */
export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function generateKeys(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** A signed message: the body travels as the exact JSON text that was signed. */
export interface Envelope {
  /** The signer: a node id, or `site` for the master. */
  from: string;
  /** Signing time, ms since the epoch (the signer's clock). */
  at: number;
  /** JSON of the body. */
  payload: string;
  /** Base64 Ed25519 signature of `${from}\n${at}\n${payload}`. */
  sig: string;
}

const cache = new Map<string, KeyObject>();
function key(pem: string, kind: 'private' | 'public'): KeyObject {
  let k = cache.get(pem);
  if (!k) {
    k = kind === 'private' ? createPrivateKey(pem) : createPublicKey(pem);
    cache.set(pem, k);
  }
  return k;
}

export function seal(from: string, body: unknown, privateKeyPem: string): Envelope {
  const at = Date.now();
  const payload = JSON.stringify(body);
  const sig = sign(null, Buffer.from(`${from}\n${at}\n${payload}`), key(privateKeyPem, 'private')).toString('base64');
  return { from, at, payload, sig };
}

/** The body of an envelope signed by `publicKeyPem`, or null when it is not (or is not an envelope). */
export function open<T>(e: unknown, publicKeyPem: string): T | null {
  if (!isEnvelope(e)) return null;
  try {
    const ok = verify(null, Buffer.from(`${e.from}\n${e.at}\n${e.payload}`), key(publicKeyPem, 'public'), Buffer.from(e.sig, 'base64'));
    return ok ? (JSON.parse(e.payload) as T) : null;
  } catch {
    return null;
  }
}

export function isEnvelope(e: unknown): e is Envelope {
  const x = e as Envelope;
  return !!x && typeof x === 'object' && typeof x.from === 'string' && typeof x.at === 'number' && typeof x.payload === 'string' && typeof x.sig === 'string';
}
