// `npm run bench:motion`: what motion detection costs, how late it is, and how fast events are found. Ends with RESULT lines.
//   - model: frames per second per core of the shipped ONNX model at 320×180 (one thread), one frame at a
//     time and in batches of 16, and with the tracker (zones, events) after it; baseline: the same
//     arithmetic written as plain JavaScript loops, in the same process;
//   - decode: the detector's decoder on a camera stream (640×360, 15 fps): how long after a frame enters
//     the camera's encoder it reaches the model (frames carry their time, the timecode pattern), and its
//     CPU per camera; baseline: ffmpeg reading the RTP through an SDP file with its fps filter;
//   - alert: motion-to-webhook delay on the all-in-one system: cameras whose box enters the picture at
//     known wall-clock times, a webhook receiver that answers 200; delay from the box's entry to the
//     request's arrival, p50/p95;
//   - search: a year of events (--events rows over 10 cameras) in Postgres: the first and a deep page of
//     GET /api/events' query by cursor (keyset), p50/p95; baseline: the same page by OFFSET.
// Options: --seconds N (model and decode runs, default 10), --cameras N (alert, default 4), --alerts N
//          (events to time, default 20), --events N (default 1000000), --skip model,decode,alert,search
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MotionSchema, configureLogging, loadConfig, migrate, openDatabase, rtpInputSdp } from '@cctv/core';
import { DEFAULT_MODEL_PATH, EventStore, FrameTap, MotionModel, MotionTracker } from '@cctv/recorder';
import { startSystem } from '@cctv/signaling';
import { TimecodeFrames, decodeTimecode, TIMECODE_BITS, TIMECODE_BLOCK } from '../../camera-node/src/sources/test/timecode.js';
import { motionWindow } from '../../camera-node/src/sources/test/motionScene.js';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { cpuMs, result, summary } from '../lib/stats.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const SECONDS = Number(args.get('seconds') ?? 10);
const CAMERAS = Number(args.get('cameras') ?? 4);
const ALERTS = Number(args.get('alerts') ?? 20);
const EVENTS = Number(args.get('events') ?? 1_000_000);
const SKIP = new Set((args.get('skip') ?? '').split(',').filter(Boolean));
const say = (s: string) => process.stderr.write(`${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
configureLogging({ level: 'warn', format: 'json' });

const W = 320;
const H = 180;

/** Grey frames of the motion scene: noise everywhere, a box somewhere (a new place every frame). */
function frames(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let r = 12345;
  for (let k = 0; k < n; k++) {
    const f = new Uint8Array(W * H);
    for (let i = 0; i < f.length; i++) {
      r = (r * 1103515245 + 12345) >>> 0;
      f[i] = 100 + ((r >>> 24) % 21) - 10;
    }
    const x0 = (k * 7) % (W - 40);
    for (let y = 70; y < 110; y++) f.fill(230, y * W + x0, y * W + x0 + 40);
    out.push(f);
  }
  return out;
}

/** The model's arithmetic as plain loops: blur 3×3, brightness-compensated difference, 10×10 cells, background update. */
function jsModel(frame: Uint8Array, bg: Float32Array, alpha: number, alphaSlow: number, thr: number, cells: Float32Array, next: Float32Array): void {
  const d = new Float32Array(W * H);
  for (let i = 0; i < d.length; i++) d[i] = frame[i]! / 255 - bg[i]!;
  const blur = new Float32Array(W * H);
  let mean = 0;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let s = 0;
      let n = 0;
      for (let dy = -1; dy <= 1; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= H) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= W) continue;
          s += d[yy * W + xx]!;
          n++;
        }
      }
      blur[y * W + x] = s / n;
      mean += s / n;
    }
  }
  mean /= W * H;
  cells.fill(0);
  const cols = W / 10;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = y * W + x;
      const a = Math.abs(blur[i]! - mean);
      { const c = Math.floor(y / 10) * cols + Math.floor(x / 10); cells[c] = cells[c]! + a / 100; }
      const rate = a < thr ? alpha : alphaSlow;
      next[i] = bg[i]! + rate * (frame[i]! / 255 - bg[i]!);
    }
  }
}

async function benchModel(): Promise<void> {
  const model = await MotionModel.load(DEFAULT_MODEL_PATH, { threads: 1 });
  const fs = frames(64);
  const bg = new Float32Array(W * H).fill(100 / 255);
  const p = { alpha: 0.05, alphaSlow: 0.001, pixelThreshold: 0.045 };
  const timed = async (name: string, fn: () => Promise<number>) => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < SECONDS * 1000) n += await fn();
    const c = process.cpuUsage(c0);
    const cpuS = (c.user + c.system) / 1e6;
    const wallS = (performance.now() - t0) / 1000;
    say(`${name}: ${n} frames, ${(n / cpuS).toFixed(0)} frames/s per core of CPU, ${(n / wallS).toFixed(0)} frames/s of wall time`);
    return n / cpuS;
  };
  let k = 0;
  const one = await timed('model, batch 1', async () => {
    await model.run([{ frame: fs[k++ % fs.length]!, background: bg, ...p }], W, H);
    return 1;
  });
  const batch = await timed('model, batch 16', async () => {
    await model.run(Array.from({ length: 16 }, () => ({ frame: fs[k++ % fs.length]!, background: bg, ...p })), W, H);
    return 16;
  });
  const motion = MotionSchema.parse({ enabled: true, zones: [{ name: 'door', points: [[0.1, 0.1], [0.6, 0.1], [0.6, 0.9], [0.1, 0.9]] }, { name: 'tree', kind: 'mask', points: [[0.7, 0], [1, 0], [1, 0.4]] }] });
  const g = model.grid(W, H);
  const tracker = new MotionTracker(motion, { width: W, height: H, cellSize: model.cellSize, cols: g.cols, rows: g.rows });
  const yuv = Buffer.alloc((W * H * 3) / 2, 128);
  const tracked = await timed('model + tracker', async () => {
    const f = fs[k++ % fs.length]!;
    const [out] = await model.run([{ frame: f, background: tracker.backgroundFor(f), ...tracker.params }], W, H);
    tracker.observe(f, yuv, out!.cells, out!.background, Date.now());
    return 1;
  });
  const cells = new Float32Array(g.cols * g.rows);
  const next = new Float32Array(W * H);
  const js = await timed('plain JavaScript (baseline)', async () => {
    jsModel(fs[k++ % fs.length]!, bg, p.alpha, p.alphaSlow, p.pixelThreshold, cells, next);
    return 1;
  });
  await model.close();
  result('motion_model', {
    size: `${W}x${H}`, frames_per_core_s_batch1: Math.round(one), frames_per_core_s_batch16: Math.round(batch), frames_per_core_s_with_tracker: Math.round(tracked),
    baseline_js_frames_per_core_s: Math.round(js), ratio_vs_js: Number((one / js).toFixed(2)), cameras_at_10fps_per_core: Math.floor(tracked / 10),
  });
}

/** Frames of the timecode pattern sent as a camera sends them, to `port`; returns a stop function. */
function camera(port: number, fps: number): () => Promise<void> {
  const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'rawvideo', '-pix_fmt', 'yuv420p', '-s', '640x360', '-framerate', String(fps), '-i', 'pipe:0',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-profile:v', 'baseline', '-g', String(fps), '-bf', '0', '-x264-params', 'repeat-headers=1', '-b:v', '1000k',
    '-f', 'rtp', '-payload_type', '96', '-pkt_size', '1200', `rtp://127.0.0.1:${port}`], { stdio: ['pipe', 'ignore', 'inherit'] });
  ff.stdin.on('error', () => {});
  const tc = new TimecodeFrames(640, 360);
  const timer = setInterval(() => ff.stdin.write(tc.draw(Date.now())), 1000 / fps);
  return async () => {
    clearInterval(timer);
    ff.stdin.end();
    await new Promise((r) => ff.once('exit', r));
  };
}

