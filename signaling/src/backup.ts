import { createHash, createPublicKey } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { pipeline as pipelineCb } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { createLogger, loadConfig, migrate, MIGRATIONS_DIR, type Config, type Database, type LoadConfigOptions, type Queryable, type StorageConfig } from '@cctv/core';
import { siteIdOf, Storage, StorageProblem, verifyArchive, type Finding, type StorageStatus, type VerifyReport } from '@cctv/recorder';
import { VERSION } from './system.js';

const log = createLogger('signaling:backup');

/**
 * `cctv backup` and `cctv restore`: every row of the database (configuration, users, audit log, the
 * archive's metadata and chain), the config file and the data folder's TLS certificate in one gzip'd
 * JSON file; the video stays on the storage, where restore finds it again and re-hashes it.
 *
 * The file is JSON laid out one piece per line, so both sides stream it and `zcat | jq .header` reads it:
 *
 * ```
 * {"cctvBackup":1,
 * "header":{…},
 * "config":{"path":…,"text":…}|null,
 * "files":[{"path":"tls/cert.pem","mode":420,"data":"<base64>"}],
 * "tables":[
 * {"table":"cameras","rows":[
 * {…one row…}
 * ,{…}
 * ]}
 * ,{"table":"settings","rows":[
 * ]}
 * ],
 * "end":{"tables":…,"rows":…}}
 * ```
 *
 * Rows are Postgres's own `to_jsonb` of the row (exact: bigint and numeric digits are never parsed by
 * JavaScript), with bytea as base64, and a SQL NULL in a json/jsonb column left out (so it is told from a
 * JSON `null`). Restore hands them back to Postgres (`jsonb_populate_record`) in pages.
 */

/** The version of the file's layout this build writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;

/**
 * Tables deliberately not in a backup, and why. Every other table of the schema is backed up: a table a
 * new migration adds is in the next backup without anyone remembering it (the test fails for a table in
 * neither).
 */
export const EXCLUDED_TABLES: Readonly<Record<string, string>> = {
  schema_migrations: 'which migrations ran (names and checksums) is in the header; restore runs them itself',
  sessions: 'browser sign-ins are short-lived: everyone signs in again on the restored system (API tokens are kept)',
};

/**
 * Tables a migration fills (`cluster_state`'s one row): not data that makes a database non-empty; restore
 * replaces their rows with the backup's.
 */
export const SEEDED_TABLES: Readonly<Record<string, string>> = {
  cluster_state: 'its one row is written by migration 0003',
};

// Rows fetched at a time; a table with bytea (event thumbnails, init sections) in smaller pages.
const PAGE_ROWS = 5000;
const PAGE_ROWS_BINARY = 500;
// Rows sent in one INSERT on restore: at most this many, and about this many characters of JSON.
const INSERT_ROWS = 5000;
const INSERT_CHARS = 8 * 1024 * 1024;
const CURSOR = 'cctv_backup';

/** A column as the backup names it: its Postgres type decides how its value is written. */
export interface BackupColumn {
  name: string;
  /** `format_type` of the column, e.g. `bigint`, `jsonb`, `text[]`, `bytea`. */
  type: string;
}

/** The header of a backup: what it is, where from, and what is in it. */
export interface BackupHeader {
  format: 'cctv-backup';
  formatVersion: number;
  /** When the backup was taken (ISO 8601, UTC). */
  createdAt: string;
  /** The product version that wrote it. */
  version: string;
  /** `postgres` or `pglite`. */
  database: Database['kind'];
  /** The site id (first 16 hex digits of the site key's SHA-256), as in the storage's identity file; null before a first start. */
  site: string | null;
  /** SHA-256 of the site key's public key (SPKI DER, hex), as `cctv verify-export` prints it; null before a first start. */
  siteKeyFingerprint: string | null;
  /** The migrations the database had, in order. */
  migrations: Array<{ name: string; checksum: string }>;
  /** The tables in the file, in the order they are written (parents before the tables that refer to them). */
  tables: Array<{ name: string; rows: number; columns: BackupColumn[] }>;
  /** Tables left out on purpose, and why. */
  excluded: Array<{ table: string; why: string }>;
  /** Serial columns' sequences, so ids are never handed out twice (ids of deleted rows included). */
  sequences: Array<{ table: string; column: string; lastValue: string; isCalled: boolean }>;
}

/** A file of the data folder kept in the backup (the TLS certificate and key). */
export interface BackupFile {
  /** Relative to the data folder, e.g. `tls/cert.pem`. */
  path: string;
  mode: number;
  /** The content, base64. */
  data: string;
}

