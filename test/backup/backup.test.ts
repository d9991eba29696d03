import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, MIGRATIONS_DIR, openDatabase, type Database } from '@cctv/core';
import { signPendingManifests } from '@cctv/recorder';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { startSystem, VERSION, type System } from '../../signaling/src/system.js';
import { loadTls } from '../../signaling/src/tls.js';
import { UserStore } from '../../signaling/src/auth/users.js';
import { AuditLog } from '../../signaling/src/auth/audit.js';
import {
  BackupFileError, createBackup, EXCLUDED_TABLES, keyFingerprint, reattachArchive, restoreBackup, RestoreRefusedError,
  type BackupHeader, type BackupSummary,
} from '../../signaling/src/backup.js';

// A recording system backed up, then restored on a "new machine" (a new database and data folder) with
// the same archive folder (the NAS): the rows, the sign-ins, the audit chain and the archive come back.
const ROOT = resolve(import.meta.dirname, '../..');
const ADMIN_PASSWORD = 'backup-test-admin-password';
const GUARD_PASSWORD = 'backup-test-guard-password';
type TestDb = Awaited<ReturnType<typeof createTestDatabase>>;

let root: string;
let oldDir: string;
let nas: string;
let configFile: string;
let source: TestDb;
let target: TestDb;
let scratch: TestDb;
let dbA: Database;
let dbB: Database;
let backup: BackupSummary;
let tlsFingerprint: string;
const dropLater: TestDb[] = [];
const closeLater: Database[] = [];

