// `npm run bench:archive`: what recording costs and how fast the archive answers. Ends with RESULT lines.
//   - remux: N cameras of 4 Mbit/s 720p H.264 recorded by the recorder (its process and its ffmpegs),
//     CPU per camera and cameras per core; baseline: the same cameras remuxed by bare ffmpegs reading the
//     SFU's RTP (no spool hashing, database, copy to the storage or verification);
//   - drain: the storage taken away for a while, then back: backlog and how fast the spool empties;
//   - timeline: one camera's 30-day timeline among --rows segment rows in Postgres, p50/p95; baseline:
//     the same answer computed from the segment rows (gaps and islands) instead of the kept ranges;
//   - h265: the archive's size re-encoded to H.265 (the recorder's storageCodec: H265) against the camera's
//     H.264 at equal quality (SSIM against the uncompressed source).
// Options: --cameras N (default 16), --seconds N (CPU sample, default 20), --outage N (s, default 30),
//          --rows N (default 10000000), --skip remux,timeline,h265 (drain runs with remux)
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configureLogging, migrate, openDatabase, rtpInputSdp, spawnGuarded } from '@cctv/core';
import { createSfu } from '@cctv/sfu';
import { Archive, timeline } from '@cctv/recorder';
import { ConfigSchema } from '@cctv/core';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { result, summary } from '../lib/stats.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const CAMERAS = Number(args.get('cameras') ?? 16);
const SECONDS = Number(args.get('seconds') ?? 20);
const OUTAGE_S = Number(args.get('outage') ?? 30);
const ROWS = Number(args.get('rows') ?? 10_000_000);
const SKIP = new Set((args.get('skip') ?? '').split(',').filter(Boolean));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const say = (s: string) => process.stderr.write(`${s}\n`);

/** CPU time (user + system, ms) of a process and every descendant alive now. */
function treeCpuMs(root: number): number {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      cpu.set(Number(d), (Number(f[11]) + Number(f[12])) * 10);
    } catch {
      // gone
    }
  }
  let total = 0;
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    total += cpu.get(p) ?? 0;
    for (const [c, pp] of parent) if (pp === p) stack.push(c);
  }
  return total;
}

async function cpuOver(pids: number[], seconds: number): Promise<number> {
  const a = pids.reduce((n, p) => n + treeCpuMs(p), 0);
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const b = pids.reduce((n, p) => n + treeCpuMs(p), 0);
  return (b - a) / (performance.now() - t0);
}

function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')}: ${r.stderr}`);
}

configureLogging({ level: (process.env.BENCH_LOG as 'info' | undefined) ?? 'warn', format: 'json' });
const dir = mkdtempSync(join(tmpdir(), 'cctv-bench-archive-'));
const cleanups: Array<() => Promise<void> | void> = [];
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