/** The config file kept in the backup. */
export interface BackupConfig {
  /** Where it was, as given to `cctv backup`. */
  path: string;
  text: string;
}

/** A backup file could not be read, or is not one this build can restore. */
export class BackupFileError extends Error {
  override name = 'BackupFileError';
}

/** Restore will not go on: the database has data, files would be overwritten, the backup is from a newer version. Nothing was changed. */
export class RestoreRefusedError extends Error {
  override name = 'RestoreRefusedError';
}

export interface BackupOptions {
  db: Database;
  /** The file to write (mode 0600); default `cctv-backup-<site>-<UTC time>.json.gz` in the current directory. */
  output?: string | undefined;
  /** The data folder: its `tls/` is kept in the backup. */
  dataDir: string;
  /** The config file to keep in the backup, as text; none when the config comes from the environment. */
  configFile?: string | undefined;
}

export interface BackupSummary {
  /** The file written (absolute). */
  file: string;
  /** Its size, bytes. */
  bytes: number;
  tables: number;
  rows: number;
  header: BackupHeader;
  /** What the backup does not have that an operator should know about. */
  warnings: string[];
}

const ident = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

interface TableInfo {
  name: string;
  columns: BackupColumn[];
  primaryKey: string[];
}

/** The schema's tables, their columns and primary keys, in an order where every table comes after those its foreign keys name. */
async function readSchema(q: Queryable): Promise<TableInfo[]> {
  const tables = (await q.query<{ name: string }>(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
  )).map((r) => r.name);
  const cols = await q.query<{ table_name: string; name: string; type: string }>(
    `SELECT c.relname AS table_name, a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
      ORDER BY c.relname, a.attnum`,
  );
  const pks = await q.query<{ table_name: string; name: string }>(
    `SELECT kcu.table_name, kcu.column_name AS name
       FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage kcu
         ON kcu.constraint_schema = tc.constraint_schema AND kcu.constraint_name = tc.constraint_name AND kcu.table_name = tc.table_name
      WHERE tc.table_schema = current_schema() AND tc.constraint_type = 'PRIMARY KEY'
      ORDER BY kcu.table_name, kcu.ordinal_position`,
  );
  const fks = await q.query<{ child: string; parent: string }>(
    `SELECT ch.relname AS child, pa.relname AS parent
       FROM pg_constraint k JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid
       JOIN pg_namespace n ON n.oid = k.connamespace
      WHERE k.contype = 'f' AND n.nspname = current_schema()`,
  );
  const info = new Map<string, TableInfo>(tables.map((t) => [t, { name: t, columns: [], primaryKey: [] }]));
  for (const c of cols) info.get(c.table_name)?.columns.push({ name: c.name, type: c.type });
  for (const k of pks) info.get(k.table_name)?.primaryKey.push(k.name);
  // Kahn's algorithm, ties by name: parents first. A table referring to itself is not a cycle here.
  const parents = new Map<string, Set<string>>(tables.map((t) => [t, new Set<string>()]));
  for (const f of fks) if (f.child !== f.parent && parents.has(f.child) && parents.has(f.parent)) parents.get(f.child)!.add(f.parent);
  const order: string[] = [];
  const left = new Set(tables);
  while (left.size > 0) {
    const ready = [...left].filter((t) => [...parents.get(t)!].every((p) => !left.has(p))).sort();
    if (ready.length === 0) throw new Error(`the foreign keys between ${[...left].join(', ')} form a cycle; a backup cannot order them`);
    for (const t of ready) {
      order.push(t);
      left.delete(t);
    }
  }
  return order.map((t) => info.get(t)!);
}

/** The expression that gives one row as JSON text: bytea as base64, a SQL NULL json/jsonb left out. */
function rowJson(t: TableInfo): string {
  let expr = `to_jsonb(${ident(t.name)}.*)`;
  const binary = t.columns.filter((c) => c.type === 'bytea');
  if (binary.length) {
    expr += ` || jsonb_build_object(${binary.map((c) => `${literal(c.name)}, translate(encode(${ident(c.name)}, 'base64'), E'\\n', '')`).join(', ')})`;
  }
  for (const c of t.columns.filter((x) => x.type === 'jsonb' || x.type === 'json')) {
    expr = `(${expr}) - (CASE WHEN ${ident(c.name)} IS NULL THEN ${literal(c.name)} ELSE '' END)`;
  }
  return `(${expr})::text`;
}

async function readSiteKey(q: Queryable): Promise<string | null> {
  const [r] = await q.query<{ value: string }>("SELECT value::text AS value FROM settings WHERE key = 'site_key'");
  if (!r) return null;
  const v = JSON.parse(r.value) as { publicKey?: string } | string;
  const key = typeof v === 'string' ? (JSON.parse(v) as { publicKey?: string }) : v;
  return key.publicKey ?? null;
}

