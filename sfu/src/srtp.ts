import { createCipheriv, createHmac } from 'node:crypto';

/**
 * SRTP protection for the send path (RFC 3711 AES_CM_128_HMAC_SHA1_80, RFC 7714 AEAD_AES_128_GCM),
 * written for fan-out: the packet is built once per viewer in one buffer and encrypted there, with no
 * intermediate packet objects. Session keys come from the DTLS-SRTP handshake werift performed.
 */

/** DTLS-SRTP protection profiles (RFC 5764 §4.1.2, RFC 7714 §14.2). */
export const SrtpProfile = { AES_CM_128_HMAC_SHA1_80: 0x0001, AEAD_AES_128_GCM: 0x0007 } as const;
export type SrtpProfile = (typeof SrtpProfile)[keyof typeof SrtpProfile];

/** Session keys of one direction of an SRTP session (after the RFC 3711 §4.3 key derivation). */
export interface SrtpSessionKeys {
  profile: SrtpProfile;
  /** Session encryption key, 16 bytes. */
  key: Buffer;
  /** Session salt: 14 bytes for AES-CM, 12 for GCM. */
  salt: Buffer;
  /** Session authentication key (HMAC-SHA1), 20 bytes; AES-CM only. */
  authKey?: Buffer;
}

/** Bytes an SRTP packet has beyond the RTP packet: the authentication tag. */
export function srtpOverhead(profile: SrtpProfile): number {
  return profile === SrtpProfile.AEAD_AES_128_GCM ? 16 : 10;
}

/** Encrypts RTP packets in place for one SSRC stream. */
export class SrtpProtector {
  readonly profile: SrtpProfile;
  /** Length of the tag appended to each packet. */
  readonly overhead: number;
  readonly #key: Buffer;
  readonly #salt: Buffer;
  readonly #authKey: Buffer | undefined;
  readonly #iv: Buffer;
  readonly #roc = Buffer.alloc(4);

  constructor(keys: SrtpSessionKeys) {
    this.profile = keys.profile;
    this.overhead = srtpOverhead(keys.profile);
    if (keys.key.length !== 16) throw new TypeError("argument 'keys.key' must be 16 bytes");
    const gcm = keys.profile === SrtpProfile.AEAD_AES_128_GCM;
    if (keys.salt.length < (gcm ? 12 : 14)) throw new TypeError(`argument 'keys.salt' must be ${gcm ? 12 : 14} bytes`);
    if (!gcm && (!keys.authKey || keys.authKey.length < 20)) throw new TypeError("argument 'keys.authKey' must be 20 bytes for AES-CM");
    this.#key = keys.key;
    this.#salt = keys.salt.subarray(0, gcm ? 12 : 14);
    this.#authKey = keys.authKey;
    this.#iv = Buffer.alloc(gcm ? 12 : 16);
  }

  /**
   * Encrypts `packet[headerLength, rtpLength)` in place and writes the tag after it.
   * `packet` must have `overhead` spare bytes after `rtpLength`. Returns the SRTP packet length.
   * `roc` is the rollover counter of the packet's sequence number (RFC 3711 §3.3.1).
   */
  protect(packet: Buffer, headerLength: number, rtpLength: number, roc: number): number {
    const ssrc = packet.readUInt32BE(8);
    const seq = packet.readUInt16BE(2);
    const iv = this.#iv;
    const payload = packet.subarray(headerLength, rtpLength);
    if (this.profile === SrtpProfile.AEAD_AES_128_GCM) {
      // RFC 7714 §8.1: IV = (0x0000 || SSRC || ROC || SEQ) XOR salt.
      iv.writeUInt16BE(0, 0);
      iv.writeUInt32BE(ssrc, 2);
      iv.writeUInt32BE(roc >>> 0, 6);
      iv.writeUInt16BE(seq, 10);
      for (let i = 0; i < 12; i++) iv[i]! ^= this.#salt[i]!;
      const c = createCipheriv('aes-128-gcm', this.#key, iv);
      // RFC 7714 §8.2: the whole RTP header (with extensions) is the associated data.
      c.setAAD(packet.subarray(0, headerLength));
      c.update(payload).copy(packet, headerLength);
      c.final();
      c.getAuthTag().copy(packet, rtpLength);
      return rtpLength + 16;
    }
    // RFC 3711 §4.1.1: IV = (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16), index = ROC || SEQ.
    this.#salt.copy(iv, 0);
    iv[14] = 0;
    iv[15] = 0;
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ roc) >>> 0, 8);
    iv.writeUInt16BE(iv.readUInt16BE(12) ^ seq, 12);
    const c = createCipheriv('aes-128-ctr', this.#key, iv);
    c.update(payload).copy(packet, headerLength);
    // RFC 3711 §4.2: tag = HMAC-SHA1(auth key, authenticated portion || ROC), first 80 bits.
    this.#roc.writeUInt32BE(roc >>> 0, 0);
    const h = createHmac('sha1', this.#authKey!);
    h.update(packet.subarray(0, rtpLength));
    h.update(this.#roc);
    h.digest().copy(packet, rtpLength, 0, 10);
    return rtpLength + 10;
  }
}