async function until<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const cli = (env: Record<string, string>, ...args: string[]) => {
  const base = { ...process.env };
  delete base.DATABASE_URL;
  delete base.CCTV_CONFIG;
  return spawnSync(process.execPath, ['--import', join(ROOT, 'test/support/tsxRegister.mjs'), join(ROOT, 'signaling/src/cli.ts'), ...args], {
    encoding: 'utf8', env: { ...base, CCTV_LOG_LEVEL: 'error', ...env },
  });
};
const count = async (db: Database, table: string) => Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${table}"`))[0]!.n);
// Every row of a table, as Postgres prints it, in one digest: equal digests, equal contents (bytea and times included).
const digest = async (db: Database, table: string) => (await db.query<{ d: string }>(`SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS d FROM "${table}" t`))[0]!.d;
const tablesOf = async (db: Database) => (await db.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1")).map((r) => r.t);
const nasStorage = () => ({ id: 'nas', path: nas, requireMount: false, minFreeBytes: 0 });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'cctv-backup-'));
  oldDir = join(root, 'old-machine');
  nas = join(root, 'nas');
  [source, target, scratch] = await Promise.all([createTestDatabase('cctv_backup_src'), createTestDatabase('cctv_backup_dst'), createTestDatabase('cctv_backup_scr')]);
  dropLater.push(source, target, scratch);
  configFile = join(root, 'cctv.json');
  writeFileSync(configFile, JSON.stringify({
    http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } },
    demoCamera: false,
    recorder: { segmentSeconds: 1, storage: { path: nas } },
    cameras: [{ id: 'cam', source: { kind: 'test', width: 320, height: 180, fps: 15 } }],
  }, null, 2));
  const config = loadConfig({ env: {}, file: configFile, overrides: { dataDir: oldDir, database: { url: source.url } } });
  const system = await startSystem({ config, webDir: null, adminPassword: ADMIN_PASSWORD });
  try {
    const base = `http://127.0.0.1:${system.port}`;
    const token = ((await (await fetch(`${base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) })).json()) as { token: string }).token;
    const call = async (method: string, path: string, body: unknown) => {
      const r = await fetch(base + path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(r.status, `${method} ${path}: ${await r.clone().text()}`).toBeLessThan(300);
    };
    // A user added and a camera changed, through the API (so both are in the audit log).
    await call('POST', '/api/users', { username: 'guard', password: GUARD_PASSWORD, role: 'operator' });
    await call('PATCH', '/api/cameras/cam', { name: 'Front door' });
    await until(async () => Number((await system.db.query<{ n: string }>("SELECT count(*)::text AS n FROM segments WHERE state = 'stored'"))[0]!.n) >= 3, '3 segments stored');
    // The hour is ended by moving the clock on, so the archive has signed manifests.
    expect(await signPendingManifests(system.db, system.cluster.siteKey.privateKey, Date.now() + 2 * 3_600_000)).toBeGreaterThan(0);
    // A motion event with its JPEG (bytea) and its box (jsonb), and one without either.
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0xff, 0xd9]);
    await system.db.query("INSERT INTO events (camera_id, start_ms, end_ms, peak_score, zones, box, node, thumbnail) VALUES ('cam', $1, $2, 0.37, $3, $4, 'test', $5)",
      [Date.now() - 5000, Date.now() - 2000, ['all', 'door'], { x: 0.1, y: 0.2, w: 0.3, h: 0.25 }, jpeg]);
    await system.db.query("INSERT INTO events (camera_id, start_ms, peak_score, node) VALUES ('cam', $1, 0.2, 'test')", [Date.now()]);
  } finally {
    await system.close();
  }
  // The certificate nodes pinned: made as a first start with TLS makes it.
  tlsFingerprint = (await loadTls({ mode: 'self-signed' } as never, oldDir))!.fingerprint;
  dbA = await openDatabase({ url: source.url });
  dbB = await openDatabase({ url: target.url });
  closeLater.push(dbA, dbB);
});

afterAll(async () => {
  for (const db of closeLater) await db.close().catch(() => {});
  for (const d of dropLater) await d.drop().catch(() => {});
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('cctv backup and cctv restore', () => {
  it('backs up every table of the schema but the excluded ones, in one gzip\'d JSON file of mode 0600', async () => {
    backup = await createBackup({ db: dbA, output: join(root, 'backup.json.gz'), dataDir: oldDir, configFile });
    expect(statSync(backup.file).mode & 0o777).toBe(0o600);
    expect(readdirSync(root).filter((f) => f.endsWith('.partial'))).toEqual([]);
    const h = backup.header;
    // Every table is either in the backup or in the documented exclusion list, never in both, and no
    // exclusion names a table that no longer exists.
    const all = await tablesOf(dbA);
    const backedUp = h.tables.map((t) => t.name);
    for (const t of all) expect(backedUp.includes(t) !== t in EXCLUDED_TABLES, `table ${t} must be backed up or listed in EXCLUDED_TABLES`).toBe(true);
    for (const t of Object.keys(EXCLUDED_TABLES)) expect(all).toContain(t);
    for (const t of h.tables) expect(t.rows, t.name).toBe(await count(dbA, t.name));
    expect(h.tables.find((t) => t.name === 'segments')!.rows).toBeGreaterThanOrEqual(3);
    // Parents come before the tables whose foreign keys name them.
    expect(backedUp.indexOf('users')).toBeLessThan(backedUp.indexOf('api_tokens'));
    expect(backedUp.indexOf('recording_inits')).toBeLessThan(backedUp.indexOf('segments'));
    expect(backedUp.indexOf('storages')).toBeLessThan(backedUp.indexOf('segments'));
    expect(h.migrations.map((m) => m.name)).toEqual(readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort());
    expect(h.version).toBe(VERSION);
    const [site] = await dbA.query<{ value: { publicKey: string } }>("SELECT value FROM settings WHERE key = 'site_key'");
    expect(h.siteKeyFingerprint).toBe(keyFingerprint(site!.value.publicKey));
    expect(backup.rows).toBe(h.tables.reduce((n, t) => n + t.rows, 0));
    // One JSON document: what jq would read.
    const doc = JSON.parse(gunzipSync(readFileSync(backup.file)).toString('utf8')) as {
      header: BackupHeader; config: { text: string }; files: Array<{ path: string }>; tables: Array<{ table: string; rows: Array<Record<string, unknown>> }>;
    };
    expect(doc.config.text).toBe(readFileSync(configFile, 'utf8'));
    expect(doc.files.map((f) => f.path)).toEqual(['tls/cert.pem', 'tls/key.pem']);
    const events = doc.tables.find((t) => t.table === 'events')!.rows;
    expect(Buffer.from(events[0]!.thumbnail as string, 'base64').subarray(0, 2).toString('hex')).toBe('ffd8');
    expect(events[0]!.box).toEqual({ x: 0.1, y: 0.2, w: 0.3, h: 0.25 });
    expect('box' in events[1]!).toBe(false);
  });

  it('cctv backup writes the file and says it holds secrets', () => {
    const out = cli({ DATABASE_URL: source.url, CCTV_DATA_DIR: oldDir }, 'backup', '--config', configFile, '--output', join(root, 'cli-backup.json.gz'));
    expect(out.status, out.stderr).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^backup: ${backup.tables} tables, ${backup.rows} rows, \\d+ bytes written to .*cli-backup\\.json\\.gz\\n`));
    expect(out.stdout).toMatch(/WARNING: this file holds secrets/);
    expect(statSync(join(root, 'cli-backup.json.gz')).mode & 0o777).toBe(0o600);
  });

  it('restores into a new empty database and data folder, and re-attaches the same NAS, which verifies', async () => {
    const newDir = join(root, 'new-machine');
    const r = await restoreBackup({ db: dbB, file: backup.file, dataDir: newDir });
    expect(r.tables).toBe(backup.tables);
    expect(r.rows).toBe(backup.rows);
    // Every table as it was, row for row; the sequences go on from where they were.
    for (const t of backup.header.tables) {
      expect(await count(dbB, t.name), t.name).toBe(t.rows);
      expect(await digest(dbB, t.name), t.name).toBe(await digest(dbA, t.name));
    }
    for (const s of backup.header.sequences) {
      const q = `SELECT last_value::text AS v FROM ${(await dbA.query<{ s: string }>('SELECT pg_get_serial_sequence($1, $2) AS s', [s.table, s.column]))[0]!.s}`;
      expect((await dbB.query<{ v: string }>(q))[0]!.v, `${s.table}.${s.column}`).toBe((await dbA.query<{ v: string }>(q))[0]!.v);
    }
    expect((await dbB.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).map((m) => m.name)).toEqual(backup.header.migrations.map((m) => m.name));
    // The users can sign in; the audit chain holds.
    const users = new UserStore(dbB);
    expect(await users.checkPassword('guard', GUARD_PASSWORD)).toMatchObject({ username: 'guard', role: 'operator' });
    expect(await users.checkPassword('admin', ADMIN_PASSWORD)).toMatchObject({ username: 'admin' });
    expect(await users.checkPassword('guard', 'not-the-password')).toBeNull();
    const audit = await new AuditLog(dbB).verify();
    expect(audit.ok).toBe(true);
    expect(audit.entries).toBe(await count(dbA, 'audit_log'));
    // The certificate the nodes pinned, and its key still private.
    expect(readFileSync(join(newDir, 'tls/cert.pem'), 'utf8')).toBe(readFileSync(join(oldDir, 'tls/cert.pem'), 'utf8'));
    expect(statSync(join(newDir, 'tls/key.pem')).mode & 0o777).toBe(0o600);
    expect((await loadTls({ mode: 'self-signed' } as never, newDir))!.fingerprint).toBe(tlsFingerprint);
    // The archive: the storage's identity is this site's, every segment re-hashes to its row.
    const a = await reattachArchive({ db: dbB, storage: nasStorage(), spoolDir: join(newDir, 'spool'), ioTimeoutMs: 5000 });
    expect(a.problems).toEqual([]);
    expect(a.findings).toEqual([]);
    expect(a.ok).toBe(true);
    expect(a.storage?.available).toBe(true);
    expect(a.site).toBe(backup.header.site);
    const stored = Number((await dbB.query<{ n: string }>("SELECT count(*)::text AS n FROM segments WHERE state = 'stored'"))[0]!.n);
    expect(a.verify!.segments).toBeGreaterThanOrEqual(stored);
    expect(a.verify!.manifests).toBeGreaterThan(0);
    const spooled = Number((await dbB.query<{ n: string }>("SELECT count(*)::text AS n FROM segments WHERE state = 'spool'"))[0]!.n);
    expect(a.spooled.reduce((n, s) => n + s.segments, 0)).toBe(spooled);
  });

  it('cctv restore into the embedded database of a new data folder writes the config and verifies the archive', async () => {
    const dir = join(root, 'embedded-machine');
    const configOut = join(root, 'restored', 'cctv.json');
    const out = cli({ CCTV_DATA_DIR: dir }, 'restore', join(root, 'cli-backup.json.gz'), '--config-out', configOut);
    expect(out.status, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^restored ${backup.tables} tables, ${backup.rows} rows into pglite `));
    expect(out.stdout).toMatch(/carries this site's identity/);
    expect(out.stdout).toMatch(/\nOK: \d+ segment\(s\) of 1 camera\(s\)/);
    expect(readFileSync(configOut, 'utf8')).toBe(readFileSync(configFile, 'utf8'));
    expect(statSync(configOut).mode & 0o777).toBe(0o600);
    // Again: refused, naming a table with rows and the files it would replace; with --force, done.
    const refused = cli({ CCTV_DATA_DIR: dir }, 'restore', join(root, 'cli-backup.json.gz'));
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/restore refused: the database .* is not empty: .*table cameras has 1 row.*tls\/cert\.pem.* already exist/);
    const forced = cli({ CCTV_DATA_DIR: dir, CCTV_NAS_DIR: nas }, 'restore', join(root, 'cli-backup.json.gz'), '--force');
    expect(forced.status, forced.stdout + forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/the backup holds the config file .*cctv\.json: not written/);
    const pglite = await openDatabase({ dataDir: join(dir, 'db') });
    try {
      for (const t of backup.header.tables) expect(await count(pglite, t.name), t.name).toBe(t.rows);
      expect((await new AuditLog(pglite).verify()).ok).toBe(true);
      // And back out of the embedded database: the same tables and rows.
      const again = await createBackup({ db: pglite, output: join(root, 'from-pglite.json.gz'), dataDir: dir });
      expect(again.header.database).toBe('pglite');
      expect(again.header.tables.map((t) => [t.name, t.rows])).toEqual(backup.header.tables.map((t) => [t.name, t.rows]));
      expect(again.header.siteKeyFingerprint).toBe(backup.header.siteKeyFingerprint);
    } finally {
      await pglite.close();
    }
  });

  it('refuses a database with data, naming the table, and changes nothing in it', async () => {
    const before = await count(dbA, 'audit_log');
    await expect(restoreBackup({ db: dbA, file: backup.file, dataDir: join(root, 'refused') })).rejects.toThrow(RestoreRefusedError);
    await expect(restoreBackup({ db: dbA, file: backup.file, dataDir: join(root, 'refused') })).rejects.toThrow(/is not empty: .*table cameras has 1 row/);
    expect(await count(dbA, 'audit_log')).toBe(before);
  });

  it('refuses a backup from a newer version, naming the migration this build does not know', async () => {
    const text = gunzipSync(readFileSync(backup.file)).toString('utf8').split('\n');
    const header = JSON.parse(text[1]!.slice('"header":'.length, -1)) as BackupHeader;
    header.migrations.push({ name: '0099_future_things.sql', checksum: '0'.repeat(64) });
    text[1] = `"header":${JSON.stringify(header)},`;
    const future = join(root, 'future.json.gz');
    writeFileSync(future, gzipSync(text.join('\n')));
    const db = await openDatabase({ url: scratch.url });
    closeLater.push(db);
    await expect(restoreBackup({ db, file: future, dataDir: join(root, 'future') })).rejects.toThrow(/migration 0099_future_things\.sql is unknown to this build/);
    // Refused before anything was done: not even a migration ran.
    expect(await tablesOf(db)).toEqual([]);
  });

  it('says a cut-short file is cut short, restores nothing from it, and then restores the whole file', async () => {
    const data = readFileSync(backup.file);
    const cut = join(root, 'cut.json.gz');
    writeFileSync(cut, data.subarray(0, Math.floor(data.length * 0.6)));
    const db = await openDatabase({ url: scratch.url });
    closeLater.push(db);
    const failed = restoreBackup({ db, file: cut, dataDir: join(root, 'cut') });
    await expect(failed).rejects.toThrow(BackupFileError);
    await expect(failed).rejects.toThrow(/cut short.*nothing was restored/);
    for (const t of ['cameras', 'users', 'segments', 'audit_log']) expect(await count(db, t)).toBe(0);
    const r = await restoreBackup({ db, file: backup.file, dataDir: join(root, 'cut') });
    expect(r.rows).toBe(backup.rows);
    for (const t of backup.header.tables) expect(await digest(db, t.name), t.name).toBe(await digest(dbA, t.name));
    // Not gzip at all.
    writeFileSync(join(root, 'plain.json.gz'), '{"cctvBackup":1,\n');
    await expect(restoreBackup({ db, file: join(root, 'plain.json.gz'), dataDir: join(root, 'cut') })).rejects.toThrow(/not an intact gzip file/);
  });

  it('reports apart a segment that was in a recorder\'s spool and a file recorded after the backup; an unmounted folder is a problem', async () => {
    // The scratch database holds the restored backup (the test before); one of its segments becomes a spooled one.
    const db = await openDatabase({ url: scratch.url });
    closeLater.push(db);
    const [seg] = await db.query<{ id: number; recorder: string }>("UPDATE segments SET state = 'spool' WHERE id = (SELECT max(id) FROM segments) RETURNING id, recorder");
    const a = await reattachArchive({ db, storage: nasStorage(), spoolDir: join(root, 'cut', 'spool'), ioTimeoutMs: 5000 });
    expect(a.ok).toBe(true);
    expect(a.findings).toEqual([]);
    expect(a.spooled).toEqual([{ recorder: seg!.recorder, segments: 1 }]);
    expect(a.afterBackup).toEqual([]);
    // A segment the old system recorded after the backup: on the NAS, with an id the backup never handed out.
    const hour = join(nas, 'cam', '2030-01-01', '00');
    mkdirSync(hour, { recursive: true });
    try {
      writeFileSync(join(hour, `1893456000000-${Number(seg!.id) + 1000}.m4s`), 'recorded after the backup');
      const after = await reattachArchive({ db, storage: nasStorage(), spoolDir: join(root, 'cut', 'spool'), ioTimeoutMs: 5000 });
      expect(after.ok).toBe(true);
      expect(after.afterBackup).toEqual([{ camera: 'cam', files: 1 }]);
      // One with an id the backup had handed out is no such thing: it was put there.
      writeFileSync(join(hour, `1893456000001-${Number(seg!.id)}.m4s`), 'put there');
      const put = await reattachArchive({ db, storage: nasStorage(), spoolDir: join(root, 'cut', 'spool'), ioTimeoutMs: 5000 });
      expect(put.ok).toBe(false);
      expect(put.findings).toEqual([expect.objectContaining({ kind: 'inserted', path: `cam/2030-01-01/00/1893456000001-${Number(seg!.id)}.m4s` })]);
    } finally {
      rmSync(join(nas, 'cam', '2030-01-01'), { recursive: true, force: true });
    }
    // An empty folder where the NAS should be: not mounted, nothing verified.
    const empty = join(root, 'unmounted');
    mkdirSync(empty);
    const b = await reattachArchive({ db, storage: { ...nasStorage(), path: empty }, spoolDir: join(root, 'cut', 'spool'), ioTimeoutMs: 5000 });
    expect(b.ok).toBe(false);
    expect(b.verify).toBeNull();
    expect(b.problems.join('\n')).toMatch(/is not-mounted: .* is empty but the database has storage nas there/);
    // Another storage id than the backup's.
    const c = await reattachArchive({ db, storage: { ...nasStorage(), id: 'disk2' }, spoolDir: join(root, 'cut', 'spool'), ioTimeoutMs: 5000 });
    expect(c.ok).toBe(false);
    expect(c.problems.join('\n')).toMatch(/the config names storage 'disk2', the backup has 'nas'/);
  });

  it('starts on the restored database: the guard signs in, sees the changed camera, its timeline and a segment whose SHA-256 matches', async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } }, dataDir: join(root, 'new-machine'), database: { url: target.url },
        demoCamera: false, recorder: { segmentSeconds: 1, storage: { path: nas } },
      },
    });
    const system: System = await startSystem({ config, webDir: null });
    try {
      expect(system.generatedAdminPassword).toBeNull();
      const base = `http://127.0.0.1:${system.port}`;
      const signIn = await fetch(`${base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'guard', password: GUARD_PASSWORD }) });
      expect(signIn.status).toBe(200);
      const auth = { authorization: `Bearer ${((await signIn.json()) as { token: string }).token}` };
      const cam = (await (await fetch(`${base}/api/cameras/cam`, { headers: auth })).json()) as { name: string };
      expect(cam.name).toBe('Front door');
      const timeline = (await (await fetch(`${base}/api/cameras/cam/archive/timeline?from=${Date.now() - 3_600_000}`, { headers: auth })).json()) as { recorded: unknown[] };
      expect(timeline.recorded.length).toBeGreaterThan(0);
      const [seg] = await system.db.query<{ id: number; sha256: string }>("SELECT id, sha256 FROM segments WHERE state = 'stored' ORDER BY id LIMIT 1");
      const res = await fetch(`${base}/api/cameras/cam/archive/segments/${seg!.id}.m4s`, { headers: auth });
      expect(res.status).toBe(200);
      expect(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex')).toBe(seg!.sha256);
    } finally {
      await system.close();
    }
  });
});
