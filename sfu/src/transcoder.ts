import dgram from 'node:dgram';
import {
  INGEST_PAYLOAD_TYPE, Supervisor, createLogger, newRtpHeader, parseRtpHeader, requireExecutable, rtpInputSdp,
} from '@cctv/core';
import { writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { MediaPacket, StreamTrack, TrackSink } from './track.js';

const log = createLogger('sfu:transcoder');

export interface TranscoderOptions {
  cameraId: string;
  /** The camera's H.265 track, fed to the decoder. */
  input: StreamTrack;
  /** The H.264 track its output goes into. */
  output: StreamTrack;
  preset: string;
  bitrateKbps: number;
  runtimeDir: string;
}

/**
 * The H.265 → H.264 transcode of one camera, shared by every viewer that cannot take H.265: one ffmpeg
 * decoding the camera's RTP and encoding with libx264 (zero latency) back into RTP. Started on the first
 * such viewer, with the current group of pictures so it can decode at once.
 */
export class Transcoder implements TrackSink {
  readonly #opts: TranscoderOptions;
  readonly #toFfmpeg = dgram.createSocket('udp4');
  readonly #fromFfmpeg = dgram.createSocket('udp4');
  readonly #hdr = newRtpHeader();
  #supervisor: Supervisor | null = null;
  #inPort = 0;
  #sdpPath = '';
  #feeding = false;
  #closed = false;

  constructor(opts: TranscoderOptions) {
    this.#opts = opts;
    this.#toFfmpeg.on('error', () => {});
    this.#fromFfmpeg.on('error', () => {});
    this.#fromFfmpeg.on('message', (buf) => {
      const h = this.#hdr;
      if (parseRtpHeader(buf, h) && h.payloadType === INGEST_PAYLOAD_TYPE.H264 && h.payloadEnd > h.payloadOffset) this.#opts.output.push(buf, h);
    });
  }

  /** Process ids of the running ffmpeg. */
  get pids(): number[] {
    return this.#supervisor?.pids ?? [];
  }

  async initialize(): Promise<void> {
    const ffmpeg = requireExecutable('ffmpeg', 'install it with: sudo apt-get install ffmpeg');
    await new Promise<void>((r) => this.#fromFfmpeg.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => this.#toFfmpeg.bind(0, '127.0.0.1', () => r()));
    const outPort = this.#fromFfmpeg.address().port;
    mkdirSync(this.#opts.runtimeDir, { recursive: true });
    this.#sdpPath = join(this.#opts.runtimeDir, `${this.#opts.cameraId}.transcode.sdp`);
    const { preset, bitrateKbps } = this.#opts;
    this.#supervisor = new Supervisor({
      name: `transcode ${this.#opts.cameraId}`,
      logger: log,
      initialDelayMs: 250,
      maxDelayMs: 2000,
      launch: () => {
        // A free port for ffmpeg to listen on: bind, read, release (ffmpeg binds it a moment later).
        this.#inPort = pickPort();
        writeFileSync(this.#sdpPath, rtpInputSdp({ codec: 'H265', payloadType: INGEST_PAYLOAD_TYPE.H265, port: this.#inPort }));
        return [
          {
            command: ffmpeg,
            args: [
              '-hide_banner', '-nostats', '-loglevel', 'warning', '-nostdin',
              '-protocol_whitelist', 'file,udp,rtp',
              '-fflags', 'nobuffer', '-flags', 'low_delay',
              '-reorder_queue_size', '0',
              '-probesize', '32768', '-analyzeduration', '0',
              '-i', this.#sdpPath,
              '-an',
              '-c:v', 'libx264', '-preset', preset, '-tune', 'zerolatency', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
              '-g', '60', '-bf', '0',
              '-b:v', `${bitrateKbps}k`, '-maxrate', `${bitrateKbps}k`, '-bufsize', `${Math.max(1, bitrateKbps >> 1)}k`,
              '-x264-params', 'repeat-headers=1',
              '-f', 'rtp', '-payload_type', String(INGEST_PAYLOAD_TYPE.H264), '-pkt_size', '1200',
              `rtp://127.0.0.1:${outPort}?rtcpport=${outPort}`,
            ],
          },
        ];
      },
    });
    this.#supervisor.on('spawn', () => {
      // Give ffmpeg a moment to open its socket, then start it with the current group of pictures.
      setTimeout(() => this.#primeWithGop(), 150).unref();
    });
    this.#supervisor.start();
    this.#opts.input.addSink(this);
  }

  #primeWithGop(): void {
    if (this.#closed) return;
    const gop = this.#opts.input.gop();
    if (gop) for (const frame of gop.frames) for (const p of frame) this.#forward(p);
    this.#feeding = true;
  }

  onPacket(p: MediaPacket): void {
    if (this.#feeding) this.#forward(p);
  }

  #forward(p: MediaPacket): void {
    if (this.#inPort) this.#toFfmpeg.send(p.buf, this.#inPort, '127.0.0.1');
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#opts.input.removeSink(this);
    await this.#supervisor?.close();
    this.#toFfmpeg.close();
    this.#fromFfmpeg.close();
    rmSync(this.#sdpPath, { force: true });
  }
}

function pickPort(): number {
  // Ports above the usual ephemeral range start are rarely taken; ffmpeg reports a clash and is restarted.
  return 20000 + 2 * Math.floor(Math.random() * 10000);
}