/** The time a decoded frame (luma of `width` px) entered the encoder, from its timecode; null when unreadable. */
function frameTime(luma: Buffer, width: number): number | null {
  const scale = width / 640;
  const bits: number[] = [];
  for (let i = 0; i < TIMECODE_BITS; i++) {
    const x = Math.floor((i * TIMECODE_BLOCK + TIMECODE_BLOCK / 2) * scale);
    const y = Math.floor((TIMECODE_BLOCK / 2) * scale);
    bits.push(luma[y * width + x]! > 128 ? 1 : 0);
  }
  return decodeTimecode(bits, Date.now());
}

async function benchDecode(): Promise<void> {
  const fps = 15;
  // Ours: the FrameTap (depacketized into ffmpeg's stdin, every frame decoded, 5 a second kept).
  const tap = new FrameTap({ camera: 'bench', ffmpeg: 'ffmpeg', fps: 5, width: 640 });
  await tap.start();
  const ours: number[] = [];
  tap.on('frame', (f) => {
    const t = frameTime(f.data, f.width);
    if (t) ours.push(f.atMs - t);
  });
  let stop = camera(tap.port, fps);
  await sleep(SECONDS * 1000);
  await stop();
  await tap.close();

  // Baseline: ffmpeg reading the RTP itself through an SDP file, with its fps filter.
  const dir = mkdtempSync(join(tmpdir(), 'cctv-bench-motion-'));
  const port = 20000 + 2 * Math.floor(Math.random() * 10000);
  writeFileSync(join(dir, 's.sdp'), rtpInputSdp({ codec: 'H264', payloadType: 96, port }));
  const base: number[] = [];
  const ff = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-protocol_whitelist', 'file,udp,rtp', '-fflags', 'nobuffer', '-flags', 'low_delay', '-i', join(dir, 's.sdp'),
    '-vf', 'fps=5,scale=640:-2', '-pix_fmt', 'yuv420p', '-f', 'rawvideo', 'pipe:1'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let pending = Buffer.alloc(0);
  const size = (640 * 360 * 3) / 2;
  ff.stdout.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= size) {
      const t = frameTime(pending.subarray(0, size), 640);
      if (t) base.push(Date.now() - t);
      pending = pending.subarray(size);
    }
  });
  await sleep(500);
  stop = camera(port, fps);
  await sleep(SECONDS * 1000);
  await stop();
  ff.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  const o = summary(ours);
  const b = summary(base);
  result('motion_decode_latency', { camera: '640x360@15', frames: o.n, p50_ms: o.p50, p95_ms: o.p95, baseline_sdp_fps_filter_p50_ms: b.p50, baseline_p95_ms: b.p95, ratio_p50: Number((o.p50 / b.p50).toFixed(2)) });
}

