import { testIceServers } from '../../../test/support/stun.js';
import { RTCPeerConnection, RTCRtpCodecParameters, type RTCRtpTransceiver, type RtpPacket } from 'werift';
import type { Sfu, ViewerAnswer } from '../index.js';
import { PLAYOUT_DELAY_URI } from '../webrtc.js';
import { waitFor, withTimeout } from './wait.js';

const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/** rtcp-fb a browser offers for video (RFC 4585 NACK and PLI, RFC 5104 FIR). */
const FEEDBACK = [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }];

/** An H.264 codec to offer, packetization-mode=1 unless told otherwise. */
export function h264Codec(payloadType: number, opts: { profileLevelId?: string; packetizationMode?: 0 | 1 } = {}): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({
    mimeType: 'video/H264',
    clockRate: 90000,
    payloadType,
    rtcpFeedback: FEEDBACK,
    parameters: `level-asymmetry-allowed=1;packetization-mode=${opts.packetizationMode ?? 1};profile-level-id=${opts.profileLevelId ?? '42e01f'}`,
  });
}

/** An H.265 codec to offer. */
export function h265Codec(payloadType: number): RTCRtpCodecParameters {
  return new RTCRtpCodecParameters({ mimeType: 'video/H265', clockRate: 90000, payloadType, rtcpFeedback: FEEDBACK });
}

/** One RTP packet as the receiving werift peer saw it (after SRTP decryption). */
export interface ReceivedPacket {
  seq: number;
  ts: number;
  pt: number;
  ssrc: number;
  marker: boolean;
  payload: Buffer;
  extensions: Array<{ id: number; payload: Buffer }>;
}

export interface ReceiverOptions {
  codecs: RTCRtpCodecParameters[];
  /** Offer the playout-delay header extension (werift numbers extensions itself, from 1); default no. */
  playoutDelay?: boolean;
  /** werift's debug knobs (e.g. inboundPacketLoss). */
  debug?: { inboundPacketLoss?: number };
  /** Changes the SFU's answer before it is applied (e.g. to point ICE at a proxy). */
  rewriteAnswer?: (sdp: string) => string;
}

/**
 * A WHEP viewer made of a real werift peer connection (recvonly video, full ICE controlling, DTLS client),
 * recording every RTP packet it receives.
 */
export class TestReceiver {
  readonly pc: RTCPeerConnection;
  readonly transceiver: RTCRtpTransceiver;
  readonly packets: ReceivedPacket[] = [];
  /** The offer made, once made. */
  offerSdp = '';
  #closed = false;

