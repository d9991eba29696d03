import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SrtpAuthenticationError, SrtpSession, type RTCDtlsTransport } from 'werift';
import { SrtpProfile, SrtpProtector, srtpOverhead, type SrtpSessionKeys } from './srtp.js';
import { sendPathOf } from './webrtc.js';
import { parseRtp, rtpPacket } from './testing/rtp.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const PROFILES = [
  ['AES_CM_128_HMAC_SHA1_80', SrtpProfile.AES_CM_128_HMAC_SHA1_80],
  ['AEAD_AES_128_GCM', SrtpProfile.AEAD_AES_128_GCM],
] as const;

/**
 * A werift SRTP session whose two directions share one master key, so what we protect as "local" can be
 * decrypted by its "remote" context; and the session keys our send path reads off it (the code the
 * viewer runs after DTLS, webrtc.ts sendPathOf).
 */
function weriftSession(profile: SrtpProfile, master?: { key: Buffer; salt: Buffer }): { session: SrtpSession; keys: SrtpSessionKeys } {
  const key = master?.key ?? randomBytes(16);
  const salt = master?.salt ?? randomBytes(profile === SrtpProfile.AEAD_AES_128_GCM ? 12 : 14);
  const session = new SrtpSession({ keys: { localMasterKey: key, localMasterSalt: salt, remoteMasterKey: key, remoteMasterSalt: salt }, profile });
  const dtls = { srtp: session, iceTransport: { connection: {} } } as unknown as RTCDtlsTransport;
  return { session, keys: sendPathOf(dtls, 1).keys };
}

/** Protects a copy of `rtp` the way viewer.ts does: in place, in a buffer with room for the tag. */
function protect(p: SrtpProtector, rtp: Buffer, roc: number): Buffer {
  const headerLength = parseRtp(rtp).payloadOffset;
  // A guard after the tag's room: protect must write nothing past it.
  const buf = Buffer.alloc(rtp.length + p.overhead + 8, 0xee);
  rtp.copy(buf);
  const n = p.protect(buf, headerLength, rtp.length, roc);
  expect(n).toBe(rtp.length + p.overhead);
  expect(buf.subarray(n)).toEqual(Buffer.alloc(8, 0xee));
  return Buffer.from(buf.subarray(0, n));
}

/** A packet like the viewer sends: with the playout-delay extension and a second, two-byte element. */
function viewerPacket(seq: number, payloadBytes: number): Buffer {
  return rtpPacket({
    pt: 109,
    seq,
    ts: 0x01020304 + seq,
    ssrc: 0xcafe0001,
    marker: seq % 3 === 0,
    payload: randomBytes(payloadBytes),
    extension: [
      { id: 6, data: Buffer.from([0x00, 0xa0, 0x64]) },
      { id: 3, data: Buffer.from([0x12, 0x34]) },
    ],
  });
}