async function benchDecodeCpu(): Promise<void> {
  // CPU of the decoder per camera: one FrameTap fed for SECONDS, its ffmpeg's CPU from /proc.
  const tap = new FrameTap({ camera: 'cpu', ffmpeg: 'ffmpeg', fps: 5, width: 320 });
  await tap.start();
  const stop = camera(tap.port, 15);
  await sleep(2000);
  const kids = () => readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)
    .filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('pipe:0') && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('scale=320'); } catch { return false; } });
  const pids = kids();
  const c0 = pids.reduce((n, p) => n + cpuMs(p), 0);
  const t0 = performance.now();
  await sleep(SECONDS * 1000);
  const pct = ((pids.reduce((n, p) => n + cpuMs(p), 0) - c0) / (performance.now() - t0)) * 100;
  await stop();
  await tap.close();
  result('motion_decode_cpu', { camera: '640x360@15 H.264', decoder_cpu_pct_of_core: Number(pct.toFixed(1)), cameras_per_core_decoding: Math.floor(100 / Math.max(0.1, pct)) });
}

async function benchAlert(): Promise<void> {
  const PERIOD_S = 5;
  const received: Array<{ camera: string; at: number; startMs: number }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const at = Date.now();
      const m = JSON.parse(body) as { type: string; data: { camera: string; startMs: number } };
      if (m.type === 'event.start') received.push({ camera: m.data.camera, at, startMs: m.data.startMs });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const dir = mkdtempSync(join(tmpdir(), 'cctv-bench-alert-'));
  let from = Infinity;
  const config = loadConfig({ env: {}, overrides: { http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } }, dataDir: dir, demoCamera: false, log: { level: 'warn' } } });
  const system = await startSystem({ config, adminPassword: 'bench-motion-password' });
  try {
    const base = `http://127.0.0.1:${system.port}`;
    const t = await fetch(`${base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'bench-motion-password' }) });
    const headers = { authorization: `Bearer ${((await t.json()) as { token: string }).token}`, 'content-type': 'application/json' };
    await fetch(`${base}/api/webhooks`, { method: 'POST', headers, body: JSON.stringify({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/` }) });
    for (let i = 0; i < CAMERAS; i++) {
      await fetch(`${base}/api/cameras`, {
        method: 'POST', headers,
        body: JSON.stringify({ id: `m${i}`, source: { kind: 'test', width: 640, height: 360, fps: 15, pattern: 'motion', periodS: PERIOD_S, motionS: 1.5 }, recording: { enabled: false }, motion: { enabled: true, alerts: [{ cooldownS: 0 }] } }),
      });
    }
    // Past the first window (the detectors start mid-way), then until enough have been timed.
    await sleep((PERIOD_S + 2) * 1000);
    from = Date.now();
    const deadline = from + Math.max(60_000, (ALERTS / CAMERAS) * PERIOD_S * 1000 * 2);
    while (received.filter((r) => r.at > from + 1000).length < ALERTS && Date.now() < deadline) await sleep(500);
  } finally {
    await system.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // The box enters at the start of its window (wall clock); the request arrived at `at`.
  const timed = received.filter((r) => r.at > from + 1000);
  const delays = timed.map((r) => r.at - motionWindow(r.startMs + 1000, PERIOD_S, 1.5).startMs).filter((d) => d >= 0 && d < PERIOD_S * 1000);
  const detect = timed.map((r) => r.startMs - motionWindow(r.startMs + 1000, PERIOD_S, 1.5).startMs);
  const s = summary(delays);
  const d = summary(detect);
  result('motion_alert_delay', { cameras: CAMERAS, alerts: s.n, motion_to_webhook_p50_ms: s.p50, p95_ms: s.p95, max_ms: s.max, event_start_error_p50_ms: d.p50, event_start_error_p95_ms: d.p95 });
}

