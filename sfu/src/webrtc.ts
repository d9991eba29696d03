/**
 * Everything that reaches into werift lives here, so a werift upgrade touches one file.
 * werift 0.24 does the signalling, ICE, DTLS and RTCP receive; the media send path is ours (viewer.ts):
 * we take the SRTP session keys and the nominated ICE pair from it once DTLS is up.
 */
import {
  CipherContext, MediaStreamTrack, PictureLossIndication, RTCPeerConnection, RTCRtpCodecParameters, RtcpPayloadSpecificFeedback,
  RtcpRrPacket, RtcpSenderInfo, RtcpSrPacket, RtcpTransportLayerFeedback, type RTCDtlsTransport, type RtpPacket,
} from 'werift';
import type dgram from 'node:dgram';
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto';
import nacl from 'tweetnacl';
import { SrtpProfile, type SrtpSessionKeys } from './srtp.js';

// DER prefixes of X25519 keys (RFC 8410): PKCS#8 private key and SubjectPublicKeyInfo around the 32 raw bytes.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

let nativeX25519 = false;
/**
 * werift's DTLS does its X25519 key exchange (the curve browsers offer first) with tweetnacl, in
 * JavaScript: about 8 ms of blocked event loop per operation here, two per viewer join, felt by every
 * other viewer as a stall. The same function from OpenSSL (node:crypto) takes microseconds. This swaps
 * tweetnacl's two entry points werift calls for the native ones; results are identical (tested).
 */
export function useNativeX25519(): void {
  if (nativeX25519) return;
  nativeX25519 = true;
  const box = nacl.box as unknown as { keyPair: () => { publicKey: Uint8Array; secretKey: Uint8Array } };
  nacl.scalarMult = ((secret: Uint8Array, pub: Uint8Array): Uint8Array => {
    const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, Buffer.from(secret)]), format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey({ key: Buffer.concat([X25519_SPKI, Buffer.from(pub)]), format: 'der', type: 'spki' });
    return new Uint8Array(diffieHellman({ privateKey, publicKey }));
  }) as typeof nacl.scalarMult;
  box.keyPair = () => {
    const { privateKey, publicKey } = generateKeyPairSync('x25519');
    const secretKey = new Uint8Array(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(X25519_PKCS8.length));
    const pub = new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length));
    return { publicKey: pub, secretKey };
  };
}

/** URI of the playout-delay header extension (webrtc.org experiment, used by Chrome and Firefox). */
export const PLAYOUT_DELAY_URI = 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay';

/** The DTLS certificate every viewer's handshake uses (generated once per process; ECDSA P-256). */
export interface DtlsKeys {
  certPem: string;
  keyPem: string;
  signatureHash: { hash: number; signature: number };
}

/** Generates the process's DTLS certificate (ECDSA P-256, SHA-256). Costs a few ms; do it once. */
export async function createDtlsKeys(): Promise<DtlsKeys> {
  // RFC 5246 §7.4.1.4.1 codes: hash sha256 = 4, signature ecdsa = 3; named curve secp256r1 = 23.
  const keys = (await CipherContext.createSelfSignedCertificateWithKey({ hash: 4, signature: 3 }, 23)) as unknown as DtlsKeys;
  return keys;
}

/** What a viewer's peer connection is set up with. */
export interface PeerOptions {
  codec: { mimeType: string; payloadType: number; clockRate: number; fmtp: string; rtcpFb: string[] };
  /** Extension id of playout-delay from the offer, or null to leave it out. */
  playoutDelayId: number | null;
  /** Addresses werift should also gather on (beside the machine's own), e.g. 127.0.0.1. */
  additionalHostAddresses: string[];
  portRange: [number, number] | undefined;
  dtlsKeys: DtlsKeys;
}

/**
 * A peer connection answering an offer cut down to one video codec: no STUN/TURN (the SFU is reachable at
 * its host or announced addresses; werift's default list points at a public STUN server, which would
 * stall gathering on a closed network) and ICE lite (RFC 8445 §2.5: the browser or publisher runs the
 * checks; we only answer them). Audio is answered and left silent.
 */
function answeringPeer(opts: PublisherPeerOptions, playoutDelayId: number | null): RTCPeerConnection {
  return new RTCPeerConnection({
    iceServers: [],
    iceLite: true,
    iceUseIpv4: true,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: opts.additionalHostAddresses,
    icePortRange: opts.portRange,
    dtls: { keys: opts.dtlsKeys as never },
    codecs: {
      video: [
        new RTCRtpCodecParameters({
          mimeType: opts.codec.mimeType,
          clockRate: opts.codec.clockRate,
          payloadType: opts.codec.payloadType,
          // NACK for losses, PLI and FIR for keyframes: what the SFU's send and receive paths use.
          rtcpFeedback: opts.codec.rtcpFb.filter((f) => f === 'nack' || f === 'nack pli' || f === 'ccm fir').map((f) => {
            const [type, parameter] = f.split(' ');
            return parameter ? { type: type!, parameter } : { type: type! };
          }),
          ...(opts.codec.fmtp ? { parameters: opts.codec.fmtp } : {}),
        }),
      ],
      audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })],
    },
    headerExtensions: { video: playoutDelayId !== null ? [{ id: playoutDelayId, uri: PLAYOUT_DELAY_URI }] : [], audio: [] },
  });
}

