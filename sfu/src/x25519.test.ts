import { randomBytes } from 'node:crypto';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';

// The native X25519 must give exactly what tweetnacl gives, for keys made by either side.
describe('useNativeX25519', () => {
  it('computes the same shared secrets and key pairs as tweetnacl', async () => {
    const js = { scalarMult: nacl.scalarMult, keyPair: nacl.box.keyPair };
    const pairs = Array.from({ length: 8 }, () => js.keyPair());
    const secrets = Array.from({ length: 8 }, () => new Uint8Array(randomBytes(32)));
    const expected = pairs.map((p, i) => Buffer.from(js.scalarMult(secrets[i]!, p.publicKey)).toString('hex'));
    const { useNativeX25519 } = await import('./webrtc.js');
    useNativeX25519();
    expect(nacl.scalarMult).not.toBe(js.scalarMult);
    const got = pairs.map((p, i) => Buffer.from(nacl.scalarMult(secrets[i]!, p.publicKey)).toString('hex'));
    expect(got).toEqual(expected);
    // A pair from the native generator: its public key is what tweetnacl derives from its secret.
    for (let i = 0; i < 4; i++) {
      const k = nacl.box.keyPair();
      expect(k.secretKey.buffer.byteLength).toBe(32);
      expect(Buffer.from(js.scalarMult.base(k.secretKey)).toString('hex')).toBe(Buffer.from(k.publicKey).toString('hex'));
      // Both ends of an exchange agree.
      const other = js.keyPair();
      expect(Buffer.from(nacl.scalarMult(k.secretKey, other.publicKey))).toEqual(Buffer.from(js.scalarMult(other.secretKey, k.publicKey)));
    }
  });
});