/** SHA-256 of a PEM public key's SPKI DER, hex: the fingerprint `cctv verify-export` prints. */
export function keyFingerprint(publicKeyPem: string): string {
  return createHash('sha256').update(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })).digest('hex');
}

/** `cctv-backup-<site>-<UTC time>.json.gz`, e.g. `cctv-backup-3f2a…-20250102T030405Z.json.gz`. */
export function defaultBackupName(site: string | null, at: Date): string {
  return `cctv-backup-${site ?? 'new'}-${at.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '')}.json.gz`;
}

async function dataFiles(dataDir: string): Promise<BackupFile[]> {
  const dir = join(dataDir, 'tls');
  const names = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const out: BackupFile[] = [];
  for (const e of names.filter((n) => n.isFile()).map((n) => n.name).sort()) {
    const p = join(dir, e);
    out.push({ path: `tls/${e}`, mode: (await stat(p)).mode & 0o777, data: (await readFile(p)).toString('base64') });
  }
  return out;
}

// State of the data folder that is not in the database yet: worth a warning, not a copy.
async function pendingState(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const [file, what] of [['audit-backlog.json', 'audit entries'], ['queued-changes.json', 'camera changes']] as const) {
    try {
      const n = (JSON.parse(await readFile(join(dataDir, file), 'utf8')) as unknown[]).length;
      if (n > 0) out.push(`${n} ${what} in ${file} wait for the database and are not in this backup`);
    } catch {
      // none waiting
    }
  }
  return out;
}

/**
 * Writes a backup of the database (one consistent snapshot, streamed: no table is held in memory),
 * the config file and `<dataDir>/tls`. The file is written beside its name as `.partial` and renamed
 * when complete; it has mode 0600 because it holds the site's private key, password hashes, 2FA keys
 * and webhook secrets.
 */
