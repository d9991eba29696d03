#!/usr/bin/env node
import { configureLogging, createLogger, loadConfig, migrate, openDatabase, ValidationError, type Config } from '@cctv/core';
import { join, resolve } from 'node:path';
import { lanUrls, startSystem, VERSION } from './system.js';
import { startNode } from './node.js';
import { readFile } from 'node:fs/promises';
import { Storage, verifyArchive, verifyExport } from '@cctv/recorder';

const HELP = `cctv ${VERSION}: a WebRTC-first CCTV system

Usage: cctv [command] [options]

Commands:
  start            run this process's roles (the default: every role, the one-machine mode)
  migrate          apply database migrations and exit
  check-config     validate the configuration, print it, and exit
  verify [camera…] re-hash the archive on its storage and walk each camera's chain; names every
                   altered, missing, inserted or edited segment; exit status 1 when one is found
  verify-export <clip.mp4> <clip.proof.json> [--site-key <pem file>]
                   check an exported clip offline: its SHA-256, the proof's signature, the chain
                   links and the signed hourly manifests; exit status 1 when it does not hold

Options:
  -c, --config <file>   config file, YAML or JSON (or CCTV_CONFIG)
  -p, --port <port>     HTTP port (or CCTV_PORT; default 8080)
      --data-dir <dir>  data folder (or CCTV_DATA_DIR; default ./data)
      --roles <list>    roles of this process: signaling, sfu, camera-node, recorder,
                        detector, comma-separated (or CCTV_ROLES; default all five)
  -h, --help            show this help
  -v, --version         print the version

Environment:
  CCTV_CONFIG, CCTV_PORT, CCTV_HOST, CCTV_DATA_DIR, CCTV_LOG_LEVEL, CCTV_LOG_FORMAT, CCTV_NODE_ID,
  CCTV_ADMIN_PASSWORD (the first admin's password; without it one is generated and shown once),
  DATABASE_URL (postgres://…; without it an embedded database lives in the data folder),
  REDIS_URL (redis://…; without it the bus, registry and rate limits live in this process),
  CCTV_ROLES, CCTV_NODE_ID (unique per process in a cluster),
  CCTV_SPOOL_DIR (the recorder's local spool; default <data>/spool),
  CCTV_NAS_DIR (where recordings are kept, e.g. a NAS mount; default <data>/archive),
  CCTV_ALERTS__MQTT__URL (an MQTT broker for motion alerts, e.g. mqtt://127.0.0.1:1883),
  CCTV_MASTER_URL (where a node without signaling enrols, e.g. https://master:8080),
  CCTV_ENROLL_TOKEN (a one-time token from the dashboard) or CCTV_ENROLL_SECRET (the deployment's),
  and any config key as CCTV_<SECTION>__<KEY>, e.g. CCTV_SFU__ICE__LOOPBACK=true.

A cluster: every process gets the same REDIS_URL; signaling instances, recorders and detectors
also DATABASE_URL; nodes (sfu, camera-node, recorder, detector) enrol once with CCTV_MASTER_URL and a token or the secret. See docs/operations.md.
`;

interface Args {
  command: 'start' | 'migrate' | 'check-config' | 'verify' | 'verify-export';
  config?: string;
  positional: string[];
  siteKey?: string;
  overrides: Record<string, unknown>;
}

