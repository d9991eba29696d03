import dgram from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import {
  Depacketizer, TypedEmitter, codecOfIngestPayloadType, createLogger, isKeyframeStart, newRtpHeader, parseRtpHeader, spawnGuarded, terminate,
  type VideoCodec,
} from '@cctv/core';

const log = createLogger('detector:decoder');

/** A decoded picture: I420 (the luma plane first, width × height bytes, then the two chroma planes). */
export interface DecodedFrame {
  data: Buffer;
  width: number;
  height: number;
  /** When it was taken: its arrival from the decoder (live) or its place in a file (fps), ms. */
  atMs: number;
}

export interface DecodeShape {
  /** Frames per second handed out (ffmpeg's fps filter drops the others). */
  fps: number;
  /** Width of the frames handed out; the height keeps the picture's shape (even). */
  width: number;
}

/**
 * ffmpeg's output arguments: small I420 frames on stdout. With `fps`, ffmpeg's fps filter keeps that many
 * a second (exact, for files); live, every frame comes out and the tap keeps `fps` of them itself, because
 * the fps filter holds each frame back until the next is due (200 ms at 5 fps).
 */
function outputArgs(shape: { width: number; fps?: number }): string[] {
  return [
    '-map', '0:v:0',
    '-vf', `${shape.fps ? `fps=${shape.fps},` : ''}scale=${shape.width}:-2:flags=area`,
    '-fps_mode', 'passthrough',
    '-pix_fmt', 'yuv420p',
    // Each frame is written out whole as soon as it is made, not held in the output buffer until the next.
    '-flush_packets', '1',
    '-f', 'rawvideo',
    'pipe:1',
  ];
}

/**
 * Reads ffmpeg's stdout as frames: the size is taken from ffmpeg's description of its output stream
 * (on stderr, before the first frame), then every width × height × 1.5 bytes is a frame.
 */
function frameReader(child: ChildProcess, onFrame: (data: Buffer, width: number, height: number) => void, onStderr?: (text: string) => void): void {
  let width = 0;
  let height = 0;
  let size = 0;
  let err = '';
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const drain = () => {
    if (size === 0) return;
    while (pendingBytes >= size) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
      onFrame(all.subarray(0, size), width, height);
      const rest = all.subarray(size);
      pending = rest.length > 0 ? [Buffer.from(rest)] : [];
      pendingBytes = rest.length;
    }
  };
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
    if (size === 0) {
      const out = err.indexOf('Output #0');
      const m = out >= 0 ? /Stream #0:0[^\n]*Video: rawvideo[^\n]*?, (\d+)x(\d+)/.exec(err.slice(out)) : null;
      if (m) {
        width = Number(m[1]);
        height = Number(m[2]);
        size = (width * height * 3) / 2;
        drain();
      }
    }
    onStderr?.(err);
  });
  child.stdout?.on('data', (d: Buffer) => {
    pending.push(d);
    pendingBytes += d.length;
    drain();
  });
}

/**
 * Decodes a video file (any ffmpeg reads) into frames at `shape`, dated by their place in the file from
 * `t0Ms`. For tests and benchmarks: the same decoding as the live path, with known times.
 */
export async function decodeFile(ffmpeg: string, path: string, shape: DecodeShape, t0Ms = 0): Promise<DecodedFrame[]> {
  const child = spawnGuarded(ffmpeg, ['-hide_banner', '-nostats', '-loglevel', 'info', '-nostdin', '-i', path, ...outputArgs(shape)], ['ignore', 'pipe', 'pipe']);
  const frames: DecodedFrame[] = [];
  let stderr = '';
  frameReader(child, (data, width, height) => frames.push({ data: Buffer.from(data), width, height, atMs: t0Ms + (frames.length * 1000) / shape.fps }), (t) => (stderr = t));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  if (code !== 0) throw new Error(`ffmpeg could not decode ${path}: ${stderr.trim().split('\n').slice(-3).join(' ')}`);
  return frames;
}

export interface FrameTapOptions extends DecodeShape {
  camera: string;
  ffmpeg: string;
  /** Address the SFU sends to (this machine's, as the SFU reaches it); default 127.0.0.1. */
  listenHost?: string;
  /** The decoder is stopped after this long without packets, ms; default 2000. */
  silenceMs?: number;
}

export interface FrameTapEvents extends Record<string, unknown[]> {
  frame: [DecodedFrame];
  state: ['waiting' | 'decoding'];
}

interface Decoding {
  codec: VideoCodec;
  ssrc: number;
  child: ChildProcess;
  depacketizer: Depacketizer;
  ended: boolean;
}

const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
// What may wait in the decoder's pipe; past it, frames are skipped until the next keyframe (the decoder is behind).
const MAX_PIPE_BYTES = 8 * 1024 * 1024;

/**
 * A camera's frames for the detector: receives its RTP from the SFU on a port of its own (the master
 * subscribes the SFU to it), turns it back into the camera's byte stream and pipes it, from a keyframe,
 * into one ffmpeg that decodes small frames; `fps` of them a second are handed out, dated when they were
 * decoded. The decoder is stopped when the stream goes silent. One stream (SSRC) at a time.
 */
export class FrameTap extends TypedEmitter<FrameTapEvents> {
  readonly camera: string;
  readonly #o: FrameTapOptions;
  readonly #socket: dgram.Socket;
  readonly #hdr = newRtpHeader();
  #dec: Decoding | null = null;
  #lastPacketAt = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Skipping to the next keyframe because the decoder fell behind. */
  #skipping = false;
  readonly stats = { packets: 0, frames: 0, decoders: 0, skipped: 0 };