/** A send-only peer connection for one viewer, answering an offer that was cut down to one codec. */
export function createViewerPeer(opts: PeerOptions): { pc: RTCPeerConnection; track: MediaStreamTrack } {
  return { pc: answeringPeer(opts, opts.playoutDelayId), track: new MediaStreamTrack({ kind: 'video' }) };
}

/** What a WHIP publisher's peer connection is set up with. */
export interface PublisherPeerOptions {
  /** The one video codec accepted, with the publisher's payload type. */
  codec: { mimeType: string; payloadType: number; clockRate: number; fmtp: string; rtcpFb: string[] };
  additionalHostAddresses: string[];
  portRange: [number, number] | undefined;
  dtlsKeys: DtlsKeys;
}

/** A receive-only peer connection for one WHIP publisher, answering an offer cut down to one video codec. */
export function createPublisherPeer(opts: PublisherPeerOptions): RTCPeerConnection {
  return answeringPeer(opts, null);
}

/**
 * Calls `fn` with every RTP packet that arrives decrypted on a DTLS transport, whatever its SSRC: a WHIP
 * offer need not announce its SSRCs (a=ssrc), and werift's router drops packets of unannounced ones.
 * Returns the unsubscribe.
 */
export function onRtpReceived(dtls: RTCDtlsTransport, fn: (p: RtpPacket) => void): () => void {
  const { unSubscribe } = dtls.onRtp.subscribe(fn);
  return unSubscribe;
}

/** Sends a Picture Loss Indication about `mediaSsrc` (RFC 4585 §6.3.1). */
export async function sendPli(dtls: RTCDtlsTransport, senderSsrc: number, mediaSsrc: number): Promise<void> {
  await dtls.sendRtcp([new RtcpPayloadSpecificFeedback({ feedback: new PictureLossIndication({ senderSsrc, mediaSsrc }) })]);
}

/**
 * Runs one ICE + DTLS handshake between two local werift peers, so the code the first real viewer needs
 * is loaded and compiled before it arrives (a cold handshake takes several times longer). Never throws.
 */
