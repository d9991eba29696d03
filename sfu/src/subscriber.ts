import dgram from 'node:dgram';
import { randomBytes, randomUUID } from 'node:crypto';
import { INGEST_PAYLOAD_TYPE, type VideoCodec } from '@cctv/core';
import type { MediaPacket, StreamTrack, TrackSink } from './track.js';

// The current group of pictures is replayed to a new subscriber only while the camera is sending.
const STALE_GOP_MS = 1000;

/** Where a plain-RTP subscriber wants a camera's packets, and for how long without a renewal. */
export interface RtpSubscription {
  host: string;
  port: number;
  /** The subscription ends when it is not renewed for this long, in ms. */
  leaseMs: number;
}

/** What a subscriber is told when it subscribes. */
export interface RtpSubscriberInfo {
  id: string;
  codec: VideoCodec;
  payloadType: number;
  ssrc: number;
}

/**
 * A plain-RTP subscriber of a room (the recorder, the motion detector): the camera's packets as they are,
 * on the track's continuous timeline, under an SSRC of its own, sent over UDP to `host:port`. It starts
 * with the current group of pictures, so the receiver can begin at a keyframe at once, and otherwise
 * waits for the next keyframe. Nothing is retransmitted: a recorder on the same LAN loses next to
 * nothing, and a loss costs it part of one segment, never the stream.
 */
export class RtpSubscriber implements TrackSink {
  readonly id = randomUUID();
  readonly ssrc = randomBytes(4).readUInt32BE(0);
  readonly codec: VideoCodec;
  readonly payloadType: number;
  readonly #socket: dgram.Socket;
  readonly #target: RtpSubscription;
  #track: StreamTrack | null = null;
  #started = false;
  #expiresAt: number;
  readonly stats = { packetsSent: 0, bytesSent: 0, sendErrors: 0 };

  constructor(codec: VideoCodec, socket: dgram.Socket, target: RtpSubscription) {
    this.codec = codec;
    this.payloadType = INGEST_PAYLOAD_TYPE[codec];
    this.#socket = socket;
    this.#target = target;
    this.#expiresAt = Date.now() + target.leaseMs;
  }

  get info(): RtpSubscriberInfo {
    return { id: this.id, codec: this.codec, payloadType: this.payloadType, ssrc: this.ssrc };
  }

  get target(): Readonly<RtpSubscription> {
    return this.#target;
  }

  /** Whether its lease ran out. */
  expired(now = Date.now()): boolean {
    return now > this.#expiresAt;
  }

  renew(now = Date.now()): void {
    this.#expiresAt = now + this.#target.leaseMs;
  }

  start(track: StreamTrack): void {
    this.#track = track;
    const gop = track.gop();
    // A group of pictures from before a silence is not replayed: a recorder would date it now.
    if (gop && Date.now() - track.lastPacketAt < STALE_GOP_MS) {
      this.#started = true;
      // The whole current group of pictures with its own timestamps: the receiver starts at its keyframe.
      for (const frame of gop.frames) for (const p of frame) this.#send(p);
    }
    track.addSink(this);
  }

  onPacket(p: MediaPacket): void {
    if (!this.#started) {
      if (!p.keyStart) return;
      this.#started = true;
    }
    this.#send(p);
  }

  #send(p: MediaPacket): void {
    const len = p.payloadEnd - p.payloadOffset;
    const out = Buffer.allocUnsafe(12 + len);
    out[0] = 0x80;
    out[1] = (p.marker ? 0x80 : 0) | this.payloadType;
    out.writeUInt16BE(p.seq, 2);
    out.writeUInt32BE(p.ts, 4);
    out.writeUInt32BE(this.ssrc, 8);
    p.buf.copy(out, 12, p.payloadOffset, p.payloadEnd);
    this.#socket.send(out, this.#target.port, this.#target.host, (error) => {
      if (error) this.stats.sendErrors++;
    });
    this.stats.packetsSent++;
    this.stats.bytesSent += out.length;
  }

  close(): void {
    this.#track?.removeSink(this);
    this.#track = null;
  }
}
