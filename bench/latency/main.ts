// `npm run bench:latency`: glass-to-glass latency of the live path, camera-node → SFU → Chromium, against
// the minimal werift forwarder the project started from, in the same sitting. Ends with RESULT lines.
//
// Systems: `cctv` (as shipped: playout delay 0/0, so Chrome renders each frame as soon as it is decoded),
// `cctv-pd-1000` (the same SFU with playout delay 0–1000 ms, i.e. Chrome's usual jitter-buffered rendering:
// it separates what the SFU does from what the playout-delay extension does), and `werift-baseline`.
//
// Options: --seconds N (measurement per run, default 20), --viewers 1,10,25,50,
//          --systems cctv,cctv-pd-1000,werift-baseline, --fps 30, --size 640x360, --gop 30, --bitrate 1500
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { freePort } from '../lib/server.js';
import { cpuMs, result, summary } from '../lib/stats.js';
import { startSource } from './source.js';
import { MEASURE_SOURCE, type PageResult } from './page.js';
import { startStunServer } from '../../test/support/stun.js';

const ROOT = join(import.meta.dirname, '..', '..');
const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const SECONDS = Number(args.get('seconds') ?? 20);
const VIEWERS = (args.get('viewers') ?? '1,10,25,50').split(',').map(Number);
const SYSTEMS = (args.get('systems') ?? 'cctv,cctv-pd-1000,werift-baseline').split(',');
const FPS = Number(args.get('fps') ?? 30);
const [W, H] = (args.get('size') ?? '640x360').split('x').map(Number) as [number, number];
const GOP = Number(args.get('gop') ?? FPS);
const BITRATE = Number(args.get('bitrate') ?? 1500);
const WARMUP_S = 3;

function startProcess(cmd: string, argv: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${argv.join(' ')} did not get ready: ${out.slice(-2000)}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}: ${out.slice(-2000)}`)));
  });
}

async function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  await new Promise<void>((r) => {
    p.once('exit', () => r());
    p.kill('SIGTERM');
    setTimeout(() => p.kill('SIGKILL'), 5000).unref();
  });
}

interface System {
  name: string;
  pid: number;
  /** Headers the viewers send (a Bearer token for the real server). */
  headers: Record<string, string>;
  /** A same-origin page to run the measurement in. */
  pageUrl: string;
  whepUrl: string;
  rtpPort: number;
  stop: () => Promise<void>;
}

async function startCctv(dir: string, name: string, playoutDelayMaxMs: number): Promise<System> {
  const port = await freePort();
  const rtpPort = await freePort();
  const cfg = join(dir, `${name}.yaml`);
  writeFileSync(cfg, `cameras:\n  - id: bench\n    source: { kind: rtp, host: 127.0.0.1, port: ${rtpPort}, codec: H264, payloadType: 96 }\n`);
  const p = await startProcess(process.execPath, [join(ROOT, 'signaling', 'dist', 'cli.js')], {
    CCTV_CONFIG: cfg, CCTV_PORT: String(port), CCTV_HOST: '127.0.0.1', CCTV_DATA_DIR: join(dir, `${name}-data`), CCTV_LOG_LEVEL: 'warn', CCTV_LOG_FORMAT: 'json',
    CCTV_SFU__ICE__LOOPBACK: 'true', CCTV_SFU__ICE__HOST_ADDRESSES: '127.0.0.1', CCTV_SFU__PLAYOUT_DELAY__MAX_MS: String(playoutDelayMaxMs),
    CCTV_HTTP__TLS__MODE: 'off', CCTV_ADMIN_PASSWORD: 'bench-password-1',
    // Many viewers from one address and one token in a few seconds.
    CCTV_SECURITY__LIMITS__WHEP_PER_PRINCIPAL: '[{"max":100000,"windowS":60}]',
  }, /Dashboard: http/);
  const base = `http://127.0.0.1:${port}`;
  // A token, as a script or a WHEP player gets one.
  const res = await fetch(`${base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'bench-password-1' }) });
  const { token } = (await res.json()) as { token: string };
  return { name, pid: p.pid!, headers: { authorization: `Bearer ${token}` }, pageUrl: `${base}/api/health`, whepUrl: `${base}/api/cameras/bench/whep`, rtpPort, stop: () => stopProcess(p) };
}

async function startBaseline(): Promise<System> {
  const port = await freePort();
  const rtpPort = await freePort();
  const p = await startProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'latency', 'baseline.ts'), String(port), String(rtpPort)], {}, /READY/);
  const base = `http://127.0.0.1:${port}`;
  return { name: 'werift-baseline', pid: p.pid!, headers: {}, pageUrl: `${base}/`, whepUrl: `${base}/whep`, rtpPort, stop: () => stopProcess(p) };
}

interface Run {
  system: string;
  viewers: number;
  latency: ReturnType<typeof summary>;
  display: ReturnType<typeof summary>;
  receive: ReturnType<typeof summary>;
  fps: number;
  firstFrameMs: number;
  cpuPct: number;
  page: PageResult;
}