export async function warmUp(dtlsKeys: DtlsKeys): Promise<number> {
  const started = performance.now();
  const codec = { mimeType: 'video/H264', payloadType: 96, clockRate: 90000, fmtp: 'packetization-mode=1;profile-level-id=42e01f', rtcpFb: ['nack', 'nack pli'] };
  const client = new RTCPeerConnection({
    iceServers: [],
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    codecs: { video: [new RTCRtpCodecParameters({ mimeType: codec.mimeType, clockRate: codec.clockRate, payloadType: 96, parameters: codec.fmtp })] },
  });
  const { pc: server } = createViewerPeer({ codec, playoutDelayId: null, additionalHostAddresses: ['127.0.0.1'], portRange: undefined, dtlsKeys });
  try {
    client.addTransceiver('video', { direction: 'recvonly' });
    await client.setLocalDescription(await client.createOffer());
    await server.setRemoteDescription(client.localDescription!);
    for (const t of server.getTransceivers()) {
      t.setDirection('sendonly');
      t.dtlsTransport.role = 'server';
    }
    await server.setLocalDescription(await server.createAnswer());
    await client.setRemoteDescription(server.localDescription!);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      server.connectionStateChange.subscribe((st) => {
        if (st === 'connected') {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } catch {
    // A failed warm-up costs the first viewer a slower start, nothing more.
  } finally {
    await Promise.allSettled([client.close(), server.close()]);
  }
  return performance.now() - started;
}

/** What the send path needs from a connected peer. */
export interface SendPath {
  keys: SrtpSessionKeys;
  /** SSRC announced in the answer for our video. */
  ssrc: number;
  /** Sends bytes on the nominated ICE pair; false when there is none (yet, or any more). */
  send(buf: Buffer, length: number): boolean;
}

interface WeriftPair {
  protocol: { transport: { socket: dgram.Socket; closed?: boolean } };
  remoteAddr: [string, number];
}

/** Reads the SRTP keys and the nominated pair off a connected DTLS transport. */
export function sendPathOf(dtls: RTCDtlsTransport, ssrc: number): SendPath {
  const session = (dtls as unknown as { srtp: { config: { profile: number }; localContext: { cipher: Record<string, Buffer> } } }).srtp;
  const profile = session.config.profile === 7 ? SrtpProfile.AEAD_AES_128_GCM : SrtpProfile.AES_CM_128_HMAC_SHA1_80;
  const cipher = session.localContext.cipher;
  const keys: SrtpSessionKeys = {
    profile,
    key: cipher.srtpSessionKey!,
    salt: cipher.srtpSessionSalt!,
    ...(profile === SrtpProfile.AES_CM_128_HMAC_SHA1_80 ? { authKey: cipher.srtpSessionAuthTag! } : {}),
  };
  if (!keys.key || !keys.salt) throw new Error('werift did not expose the SRTP session keys');
  const connection = (dtls.iceTransport as unknown as { connection: { nominated?: WeriftPair } }).connection;
  return {
    keys,
    ssrc,
    send(buf, length) {
      const pair = connection.nominated;
      if (!pair || pair.protocol.transport.closed) return false;
      pair.protocol.transport.socket.send(buf, 0, length, pair.remoteAddr[1], pair.remoteAddr[0]);
      return true;
    },
  };
}

/** Feedback a viewer sends about our stream. */
export interface ViewerFeedback {
  /** Sequence numbers asked for again (RFC 4585 Generic NACK). */
  nacks?: number[];
  /** PLI or FIR. */
  keyframe?: boolean;
  /** From a receiver report block about our SSRC (RFC 3550 §6.4.2). */
  report?: { fractionLost: number; packetsLost: number; jitter: number };
}

/** Calls `fn` with the feedback in every RTCP packet about `ssrc`; returns the unsubscribe. */
export function onFeedback(dtls: RTCDtlsTransport, ssrc: number, fn: (f: ViewerFeedback) => void): () => void {
  const { unSubscribe } = dtls.onRtcp.subscribe((packet) => {
    if (packet instanceof RtcpTransportLayerFeedback) {
      const fb = packet.feedback as { count: number; mediaSourceSsrc?: number; lost?: number[] };
      // werift's parser adds BLP offsets to the PID without wrapping (PID 65534, BLP 0b11 gives 65536):
      // bring them back into the 16-bit space (RFC 4585 §6.2.1).
      if (fb.count === 1 && fb.mediaSourceSsrc === ssrc && fb.lost) fn({ nacks: fb.lost.map((seq) => seq & 0xffff) });
    } else if (packet instanceof RtcpPayloadSpecificFeedback) {
      const fb = packet.feedback as { count: number; mediaSsrc?: number; fir?: Array<{ ssrc: number }> };
      if ((fb.count === 1 && fb.mediaSsrc === ssrc) || (fb.count === 4 && (fb.fir ?? []).some((e) => e.ssrc === ssrc))) fn({ keyframe: true });
    } else if (packet instanceof RtcpRrPacket || packet instanceof RtcpSrPacket) {
      for (const r of packet.reports) {
        if (r.ssrc === ssrc) fn({ report: { fractionLost: r.fractionLost / 256, packetsLost: r.packetsLost, jitter: r.jitter } });
      }
    }
  });
  return unSubscribe;
}

/**
 * Calls `fn` when the DTLS session ends: the peer sent an alert (a browser's close_notify on
 * `pc.close()`, RFC 5246 §7.2.1) or it failed. werift does not carry this into `connectionState`.
 * Returns the unsubscribe.
 */
export function onDtlsClosed(dtls: RTCDtlsTransport, fn: () => void): () => void {
  const { unSubscribe } = dtls.onStateChange.subscribe((s) => {
    if (s === 'closed' || s === 'failed') fn();
  });
  return unSubscribe;
}

/**
 * Calls `fn` whenever the viewer shows it is there: any RTCP packet, or an ICE consent check (browsers
 * send one about every 5 s, RFC 7675, also while the camera sends nothing and so no receiver report is
 * due). Returns the unsubscribe.
 */
export function onActivity(dtls: RTCDtlsTransport, fn: () => void): () => void {
  const subs: Array<{ unSubscribe: () => void }> = [dtls.onRtcp.subscribe(() => fn())];
  const connection = (dtls.iceTransport as unknown as { connection: { protocols?: Array<{ onRequestReceived?: { subscribe: (f: () => void) => { unSubscribe: () => void } } }> } }).connection;
  for (const protocol of connection.protocols ?? []) {
    const sub = protocol.onRequestReceived?.subscribe(() => fn());
    if (sub) subs.push(sub);
  }
  return () => {
    for (const s of subs) s.unSubscribe();
  };
}

/** Sends an RTCP sender report for our SSRC (RFC 3550 §6.4.1). */
export async function sendSenderReport(
  dtls: RTCDtlsTransport,
  ssrc: number,
  info: { rtpTimestamp: number; packetCount: number; octetCount: number },
): Promise<void> {
  const ms = Date.now() + 2_208_988_800_000; // NTP epoch is 1900
  const sec = Math.floor(ms / 1000);
  const frac = Math.floor(((ms % 1000) / 1000) * 2 ** 32);
  const ntpTimestamp = (BigInt(sec) << 32n) | BigInt(frac);
  await dtls.sendRtcp([
    new RtcpSrPacket({
      ssrc,
      senderInfo: new RtcpSenderInfo({ ntpTimestamp, rtpTimestamp: info.rtpTimestamp >>> 0, packetCount: info.packetCount >>> 0, octetCount: info.octetCount >>> 0 }),
    }),
  ]);
}