function parseArgs(argv: string[]): Args | 'help' | 'version' {
  const out: Args = { command: 'start', overrides: {}, positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new ValidationError('', `option ${a} needs a value`);
      return v;
    };
    if (a === '-h' || a === '--help' || a === 'help') return 'help';
    if (a === '-v' || a === '--version') return 'version';
    if (a === '-c' || a === '--config') out.config = value();
    else if (a === '-p' || a === '--port') out.overrides.http = { port: Number(value()) };
    else if (a === '--data-dir') out.overrides.dataDir = value();
    else if (a === '--roles') out.overrides.node = { roles: value().split(',').map((r) => r.trim()).filter(Boolean) };
    else if (a === '--site-key') out.siteKey = value();
    else if ((a === 'start' || a === 'migrate' || a === 'check-config' || a === 'verify' || a === 'verify-export') && out.command === 'start' && out.positional.length === 0) out.command = a;
    else if ((out.command === 'verify' || out.command === 'verify-export') && !a.startsWith('-')) out.positional.push(a);
    else throw new ValidationError('', `unknown argument '${a}' (see cctv --help)`);
  }
  return out;
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  let config: Readonly<Config>;
  try {
    args = parseArgs(process.argv.slice(2));
    if (args === 'help') return void process.stdout.write(HELP);
    if (args === 'version') return void process.stdout.write(`${VERSION}\n`);
    config = loadConfig({ file: args.config, overrides: args.overrides as never });
  } catch (error) {
    process.stderr.write(`cctv: ${(error as Error).message}\n`);
    process.exit(2);
  }
  configureLogging({ level: config.log.level, format: config.log.format ?? (process.stdout.isTTY ? 'pretty' : 'json') });
  const log = createLogger('cctv');

  if (args.command === 'check-config') {
    process.stdout.write(JSON.stringify(config, (k, v: unknown) => (/password|secret|token/i.test(k) && v ? '***' : v), 2) + '\n');
    return;
  }
  if (args.command === 'migrate') {
    const db = await openDatabase({ url: config.database.url, dataDir: join(resolve(config.dataDir), 'db') });
    try {
      const r = await migrate(db);
      process.stdout.write(`applied ${r.applied.length} migration(s)${r.applied.length ? `: ${r.applied.join(', ')}` : ''}; ${r.skipped.length} already applied\n`);
    } finally {
      await db.close();
    }
    return;
  }

  if (args.command === 'verify-export') {
    const [clip, proofFile] = args.positional;
    if (!clip || !proofFile) {
      process.stderr.write('cctv: verify-export needs the clip and its proof: cctv verify-export clip.mp4 clip.proof.json\n');
      process.exit(2);
    }
    const r = await verifyExport(clip, await readFile(proofFile, 'utf8'), args.siteKey ? await readFile(args.siteKey, 'utf8') : undefined);
    process.stdout.write(`${r.ok ? 'OK' : 'NOT VERIFIED'}: ${clip}\n  signed by site key SHA-256 ${r.siteKeyFingerprint}\n  ${r.segments} segment(s), ${r.inManifests} of them in signed hourly manifests\n`);
    for (const p of r.problems) process.stdout.write(`  problem: ${p}\n`);
    process.exit(r.ok ? 0 : 1);
  }
  if (args.command === 'verify') {
    const db = await openDatabase({ url: config.database.url, dataDir: join(resolve(config.dataDir), 'db') });
    const rc = config.recorder;
    const st = rc.storage ?? { id: 'nas', path: join(config.dataDir, 'archive'), requireMount: false, minFreeBytes: 0 };
    const storage = new Storage({ config: { ...st, path: resolve(st.path) }, db, site: 'verify', ioTimeoutMs: rc.ioTimeoutMs });
    try {
      await migrate(db);
      const [site] = await db.query<{ value: { publicKey: string } | string }>("SELECT value FROM settings WHERE key = 'site_key'");
      const siteKey = site ? (typeof site.value === 'string' ? (JSON.parse(site.value) as { publicKey: string }) : site.value) : null;
      const r = await verifyArchive({
        db, storage, spoolDir: resolve(rc.spoolDir ?? join(config.dataDir, 'spool')),
        ...(args.positional.length ? { cameras: args.positional } : {}), ...(siteKey ? { sitePublicKey: siteKey.publicKey } : {}),
      });
      process.stdout.write(`${r.ok ? 'OK' : 'PROBLEMS FOUND'}: ${r.segments} segment(s) of ${r.cameras.length} camera(s), ${r.bytes} bytes re-hashed, ${r.manifests} signed manifest(s), in ${r.durationMs} ms\n`);
      for (const f of r.findings) process.stdout.write(`  ${f.kind}: ${f.detail}\n`);
      process.exitCode = r.ok ? 0 : 1;
    } finally {
      storage.close();
      await db.close();
    }
    return;
  }

  if (!config.node.roles.includes('signaling')) {
    const node = await startNode(config).catch((error: unknown) => {
      log.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
      process.exit(1);
    });
    process.stdout.write(`\n  Node ${node.id} (${config.node.roles.join(', ')}) running; bus ${node.bus.location}\n\n`);
    onStop(() => node.close(), log);
    return;
  }
  const system = await startSystem({ config }).catch((error: unknown) => {
    log.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    process.exit(1);
  });
  const lan = config.http.host === '0.0.0.0' ? lanUrls(system.port, system.tls ? 'https' : 'http') : [];
  let banner = `\n  Dashboard: ${system.url}\n${lan.map((u) => `  On the LAN: ${u}\n`).join('')}`;
  if (system.tls) {
    banner += `  TLS certificate SHA-256: ${system.tls.fingerprint}${system.tls.generated ? ' (self-signed, made now; check it against what the browser shows)' : ''}\n`;
  }
  // Shown once, here, never logged: the password of the admin account made on this first start.
  if (system.generatedAdminPassword) {
    banner += `\n  First start: sign in as 'admin' with the password  ${system.generatedAdminPassword}\n  (shown only now; change it after signing in, or set CCTV_ADMIN_PASSWORD before the first start)\n`;
  }
  process.stdout.write(banner + '\n');
  onStop(() => system.close(), log);
}

function onStop(close: () => Promise<void>, log: ReturnType<typeof createLogger>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    // A second signal, or a close that hangs, ends the process anyway.
    setTimeout(() => process.exit(1), 10_000).unref();
    void close().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

void main();
