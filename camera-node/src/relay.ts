import dgram from 'node:dgram';
import {
  INGEST_PAYLOAD_TYPE, InvalidStateError, isKeyframeStart, isRtcp, newRtpHeader, parseRtpHeader, readRtcpRequests,
  type IngestAddress, type VideoCodec,
} from '@cctv/core';

/** The most kept of the current GOP for a new target (a longer GOP is replayed from its start, cut short). */
const GOP_CACHE_BYTES = 2 * 1024 * 1024;

/** Counters of one relay. Rates are computed by the owner from these. */
export interface RelayCounters {
  packets: number;
  bytes: number;
  frames: number;
  keyframes: number;
  junk: number;
  lastPacketAt: number | null;
}

export interface RelayOptions {
  /** Address to bind; port 0 picks a free one (for a local ffmpeg), a fixed port receives an RTP source. */
  bind: { host: string; port: number };
  /** Payload type the source must use, or null to accept what a local ffmpeg sends. */
  expectPayloadType: number | null;
  /** The codec of the stream when known in advance. */
  codec: VideoCodec | null;
  /** SSRC stamped on every forwarded packet, stable across source restarts. */
  ssrc: number;
  /** Called when the SFU asks for a keyframe (RTCP PLI/FIR sent back to this relay). */
  onKeyframeRequest: () => void;
  /** Called with the first packet of a stream whose codec is not yet known; returns it, or null to drop. */
  resolveCodec?: () => VideoCodec | null;
}

/**
 * Takes a source's RTP on a local UDP port, checks it, stamps the camera's SSRC and the ingest payload
 * type of its codec, and forwards it to the SFU. Counting happens here, so the camera's fps, bitrate
 * and keyframes are those the SFU actually receives.
 */
export class RtpRelay {
  readonly #opts: RelayOptions;
  readonly #socket: dgram.Socket;
  readonly #hdr = newRtpHeader();
  #target: IngestAddress | null = null;
  #codec: VideoCodec | null;
  #closed = false;
  #frameIsKey = false;
  #lastMarker = true;
  /** The packets since the last keyframe began (as forwarded), replayed to a new target. */
  #gop: Buffer[] = [];
  #gopBytes = 0;
  /** Counters since the relay started. */
  readonly counters: RelayCounters = { packets: 0, bytes: 0, frames: 0, keyframes: 0, junk: 0, lastPacketAt: null };

  constructor(opts: RelayOptions) {
    this.#opts = opts;
    this.#codec = opts.codec;
    const ipv6 = opts.bind.host.includes(':');
    this.#socket = dgram.createSocket({ type: ipv6 ? 'udp6' : 'udp4', recvBufferSize: 4 * 1024 * 1024 });
    this.#socket.on('message', (buf, rinfo) => this.#onMessage(buf, rinfo));
    // A send to a target that is gone reports ICMP errors here; they must not crash the process.
    this.#socket.on('error', () => {});
  }

  /** Binds the socket; resolves with the port it got. Fails with the address when the port is taken. */
  async bind(): Promise<number> {
    const { host, port } = this.#opts.bind;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(new Error(`cannot listen for RTP on ${host}:${port}: ${err.message}`, { cause: err }));
      this.#socket.once('error', onError);
      this.#socket.bind(port, host, () => {
        this.#socket.off('error', onError);
        resolve();
      });
    });
    try {
      this.#socket.setRecvBufferSize(4 * 1024 * 1024);
    } catch {
      // the kernel may cap it; the default still works
    }
    return this.port;
  }

  /** The bound UDP port. */
  get port(): number {
    return this.#socket.address().port;
  }

  /** The codec forwarded, once known. */
  get codec(): VideoCodec | null {
    return this.#codec;
  }

  /** Forget the codec (the source restarted and may send something else). */
  resetCodec(codec: VideoCodec | null): void {
    this.#codec = codec;
  }

  /**
   * Where packets go; null holds them (dropped, not counted as junk). A new target first gets the packets
   * since the last keyframe, so an SFU that takes the camera over (its old one died) can show a picture
   * at once instead of waiting for the next keyframe, which a camera cannot always be asked for.
   */
  setTarget(target: IngestAddress | null): void {
    if (this.#closed) throw new InvalidStateError('relay is closed');
    const moved = target && (!this.#target || this.#target.host !== target.host || this.#target.port !== target.port);
    this.#target = target;
    if (moved) for (const p of this.#gop) this.#socket.send(p, target.port, target.host);
  }

  get target(): IngestAddress | null {
    return this.#target;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.close();
  }

  #onMessage(buf: Buffer, rinfo: dgram.RemoteInfo): void {
    const c = this.counters;
    if (isRtcp(buf)) {
      // RTCP from the SFU (keyframe requests) or the source's own reports; neither is forwarded.
      const t = this.#target;
      if (t && rinfo.port === t.port) {
        const req = readRtcpRequests(buf);
        if (req?.keyframe) this.#opts.onKeyframeRequest();
      }
      return;
    }
    const h = this.#hdr;
    if (!parseRtpHeader(buf, h) || h.payloadEnd <= h.payloadOffset) {
      c.junk++;
      return;
    }
    if (this.#opts.expectPayloadType !== null && h.payloadType !== this.#opts.expectPayloadType) {
      c.junk++;
      return;
    }
    let codec = this.#codec;
    if (codec === null) {
      codec = this.#opts.resolveCodec?.() ?? null;
      if (codec === null) return;
      this.#codec = codec;
    }
    c.packets++;
    c.bytes += buf.length;
    c.lastPacketAt = Date.now();
    if (isKeyframeStart(codec, buf, h.payloadOffset, h.payloadEnd)) {
      // The first packet of a keyframe starts a new GOP.
      if (this.#lastMarker || !this.#frameIsKey) {
        this.#gop = [];
        this.#gopBytes = 0;
      }
      this.#frameIsKey = true;
    }
    this.#lastMarker = h.marker;
    if (h.marker) {
      c.frames++;
      if (this.#frameIsKey) c.keyframes++;
      this.#frameIsKey = false;
    }
    // Rewrite in place: dgram hands each message its own buffer.
    buf[1] = (buf[1]! & 0x80) | INGEST_PAYLOAD_TYPE[codec];
    buf.writeUInt32BE(this.#opts.ssrc >>> 0, 8);
    if (this.#gopBytes + buf.length <= GOP_CACHE_BYTES) {
      this.#gop.push(buf);
      this.#gopBytes += buf.length;
    }
    const t = this.#target;
    if (t) this.#socket.send(buf, t.port, t.host);
  }
}