describe('SrtpProtector', () => {
  describe.each(PROFILES)('%s', (_name, profile) => {
    it('produces packets werift decrypts to the original, across a sequence number rollover', () => {
      const { session, keys } = weriftSession(profile);
      const p = new SrtpProtector(keys);
      expect(p.overhead).toBe(srtpOverhead(profile));
      // 65530 … 65535 with ROC 0, then 0 … 5 with ROC 1 (RFC 3711 §3.3.1).
      const seqs = [...Array.from({ length: 6 }, (_, i) => 65_530 + i), ...Array.from({ length: 6 }, (_, i) => i)];
      for (const [i, seq] of seqs.entries()) {
        const rtp = i % 4 === 1 ? rtpPacket({ pt: 96, seq, ts: 1, ssrc: 0xcafe0001, payload: randomBytes(1 + i * 97) }) : viewerPacket(seq, 1 + i * 97);
        const srtp = protect(p, rtp, seq >= 65_530 ? 0 : 1);
        // Headers stay in the clear; payloads do not.
        expect(srtp.subarray(0, parseRtp(rtp).payloadOffset)).toEqual(rtp.subarray(0, parseRtp(rtp).payloadOffset));
        if (rtp.length - parseRtp(rtp).payloadOffset >= 16) expect(srtp.subarray(parseRtp(rtp).payloadOffset, rtp.length)).not.toEqual(rtp.subarray(parseRtp(rtp).payloadOffset));
        expect(session.decrypt(srtp)).toEqual(rtp);
      }
    });

    it('binds the rollover counter: a packet protected with the wrong one does not authenticate', () => {
      const { session, keys } = weriftSession(profile);
      const p = new SrtpProtector(keys);
      for (const seq of [65_534, 65_535, 0]) session.decrypt(protect(p, viewerPacket(seq, 50), seq === 0 ? 1 : 0));
      // werift now expects ROC 1; this one claims ROC 0.
      expect(() => session.decrypt(protect(p, viewerPacket(1, 50), 0))).toThrow(SrtpAuthenticationError);
      expect(session.decrypt(protect(p, viewerPacket(1, 50), 1))).toBeInstanceOf(Buffer);
    });

    it('fails werift authentication when any byte is flipped: header, extension, payload or tag', () => {
      const master = { key: randomBytes(16), salt: randomBytes(profile === SrtpProfile.AEAD_AES_128_GCM ? 12 : 14) };
      const sender = weriftSession(profile, master);
      const p = new SrtpProtector(sender.keys);
      const rtp = viewerPacket(4242, 300);
      const srtp = protect(p, rtp, 0);
      expect(weriftSession(profile, master).session.decrypt(srtp)).toEqual(rtp);
      const headerLength = parseRtp(rtp).payloadOffset;
      // Marker/PT, timestamp, SSRC, the extension's data, first and last payload bytes, first and last tag bytes.
      for (const offset of [1, 5, 9, 13, headerLength - 1, headerLength, rtp.length - 1, rtp.length, srtp.length - 1]) {
        const bad = Buffer.from(srtp);
        bad[offset]! ^= 0x01;
        expect(() => weriftSession(profile, master).session.decrypt(bad), `byte ${offset}`).toThrow(SrtpAuthenticationError);
      }
      // Another session's keys do not open it either.
      expect(() => weriftSession(profile).session.decrypt(srtp)).toThrow(SrtpAuthenticationError);
    });
  });

  it('refuses keys of the wrong size with a TypeError naming them', () => {
    const key = randomBytes(16);
    expect(() => new SrtpProtector({ profile: SrtpProfile.AES_CM_128_HMAC_SHA1_80, key: randomBytes(15), salt: randomBytes(14), authKey: randomBytes(20) })).toThrow(/keys.key/);
    expect(() => new SrtpProtector({ profile: SrtpProfile.AES_CM_128_HMAC_SHA1_80, key, salt: randomBytes(12), authKey: randomBytes(20) })).toThrow(/keys.salt/);
    expect(() => new SrtpProtector({ profile: SrtpProfile.AES_CM_128_HMAC_SHA1_80, key, salt: randomBytes(14) })).toThrow(/keys.authKey/);
    expect(() => new SrtpProtector({ profile: SrtpProfile.AEAD_AES_128_GCM, key, salt: randomBytes(11) })).toThrow(/keys.salt/);
  });

  describe('known answers', () => {
    it('RFC 3711 Appendix B.2: the AES-CM keystream for SSRC 0, index 0', () => {
      const p = new SrtpProtector({
        profile: SrtpProfile.AES_CM_128_HMAC_SHA1_80,
        key: hex('2B7E151628AED2A6ABF7158809CF4F3C'),
        // The RFC gives the salt "already shifted" (F0F1…FCFD0000); the session salt is its first 14 bytes.
        salt: hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD'),
        authKey: Buffer.alloc(20),
      });
      // A payload of zeros encrypts to the keystream itself. The segment is 1044512 octets (65282 blocks).
      const segment = 1_044_512;
      const buf = Buffer.alloc(12 + segment + p.overhead);
      buf[0] = 0x80; // V=2, sequence number 0, timestamp 0, SSRC 0
      p.protect(buf, 12, 12 + segment, 0);
      const keystream = buf.subarray(12, 12 + segment);
      expect(keystream.subarray(0, 48).toString('hex').toUpperCase()).toBe(
        'E03EAD0935C95E80E166B16DD92B4EB4' + 'D23513162B02D0F72A43A2FE4A5F97AB' + '41E95B3BB0A2E8DD477901E4FCA894C0',
      );
      expect(keystream.subarray(segment - 48).toString('hex').toUpperCase()).toBe(
        'EC8CDF7398607CB0F2D21675EA9EA1E4' + '362B7C3C6773516318A077D7FC5073AE' + '6A2CC3787889374FBEB4C81B17BA6C44',
      );
    });

    it('RFC 3711 Appendix B.3: the session keys our send path reads from werift are the RFC key derivation', () => {
      const { keys } = weriftSession(SrtpProfile.AES_CM_128_HMAC_SHA1_80, {
        key: hex('E1F97A0D3E018BE0D64FA32C06DE4139'),
        salt: hex('0EC675AD498AFEEBB6960B3AABE6'),
      });
      expect(keys.key.toString('hex').toUpperCase()).toBe('C61E7A93744F39EE10734AFE3FF7A087');
      expect(keys.salt.subarray(0, 14).toString('hex').toUpperCase()).toBe('30CBBC08863D8C85D49DB34A9AE1');
      expect(keys.authKey!.subarray(0, 20).toString('hex').toUpperCase()).toBe('CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
    });

    it('RFC 7714 §16.1.1: AEAD_AES_128_GCM protection of the RFC packet', () => {
      const p = new SrtpProtector({ profile: SrtpProfile.AEAD_AES_128_GCM, key: hex('000102030405060708090a0b0c0d0e0f'), salt: hex('517569642070726f2071756f') });
      const plain = hex('8040f17b8041f8d35501a0b2 47616c6c696120657374206f6d6e69732064697669736120696e207061727465732074726573');
      const buf = Buffer.alloc(plain.length + p.overhead);
      plain.copy(buf);
      const n = p.protect(buf, 12, plain.length, 0);
      expect(buf.subarray(0, n).toString('hex')).toBe(
        '8040f17b8041f8d35501a0b2' +
          'f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833' +
          '899d7f27beb16a9152cf765ee4390cce',
      );
    });
  });
});
