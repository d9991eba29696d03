import dgram from 'node:dgram';
import { testIceServers } from '../../../test/support/stun.js';
import { RTCPeerConnection, RTCRtpCodecParameters, type RTCRtpTransceiver } from 'werift';
import type { PublisherAnswer, Sfu } from '../index.js';
import { startSource, type SourceOptions, type TestSource } from './ffmpeg.js';
import { waitFor, withTimeout } from './wait.js';

/**
 * A WHIP publisher made of a real werift peer connection (sendonly video, full ICE controlling, DTLS
 * client), sending what an ffmpeg test camera encodes, and counting the keyframe requests it gets.
 */
export class TestPublisher {
  readonly pc: RTCPeerConnection;
  readonly transceiver: RTCRtpTransceiver;
  /** PLIs received from the SFU. */
  plis = 0;
  /** RTP packets handed to werift to send. */
  sent = 0;
  #socket: dgram.Socket | null = null;
  #source: TestSource | null = null;
  #closed = false;

  constructor(codecs: RTCRtpCodecParameters[], opts: { audio?: boolean } = {}) {
    this.pc = new RTCPeerConnection({
      iceServers: testIceServers(),
      iceAdditionalHostAddresses: ['127.0.0.1'],
      iceUseIpv6: false,
      codecs: { video: codecs, audio: opts.audio ? [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2 })] : [] },
    });
    this.transceiver = this.pc.addTransceiver('video', { direction: 'sendonly' });
    if (opts.audio) this.pc.addTransceiver('audio', { direction: 'sendonly' });
    this.transceiver.sender.onPictureLossIndication.subscribe(() => this.plis++);
  }

  /** Creates the offer and waits for ICE gathering (WHIP has no trickle here). */
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
    return this.pc.localDescription!.sdp;
  }

  /** Offers, has the SFU answer for `cameraId`, and applies the answer. */
  async publish(sfu: Sfu, cameraId: string): Promise<PublisherAnswer> {
    const answer = await sfu.createPublisher(cameraId, await this.offer());
    await this.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    return answer;
  }

  async waitConnected(timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.pc.connectionState === 'connected', timeoutMs, () => `connection ${this.pc.connectionState}`);
  }

  /** Starts an ffmpeg test camera whose RTP this peer sends (werift stamps its own SSRC and payload type). */
  async startSending(source: Omit<SourceOptions, 'port' | 'host'>): Promise<void> {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (buf) => {
      if (this.#closed) return;
      this.sent++;
      void this.transceiver.sender.sendRtp(buf).catch(() => {});
    });
    await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
    this.#socket = socket;
    this.#source = startSource({ ...source, port: socket.address().port });
  }

  /** Stops the ffmpeg (the peer connection stays up, silent). */
  async stopSending(): Promise<void> {
    await this.#source?.stop();
    this.#source = null;
    this.#socket?.close();
    this.#socket = null;
  }

  /** Stops sending and closes the peer connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.stopSending();
    await this.pc.close();
  }
}
