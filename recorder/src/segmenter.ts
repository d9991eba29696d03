import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import {
  INGEST_PAYLOAD_TYPE, TypedEmitter, codecOfIngestPayloadType, counter, createLogger, isKeyframeStart, seqDiff, newRtpHeader, parseRtpHeader, rtpInputSdp, spawnGuarded, terminate, tsDiff,
  type VideoCodec,
} from '@cctv/core';

const log = createLogger('recorder:segmenter');
const lostPackets = counter('cctv_recorder_lost_packets_total', 'RTP packets that did not reach the recorder (gaps in sequence numbers).', ['camera']);

/**
 * Where a camera's RTP comes from: its SFU, asked to send it to us as plain RTP. A passive source makes
 * no requests: someone else (the cluster's master) subscribes the SFU to our port, and packets are taken
 * by their payload type (the ingest contract: 96 H.264, 97 H.265).
 */
export interface StreamSource {
  passive?: boolean;
  subscribe(camera: string, host: string, port: number, leaseMs: number): Promise<{ id: string; codec: VideoCodec; payloadType: number; ssrc: number }>;
  /** False when the subscription is gone (the SFU restarted, the camera changed codec, the lease ran out). */
  renew(camera: string, id: string): Promise<boolean>;
  unsubscribe(camera: string, id: string): Promise<void>;
}

/** A finished segment in the spool. */
export interface SpooledSegment {
  camera: string;
  run: string;
  seq: number;
  /** Path relative to the spool directory. */
  path: string;
  /** Path of the run's init section, relative to the spool directory. */
  initPath: string;
  startMs: number;
  durationMs: number;
}

/** What a run writes beside its segments, so a restarted recorder can still date them. */
interface RunInfo {
  camera: string;
  run: string;
  codec: VideoCodec;
  /** Wall clock of the run's first keyframe (when it was captured, as near as we can tell), ms. */
  wall0: number;
}

export interface SegmenterEvents extends Record<string, unknown[]> {
  segment: [SpooledSegment];
  /** A run ended (silence, a new stream, rotation, stop): `endMs` is when its last segment ends. */
  runEnded: [{ run: string; reason: string }];
  state: ['waiting' | 'recording'];
}

export interface SegmenterOptions {
  camera: string;
  spoolDir: string;
  source: StreamSource;
  ffmpeg: string;
  segmentSeconds: number;
  /** Address the SFU sends to (this machine's, as the SFU reaches it); default 127.0.0.1. */
  listenHost?: string;
  /** A run is closed after this long without packets, ms; default 2000. */
  silenceMs?: number;
  /** A run is replaced by a new one at a keyframe after this long, ms; default 15 minutes. */
  rotateMs?: number;
  /** Re-encode H.264 to H.265 for storage (libx265 with this preset and CRF); default: copy the stream. */
  h265?: { preset: string; crf: number };
}

const LEASE_MS = 10_000;
// Socket receive buffers (ours and ffmpeg's): a lost packet breaks a frame, and browsers refuse to
// decode a broken frame. The kernel caps this at net.core.rmem_max.
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
// What is queued while ffmpeg starts is handed to it in slices of this many bytes, a tick apart.
const FLUSH_SLICE_BYTES = 64 * 1024;
const RENEW_MS = 3000;
const POLL_MS = 400;
// A run's packets kept while its ffmpeg starts: a group of pictures of a 20 Mbit/s camera fits.
const MAX_BUFFERED = 20_000;

interface Run {
  info: RunInfo;
  dir: string;
  port: number;
  child: ChildProcess | null;
  ready: boolean;
  buffer: Buffer[];
  /** Next playlist entry to hand out, and where it starts relative to wall0. */
  nextSeq: number;
  offsetMs: number;
  ts0: number;
  startedAt: number;
  ended: boolean;
  exited: Promise<void>;
  /** A socket connected to ffmpeg's input port (sends without an address lookup each). */
  out: dgram.Socket | null;
}