  constructor(readonly opts: ReceiverOptions) {
    this.pc = new RTCPeerConnection({
      // A local STUN server: werift would otherwise look up a public one (see test/support/stun.ts).
      iceServers: testIceServers(),
      iceAdditionalHostAddresses: ['127.0.0.1'],
      iceUseIpv6: false,
      codecs: { video: opts.codecs, audio: [] },
      headerExtensions: { video: opts.playoutDelay ? [{ id: 1, uri: PLAYOUT_DELAY_URI }] : [], audio: [] },
      ...(opts.debug ? { debug: opts.debug } : {}),
    });
    this.transceiver = this.pc.addTransceiver('video', { direction: 'recvonly' });
    this.transceiver.onTrack.subscribe((track) => {
      track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
        const h = rtp.header;
        this.packets.push({
          seq: h.sequenceNumber,
          ts: h.timestamp,
          pt: h.payloadType,
          ssrc: h.ssrc,
          marker: h.marker,
          payload: Buffer.from(rtp.payload),
          extensions: h.extensions.map((e) => ({ id: e.id, payload: Buffer.from(e.payload) })),
        });
      });
    });
  }

  /** Creates the offer and waits for ICE gathering, so the SDP holds the candidates (no trickle). */
  async offer(): Promise<string> {
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await withTimeout(
      new Promise<void>((resolve) => {
        if (this.pc.iceGatheringState === 'complete') return resolve();
        const sub = this.pc.iceGatheringStateChange.subscribe((s) => {
          if (s === 'complete') {
            sub.unSubscribe();
            resolve();
          }
        });
      }),
      10_000,
      'ICE gathering',
    );
    this.#enlargeReceiveBuffers();
    this.offerSdp = this.pc.localDescription!.sdp;
    return this.offerSdp;
  }

  /**
   * werift's ICE sockets keep the OS default receive buffer (208 KiB here). A fast-start burst (a whole
   * group of pictures sent at once) overflows it on loopback, where this receiver shares the SFU's event
   * loop and reads 32 datagrams per turn; a browser's media sockets are larger. Give them 4 MiB so the
   * tests see what the SFU sends, not what the kernel dropped.
   */
  #enlargeReceiveBuffers(): void {
    for (const ice of this.pc.iceTransports) {
      const protocols = (ice.connection as unknown as { protocols: Array<{ transport?: { socket?: { setRecvBufferSize(n: number): void } } }> }).protocols;
      for (const p of protocols) {
        try {
          p.transport?.socket?.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
        } catch {
          // not bound (yet), or not a UDP socket: leave it
        }
      }
    }
  }

  /** Applies the SFU's answer. */
  async accept(answer: string): Promise<void> {
    const sdp = this.opts.rewriteAnswer ? this.opts.rewriteAnswer(answer) : answer;
    await this.pc.setRemoteDescription({ type: 'answer', sdp });
  }

  /** Offers, has the SFU answer for `cameraId`, and applies the answer. */
  async watch(sfu: Sfu, cameraId: string): Promise<ViewerAnswer> {
    const answer = await sfu.createViewer(cameraId, await this.offer());
    await this.accept(answer.sdp);
    return answer;
  }

  /** Waits until ICE and DTLS are up. */
  async waitConnected(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.pc.connectionState === 'connected', timeoutMs, () => `connection ${this.pc.connectionState}`);
  }

  /** Waits until `n` packets have arrived. */
  async waitForPackets(n: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(() => this.packets.length >= n, timeoutMs, () => `received ${this.packets.length} of ${n} packets (connection ${this.pc.connectionState})`);
  }

  /** Sends a Picture Loss Indication about the stream it receives (RFC 4585 §6.3.1). */
  async sendPli(): Promise<void> {
    const ssrc = this.packets[0]?.ssrc;
    if (ssrc === undefined) throw new Error('no stream received yet to send a PLI about');
    await this.transceiver.receiver.sendRtcpPLI(ssrc);
  }

  /**
   * Closes the way a browser does: a DTLS close_notify alert first (RFC 5246 §7.2.1; werift's own close
   * sends none), then the peer connection.
   */
  async closeLikeBrowser(): Promise<void> {
    const socket = (this.transceiver.dtlsTransport as unknown as { dtls?: DtlsSocketInternals }).dtls;
    if (socket && !this.#closed) {
      const ctx = socket.dtls;
      const sequenceNumber = ++ctx.recordSequenceNumber;
      // Alert level warning (1), description close_notify (0), encrypted under the current epoch.
      const pkt = {
        recordLayerHeader: { contentType: 21, protocolVersion: ctx.version, epoch: ctx.epoch, sequenceNumber, contentLen: 2 },
        fragment: Buffer.from([1, 0]),
      };
      socket.cipher.encryptPacket(pkt);
      const header = Buffer.alloc(13);
      header[0] = 21;
      header[1] = ctx.version.major;
      header[2] = ctx.version.minor;
      header.writeUInt16BE(ctx.epoch, 3);
      header.writeUIntBE(sequenceNumber, 5, 6);
      header.writeUInt16BE(pkt.fragment.length, 11);
      await socket.transport.send(Buffer.concat([header, pkt.fragment]));
    }
    await this.close();
  }

  /** Closes the peer connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.pc.close();
  }
}

/** The parts of werift's DTLS socket that closeLikeBrowser uses. */
interface DtlsSocketInternals {
  dtls: { recordSequenceNumber: number; version: { major: number; minor: number }; epoch: number };
  cipher: { encryptPacket(pkt: { recordLayerHeader: object; fragment: Buffer }): unknown };
  transport: { send(buf: Buffer): Promise<unknown> };
}