export async function createBackup(o: BackupOptions): Promise<BackupSummary> {
  const started = new Date();
  const dataDir = resolve(o.dataDir);
  const config: BackupConfig | null = o.configFile ? { path: o.configFile, text: await readFile(o.configFile, 'utf8') } : null;
  const files = await dataFiles(dataDir);
  const warnings = await pendingState(dataDir);
  let file = o.output ? resolve(o.output) : '';
  let totalRows = 0;
  let header!: BackupHeader;
  await o.db.transaction(async (tx) => {
    // Every table as of one moment: the chain, the heads and the ranges agree with each other.
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const tables = (await readSchema(tx)).filter((t) => !(t.name in EXCLUDED_TABLES));
    const hasMigrations = (await tx.query("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migrations'")).length > 0;
    const migrations = hasMigrations ? await tx.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations ORDER BY name') : [];
    const counts = new Map<string, number>();
    for (const t of tables) counts.set(t.name, Number((await tx.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ident(t.name)}`))[0]!.n));
    const sequences: BackupHeader['sequences'] = [];
    const serial = await tx.query<{ table_name: string; column_name: string; seq: string | null }>(
      `SELECT table_name, column_name, pg_get_serial_sequence(quote_ident(table_name), column_name) AS seq
         FROM information_schema.columns
        WHERE table_schema = current_schema() AND (column_default LIKE 'nextval(%' OR is_identity = 'YES') ORDER BY table_name, column_name`,
    );
    for (const s of serial) {
      if (!s.seq || s.table_name in EXCLUDED_TABLES) continue;
      const [v] = await tx.query<{ last_value: string; is_called: boolean }>(`SELECT last_value::text AS last_value, is_called FROM ${s.seq}`);
      sequences.push({ table: s.table_name, column: s.column_name, lastValue: v!.last_value, isCalled: v!.is_called });
    }
    const publicKey = await readSiteKey(tx).catch(() => null);
    const site = publicKey ? siteIdOf(publicKey) : null;
    header = {
      format: 'cctv-backup',
      formatVersion: BACKUP_FORMAT_VERSION,
      createdAt: started.toISOString(),
      version: VERSION,
      database: o.db.kind,
      site,
      siteKeyFingerprint: publicKey ? keyFingerprint(publicKey) : null,
      migrations: migrations.map((m) => ({ name: m.name, checksum: m.checksum })),
      tables: tables.map((t) => ({ name: t.name, rows: counts.get(t.name)!, columns: t.columns })),
      excluded: Object.entries(EXCLUDED_TABLES).map(([table, why]) => ({ table, why })),
      sequences,
    };
    if (tables.some((t) => t.name === 'segments')) {
      const [sp] = await tx.query<{ n: string }>("SELECT count(*)::text AS n FROM segments WHERE state = 'spool'");
      if (Number(sp!.n) > 0) warnings.push(`${sp!.n} segment(s) were still in a recorder's spool, not yet on the storage: their rows are in the backup, their video is not on the NAS`);
    }
    if (!file) file = resolve(defaultBackupName(site, started));
    await mkdir(dirname(file), { recursive: true });
    const partial = `${file}.partial`;
    async function* body(): AsyncGenerator<string> {
      yield `{"cctvBackup":${BACKUP_FORMAT_VERSION},\n`;
      yield `"header":${JSON.stringify(header)},\n`;
      yield `"config":${JSON.stringify(config)},\n`;
      yield `"files":${JSON.stringify(files)},\n`;
      yield '"tables":[\n';
      for (const [i, t] of tables.entries()) {
        yield `${i ? ',' : ''}{"table":${JSON.stringify(t.name)},"rows":[\n`;
        const order = t.primaryKey.length ? ` ORDER BY ${t.primaryKey.map(ident).join(', ')}` : '';
        const page = t.columns.some((c) => c.type === 'bytea') ? PAGE_ROWS_BINARY : PAGE_ROWS;
        await tx.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR SELECT ${rowJson(t)} AS j FROM ${ident(t.name)}${order}`);
        let n = 0;
        for (;;) {
          const rows = await tx.query<{ j: string }>(`FETCH FORWARD ${page} FROM ${CURSOR}`);
          if (rows.length === 0) break;
          let chunk = '';
          for (const r of rows) chunk += (n++ ? ',' : '') + r.j + '\n';
          yield chunk;
        }
        await tx.query(`CLOSE ${CURSOR}`);
        if (n !== counts.get(t.name)) throw new Error(`table ${t.name} gave ${n} rows, its count was ${counts.get(t.name)}`);
        totalRows += n;
        log.debug({ table: t.name, rows: n }, 'table written');
        yield ']}\n';
      }
      yield `],\n"end":${JSON.stringify({ tables: tables.length, rows: totalRows })}}\n`;
    }
    try {
      await pipeline(body, createGzip(), createWriteStream(partial, { mode: 0o600 }));
      await chmod(partial, 0o600);
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  });
  const bytes = (await stat(file)).size;
  log.debug({ file, tables: header.tables.length, rows: totalRows, bytes }, 'backup written');
  return { file, bytes, tables: header.tables.length, rows: totalRows, header, warnings };
}

/** One line of a backup file at a time, decompressed; a damaged or cut-short file is a BackupFileError. */
async function* readLines(file: string): AsyncGenerator<string> {
  const input = pipelineCb(createReadStream(file), createGunzip(), () => {});
  input.setEncoding('utf8');
  let rest = '';
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      const buf = rest + chunk;
      let start = 0;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n', start)) {
        yield buf.slice(start, i);
        start = i + 1;
      }
      rest = buf.slice(start);
    }
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || e.code === 'EACCES' || e.code === 'EISDIR') throw new BackupFileError(`cannot read the backup ${file}: ${e.message}`, { cause: error });
    const why = e.code === 'Z_BUF_ERROR' ? 'it ends before its end: the file was cut short (an interrupted copy?)' : `it is not an intact gzip file (${e.message})`;
    throw new BackupFileError(`cannot read the backup ${file}: ${why}`, { cause: error });
  } finally {
    input.destroy();
  }
  if (rest) yield rest;
}

/** What comes before the rows: the header, the config file and the data folder's files. */
export interface BackupHead {
  header: BackupHeader;
  config: BackupConfig | null;
  files: BackupFile[];
}

function topLevel(line: string, key: string, file: string): unknown {
  const prefix = `"${key}":`;
  if (!line.startsWith(prefix)) throw new BackupFileError(`${file} is not a complete cctv backup: '${key}' expected, found ${JSON.stringify(line.slice(0, 40))}`);
  try {
    // `"key":value,` — or, on the last line, `"end":value}`.
    const text = line.slice(prefix.length);
    return JSON.parse(key === 'end' ? text.replace(/}$/, '') : text.replace(/,$/, ''));
  } catch (error) {
    throw new BackupFileError(`${file} is damaged: its '${key}' is not JSON`, { cause: error });
  }
}

async function readHeadFrom(lines: AsyncGenerator<string>, file: string): Promise<BackupHead> {
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new BackupFileError(`${file} is not a complete cctv backup: it ends before its tables`);
    return r.value;
  };
  const first = await next();
  const m = /^\{"cctvBackup":(\d+),$/.exec(first);
  if (!m) throw new BackupFileError(`${file} is not a cctv backup`);
  const formatVersion = Number(m[1]);
  if (formatVersion > BACKUP_FORMAT_VERSION) {
    throw new RestoreRefusedError(`${file} was written by a newer version of cctv (backup format ${formatVersion}; this build reads up to ${BACKUP_FORMAT_VERSION}): restore it with that version or a later one`);
  }
  const header = topLevel(await next(), 'header', file) as BackupHeader;
  const config = topLevel(await next(), 'config', file) as BackupConfig | null;
  const files = topLevel(await next(), 'files', file) as BackupFile[];
  if ((await next()) !== '"tables":[') throw new BackupFileError(`${file} is not a complete cctv backup: its tables do not begin where they should`);
  return { header, config, files };
}

/** Reads a backup's header, config and files (the start of the file only). */
export async function readBackupHead(file: string): Promise<BackupHead> {
  const lines = readLines(file);
  try {
    return await readHeadFrom(lines, file);
  } finally {
    await lines.return(undefined);
  }
}

/**
 * The backup's config file as this build loads it (`overrides` and the environment over it), or null
 * when the backup has none. One this build refuses is a RestoreRefusedError naming the key.
 */
export async function loadBackupConfig(file: string, overrides?: LoadConfigOptions['overrides']): Promise<Readonly<Config> | null> {
  const { config } = await readBackupHead(resolve(file));
  if (!config) return null;
  // Through a file of the same name, so YAML and JSON are told apart as for any config file.
  const dir = await mkdtemp(join(tmpdir(), 'cctv-restore-config-'));
  try {
    const path = join(dir, basename(config.path));
    await writeFile(path, config.text, { mode: 0o600 });
    return loadConfig({ file: path, ...(overrides ? { overrides } : {}) });
  } catch (error) {
    throw new RestoreRefusedError(`the backup's config file (${config.path}) does not load in this build: ${(error as Error).message}`, { cause: error });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface RestoreOptions {
  /** The database to restore into: empty of data (its migrations may have run), unless `force`. */
  db: Database;
  file: string;
  /** The data folder: the backup's `tls/` files go to `<dataDir>/tls`. */
  dataDir: string;
  /** Truncate every table first, and overwrite existing TLS files and `configOut`. */
  force?: boolean;
  /** Where to write the backup's config file; not written when absent. */
  configOut?: string | undefined;
}

export interface RestoreSummary {
  head: BackupHead;
  tables: number;
  rows: number;
  /** Migrations of this build the backup did not have, applied after its rows. */
  migrationsAfter: string[];
  /** Where the config file was written, when it was. */
  configWritten: string | null;
  /** Files written into the data folder (relative to it). */
  filesWritten: string[];
  durationMs: number;
}

function migrationChecksum(name: string): Promise<string> {
  return readFile(join(MIGRATIONS_DIR, name), 'utf8').then((t) => createHash('sha256').update(t).digest('hex'));
}

async function checkMigrations(header: BackupHeader, file: string): Promise<void> {
  const known = new Set((await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)));
  const unknown = header.migrations.filter((m) => !known.has(m.name));
  if (unknown.length) {
    throw new RestoreRefusedError(`${file} comes from a newer version of cctv (${header.version}): its migration${unknown.length > 1 ? 's' : ''} ${unknown.map((m) => m.name).join(', ')} ${unknown.length > 1 ? 'are' : 'is'} unknown to this build (${VERSION}); restore it with that version or a later one`);
  }
  for (const m of header.migrations) {
    if ((await migrationChecksum(m.name)) !== m.checksum) throw new RestoreRefusedError(`${file}: migration ${m.name} differs from this build's (another checksum); restore it with the version that wrote it (${header.version})`);
  }
}

/** Applies the backup's migrations (and no later ones): its rows go into the schema they came from. */
async function migrateTo(db: Database, names: string[]): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'cctv-restore-migrations-'));
  try {
    for (const n of names) await copyFile(join(MIGRATIONS_DIR, n), join(dir, n));
    await migrate(db, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Tables that have rows, with their counts (migration-seeded tables and schema_migrations aside). */
async function tablesWithRows(q: Queryable): Promise<Array<{ table: string; rows: number }>> {
  const out: Array<{ table: string; rows: number }> = [];
  for (const t of await readSchema(q)) {
    if (t.name === 'schema_migrations' || t.name in SEEDED_TABLES) continue;
    const [r] = await q.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${ident(t.name)}`);
    if (Number(r!.n) > 0) out.push({ table: t.name, rows: Number(r!.n) });
  }
  return out;
}

function notEmpty(db: Database, full: Array<{ table: string; rows: number }>): string {
  return `the database ${db.location} is not empty: ${full.map((f) => `table ${f.table} has ${f.rows} row${f.rows > 1 ? 's' : ''}`).join(', ')}`;
}

function insertSql(table: string, columns: BackupColumn[]): string {
  const binary = columns.filter((c) => c.type === 'bytea').map((c) => c.name);
  const values = columns.map((c) => {
    if (c.type === 'bytea') return `decode(j->>${literal(c.name)}, 'base64')`;
    // j->'x' keeps a JSON null as jsonb null; an absent key (a SQL NULL) gives NULL.
    if (c.type === 'jsonb') return `j->${literal(c.name)}`;
    if (c.type === 'json') return `(j->${literal(c.name)})::json`;
    return `r.${ident(c.name)}`;
  });
  const strip = binary.length ? ` - ARRAY[${binary.map(literal).join(', ')}]::text[]` : '';
  return `INSERT INTO ${ident(table)} (${columns.map((c) => ident(c.name)).join(', ')}) OVERRIDING SYSTEM VALUE
    SELECT ${values.join(', ')} FROM jsonb_array_elements($1::text::jsonb) AS j, LATERAL jsonb_populate_record(NULL::${ident(table)}, j${strip}) AS r`;
}

/**
 * Restores a backup into `db`: checks the header (format, migrations this build knows), applies the
 * backup's migrations, refuses a database with data (unless `force`, which truncates every table),
 * inserts every table's rows in one transaction (parents first), sets every sequence past the ids used,
 * applies this build's later migrations, and writes the config file and the TLS files. A refusal
 * (`RestoreRefusedError`) or a damaged file (`BackupFileError`) leaves the database without the
 * backup's rows.
 */
export async function restoreBackup(o: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const file = resolve(o.file);
  const head = await readBackupHead(file);
  const { header } = head;
  if (header.format !== 'cctv-backup') throw new BackupFileError(`${file} is not a cctv backup`);
  await checkMigrations(header, file);
  const dataDir = resolve(o.dataDir);
  // The schema the backup's rows came from; then every reason to refuse at once, before any row is written.
  await migrateTo(o.db, header.migrations.map((m) => m.name));
  if (!o.force) {
    const reasons: string[] = [];
    const full = await tablesWithRows(o.db);
    if (full.length) reasons.push(notEmpty(o.db, full));
    const existing = head.files.map((f) => join(dataDir, f.path)).filter((p) => existsSync(p));
    if (existing.length) reasons.push(`${existing.join(', ')} already exist${existing.length > 1 ? '' : 's'}`);
    if (o.configOut && head.config && existsSync(o.configOut)) reasons.push(`${o.configOut} already exists (give --config-out another file)`);
    if (reasons.length) throw new RestoreRefusedError(`${reasons.join('; ')}: restore into an empty database, or with --force to delete what is there first`);
  }

  let rows = 0;
  let tables = 0;
  try {
    await o.db.transaction(async (tx) => {
      const schema = new Map((await readSchema(tx)).map((t) => [t.name, t]));
      if (o.force) {
        // Every table but the migrations' record; user triggers off for it (the audit log refuses TRUNCATE).
        const all = [...schema.keys()].filter((t) => t !== 'schema_migrations');
        const triggered = (await tx.query<{ name: string }>(
          `SELECT DISTINCT c.relname AS name FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT g.tgisinternal AND n.nspname = current_schema()`,
        )).map((r) => r.name).filter((t) => all.includes(t));
        for (const t of triggered) await tx.query(`ALTER TABLE ${ident(t)} DISABLE TRIGGER USER`);
        if (all.length) await tx.query(`TRUNCATE TABLE ${all.map(ident).join(', ')}`);
        for (const t of triggered) await tx.query(`ALTER TABLE ${ident(t)} ENABLE TRIGGER USER`);
      } else {
        // Again, inside the transaction: nothing wrote meanwhile.
        const full = await tablesWithRows(tx);
        if (full.length) throw new RestoreRefusedError(`${notEmpty(o.db, full)}: restore into an empty database, or with --force to delete what is there first`);
      }
      for (const t of header.tables) {
        const target = schema.get(t.name);
        if (!target) throw new RestoreRefusedError(`the backup has table ${t.name}, which this database does not have`);
        const missing = t.columns.filter((c) => !target.columns.some((x) => x.name === c.name));
        if (missing.length) throw new RestoreRefusedError(`the backup's table ${t.name} has column${missing.length > 1 ? 's' : ''} ${missing.map((c) => c.name).join(', ')}, which this database's does not`);
      }
      const byName = new Map(header.tables.map((t) => [t.name, t]));
      const lines = readLines(file);
      try {
        await readHeadFrom(lines, file);
        let table: BackupHeader['tables'][number] | null = null;
        let sql = '';
        let batch: string[] = [];
        let chars = 0;
        let n = 0;
        const flush = async (): Promise<void> => {
          if (!batch.length || !table) return;
          await tx.query(sql, [`[${batch.join(',')}]`]);
          batch = [];
          chars = 0;
        };
        let ended = false;
        for await (const line of lines) {
          if (ended) throw new BackupFileError(`${file} is damaged: there is more after its end`);
          if (table === null) {
            if (line === '],') continue;
            if (line.startsWith('"end":')) {
              const end = topLevel(line, 'end', file) as { tables: number; rows: number };
              if (end.tables !== tables || end.rows !== rows || tables !== header.tables.length) throw new BackupFileError(`${file} is damaged: it ends with ${end.tables} tables and ${end.rows} rows, but ${tables} tables and ${rows} rows were read`);
              ended = true;
              continue;
            }
            let name: string;
            try {
              name = (JSON.parse(line.replace(/^,/, '') + ']}') as { table: string }).table;
            } catch (error) {
              throw new BackupFileError(`${file} is damaged: a table was expected, found ${JSON.stringify(line.slice(0, 40))}`, { cause: error });
            }
            table = byName.get(name) ?? null;
            if (!table) throw new BackupFileError(`${file} is damaged: it has rows of table ${name}, which its header does not list`);
            if (SEEDED_TABLES[name] !== undefined) await tx.query(`DELETE FROM ${ident(name)}`);
            sql = insertSql(name, table.columns);
            n = 0;
            continue;
          }
          if (line === ']}') {
            await flush();
            if (n !== table.rows) throw new BackupFileError(`${file} is damaged: table ${table.name} has ${n} rows, its header says ${table.rows}`);
            log.debug({ table: table.name, rows: n }, 'table restored');
            rows += n;
            tables++;
            table = null;
            continue;
          }
          const row = n === 0 ? line : line.startsWith(',') ? line.slice(1) : '';
          if (!row.startsWith('{')) throw new BackupFileError(`${file} is damaged: row ${n + 1} of table ${table.name} is not a row`);
          batch.push(row);
          chars += row.length;
          n++;
          if (batch.length >= INSERT_ROWS || chars >= INSERT_CHARS) await flush();
        }
        if (!ended) throw new BackupFileError(`${file} is not complete: it ends before its end (the file was cut short)`);
      } finally {
        await lines.return(undefined);
      }
      // Sequences past every id used (and every id the backup's sequence had handed out: deleted rows' ids are never reused).
      for (const s of header.sequences) {
        if (!schema.has(s.table)) continue;
        const [seq] = await tx.query<{ seq: string | null }>('SELECT pg_get_serial_sequence($1, $2) AS seq', [ident(s.table), s.column]);
        if (!seq?.seq) continue;
        await tx.query(
          `SELECT setval($1::text::regclass, GREATEST(v, 1), v > 0) FROM (SELECT GREATEST($2::text::bigint, (SELECT coalesce(max(${ident(s.column)}), 0) FROM ${ident(s.table)})) AS v) x`,
          [seq.seq, s.isCalled ? s.lastValue : '0'],
        );
      }
    });
  } catch (error) {
    if (error instanceof RestoreRefusedError) throw error;
    const e = error instanceof BackupFileError ? error : new Error(`restore failed: ${(error as Error).message}`, { cause: error });
    e.message += '; nothing was restored (the database is as it was)';
    throw e;
  }
  // This build's later migrations, on the restored rows.
  const after = await migrate(o.db);

  let configWritten: string | null = null;
  if (o.configOut && head.config) {
    await mkdir(dirname(resolve(o.configOut)), { recursive: true });
    // The config can hold camera passwords and secrets.
    await writeFile(o.configOut, head.config.text, { mode: 0o600 });
    configWritten = resolve(o.configOut);
  }
  const filesWritten: string[] = [];
  for (const f of head.files) {
    const p = join(dataDir, f.path);
    if (!p.startsWith(dataDir + '/') || f.path.includes('..')) throw new BackupFileError(`${file} is damaged: file ${f.path} is outside the data folder`);
    await mkdir(dirname(p), { recursive: true, mode: 0o700 });
    await writeFile(p, Buffer.from(f.data, 'base64'), { mode: f.mode });
    await chmod(p, f.mode);
    filesWritten.push(f.path);
  }
  log.debug({ file: basename(file), tables, rows }, 'backup restored');
  return { head, tables, rows, migrationsAfter: after.applied, configWritten, filesWritten, durationMs: Date.now() - started };
}

export interface ReattachOptions {
  db: Database;
  /** The storage the config names (the NAS), as `cctv verify` takes it. */
  storage: StorageConfig;
  /** The recorder's spool on this machine. */
  spoolDir: string;
  /** Deadline of each storage operation, ms. */
  ioTimeoutMs: number;
}

export interface ReattachReport {
  /** The storage is there with this site's identity and every segment on it checks out. */
  ok: boolean;
  /** The storage as checked (identity, mount, space); null when there was nothing to re-attach. */
  storage: StorageStatus | null;
  /** The site id the storage's identity file must name. */
  site: string | null;
  /** What stopped the re-attach (the storage missing, another site's, not in the backup). */
  problems: string[];
  /** The re-hash, when the storage could be read. */
  verify: VerifyReport | null;
  /** Findings that are problems (spooled segments aside). */
  findings: Finding[];
  /** Segments that were in a recorder's spool at backup time (not on the storage), per recorder. */
  spooled: Array<{ recorder: string; segments: number }>;
  /**
   * Files on the storage recorded after the backup was taken (ids the backup's sequence had not handed
   * out yet), per camera: their rows were lost with the old database.
   */
  afterBackup: Array<{ camera: string; files: number }>;
}

/**
 * Re-attaches the archive after a restore: the storage the config names must carry the identity file
 * of the restored `storages` row and site (`.cctv-storage.json`), and every segment is re-hashed and
 * walked in its chain (`verifyArchive`). Segments that were still in a recorder's spool at backup time,
 * and files recorded after the backup was taken, are reported apart: neither is tampering.
 */
export async function reattachArchive(o: ReattachOptions): Promise<ReattachReport> {
  const publicKey = await readSiteKey(o.db);
  const site = publicKey ? siteIdOf(publicKey) : null;
  const known = await o.db.query<{ id: string; path: string }>('SELECT id, path FROM storages ORDER BY id');
  const spooledRows = await o.db.query<{ id: number; recorder: string }>("SELECT id, recorder FROM segments WHERE state = 'spool' ORDER BY id");
  const spooledIds = new Set(spooledRows.map((r) => Number(r.id)));
  const perRecorder = new Map<string, number>();
  for (const r of spooledRows) perRecorder.set(r.recorder, (perRecorder.get(r.recorder) ?? 0) + 1);
  const spooled = [...perRecorder].map(([recorder, segments]) => ({ recorder, segments }));
  const report: ReattachReport = { ok: true, storage: null, site, problems: [], verify: null, findings: [], spooled, afterBackup: [] };
  if (known.length === 0) return report;
  if (!known.some((k) => k.id === o.storage.id)) {
    report.ok = false;
    report.problems.push(`the config names storage '${o.storage.id}', the backup has ${known.map((k) => `'${k.id}' (${k.path})`).join(', ')}: set recorder.storage.id and path to it`);
    return report;
  }
  const storage = new Storage({ config: { ...o.storage, path: resolve(o.storage.path) }, db: o.db, site: site ?? 'unknown', ioTimeoutMs: o.ioTimeoutMs });
  try {
    report.storage = await storage.check();
    const readable: Array<StorageProblem | null> = [null, StorageProblem.Full, StorageProblem.ReadOnly];
    if (!readable.includes(report.storage.problem)) {
      report.ok = false;
      report.problems.push(`storage ${o.storage.id} at ${storage.path} is ${report.storage.problem}: ${report.storage.detail ?? ''}`);
      return report;
    }
    const verify = await verifyArchive({ db: o.db, storage, spoolDir: resolve(o.spoolDir), ...(publicKey ? { sitePublicKey: publicKey } : {}) });
    report.verify = verify;
    // Segment ids come from one sequence: a file whose id it had not reached at backup time was recorded after.
    const [seq] = await o.db.query<{ s: string | null }>("SELECT pg_get_serial_sequence('segments', 'id') AS s");
    const handedOut = seq?.s ? Number((await o.db.query<{ v: string }>(`SELECT last_value::text AS v FROM ${seq.s}`))[0]!.v) : Infinity;
    const after = new Map<string, number>();
    report.findings = verify.findings.filter((f) => {
      if (f.kind === 'missing' && f.segment !== undefined && f.path !== undefined && spooledIds.has(f.segment)) return false;
      const id = f.kind === 'inserted' ? /-(\d+)\.m4s$/.exec(f.path ?? '')?.[1] : undefined;
      if (id === undefined || Number(id) <= handedOut) return true;
      after.set(f.camera, (after.get(f.camera) ?? 0) + 1);
      return false;
    });
    report.afterBackup = [...after].map(([camera, files]) => ({ camera, files }));
    report.ok = report.findings.every((f) => f.kind === 'dropped');
    return report;
  } finally {
    storage.close();
  }
}