/** A free even UDP port whose odd neighbour (ffmpeg's RTCP) is free too. */
async function freeRtpPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + 2 * Math.floor(Math.random() * 20000);
    const ok = await Promise.all([port, port + 1].map((p) => new Promise<boolean>((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(p, '127.0.0.1', () => s.close(() => resolve(true)));
    })));
    if (ok.every(Boolean)) return port;
  }
  throw new Error('no free UDP port pair for the recorder');
}

/** Whether something has bound UDP `port` on this machine (Linux: /proc/net/udp*). */
function udpPortBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
    try {
      if (readFileSync(f, 'utf8').includes(hex)) return true;
    } catch {
      return false;
    }
  }
  return false;
}

/** Parses an HLS media playlist as ffmpeg writes it: complete entries only. */
export function parsePlaylist(text: string): { mediaSequence: number; entries: Array<{ uri: string; durationS: number }>; ended: boolean } {
  const lines = text.split('\n');
  // A line without its newline may still be being written.
  if (!text.endsWith('\n')) lines.pop();
  let mediaSequence = 0;
  let duration: number | null = null;
  const entries: Array<{ uri: string; durationS: number }> = [];
  let ended = false;
  for (const raw of lines) {
    const l = raw.trim();
    if (l.startsWith('#EXT-X-MEDIA-SEQUENCE:')) mediaSequence = Number(l.slice(22));
    else if (l.startsWith('#EXTINF:')) duration = Number.parseFloat(l.slice(8));
    else if (l === '#EXT-X-ENDLIST') ended = true;
    else if (l && !l.startsWith('#') && duration !== null) {
      entries.push({ uri: l, durationS: duration });
      duration = null;
    }
  }
  return { mediaSequence, entries, ended };
}

/**
 * Hands out what the runs of an earlier process left in a camera's spool: finished segments (those
 * ffmpeg listed), never partial ones, which are deleted. Marks each of those runs closed.
 */
export async function recoverSpool(spoolDir: string, camera: string, onSegment: (s: SpooledSegment) => void): Promise<void> {
  const camDir = join(spoolDir, camera);
  let runs: string[] = [];
  try {
    runs = await readdir(camDir);
  } catch {
    return;
  }
  for (const run of runs) {
    const dir = join(camDir, run);
    let info: RunInfo;
    try {
      info = JSON.parse(await readFile(join(dir, 'run.json'), 'utf8')) as RunInfo;
    } catch {
      continue;
    }
    // What ffmpeg was writing when it was stopped is not a segment.
    for (const f of await readdir(dir)) if (f.endsWith('.tmp')) await rm(join(dir, f), { force: true });
    let text = '';
    try {
      text = await readFile(join(dir, 'index.m3u8'), 'utf8');
    } catch {
      text = '';
    }
    const pl = parsePlaylist(text);
    let offset = 0;
    pl.entries.forEach((e, i) => {
      const seq = pl.mediaSequence + i;
      const durationMs = Math.round(e.durationS * 1000);
      if (existsSync(join(dir, e.uri))) {
        onSegment({
          camera, run, seq, path: join(camera, run, e.uri), initPath: join(camera, run, 'init.mp4'),
          startMs: Math.round(info.wall0 + offset), durationMs,
        });
      }
      offset += e.durationS * 1000;
    });
    await rm(join(dir, 'index.m3u8.tmp'), { force: true });
    await writeFile(join(dir, 'closed'), '');
  }
}

/**
 * Records one camera: receives its RTP from the SFU, and runs one ffmpeg per "run" that remuxes it,
 * without re-encoding, into HLS fMP4 segments cut at keyframes in the spool. A run starts at a keyframe
 * and ends at a silence, at a new stream (another SFU), on rotation or on stop; each has its own init
 * section. A segment is handed out only after ffmpeg has finished it and listed it in its playlist, so
 * a half-written segment is never seen, even when this process is killed.
 */