async function measure(browser: Browser, sys: System, viewers: number): Promise<Run> {
  const load = viewers > 1 ? await startProcess(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'latency', 'load.ts'), sys.whepUrl, String(viewers - 1)], { BENCH_WHEP_HEADERS: JSON.stringify(sys.headers) }, /READY/) : undefined;
  try {
    const page = await browser.newPage();
    await page.goto(sys.pageUrl);
    const cpu0 = cpuMs(sys.pid);
    const t0 = Date.now();
    const r = (await page.evaluate(`(${MEASURE_SOURCE.replace(/^\/\/.*\n/gm, '')})(${JSON.stringify({ whepUrl: sys.whepUrl, headers: sys.headers, seconds: SECONDS, warmupS: WARMUP_S })})`)) as PageResult;
    // The load's share is inside the window too: CPU is read over the whole evaluate (warm-up included).
    const cpuPct = ((cpuMs(sys.pid) - cpu0) / (Date.now() - t0)) * 100;
    await page.close();
    if (r.error) throw new Error(`${sys.name}: ${r.error}`);
    const lat = (f: (s: PageResult['samples'][number]) => number) => summary(r.samples.map(f));
    return {
      system: sys.name,
      viewers,
      latency: lat((s) => s.callback - s.src),
      display: lat((s) => s.display - s.src),
      receive: lat((s) => (s.receive ? s.receive - s.src : Number.NaN)),
      fps: r.samples.length / SECONDS,
      firstFrameMs: r.firstFrameMs ?? Number.NaN,
      cpuPct,
      page: r,
    };
  } finally {
    await stopProcess(load);
  }
}

function report(run: Run): void {
  const l = run.latency;
  result('latency_ms', { system: run.system, viewers: run.viewers, p50: l.p50, p95: l.p95, p99: l.p99, max: l.max, frames: l.n });
  result('latency_display_estimate_ms', { system: run.system, viewers: run.viewers, p50: run.display.p50, p95: run.display.p95, p99: run.display.p99 });
  result('latency_receive_ms', { system: run.system, viewers: run.viewers, p50: run.receive.p50, p95: run.receive.p95 });
  result('render', { system: run.system, viewers: run.viewers, fps: run.fps, first_frame_ms: run.firstFrameMs, jitter_buffer_ms: run.page.stats?.jitterBufferMs ?? Number.NaN, dropped: run.page.stats?.framesDropped ?? 0, lost: run.page.stats?.packetsLost ?? 0, bad_reads: run.page.badReads });
  result('sfu_cpu_pct', { system: run.system, viewers: run.viewers, cpu: run.cpuPct });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cctv-bench-'));
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required', '--disable-features=WebRtcHideLocalIpsWithMdns'],
  });
  const systems: System[] = [];
  const runs: Run[] = [];
  let source: ReturnType<typeof startSource> | undefined;
  // werift peers (the baseline, the load viewers) gather against this instead of a public STUN server.
  const stun = await startStunServer();
  process.env.TEST_STUN_URL = stun.url;
  try {
    for (const name of SYSTEMS) {
      if (name === 'cctv') systems.push(await startCctv(dir, name, 0));
      else if (name === 'cctv-pd-1000') systems.push(await startCctv(dir, name, 1000));
      else if (name === 'werift-baseline') systems.push(await startBaseline());
      else throw new Error(`unknown system '${name}' (known: cctv, cctv-pd-1000, werift-baseline)`);
    }
    // One encoder feeds both systems the same packets, so they are compared on the same video.
    // Frames come at 30000/1001 per second for 30 fps: a camera's clock drifts against the display's,
    // so over 20 s every phase between frame and screen refresh is sampled instead of one lucky one.
    source = startSource({ width: W, height: H, fps: FPS, paceFps: FPS === 30 ? 30000 / 1001 : FPS, gop: GOP, bitrateKbps: BITRATE, targets: systems.map((s) => ({ host: '127.0.0.1', port: s.rtpPort })) });
    await new Promise((r) => setTimeout(r, 2000));
    process.stdout.write(`latency benchmark: ${W}x${H}@${FPS}, GOP ${GOP}, ${BITRATE} kbit/s, ${SECONDS} s per run, viewers ${VIEWERS.join(',')}\n`);
    for (const n of VIEWERS) {
      for (const sys of systems) {
        const run = await measure(browser, sys, n);
        runs.push(run);
        process.stdout.write(`${sys.name} ${n} viewer(s): p50 ${run.latency.p50.toFixed(1)} ms, p95 ${run.latency.p95.toFixed(1)} ms, ${run.fps.toFixed(1)} fps, first frame ${run.firstFrameMs.toFixed(0)} ms (answer ${run.page.answerMs?.toFixed(0)} ms; ${run.page.events.map(([e, t]) => `${e} ${t}`).join(', ')}), cpu ${run.cpuPct.toFixed(1)} %\n`);
      }
    }
  } finally {
    await source?.stop();
    await Promise.all(systems.map((s) => s.stop()));
    await browser.close();
    await stun.close();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const r of runs) report(r);
  for (const n of VIEWERS) {
    const base = runs.find((r) => r.system === 'werift-baseline' && r.viewers === n);
    for (const ours of runs.filter((r) => r.system.startsWith('cctv') && r.viewers === n)) {
      if (base) result('latency_ratio', { system: ours.system, vs: base.system, viewers: n, p50: ours.latency.p50 / base.latency.p50, p95: ours.latency.p95 / base.latency.p95, cpu: ours.cpuPct / base.cpuPct });
    }
  }
  const one = runs.find((r) => r.system === 'cctv' && r.viewers === 1);
  const many = runs.find((r) => r.system === 'cctv' && r.viewers === 25);
  if (one && many) result('fanout_p95_ratio', { system: 'cctv', viewers25_vs_1: many.latency.p95 / one.latency.p95 });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
