#!/usr/bin/env node
import { configureLogging, createLogger, loadConfig, migrate, openDatabase, ValidationError, type Config, type Database } from '@cctv/core';
import { join, resolve } from 'node:path';
import { lanUrls, startSystem, VERSION } from './system.js';
import { startNode } from './node.js';
import { readFile } from 'node:fs/promises';
import { Storage, verifyArchive, verifyExport } from '@cctv/recorder';
import { BackupFileError, createBackup, loadBackupConfig, reattachArchive, restoreBackup, RestoreRefusedError } from './backup.js';

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
  backup [--output <file>]
                   write the database (configuration, users, audit log, the archive's metadata and
                   chain; not the video), the config file and <data>/tls to one gzip'd JSON file
                   (default ./cctv-backup-<site>-<UTC time>.json.gz, mode 0600). It holds secrets:
                   the site's private key, password hashes, 2FA keys, the TLS key
  restore <file> [--force] [--config-out <file>]
                   restore a backup into the database of this config, which must be empty (--force
                   deletes everything in it first), put back <data>/tls (and the config file with
                   --config-out), then re-attach the archive: check the storage's identity and
                   re-hash it; exit status 1 when the archive has problems, 2 when refused

Options:
  -c, --config <file>   config file, YAML or JSON (or CCTV_CONFIG)
  -p, --port <port>     HTTP port (or CCTV_PORT; default 8080)
      --data-dir <dir>  data folder (or CCTV_DATA_DIR; default ./data)
      --roles <list>    roles of this process: signaling, sfu, camera-node, recorder,
                        detector, comma-separated (or CCTV_ROLES; default all five)
  -o, --output <file>   (backup) the file to write
      --force           (restore) delete the data already in the database, replace existing files
      --config-out <file>  (restore) write the backup's config file there, and restore with it
                        when no --config is given
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
  CCTV_METRICS__PORT (a node without signaling serves /metrics there; CCTV_METRICS__TOKEN asks for a token),
  CCTV_MASTER_URL (where a node without signaling enrols, e.g. https://master:8080),
  CCTV_ENROLL_TOKEN (a one-time token from the dashboard) or CCTV_ENROLL_SECRET (the deployment's),
  and any config key as CCTV_<SECTION>__<KEY>, e.g. CCTV_SFU__ICE__LOOPBACK=true.

A cluster: every process gets the same REDIS_URL; signaling instances, recorders and detectors
also DATABASE_URL; nodes (sfu, camera-node, recorder, detector) enrol once with CCTV_MASTER_URL and a token or the secret. See docs/operations.md.
`;

interface Args {
  command: 'start' | 'migrate' | 'check-config' | 'verify' | 'verify-export' | 'backup' | 'restore';
  config?: string;
  positional: string[];
  siteKey?: string;
  output?: string;
  configOut?: string;
  force?: boolean;
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
    else if ((a === '-o' || a === '--output') && out.command === 'backup') out.output = value();
    else if (a === '--config-out' && out.command === 'restore') out.configOut = value();
    else if (a === '--force' && out.command === 'restore') out.force = true;
    else if ((a === 'start' || a === 'migrate' || a === 'check-config' || a === 'verify' || a === 'verify-export' || a === 'backup' || a === 'restore') && out.command === 'start' && out.positional.length === 0) out.command = a;
    else if ((out.command === 'verify' || out.command === 'verify-export' || out.command === 'restore') && !a.startsWith('-')) out.positional.push(a);
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
  if (args.command === 'backup') {
    const db = await openDatabase({ url: config.database.url, dataDir: join(resolve(config.dataDir), 'db') });
    try {
      const r = await createBackup({ db, output: args.output, dataDir: config.dataDir, configFile: args.config ?? process.env.CCTV_CONFIG });
      process.stdout.write(`backup: ${r.tables} tables, ${r.rows} rows, ${r.bytes} bytes written to ${r.file}\n`);
      for (const w of r.warnings) process.stdout.write(`  note: ${w}\n`);
      process.stdout.write(
        'WARNING: this file holds secrets: the site\'s private key, password hashes, 2FA keys, webhook secrets, camera\n' +
        '  credentials, the TLS key. Keep it like the machine itself (it is mode 0600); encrypt it before it leaves the machine.\n',
      );
    } catch (error) {
      process.stderr.write(`cctv: backup failed: ${(error as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      await db.close();
    }
    return;
  }
  if (args.command === 'restore') {
    const [file] = args.positional;
    if (!file || args.positional.length > 1) {
      process.stderr.write('cctv: restore needs one backup file: cctv restore cctv-backup-….json.gz [--force] [--config-out file]\n');
      process.exit(2);
    }
    let db: Database | null = null;
    try {
      // With --config-out and no config given, the restore runs with the backup's config (this environment
      // over it): the database, data folder and NAS the restored system will start with.
      const cfg = (args.configOut && !args.config && !process.env.CCTV_CONFIG ? await loadBackupConfig(file, args.overrides as never) : null) ?? config;
      db = await openDatabase({ url: cfg.database.url, dataDir: join(resolve(cfg.dataDir), 'db') });
      const r = await restoreBackup({ db, file, dataDir: cfg.dataDir, force: args.force === true, configOut: args.configOut });
      const h = r.head.header;
      process.stdout.write(`restored ${r.tables} tables, ${r.rows} rows into ${db.kind} ${db.location} in ${r.durationMs} ms\n`);
      process.stdout.write(`  backup of ${h.createdAt} by cctv ${h.version}, site ${h.site ?? '(none)'}, site key SHA-256 ${h.siteKeyFingerprint ?? '(none)'}\n`);
      if (r.migrationsAfter.length) process.stdout.write(`  then applied this build's migrations ${r.migrationsAfter.join(', ')}\n`);
      if (r.configWritten) process.stdout.write(`  config file written to ${r.configWritten}\n`);
      else if (r.head.config) process.stdout.write(`  the backup holds the config file ${r.head.config.path}: not written (give --config-out <file> to write it)\n`);
      else if (args.configOut) process.stdout.write(`  the backup holds no config file (that system ran from its environment): nothing written to ${args.configOut}\n`);
      if (r.filesWritten.length) process.stdout.write(`  ${r.filesWritten.join(', ')} restored into ${resolve(cfg.dataDir)}\n`);
      // The archive: the storage this config names, as cctv verify opens it.
      const rc = cfg.recorder;
      const st = rc.storage ?? { id: 'nas', path: join(cfg.dataDir, 'archive'), requireMount: false, minFreeBytes: 0 };
      const a = await reattachArchive({ db, storage: st, spoolDir: rc.spoolDir ?? join(cfg.dataDir, 'spool'), ioTimeoutMs: rc.ioTimeoutMs });
      if (!a.storage && a.problems.length === 0) process.stdout.write('archive: the backup has no storage (nothing was recorded)\n');
      else if (a.storage?.available || a.verify) process.stdout.write(`archive: storage ${st.id} at ${resolve(st.path)} carries this site's identity (${a.site})\n`);
      for (const p of a.problems) process.stdout.write(`archive: PROBLEM: ${p}\n`);
      if (a.verify) {
        const v = a.verify;
        process.stdout.write(`${a.ok ? 'OK' : 'PROBLEMS FOUND'}: ${v.segments} segment(s) of ${v.cameras.length} camera(s), ${v.bytes} bytes re-hashed, ${v.manifests} signed manifest(s), in ${v.durationMs} ms\n`);
        for (const f of a.findings) process.stdout.write(`  ${f.kind}: ${f.detail}\n`);
      }
      for (const x of a.afterBackup) process.stdout.write(`  after the backup: ${x.files} file(s) of camera ${x.camera} on the storage were recorded after the backup was taken: the restored database has no rows for them (they are not on the timeline, and cctv verify names them inserted)\n`);
      for (const s of a.spooled) process.stdout.write(`  spooled: ${s.segments} segment(s) were in recorder ${s.recorder}'s spool at backup time, not on the storage: only that machine's spool has them\n`);
      process.exitCode = a.ok ? 0 : 1;
    } catch (error) {
      // Refused, or a backup that cannot be read: nothing was restored (status 2).
      const label = error instanceof RestoreRefusedError ? 'restore refused' : error instanceof BackupFileError ? 'cannot restore' : 'restore failed';
      process.stderr.write(`cctv: ${label}: ${(error as Error).message}\n`);
      process.exitCode = error instanceof RestoreRefusedError || error instanceof BackupFileError ? 2 : 1;
    } finally {
      await db?.close();
    }
    return;
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