export class Segmenter extends TypedEmitter<SegmenterEvents> {
  readonly camera: string;
  readonly #o: SegmenterOptions;
  readonly #socket: dgram.Socket;
  readonly #hdr = newRtpHeader();
  #sub: { id: string; codec: VideoCodec; payloadType: number; ssrc: number } | null = null;
  #run: Run | null = null;
  #lastPacketAt = 0;
  #lastTs = 0;
  #timers: NodeJS.Timeout[] = [];
  #closed = false;
  #subscribing = false;
  readonly stats = { packets: 0, bytes: 0, runs: 0, segments: 0, lost: 0 };

  constructor(o: SegmenterOptions) {
    super();
    this.#o = o;
    this.camera = o.camera;
    // Room for bursts (a group of pictures replayed at once) beside the live stream.
    this.#socket = dgram.createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER_BYTES });
    this.#socket.on('error', (error) => log.warn({ camera: o.camera, err: error }, 'recorder socket error'));
    this.#socket.on('message', (buf) => this.#onPacket(buf));
    this.onListenerError = (event, error) => log.error({ camera: o.camera, event, err: error }, 'segmenter listener failed');
  }

  get recording(): boolean {
    return this.#run !== null && !this.#run.ended;
  }

  get lastPacketAt(): number {
    return this.#lastPacketAt;
  }