  constructor(o: FrameTapOptions) {
    super();
    this.#o = o;
    this.camera = o.camera;
    this.#socket = dgram.createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
    this.#socket.on('error', (error) => log.warn({ camera: o.camera, err: error }, 'detector socket error'));
    this.#socket.on('message', (buf) => this.#onPacket(buf));
    this.onListenerError = (event, error) => log.error({ camera: o.camera, event, err: error }, 'frame listener failed');
  }

  /** The UDP port the camera's RTP is to be sent to (0 before start). */
  get port(): number {
    try {
      return this.#socket.address().port;
    } catch {
      return 0;
    }
  }

  get decoding(): boolean {
    return this.#dec !== null && !this.#dec.ended;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.bind(0, this.#o.listenHost ?? '127.0.0.1', () => resolve()));
    this.#timer = setInterval(() => {
      if (this.#dec && !this.#dec.ended && Date.now() - this.#lastPacketAt > (this.#o.silenceMs ?? 2000)) this.#stop('no packets');
    }, 500);
  }

  #onPacket(buf: Buffer): void {
    if (this.#closed) return;
    const h = this.#hdr;
    if (!parseRtpHeader(buf, h) || h.payloadEnd <= h.payloadOffset) return;
    const codec = codecOfIngestPayloadType(h.payloadType);
    if (!codec) return;
    const now = Date.now();
    let dec = this.#dec;
    // Another stream (a new SFU) replaces the current one once the current one has been silent a second.
    if (dec && !dec.ended && (dec.ssrc !== h.ssrc || dec.codec !== codec)) {
      if (now - this.#lastPacketAt < 1000 && dec.ssrc !== h.ssrc) return;
      this.#stop('new stream');
      dec = null;
    }
    this.#lastPacketAt = now;
    this.stats.packets++;
    const key = isKeyframeStart(codec, buf, h.payloadOffset, h.payloadEnd);
    if (!dec || dec.ended) {
      if (!key) return;
      dec = this.#launch(codec, h.ssrc);
    }
    const stdin = dec.child.stdin;
    if (!stdin || stdin.destroyed) return;
    if (stdin.writableLength > MAX_PIPE_BYTES) {
      if (!this.#skipping) log.warn({ camera: this.camera }, 'the detector\'s decoder is behind; skipping to the next keyframe');
      this.#skipping = true;
    }
    if (this.#skipping) {
      if (!key || stdin.writableLength > MAX_PIPE_BYTES / 2) {
        this.stats.skipped++;
        return;
      }
      this.#skipping = false;
    }
    for (const chunk of dec.depacketizer.push(buf, h.payloadOffset, h.payloadEnd, h.sequenceNumber, h.marker)) stdin.write(chunk);
  }

  #launch(codec: VideoCodec, ssrc: number): Decoding {
    const child = spawnGuarded(this.#o.ffmpeg, [
      '-hide_banner', '-nostats', '-loglevel', 'info', '-nostdin',
      '-fflags', 'nobuffer', '-flags', 'low_delay',
      // Start at once: the stream starts with its parameter sets and a keyframe.
      '-probesize', '32', '-analyzeduration', '0',
      // One decoding thread: frame threads would each hold a frame back (latency), and small frames need no more.
      '-threads', '1',
      '-f', codec === 'H264' ? 'h264' : 'hevc',
      '-i', 'pipe:0',
      ...outputArgs({ width: this.#o.width }),
    ], ['pipe', 'pipe', 'pipe']);
    const dec: Decoding = { codec, ssrc, child, depacketizer: new Depacketizer(codec), ended: false };
    this.#dec = dec;
    this.#skipping = false;
    this.stats.decoders++;
    child.stdin?.on('error', () => {});
    let stderr = '';
    // Frames are kept `fps` a second: one when at least 90 % of the interval has passed since the last.
    const interval = 1000 / this.#o.fps;
    let lastAt = 0;
    frameReader(child, (data, width, height) => {
      const now = Date.now();
      if (dec.ended || now - lastAt < interval * 0.9) return;
      lastAt = now;
      this.stats.frames++;
      this.safeEmit('frame', { data, width, height, atMs: now });
    }, (t) => (stderr = t));
    child.once('exit', (code, signal) => {
      if (!dec.ended) {
        log.warn({ camera: this.camera, code, signal, stderr: stderr.trim().slice(-400) }, 'detector ffmpeg exited');
        this.#stop('ffmpeg exited');
      }
    });
    log.info({ camera: this.camera, codec }, 'decoding for motion detection');
    this.safeEmit('state', 'decoding');
    return dec;
  }

  #stop(reason: string): void {
    const dec = this.#dec;
    if (!dec || dec.ended) return;
    dec.ended = true;
    log.info({ camera: this.camera, reason }, 'decoding stopped');
    dec.child.stdin?.end();
    void terminate(dec.child, 2000);
    this.safeEmit('state', 'waiting');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    const dec = this.#dec;
    this.#stop('stopped');
    if (dec && dec.child.exitCode === null && dec.child.signalCode === null) {
      await new Promise<void>((resolve) => dec.child.once('exit', () => resolve()));
    }
    this.#socket.close();
    this.removeAllListeners();
  }
}