async function remuxAndDrain(): Promise<void> {
  const clip = join(dir, 'clip.mp4');
  say('encoding a 10 s 720p 4 Mbit/s clip…');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30,noise=alls=6:allf=t', '-t', '10', '-pix_fmt', 'yuv420p', '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '4M', '-g', '60', '-bf', '0', '-x264-params', 'repeat-headers=1', clip]);
  const sfu = await createSfu({ settings: ConfigSchema.parse({}).sfu, dataDir: join(dir, 'sfu') });
  cleanups.push(() => sfu.close());
  const cams = Array.from({ length: CAMERAS }, (_, i) => `cam${i}`);
  const sources: ChildProcess[] = [];
  for (const c of cams) {
    const room = await sfu.createRoom(c);
    sources.push(spawnGuarded('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-c', 'copy', '-f', 'rtp', '-payload_type', '96', '-pkt_size', '1200', `rtp://127.0.0.1:${room.ingestPort}`], ['ignore', 'ignore', 'ignore']));
  }
  cleanups.push(() => sources.forEach((s) => s.kill('SIGKILL')));
  await sleep(3000);

  const testDb = await createTestDatabase('cctv_bench_rec');
  cleanups.push(() => testDb.drop());
  const setup = await openDatabase({ url: testDb.url });
  await migrate(setup);
  await setup.close();
  const nas = join(dir, 'nas');
  type Status = { segments: number; stored: number; spool: { segments: number; bytes: number }; storage: boolean; problem: string | null };
  let status = null as Status | null;
  const child = fork(join(import.meta.dirname, 'recorderProc.ts'), [JSON.stringify({ dbUrl: testDb.url, dataDir: join(dir, 'data'), nas, cameras: cams })], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  child.on('message', async (m: { id?: number; op?: string; args?: unknown[]; status?: Status }) => {
    if (m.status) status = m.status;
    if (m.id === undefined || !Array.isArray(m.args)) {
      if (process.env.BENCH_DEBUG && !m.status) say(`message: ${JSON.stringify(m)}`);
      return;
    }
    const [camera, a, b, c] = m.args as [string, unknown, unknown, unknown];
    let r: unknown;
    try {
      if (m.op === 'subscribe') r = await sfu.room(camera).subscribe({ host: a as string, port: b as number, leaseMs: c as number });
      else if (m.op === 'renew') r = sfu.hasRoom(camera) && sfu.room(camera).renewSubscription(a as string);
      else if (m.op === 'unsubscribe') r = sfu.hasRoom(camera) ? sfu.room(camera).unsubscribe(a as string) : undefined;
    } catch {
      r = false;
    }
    child.send({ id: m.id, result: r });
  });
  say(`recording ${CAMERAS} cameras…`);
  const deadline = Date.now() + 30_000;
  while (!(status && status.stored >= CAMERAS) && Date.now() < deadline) await sleep(250);
  const recCores = await cpuOver([child.pid!], SECONDS);
  const perCam = recCores / CAMERAS;
  const stored0 = status!.stored;

  // The storage goes away (an empty directory where the share was), then comes back.
  renameSync(nas, `${nas}.away`);
  mkdirSync(nas);
  child.send({ op: 'check' });
  say(`storage away for ${OUTAGE_S} s…`);
  await sleep(OUTAGE_S * 1000);
  const backlog = status!.spool.segments;
  const backlogBytes = status!.spool.bytes;
  const producedBefore = status!.segments;
  rmdirSync(nas);
  renameSync(`${nas}.away`, nas);
  const back = performance.now();
  child.send({ op: 'check' });
  while (status!.spool.segments > CAMERAS && performance.now() - back < 600_000) await sleep(50);
  const drainS = (performance.now() - back) / 1000;
  const during = status!.segments - producedBefore;
  child.send({ op: 'stop' });
  await new Promise((r) => child.once('exit', r));
  const files = readdirSync(nas, { recursive: true }).filter((f) => String(f).endsWith('.m4s')).length;

  // Baseline: bare ffmpegs remuxing the same RTP (the floor of what any recorder on ffmpeg pays).
  const base: ChildProcess[] = [];
  for (const [i, c] of cams.entries()) {
    const port = 30000 + i * 2;
    const out = join(dir, 'baseline', c);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 's.sdp'), rtpInputSdp({ codec: 'H264', payloadType: 96, port }));
    base.push(spawnGuarded('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-protocol_whitelist', 'file,udp,rtp', '-i', join(out, 's.sdp'), '-c', 'copy', '-f', 'hls', '-hls_time', '4', '-hls_list_size', '0', '-hls_segment_type', 'fmp4', join(out, 'i.m3u8')], ['ignore', 'ignore', 'ignore']));
  }
  await sleep(1000);
  const subs = await Promise.all(cams.map((c, i) => sfu.room(c).subscribe({ host: '127.0.0.1', port: 30000 + i * 2, leaseMs: 120_000 })));
  await sleep(6000);
  const baseCores = await cpuOver(base.map((b) => b.pid!), SECONDS);
  subs.forEach((s, i) => sfu.room(cams[i]!).unsubscribe(s.id));
  base.forEach((b) => b.kill('SIGKILL'));
  result('remux', {
    cameras: CAMERAS, mbps_per_camera: 4, cpu_cores: recCores, cpu_per_camera_pct: perCam * 100,
    cameras_per_core: 1 / perCam, baseline_cpu_per_camera_pct: (baseCores / CAMERAS) * 100, baseline_cameras_per_core: CAMERAS / baseCores,
    ratio_vs_baseline: recCores / baseCores, target_cameras_per_core: 32, stored_while_measuring: status!.stored - stored0,
  });
  result('drain', {
    outage_s: OUTAGE_S, backlog_segments: backlog, backlog_mb: backlogBytes / 1e6, drain_s: drainS,
    segments_per_s: (backlog + during) / drainS, mb_per_s: backlogBytes / 1e6 / drainS, files_on_storage: files,
  });
}

