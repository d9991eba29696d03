// `npm run cluster`: the services of compose.yaml as plain processes on this machine, against the local
// Redis and Postgres. Each CCTV service of the file (every one but Redis and Postgres) becomes one
// process with that service's environment, rewritten for one machine:
//   - service names in URLs and host values become 127.0.0.1 (http://signaling1:8080 → http://127.0.0.1:8080);
//   - REDIS_URL and DATABASE_URL point at the local servers (REDIS_URL, DATABASE_URL, or the defaults);
//   - the data folder is <data-dir>/<service>;
//   - an SFU whose ingest listens on every address is advertised as 127.0.0.1, and it announces no other
//     address to browsers (announced addresses stand for a Docker host) but also offers 127.0.0.1;
//   - with --port-offset N, HTTP and ICE ports (and the ports in rewritten URLs) move up by N.
// Variables in the file (${NAME:-default}) are filled from the environment, then from .env, as Compose does.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, relative, resolve } from 'node:path';
import { ROOT, build, checkNode, ensureCommand, ensurePackages, fail, which } from './ensure.mjs';

const HELP = `npm run cluster [-- options]: the services of compose.yaml as processes on this machine

Every service but Redis and Postgres runs as its own process (node signaling/dist/cli.js) with the
environment compose.yaml gives it, against the Redis and Postgres of this machine. Signaling instances
start first; the SFUs and camera-nodes follow once they answer. Ctrl-C stops them all.

Options:
  --only <services>      start only these services, comma-separated (e.g. signaling1,sfu1,cn1)
  --data-dir <dir>       data folders go in <dir>/<service> (default ./data/cluster)
  --port-offset <n>      add n to every HTTP and ICE port (to run beside another cluster; default 0)
  --redis-prefix <p>     prefix of every Redis key and channel (or CCTV_REDIS__PREFIX; default cctv)
  --no-build             do not install packages or build first (the build must already be there)
  -h, --help             show this help

Environment:
  REDIS_URL              the local Redis (default redis://127.0.0.1:6379)
  DATABASE_URL           the local Postgres database (default postgres://postgres@127.0.0.1:5432/cctv;
                         created when it does not exist)
  CCTV_REDIS__PREFIX     as --redis-prefix
  and the variables compose.yaml uses (CCTV_ADMIN_PASSWORD, CCTV_ENROLL_SECRET, CCTV_DEMO_CAMERA, …),
  read from the environment or from .env beside compose.yaml.
`;

const COMPOSE_FILE = join(ROOT, 'compose.yaml');
const CLI = join(ROOT, 'signaling', 'dist', 'cli.js');
const DEFAULT_REDIS = 'redis://127.0.0.1:6379';
const DEFAULT_DATABASE = 'postgres://postgres@127.0.0.1:5432/cctv';
/** Images that stand for the servers this script finds on the machine instead of starting. */
const INFRASTRUCTURE = /^(docker\.io\/)?(library\/)?(redis|postgres)(:|@|$)/;
const STOP_GRACE_MS = 10_000;
const HEALTH_TIMEOUT_MS = 60_000;

/** A path as people read it: relative to here when it is below here, else absolute. */
function shown(p) {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith('..') ? r : p;
}