async function benchSearch(): Promise<void> {
  const testDb = await createTestDatabase('cctv_bench_events');
  const db = await openDatabase({ url: testDb.url });
  try {
    await migrate(db);
    const yearAgo = Date.now() - 365 * 86_400_000;
    say(`search: inserting ${EVENTS} events over a year and 10 cameras…`);
    const t0 = performance.now();
    await db.query(
      `INSERT INTO events (camera_id, start_ms, end_ms, peak_score, zones, node)
       SELECT 'cam' || (g % 10), $1::int8 + (g::int8 * (365::int8 * 86400000 / $2::int8)), $1::int8 + (g::int8 * (365::int8 * 86400000 / $2::int8)) + 8000,
              (g % 100) / 100.0, CASE WHEN g % 3 = 0 THEN ARRAY['door'] ELSE ARRAY['all'] END, 'bench'
       FROM generate_series(1, $2::int8) g`,
      [yearAgo, EVENTS],
    );
    await db.query('ANALYZE events');
    say(`search: inserted in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const store = new EventStore(db);
    const cameras = ['cam1', 'cam2', 'cam3'];
    const q = { cameras, fromMs: yearAgo, toMs: Date.now(), limit: 50 };
    const time = async (fn: () => Promise<unknown>, n = 50) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        await fn();
        out.push(performance.now() - t);
      }
      return summary(out);
    };
    const first = await time(() => store.search(q));
    // A deep page: the cursor after 100 pages (5,000 events in).
    let after: { startMs: number; id: number } | null = null;
    for (let i = 0; i < 100; i++) {
      const page = await store.search({ ...q, after });
      const last = page[page.length - 1]!;
      after = { startMs: last.startMs, id: last.id };
    }
    const deep = await time(() => store.search({ ...q, after }));
    const zone = await time(() => store.search({ ...q, zone: 'door', minScore: 0.5, after }));
    const offset = await time(() => db.query('SELECT id FROM events WHERE camera_id = ANY($1::text[]) AND start_ms >= $2 AND start_ms < $3 ORDER BY start_ms DESC, id DESC OFFSET 5000 LIMIT 50', [cameras, q.fromMs, q.toMs]));
    result('motion_event_search', {
      events: EVENTS, first_page_p50_ms: first.p50, first_page_p95_ms: first.p95, page_100_p50_ms: deep.p50, page_100_p95_ms: deep.p95,
      zone_and_score_p95_ms: zone.p95, baseline_offset_page_100_p50_ms: offset.p50, baseline_offset_p95_ms: offset.p95, ratio_p95: Number((deep.p95 / offset.p95).toFixed(2)),
    });
  } finally {
    await db.close();
    await testDb.drop();
  }
}

if (!SKIP.has('model')) await benchModel();
if (!SKIP.has('decode')) {
  await benchDecode();
  await benchDecodeCpu();
}
if (!SKIP.has('search')) await benchSearch();
if (!SKIP.has('alert')) await benchAlert();
process.exit(0);