async function timelineBench(): Promise<void> {
  const testDb = await createTestDatabase('cctv_bench_tl');
  cleanups.push(() => testDb.drop());
  const db = await openDatabase({ url: testDb.url });
  cleanups.push(() => db.close());
  await migrate(db);
  const now = Date.now();
  const days = 30;
  const per = days * 21_600; // 4 s segments
  const others = Math.max(0, Math.ceil((ROWS - per) / per));
  say(`writing ${ROWS} segment rows (1 camera of 30 days, ${others} others)…`);
  const t0 = performance.now();
  await db.query("INSERT INTO recording_inits (sha256, camera_id, bytes, data) VALUES ('i', 'bench', 1, '\\x00')");
  // The bench camera: 30 days of 4 s segments, with a 10-minute gap every 6 hours.
  const cams = ['bench', ...Array.from({ length: others }, (_, i) => `other${i}`)];
  let written = 0;
  for (const cam of cams) {
    const n = Math.min(per, ROWS - written);
    if (n <= 0) break;
    await db.query(
      `INSERT INTO segments (camera_id, run, seq, start_ms, duration_ms, bytes, sha256, init_sha256, prev_link, link, state, path, recorder)
       SELECT $1, 'r' || (g / 5400), g, $2::int8 + g::int8 * 4000 + (g::int8 / 5400) * 600000, 4000, 2000000, md5(g::text), 'i', NULL, md5(g::text), 'stored', 'x', 'bench'
       FROM generate_series(0, $3::int - 1) g`,
      [cam, now - days * 86_400_000 - 40 * 600_000, n],
    );
    written += n;
  }
  // The kept ranges of the bench camera, as the recorder keeps them.
  await db.query(
    `INSERT INTO recording_ranges (camera_id, start_ms, end_ms, segments, bytes)
     SELECT camera_id, min(start_ms), max(start_ms + duration_ms), count(*), sum(bytes) FROM segments WHERE camera_id = 'bench' GROUP BY camera_id, run`,
  );
  await db.query('ANALYZE');
  say(`  written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  const archive = new Archive(db);
  const from = now - days * 86_400_000;
  const kept: number[] = [];
  const naive: number[] = [];
  let ranges = 0;
  for (let i = 0; i < 50; i++) {
    let t = performance.now();
    const tl = await timeline(archive, 'bench', from, now);
    kept.push(performance.now() - t);
    ranges = tl.recorded.length;
    t = performance.now();
    // Gaps and islands over the segment rows: what a timeline without kept ranges has to do.
    await db.query(
      `SELECT min(start_ms) AS s, max(e) AS e FROM (
         SELECT start_ms, start_ms + duration_ms AS e, sum(brk) OVER (ORDER BY start_ms) AS grp FROM (
           SELECT start_ms, duration_ms, CASE WHEN start_ms - lag(start_ms + duration_ms) OVER (ORDER BY start_ms) > 1500 THEN 1 ELSE 0 END AS brk
           FROM segments WHERE camera_id = 'bench' AND start_ms >= $1 AND start_ms < $2) x) y GROUP BY grp ORDER BY 1`,
      [from, now],
    );
    naive.push(performance.now() - t);
  }
  const k = summary(kept);
  const n = summary(naive);
  result('timeline', { rows: written, camera_rows: per, days, ranges, p50_ms: k.p50, p95_ms: k.p95, baseline_p50_ms: n.p50, baseline_p95_ms: n.p95, speedup_p95: n.p95 / k.p95, target_p95_ms: 50 });
}

function ssimOf(file: string, ref: string): number {
  const r = spawnSync('ffmpeg', ['-hide_banner', '-i', file, '-i', ref, '-lavfi', 'ssim', '-f', 'null', '-'], { encoding: 'utf8' });
  const m = /All:([0-9.]+)/.exec(r.stderr);
  if (!m) throw new Error(`no SSIM: ${r.stderr.slice(-300)}`);
  return Number(m[1]);
}

async function h265Bench(): Promise<void> {
  say('H.265 against H.264 at equal quality…');
  const ref = join(dir, 'ref.y4m');
  // 10 s of 720p with moving content and sensor-like noise, uncompressed.
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30,noise=alls=6:allf=t', '-t', '10', '-pix_fmt', 'yuv420p', ref]);
  // What a camera sends: H.264 at 4 Mbit/s.
  const cam = join(dir, 'cam.mp4');
  ffmpeg(['-i', ref, '-c:v', 'libx264', '-preset', 'veryfast', '-b:v', '4M', '-maxrate', '4M', '-bufsize', '4M', '-g', '60', '-bf', '0', cam]);
  const camSsim = ssimOf(cam, ref);
  const camSize = statSync(cam).size;
  // The recorder's re-encode of the camera's stream, at the CRF that keeps (at least) the camera's quality.
  let best: { crf: number; size: number; ssim: number } | null = null;
  for (const crf of [34, 31, 28, 25, 22]) {
    const out = join(dir, `h265-${crf}.mp4`);
    ffmpeg(['-i', cam, '-c:v', 'libx265', '-preset', 'veryfast', '-crf', String(crf), '-x265-params', 'log-level=error', '-tag:v', 'hvc1', out]);
    const s = ssimOf(out, ref);
    // SSIM of the original H.264 within 0.002 (just-noticeable differences are about 0.01).
    if (s >= camSsim - 0.002) {
      best = { crf, size: statSync(out).size, ssim: s };
      break;
    }
  }
  const def = join(dir, 'h265-28.mp4');
  try {
    statSync(def);
  } catch {
    ffmpeg(['-i', cam, '-c:v', 'libx265', '-preset', 'veryfast', '-crf', '28', '-x265-params', 'log-level=error', '-tag:v', 'hvc1', def]);
  }
  result('h265', {
    h264_mb: camSize / 1e6, h264_ssim: camSsim,
    ...(best ? { h265_crf: best.crf, h265_mb: best.size / 1e6, h265_ssim: best.ssim, size_ratio: best.size / camSize, saving_pct: (1 - best.size / camSize) * 100 } : { h265_equal_quality: 'not reached' }),
    default_crf28_ratio: statSync(def).size / camSize, default_crf28_ssim: ssimOf(def, ref), target_saving_pct: 30,
  });
}

try {
  if (!SKIP.has('remux')) await remuxAndDrain();
  if (!SKIP.has('timeline')) await timelineBench();
  if (!SKIP.has('h265')) await h265Bench();
} finally {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
}
process.exit(0);
