import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto';
import type { KeyPair } from './keys.js';

/**
 * Sealed boxes for what only one node may read (camera assignments carry RTSP credentials, and anyone
 * who can reach Redis can subscribe to a channel): X25519 with a fresh key per message, HKDF-SHA256,
 * AES-256-GCM. Only the holder of the recipient's private key opens it.
 */

export interface Box {
  /** The sender's one-time X25519 public key, base64 DER (SPKI). */
  epk: string;
  iv: string;
  ct: string;
  tag: string;
}

export function generateBoxKeys(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

const INFO = Buffer.from('cctv box v1');

function keyFor(shared: Buffer, epk: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, epk, INFO, 32));
}

export function sealBox(body: unknown, recipientPublicKeyPem: string): Box {
  const eph = generateKeyPairSync('x25519');
  const epk = eph.publicKey.export({ type: 'spki', format: 'der' });
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey(recipientPublicKeyPem) });
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', keyFor(shared, epk), iv);
  const ct = Buffer.concat([c.update(JSON.stringify(body), 'utf8'), c.final()]);
  return { epk: epk.toString('base64'), iv: iv.toString('base64'), ct: ct.toString('base64'), tag: c.getAuthTag().toString('base64') };
}

/** The body of a box sealed to this key, or null when it is not (wrong key, altered, not a box). */
export function openBox<T>(box: unknown, privateKeyPem: string): T | null {
  const b = box as Box;
  if (!b || typeof b !== 'object' || typeof b.epk !== 'string' || typeof b.iv !== 'string' || typeof b.ct !== 'string' || typeof b.tag !== 'string') return null;
  try {
    const epk = Buffer.from(b.epk, 'base64');
    const shared = diffieHellman({ privateKey: createPrivateKey(privateKeyPem), publicKey: createPublicKey({ key: epk, format: 'der', type: 'spki' }) });
    const d = createDecipheriv('aes-256-gcm', keyFor(shared, epk), Buffer.from(b.iv, 'base64'));
    d.setAuthTag(Buffer.from(b.tag, 'base64'));
    const pt = Buffer.concat([d.update(Buffer.from(b.ct, 'base64')), d.final()]);
    return JSON.parse(pt.toString('utf8')) as T;
  } catch {
    return null;
  }
}
