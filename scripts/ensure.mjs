// Makes sure what `npm start` and `npm test` need is on this machine: npm packages, Debian's ffmpeg and
// chromium (installed with apt-get when it is usable), the local Postgres and Redis for the tests.
// Anything it cannot provide stops the command with a message saying what is missing and how to get it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export function say(msg) {
  process.stdout.write(`[cctv] ${msg}\n`);
}

export function fail(msg) {
  process.stderr.write(`\n[cctv] cannot continue: ${msg}\n\n`);
  process.exit(1);
}

function which(cmd) {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
  return r.status === 0;
}

export function checkNode() {
  const [maj, min] = process.versions.node.split('.').map(Number);
  if (maj < 20 || (maj === 20 && min < 19)) fail(`Node.js ${process.versions.node} is too old; install Node.js 20.19 or newer (https://nodejs.org or your distribution's nodejs package).`);
}

/** npm ci when node_modules is missing or older than the lockfile. */
export function ensurePackages() {
  const marker = join(ROOT, 'node_modules', '.package-lock.json');
  const lock = join(ROOT, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  say('installing npm packages (npm ci)…');
  if (!run('npm', ['ci', '--no-audit', '--no-fund'], { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } })) {
    fail('npm ci failed; see the output above (is the npm registry reachable?).');
  }
}

// apt-get is usable when we are root, or sudo works without a password.
function aptPrefix() {
  if (!which('apt-get')) return null;
  if (process.getuid?.() === 0) return [];
  if (which('sudo') && spawnSync('sudo', ['-n', 'true']).status === 0) return ['sudo', '-n'];
  return null;
}

let aptUpdated = false;
/** Installs Debian packages; returns false when apt-get cannot be used here. */
function aptInstall(packages) {
  const prefix = aptPrefix();
  if (prefix === null) return false;
  const [cmd, ...pre] = prefix.length ? prefix : ['apt-get'];
  const base = prefix.length ? [...pre, 'apt-get'] : [];
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  say(`installing ${packages.join(' ')} with apt-get…`);
  const install = () => run(cmd, [...base, '-o', 'DPkg::Lock::Timeout=600', 'install', '-y', '--no-install-recommends', ...packages], { env });
  if (install()) return true;
  if (!aptUpdated) {
    aptUpdated = true;
    run(cmd, [...base, '-o', 'DPkg::Lock::Timeout=600', 'update'], { env });
    return install();
  }
  return false;
}

/** A command on PATH, installed from Debian's packages when absent and apt-get is usable. */
export function ensureCommand(cmd, packages, why) {
  if (which(cmd)) return;
  if (aptInstall(packages) && which(cmd)) return;
  fail(`'${cmd}' is not installed (${why}). Install it with: sudo apt-get install ${packages.join(' ')}`);
}

/** GStreamer's RTSP server for Python, which the RTSP tests run as a real camera. */
export function ensureGstRtsp() {
  const probe = () =>
    spawnSync('/usr/bin/python3', ['-c', "import gi; gi.require_version('GstRtspServer','1.0'); from gi.repository import GstRtspServer"], { stdio: 'ignore' }).status === 0 &&
    which('gst-inspect-1.0') !== null &&
    ['x264enc', 'x265enc', 'rtph264pay', 'rtph265pay', 'videotestsrc'].every((el) => spawnSync('gst-inspect-1.0', [el], { stdio: 'ignore' }).status === 0);
  if (existsSync('/usr/bin/python3') && probe()) return;
  const pkgs = ['gir1.2-gst-rtsp-server-1.0', 'python3-gi', 'gstreamer1.0-tools', 'gstreamer1.0-plugins-base', 'gstreamer1.0-plugins-good', 'gstreamer1.0-plugins-ugly', 'gstreamer1.0-plugins-bad'];
  if (aptInstall(pkgs) && probe()) return;
  fail(`GStreamer's RTSP server for Python is missing (the RTSP tests use it as a real camera). Install it with: sudo apt-get install ${pkgs.join(' ')}`);
}

function tcpAnswers(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = createConnection({ port, host });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function waitFor(port, ms) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await tcpAnswers(port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** The local Postgres and Redis the tests talk to: started when installed but not running. */
export async function ensureServices() {
  if (!(await tcpAnswers(6379))) {
    if (which('redis-server')) {
      say('starting Redis…');
      run('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
    }
    if (!(await waitFor(6379, 10_000))) fail('Redis does not answer on 127.0.0.1:6379. Install and start it: sudo apt-get install redis-server');
  }
  if (!process.env.TEST_POSTGRES_URL && !(await tcpAnswers(5432))) {
    if (which('pg_ctlcluster') && existsSync('/etc/postgresql')) {
      say('starting Postgres…');
      for (const v of readdirSync('/etc/postgresql')) run('pg_ctlcluster', ['--skip-systemctl-redirect', v, 'main', 'start']);
    }
    if (!(await waitFor(5432, 20_000))) {
      fail('Postgres does not answer on 127.0.0.1:5432. Install and start it (sudo apt-get install postgresql), allow the postgres user from 127.0.0.1 (trust in pg_hba.conf), or point TEST_POSTGRES_URL at a server where that user may create databases.');
    }
  }
}

/** Compiles the TypeScript workspaces (incrementally) and the dashboard when its sources changed. */
export function build({ web = true } = {}) {
  const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
  if (!run(tsc, ['-b'])) fail('the TypeScript build failed; see the errors above.');
  if (!web) return;
  const dist = join(ROOT, 'web', 'dist', 'index.html');
  const newest = (dir) => {
    let t = 0;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }
    return t;
  };
  const srcTime = Math.max(newest(join(ROOT, 'web', 'src')), statSync(join(ROOT, 'web', 'index.html')).mtimeMs);
  if (existsSync(dist) && statSync(dist).mtimeMs >= srcTime) return;
  say('building the dashboard…');
  if (!run('npm', ['run', 'build', '-w', 'web', '--silent'])) fail('the dashboard build failed; see the errors above.');
}

export { which, execFileSync };
