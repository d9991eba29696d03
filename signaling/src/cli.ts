#!/usr/bin/env node
import { configureLogging, createLogger, loadConfig, migrate, openDatabase, ValidationError, type Config } from '@cctv/core';
import { join, resolve } from 'node:path';
import { lanUrls, startSystem, VERSION } from './system.js';
import { startNode } from './node.js';

const HELP = `cctv ${VERSION}: a WebRTC-first CCTV system

Usage: cctv [command] [options]

Commands:
  start            run this process's roles (the default: every role, the one-machine mode)
  migrate          apply database migrations and exit
  check-config     validate the configuration, print it, and exit

Options:
  -c, --config <file>   config file, YAML or JSON (or CCTV_CONFIG)
  -p, --port <port>     HTTP port (or CCTV_PORT; default 8080)
      --data-dir <dir>  data folder (or CCTV_DATA_DIR; default ./data)
      --roles <list>    roles of this process: signaling, sfu, camera-node, comma-separated
                        (or CCTV_ROLES; default all three)
  -h, --help            show this help
  -v, --version         print the version

Environment:
  CCTV_CONFIG, CCTV_PORT, CCTV_HOST, CCTV_DATA_DIR, CCTV_LOG_LEVEL, CCTV_LOG_FORMAT, CCTV_NODE_ID,
  CCTV_ADMIN_PASSWORD (the first admin's password; without it one is generated and shown once),
  DATABASE_URL (postgres://…; without it an embedded database lives in the data folder),
  REDIS_URL (redis://…; without it the bus, registry and rate limits live in this process),
  CCTV_ROLES, CCTV_NODE_ID (unique per process in a cluster),
  CCTV_MASTER_URL (where a node without signaling enrols, e.g. https://master:8080),
  CCTV_ENROLL_TOKEN (a one-time token from the dashboard) or CCTV_ENROLL_SECRET (the deployment's),
  and any config key as CCTV_<SECTION>__<KEY>, e.g. CCTV_SFU__ICE__LOOPBACK=true.

A cluster: every process gets the same REDIS_URL; signaling instances also DATABASE_URL; nodes
(sfu, camera-node) enrol once with CCTV_MASTER_URL and a token or the secret. See docs/operations.md.
`;

interface Args {
  command: 'start' | 'migrate' | 'check-config';
  config?: string;
  overrides: Record<string, unknown>;
}

function parseArgs(argv: string[]): Args | 'help' | 'version' {
  const out: Args = { command: 'start', overrides: {} };
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
    else if (a === 'start' || a === 'migrate' || a === 'check-config') out.command = a;
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