  /** The UDP port the camera's RTP is to be sent to (0 before start). */
  get port(): number {
    try {
      return this.#socket.address().port;
    } catch {
      return 0;
    }
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.bind(0, this.#o.listenHost ?? '127.0.0.1', () => resolve()));
    await mkdir(join(this.#o.spoolDir, this.camera), { recursive: true });
    this.#timers.push(setInterval(() => this.#tick(), POLL_MS));
    if (!this.#o.source.passive) {
      this.#timers.push(setInterval(() => void this.#keepSubscribed(), RENEW_MS));
      void this.#keepSubscribed();
    }
  }

  async #keepSubscribed(): Promise<void> {
    if (this.#closed || this.#subscribing) return;
    this.#subscribing = true;
    try {
      if (this.#sub && (await this.#o.source.renew(this.camera, this.#sub.id).catch(() => false))) return;
      const port = (this.#socket.address()).port;
      const sub = await this.#o.source.subscribe(this.camera, this.#o.listenHost ?? '127.0.0.1', port, LEASE_MS);
      if (this.#closed) {
        await this.#o.source.unsubscribe(this.camera, sub.id).catch(() => {});
        return;
      }
      if (this.#sub) log.info({ camera: this.camera }, 'subscribed again to the camera\'s stream');
      this.#sub = sub;
    } catch (error) {
      log.debug({ camera: this.camera, err: error }, 'cannot subscribe to the camera yet');
    } finally {
      this.#subscribing = false;
    }
  }

  #onPacket(buf: Buffer): void {
    if (this.#closed) return;
    const sub = this.#sub;
    const h = this.#hdr;
    if (!parseRtpHeader(buf, h) || h.payloadEnd <= h.payloadOffset) return;
    const codec = this.#o.source.passive ? codecOfIngestPayloadType(h.payloadType) : sub && h.payloadType === sub.payloadType ? sub.codec : undefined;
    if (!codec) return;
    const now = Date.now();
    // One stream at a time: another SSRC (a second subscription, briefly, when the master changes) is
    // taken only once the current one has been silent for a second.
    if (this.#runSsrc !== 0 && h.ssrc !== this.#runSsrc && now - this.#ssrcLastAt < 1000) return;
    if (h.ssrc === this.#runSsrc) {
      this.#ssrcLastAt = now;
      const d = seqDiff(h.sequenceNumber, this.#lastSeq);
      if (d > 1 && d < 1000) {
        this.stats.lost += d - 1;
        lostPackets.inc({ camera: this.camera }, d - 1);
      }
    }
    this.#lastSeq = h.sequenceNumber;
    this.#lastPacketAt = now;
    this.#lastTs = h.timestamp;
    this.stats.packets++;
    this.stats.bytes += buf.length;
    let run = this.#run;
    const key = isKeyframeStart(codec, buf, h.payloadOffset, h.payloadEnd);
    if (run && !run.ended && (h.ssrc !== this.#runSsrc || run.info.codec !== codec)) {
      this.#endRun('new stream');
      run = null;
    }
    if (key && run && !run.ended && now - run.startedAt > (this.#o.rotateMs ?? 15 * 60_000)) {
      // Rotation at a keyframe: the new run starts with it, the old one ends right before it.
      this.#endRun('rotation');
      run = null;
    }
    if (!run || run.ended) {
      if (!key) return;
      run = this.#startRun(codec, h.timestamp, now, h.ssrc);
    }
    if (run.ready) run.out?.send(buf);
    else if (run.buffer.length < MAX_BUFFERED) run.buffer.push(Buffer.from(buf));
  }

  #runSsrc = 0;
  #ssrcLastAt = 0;
  #lastSeq = 0;

  #startRun(codec: VideoCodec, ts0: number, now: number, ssrc: number): Run {
    const id = `${now}-${randomBytes(3).toString('hex')}`;
    const dir = join(this.#o.spoolDir, this.camera, id);
    // The first keyframe may be a replayed one: date it by how far behind the newest packet it is.
    const wall0 = now - Math.max(0, tsDiff(this.#lastTs, ts0)) / 90;
    const run: Run = {
      info: { camera: this.camera, run: id, codec, wall0 }, dir, port: 0, child: null, ready: false, buffer: [],
      nextSeq: 0, offsetMs: 0, ts0, startedAt: now, ended: false, exited: Promise.resolve(), out: null,
    };
    this.#runSsrc = ssrc;
    this.#ssrcLastAt = now;
    this.#run = run;
    this.stats.runs++;
    void this.#launch(run).catch((error: unknown) => {
      log.error({ camera: this.camera, err: error }, 'cannot start the recording ffmpeg');
      this.#endRun('ffmpeg failed to start');
    });
    this.safeEmit('state', 'recording');
    return run;
  }

  async #launch(run: Run): Promise<void> {
    await mkdir(run.dir, { recursive: true });
    // run.json is synced before any segment exists: a restarted recorder can always date them.
    const fh = await open(join(run.dir, 'run.json'), 'w');
    await fh.writeFile(JSON.stringify(run.info));
    await fh.sync();
    await fh.close();
    run.port = await freeRtpPort();
    const sdp = join(run.dir, 'stream.sdp');
    await writeFile(sdp, rtpInputSdp({ codec: run.info.codec, payloadType: INGEST_PAYLOAD_TYPE[run.info.codec], port: run.port }));
    if (run.ended) return;
    const child = spawnGuarded(this.#o.ffmpeg, [
      '-hide_banner', '-nostats', '-loglevel', 'error', '-nostdin',
      '-protocol_whitelist', 'file,udp,rtp',
      '-reorder_queue_size', '500',
      '-buffer_size', String(RECV_BUFFER_BYTES),
      '-probesize', '5000000', '-analyzeduration', '1000000',
      '-i', sdp,
      '-map', '0:v:0',
      ...(this.#o.h265 && run.info.codec === 'H264'
        ? [
          '-c:v', 'libx265', '-preset', this.#o.h265.preset, '-crf', String(this.#o.h265.crf), '-tag:v', 'hvc1',
          // A keyframe at least every segment, so segments still start with one.
          '-x265-params', `log-level=error:keyint=${Math.round(this.#o.segmentSeconds * 30)}:min-keyint=1:scenecut=0`,
          '-force_key_frames', `expr:gte(t,n_forced*${this.#o.segmentSeconds})`,
        ]
        : ['-c', 'copy']),
      '-f', 'hls',
      '-hls_time', String(this.#o.segmentSeconds),
      '-hls_list_size', '0',
      '-hls_segment_type', 'fmp4',
      '-hls_fmp4_init_filename', 'init.mp4',
      '-hls_segment_filename', join(run.dir, 'seg-%d.m4s'),
      '-hls_flags', '+temp_file+independent_segments',
      '-start_number', '0',
      join(run.dir, 'index.m3u8'),
    ], ['ignore', 'ignore', 'pipe']);
    run.child = child;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    run.exited = new Promise<void>((resolve) => child.once('exit', (code, signal) => {
      if (!run.ended) {
        log.warn({ camera: this.camera, run: run.info.run, code, signal, stderr: stderr.trim().slice(-500) }, 'recording ffmpeg exited');
        this.#endRun('ffmpeg exited');
      }
      resolve();
    }));
    // Feed it once its input port is open (the buffered packets start at the run's keyframe).
    const deadline = Date.now() + 3000;
    while (!udpPortBound(run.port) && Date.now() < deadline && !run.ended) await new Promise((r) => setTimeout(r, 20));
    if (run.ended) return;
    const out = dgram.createSocket('udp4');
    out.on('error', () => {});
    await new Promise<void>((resolve) => out.connect(run.port, '127.0.0.1', () => resolve()));
    if (run.ended) {
      out.close();
      return;
    }
    run.out = out;
    // Handed over in slices: a burst bigger than ffmpeg's socket buffer would lose packets. Packets that
    // arrive meanwhile join the queue, so the order holds.
    while (run.buffer.length > 0 && !run.ended) {
      let bytes = 0;
      while (run.buffer.length > 0 && bytes < FLUSH_SLICE_BYTES) {
        const b = run.buffer.shift()!;
        bytes += b.length;
        run.out?.send(b);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    run.ready = true;
    log.info({ camera: this.camera, run: run.info.run }, 'recording run started');
  }

  #endRun(reason: string): void {
    const run = this.#run;
    if (!run || run.ended) return;
    run.ended = true;
    run.ready = false;
    log.info({ camera: this.camera, run: run.info.run, reason }, 'recording run ended');
    const child = run.child;
    void (async () => {
      // ffmpeg finishes its last segment and ends its playlist on SIGTERM.
      if (child) await terminate(child, 3000);
      await run.exited;
      run.out?.close();
      run.out = null;
      this.#poll(run);
      await writeFile(join(run.dir, 'closed'), '').catch(() => {});
      this.safeEmit('runEnded', { run: run.info.run, reason });
    })();
    this.safeEmit('state', 'waiting');
  }

  #tick(): void {
    const run = this.#run;
    if (!run) return;
    if (!run.ended && this.#lastPacketAt && Date.now() - this.#lastPacketAt > (this.#o.silenceMs ?? 2000)) this.#endRun('no packets');
    if (!run.ended) this.#poll(run);
  }

  /** Hands out the segments ffmpeg has listed since the last look. */
  #poll(run: Run): void {
    let text: string;
    try {
      text = readFileSync(join(run.dir, 'index.m3u8'), 'utf8');
    } catch {
      return;
    }
    const pl = parsePlaylist(text);
    for (let i = run.nextSeq - pl.mediaSequence; i < pl.entries.length; i++) {
      if (i < 0) continue;
      const e = pl.entries[i]!;
      const seq = pl.mediaSequence + i;
      const durationMs = Math.round(e.durationS * 1000);
      this.stats.segments++;
      this.safeEmit('segment', {
        camera: this.camera, run: run.info.run, seq, path: join(this.camera, run.info.run, e.uri), initPath: join(this.camera, run.info.run, 'init.mp4'),
        startMs: Math.round(run.info.wall0 + run.offsetMs), durationMs,
      });
      run.offsetMs += e.durationS * 1000;
      run.nextSeq = seq + 1;
    }
  }

  /** Stops recording: the current segment is finished and handed out; the subscription is ended. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    const run = this.#run;
    this.#endRun('stopped');
    if (run) {
      await run.exited;
      this.#poll(run);
    }
    if (this.#sub && !this.#o.source.passive) await this.#o.source.unsubscribe(this.camera, this.#sub.id).catch(() => {});
    this.#socket.close();
    this.removeAllListeners();
  }
}