function say(msg) {
  process.stdout.write(`[cluster] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------- options

function parseArgs(argv) {
  const o = { only: null, dataDir: join(ROOT, 'data', 'cluster'), portOffset: 0, redisPrefix: process.env.CCTV_REDIS__PREFIX || null, build: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) fail(`option ${a} needs a value (see npm run cluster -- --help)`);
      return v;
    };
    if (a === '-h' || a === '--help') {
      process.stdout.write(HELP);
      process.exit(0);
    } else if (a === '--only') o.only = value().split(',').map((s) => s.trim()).filter(Boolean);
    else if (a === '--data-dir') o.dataDir = resolve(value());
    else if (a === '--port-offset') {
      const v = value();
      o.portOffset = Number(v);
      if (!Number.isInteger(o.portOffset) || o.portOffset < 0 || o.portOffset > 50_000) fail(`--port-offset must be a whole number from 0 to 50000, not '${v}'`);
    } else if (a === '--redis-prefix') o.redisPrefix = value();
    else if (a === '--no-build') o.build = false;
    else fail(`unknown option '${a}' (see npm run cluster -- --help)`);
  }
  if (o.redisPrefix !== null && !/^[a-zA-Z0-9_-]{1,32}$/.test(o.redisPrefix)) fail(`the Redis prefix '${o.redisPrefix}' must be 1–32 letters, digits, _ or -`);
  return o;
}

// ------------------------------------------------------------------------------------- compose.yaml

/** KEY=VALUE lines of a .env file, as Compose reads them (comments, blank lines, optional quotes). */
function readDotEnv(file) {
  const out = {};
  if (!existsSync(file)) return out;
  for (const raw of readFileSync(file, 'utf8').split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if (/^"(.*)"$/.test(v)) v = v.slice(1, -1).replace(/\\n/g, '\n').replace(/\\"/g, '"');
    else if (/^'(.*)'$/.test(v)) v = v.slice(1, -1);
    else v = v.replace(/\s+#.*$/, '');
    out[m[1]] = v;
  }
  return out;
}

/**
 * Compose's variable interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default},
 * ${NAME:?error}, ${NAME?error}, ${NAME:+other}, ${NAME+other}. `lookup` gives a variable or undefined.
 */
function interpolate(text, lookup, where) {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      // Find the matching brace (defaults may hold further ${…}).
      let depth = 1;
      let j = i + 2;
      for (; j < text.length && depth > 0; j++) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}') depth--;
      }
      if (depth !== 0) fail(`${where}: '${text}' has a \${ without its }`);
      const body = text.slice(i + 2, j - 1);
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([\s\S]*))?$/.exec(body);
      if (!m) fail(`${where}: '\${${body}}' is not a variable Compose understands`);
      const [, name, colon, op, arg = ''] = m;
      const v = lookup(name);
      const set = colon ? v !== undefined && v !== '' : v !== undefined;
      if (!op) out += v ?? '';
      else if (op === '-') out += set ? v : interpolate(arg, lookup, where);
      else if (op === '+') out += set ? interpolate(arg, lookup, where) : '';
      else if (!set) fail(`${where}: ${interpolate(arg, lookup, where) || `${name} must be set`}`);
      else out += v;
      i = j;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (m) {
      out += lookup(m[0]) ?? '';
      i += 1 + m[0].length;
    } else {
      out += '$';
      i++;
    }
  }
  return out;
}

/** A service's environment as a map of strings (Compose allows a map or a list of NAME=value). */
function environmentOf(service) {
  const env = service.environment ?? {};
  const out = {};
  if (Array.isArray(env)) {
    for (const item of env) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq > 0) out[s.slice(0, eq)] = s.slice(eq + 1);
      else if (process.env[s] !== undefined) out[s] = process.env[s];
    }
  } else {
    for (const [k, v] of Object.entries(env)) {
      if (v === null || v === undefined) {
        if (process.env[k] !== undefined) out[k] = process.env[k];
      } else out[k] = String(v);
    }
  }
  return out;
}

/** The CCTV services of compose.yaml, in file order, with their interpolated environments. */
async function readCompose() {
  const { default: YAML } = await import('yaml');
  let doc;
  try {
    doc = YAML.parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
  } catch (error) {
    fail(`cannot read ${shown(COMPOSE_FILE)}: ${error.message}`);
  }
  const dotEnv = readDotEnv(join(ROOT, '.env'));
  const sources = {};
  const lookup = (name) => {
    if (process.env[name] !== undefined) {
      sources[name] = 'env';
      return process.env[name];
    }
    if (dotEnv[name] !== undefined) {
      sources[name] = '.env';
      return dotEnv[name];
    }
    return undefined;
  };
  const services = [];
  for (const [name, svc] of Object.entries(doc?.services ?? {})) {
    if (typeof svc.image === 'string' && INFRASTRUCTURE.test(svc.image)) continue;
    const raw = environmentOf(svc);
    const env = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v, lookup, `compose.yaml services.${name}.environment.${k}`)]));
    const roles = (env.CCTV_ROLES ?? 'signaling,sfu,camera-node').split(',').map((r) => r.trim()).filter(Boolean);
    services.push({ name, raw, env, roles, signaling: roles.includes('signaling') });
  }
  return { services, names: new Set(Object.keys(doc?.services ?? {})), sources, dotEnv };
}

/** The compose environment of a service, made to run on this machine (see the top of this file). */
function localEnv(svc, ctx) {
  const { names, opts, redisUrl, databaseUrl } = ctx;
  const out = {};
  const shift = (port) => String(Number(port) + opts.portOffset);
  for (const [k, v] of Object.entries(svc.env)) {
    let value = v;
    // A host value naming a service (an advertised host, say), or a URL whose host is one.
    if (/HOST|ADDRESS/.test(k) && names.has(value)) value = '127.0.0.1';
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
      try {
        const u = new URL(value);
        if (names.has(u.hostname)) {
          u.hostname = '127.0.0.1';
          if (u.port) u.port = shift(u.port);
          value = u.toString().replace(/\/$/, value.endsWith('/') ? '/' : '');
        }
      } catch {
        // Not a URL after all: left as it is.
      }
    }
    out[k] = value;
  }
  out.CCTV_NODE_ID ??= svc.name;
  out.CCTV_DATA_DIR = join(opts.dataDir, svc.name);
  out.REDIS_URL = redisUrl;
  // The archive (the NAS of a real deployment): one folder every recorder writes and every signaling
  // instance reads.
  if (out.CCTV_NAS_DIR) out.CCTV_NAS_DIR = join(opts.dataDir, 'archive');
  if (svc.signaling) {
    out.DATABASE_URL = databaseUrl;
    out.CCTV_PORT = shift(out.CCTV_PORT ?? '8080');
  } else if (svc.roles.includes('recorder') || svc.roles.includes('detector')) {
    // A recorder enters its segments in the database itself, a detector its events.
    out.DATABASE_URL = databaseUrl;
  } else {
    delete out.DATABASE_URL;
  }
  for (const k of ['CCTV_SFU__ICE__PORT_MIN', 'CCTV_SFU__ICE__PORT_MAX']) if (out[k] && Number(out[k]) > 0) out[k] = shift(out[k]);
  if (svc.roles.includes('sfu')) {
    // Announced addresses stand for a Docker host in front of the container; here the SFU is the host.
    delete out.CCTV_SFU__ICE__ANNOUNCED_ADDRESSES;
    out.CCTV_SFU__ICE__LOOPBACK ??= 'true';
    const bind = out.CCTV_SFU__INGEST__BIND_HOST ?? '127.0.0.1';
    if ((bind === '0.0.0.0' || bind === '::') && !out.CCTV_SFU__INGEST__ADVERTISED_HOST) out.CCTV_SFU__INGEST__ADVERTISED_HOST = '127.0.0.1';
  }
  if (opts.redisPrefix) out.CCTV_REDIS__PREFIX = opts.redisPrefix;
  // One line per log record either way; pretty when a person is watching.
  out.CCTV_LOG_FORMAT ??= process.stdout.isTTY ? 'pretty' : 'json';
  return out;
}

// ------------------------------------------------------------------------------ Redis and Postgres

function redact(url) {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

async function checkRedis(url) {
  const { createClient } = await import('redis');
  const client = createClient({ url, socket: { connectTimeout: 3000, reconnectStrategy: false } });
  let lastError = null;
  client.on('error', (e) => (lastError = e));
  try {
    await client.connect();
    await client.ping();
    return client;
  } catch (error) {
    try {
      client.destroy();
    } catch {
      // Already closed by the failed connect.
    }
    const why = (lastError ?? error).message || String(lastError ?? error);
    if (/NOAUTH|WRONGPASS|AUTH/i.test(why)) {
      fail(`Redis at ${redact(url)} refused us (${why}). Check the password in REDIS_URL (redis://:PASSWORD@host:6379)`);
    }
    fail(
      `Redis does not answer at ${redact(url)} (${why}).\n` +
        `  Start it: sudo apt-get install redis-server (Debian starts it), or redis-server --daemonize yes --bind 127.0.0.1\n` +
        `  or point REDIS_URL at one, e.g. REDIS_URL=redis://192.168.1.5:6379 npm run cluster`,
    );
  }
}

/** Checks Postgres answers and creates the database when it does not exist. */
async function ensureDatabase(url) {
  const { default: postgres } = await import('postgres');
  let u;
  try {
    u = new URL(url);
  } catch {
    fail(`DATABASE_URL '${redact(url)}' is not a postgres:// URL`);
  }
  const name = decodeURIComponent(u.pathname.replace(/^\//, '')) || u.username || 'postgres';
  const admin = new URL(u);
  admin.pathname = '/postgres';
  const sql = postgres(admin.toString(), { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    const have = await sql`SELECT 1 FROM pg_database WHERE datname = ${name}`;
    if (have.length === 0) {
      if (!/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(name)) fail(`the database name '${name}' in DATABASE_URL is not a plain name; create it yourself first`);
      await sql.unsafe(`CREATE DATABASE "${name}"`);
      say(`created the database ${name}`);
    }
  } catch (error) {
    const why = error.message || error.code || String(error);
    if (error.code === 'ECONNREFUSED' || error.code === 'ENOTFOUND' || error.code === 'CONNECT_TIMEOUT' || error.code === 'ETIMEDOUT') {
      fail(
        `Postgres does not answer at ${u.hostname}:${u.port || 5432} (${why}).\n` +
          `  Start it: sudo apt-get install postgresql (Debian starts it), or sudo pg_ctlcluster <version> main start\n` +
          `  or point DATABASE_URL at one, e.g. DATABASE_URL=postgres://user:password@192.168.1.5:5432/cctv npm run cluster`,
      );
    }
    if (error.code === '28P01' || error.code === '28000') {
      fail(`Postgres at ${u.hostname}:${u.port || 5432} refused the user '${decodeURIComponent(u.username || 'postgres')}' (${why}). Give its password in DATABASE_URL, or allow it from 127.0.0.1 (trust in pg_hba.conf).`);
    }
    if (error.code === '42501') fail(`the user '${decodeURIComponent(u.username || 'postgres')}' may not create the database '${name}' (${why}); create it yourself: createdb ${name}`);
    fail(`Postgres at ${redact(url)}: ${why}`);
  } finally {
    await sql.end({ timeout: 2 }).catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------ processes

const COLORS = [36, 33, 32, 35, 34, 91, 92, 93, 94, 95, 96];
const color = process.stdout.isTTY && !process.env.NO_COLOR;

class Child {
  constructor(svc, env, width, index) {
    this.svc = svc;
    this.env = env;
    this.name = svc.name;
    const label = svc.name.padEnd(width);
    this.prefix = color ? `\x1b[${COLORS[index % COLORS.length]}m${label} |\x1b[0m ` : `${label} | `;
    this.proc = null;
    this.stopping = false;
    this.exited = null;
  }

  get running() {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(onExit) {
    mkdirSync(this.env.CCTV_DATA_DIR, { recursive: true });
    // setpriv: the kernel sends SIGTERM to the process if this script dies without stopping it.
    // A process group of its own: Ctrl-C reaches this script only, which stops the children in order.
    const setpriv = which('setpriv');
    const [cmd, args] = setpriv ? [setpriv, ['--pdeathsig', 'TERM', '--', process.execPath, CLI]] : [process.execPath, [CLI]];
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(CCTV_|DATABASE_URL$|REDIS_URL$|npm_)/.test(k)));
    this.proc = spawn(cmd, args, { cwd: ROOT, env: { ...base, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => r({ code, signal })));
    this.proc.once('error', (error) => say(`${this.name}: cannot start: ${error.message}`));
    for (const [stream, out] of [[this.proc.stdout, process.stdout], [this.proc.stderr, process.stderr]]) {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (d) => {
        const lines = (rest + d).split('\n');
        rest = lines.pop();
        for (const l of lines) out.write(this.prefix + l + '\n');
      });
      stream.on('end', () => rest && out.write(this.prefix + rest + '\n'));
    }
    say(`started ${this.name} (${this.svc.roles.join(', ')}; pid ${this.proc.pid}; data ${shown(this.env.CCTV_DATA_DIR)})`);
    void this.exited.then((e) => onExit(this, e));
  }

  /** SIGTERM, then SIGKILL after the grace period. */
  async stop() {
    this.stopping = true;
    if (!this.running) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => {
      if (this.running) {
        say(`${this.name} did not stop within ${STOP_GRACE_MS / 1000} s; killing it`);
        this.proc.kill('SIGKILL');
      }
    }, STOP_GRACE_MS);
    await this.exited;
    clearTimeout(t);
  }

  kill() {
    if (this.running) this.proc.kill('SIGKILL');
  }
}

function scheme(env) {
  return (env.CCTV_HTTP__TLS__MODE ?? 'self-signed') === 'off' ? 'http' : 'https';
}

function dashboardUrl(child) {
  const host = child.env.CCTV_HOST && !['0.0.0.0', '::'].includes(child.env.CCTV_HOST) ? child.env.CCTV_HOST : '127.0.0.1';
  return `${scheme(child.env)}://${host}:${child.env.CCTV_PORT}/`;
}

/** GET /api/health answers 200 (a self-signed certificate is accepted: it is our own process). */
function healthy(url) {
  return new Promise((res) => {
    const u = new URL('api/health', url);
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, { timeout: 2000, rejectUnauthorized: false }, (r) => {
      r.resume();
      res(r.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => res(false));
    req.end();
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ----------------------------------------------------------------------------------------------- main

const opts = parseArgs(process.argv.slice(2));
checkNode();
if (opts.build) ensurePackages();

const { services, names, sources, dotEnv } = await readCompose();
if (services.length === 0) fail('compose.yaml has no CCTV services');
let chosen = services;
if (opts.only) {
  const unknown = opts.only.filter((n) => !services.some((s) => s.name === n));
  if (unknown.length) fail(`no CCTV service named ${unknown.join(', ')} in compose.yaml (there are: ${services.map((s) => s.name).join(', ')})`);
  chosen = services.filter((s) => opts.only.includes(s.name));
}
if (chosen.some((s) => s.roles.includes('camera-node') || s.roles.includes('recorder'))) ensureCommand('ffmpeg', ['ffmpeg'], 'it runs the cameras and the recorder');
if (opts.build) build();
else if (!existsSync(CLI)) fail(`${shown(CLI)} is missing: run without --no-build (or npm run build) first`);

const redisUrl = process.env.REDIS_URL || DEFAULT_REDIS;
const databaseUrl = process.env.DATABASE_URL || DEFAULT_DATABASE;
const redis = await checkRedis(redisUrl);
if (chosen.some((s) => s.signaling)) await ensureDatabase(databaseUrl);

let redisOpen = true;
/** The check's connection is only needed until everything is up. */
async function closeRedis() {
  if (!redisOpen) return;
  redisOpen = false;
  try {
    await redis.close();
  } catch {
    redis.destroy?.();
  }
}

const ctx = { names, opts, redisUrl, databaseUrl };
const width = Math.max(...chosen.map((s) => s.name.length));
const children = chosen.map((s, i) => new Child(s, localEnv(s, ctx), width, i));
const signaling = children.filter((c) => c.svc.signaling);
const nodes = children.filter((c) => !c.svc.signaling);

let shuttingDown = false;
let startedAll = false;
function onExit(child, { code, signal }) {
  if (child.stopping || shuttingDown) return;
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const left = children.filter((c) => c.running).map((c) => c.name);
  if (!startedAll && child.svc.signaling) return; // reported by the start-up below
  if (left.length === 0) {
    say(`${child.name} ${how}; no process is left running`);
    void shutdown(1);
    return;
  }
  say(`${child.name} ${how}; the others keep running (${left.join(', ')}). To start it again beside them: npm run cluster -- --only ${child.name} (with the same options)`);
}

async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  const running = children.filter((c) => c.running);
  if (running.length) say(`stopping ${running.map((c) => c.name).join(', ')}…`);
  await Promise.all(children.map((c) => c.stop()));
  await closeRedis();
  say('stopped');
  process.exit(code);
}

process.on('SIGINT', () => {
  if (shuttingDown) {
    // A second Ctrl-C: no more waiting.
    for (const c of children) c.kill();
    return;
  }
  process.stdout.write('\n');
  void shutdown(0);
});
process.on('SIGTERM', () => void shutdown(0));
process.on('SIGHUP', () => void shutdown(0));

say(`Redis ${redact(redisUrl)}${opts.redisPrefix ? ` (prefix ${opts.redisPrefix})` : ''}${signaling.length ? `; Postgres ${redact(databaseUrl)}` : ''}`);
for (const c of signaling) {
  c.start(onExit);
  const url = dashboardUrl(c);
  const until = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (shuttingDown) await new Promise(() => {});
    if (!c.running) {
      say(`${c.name} stopped before answering at ${url}; see its lines above`);
      await shutdown(1);
    }
    if (await healthy(url)) break;
    if (Date.now() > until) {
      say(`${c.name} does not answer at ${url}api/health after ${HEALTH_TIMEOUT_MS / 1000} s`);
      await shutdown(1);
    }
    await sleep(250);
  }
  say(`${c.name} answers at ${url}`);
}
for (const c of nodes) c.start(onExit);
startedAll = true;

// Up: every process's heartbeat is in Redis (the key lives one lease).
const prefix = opts.redisPrefix ?? children[0]?.env.CCTV_REDIS__PREFIX ?? 'cctv';
const waitUntil = Date.now() + 30_000;
let missing = children.map((c) => c.env.CCTV_NODE_ID);
while (missing.length && Date.now() < waitUntil && !shuttingDown) {
  const found = await Promise.all(missing.map((id) => Promise.resolve().then(() => redis.exists(`${prefix}:node:${id}`)).catch(() => 0)));
  missing = missing.filter((_, i) => found[i] !== 1);
  if (missing.length) await sleep(250);
}
if (shuttingDown) await new Promise(() => {});
await closeRedis();

function passwordSource() {
  const raw = signaling[0]?.svc.raw.CCTV_ADMIN_PASSWORD;
  if (raw === undefined) return `no CCTV_ADMIN_PASSWORD in compose.yaml: ${signaling[0]?.name ?? 'the first signaling instance'} printed a generated one above on its first start`;
  const m = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}$/.exec(raw);
  if (!m) return `CCTV_ADMIN_PASSWORD set in compose.yaml`;
  const [, name, def] = m;
  if (sources[name] === 'env') return `${name} from your environment`;
  if (sources[name] === '.env' || dotEnv[name] !== undefined) return `${name} from .env`;
  return def !== undefined ? `compose.yaml's default for ${name}: ${def}` : `${name}, which is not set`;
}

let banner = '\n';
if (missing.length) banner += `  Not registered yet: ${missing.join(', ')} (see their lines above)\n`;
else banner += `  Up: ${children.map((c) => c.name).join(', ')}\n`;
for (const c of signaling) banner += `  Dashboard: ${dashboardUrl(c)}  (${c.name})\n`;
if (signaling.length) {
  banner += `  Sign in as admin with ${passwordSource()}\n`;
  banner += `  (only used when the database has no admin yet; otherwise the admin keeps the password it has)\n`;
}
banner += `  Data: ${shown(opts.dataDir)}/<service>. Ctrl-C stops everything.\n`;
process.stdout.write(banner + '\n');
