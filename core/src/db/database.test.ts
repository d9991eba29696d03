import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from './database.js';
import { migrate, splitStatements } from './migrate.js';
import { createTestDatabase } from './testing/testDatabase.js';

// The same SQL must behave the same on a Postgres server and on embedded PGlite.
describe.each(['postgres', 'pglite'] as const)('database on %s', (kind) => {
  let db: Database;
  let cleanup: () => Promise<void>;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cctv-db-'));
    if (kind === 'postgres') {
      const t = await createTestDatabase();
      db = await openDatabase({ url: t.url });
      cleanup = t.drop;
    } else {
      db = await openDatabase({ dataDir: join(dir, 'db') });
      cleanup = async () => {};
    }
  });

  afterAll(async () => {
    await db?.close();
    await cleanup?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates once and records what ran', async () => {
    const first = await migrate(db);
    expect(first.applied).toContain('0001_cameras.sql');
    const second = await migrate(db);
    expect(second.applied).toEqual([]);
    expect(second.skipped).toContain('0001_cameras.sql');
    const rows = await db.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    expect(rows.map((r) => r.name)).toContain('0001_cameras.sql');
  });

  it('returns int8 as numbers, jsonb parsed, timestamptz as Date', async () => {
    const [row] = await db.query<{ n: number; j: { a: number }; t: Date }>("SELECT 9007199254740::int8 AS n, $1::jsonb AS j, now() AS t", [{ a: 1 }]);
    expect(row!.n).toBe(9007199254740);
    expect(row!.j).toEqual({ a: 1 });
    expect(row!.t).toBeInstanceOf(Date);
  });

  it('rolls a failed transaction back', async () => {
    await db.query("INSERT INTO settings (key, value) VALUES ('kept', '1'::jsonb) ON CONFLICT DO NOTHING");
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO settings (key, value) VALUES ('lost', '1'::jsonb)");
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const keys = (await db.query<{ key: string }>('SELECT key FROM settings')).map((r) => r.key);
    expect(keys).toContain('kept');
    expect(keys).not.toContain('lost');
  });

  it('refuses a migration that changed after it ran, and leaves nothing half-applied', async () => {
    const mdir = mkdtempSync(join(dir, 'm-'));
    writeFileSync(join(mdir, '0001_a.sql'), 'CREATE TABLE mig_a (x int);\n');
    await migrate(db, mdir);
    writeFileSync(join(mdir, '0001_a.sql'), 'CREATE TABLE mig_a (x int, y int);\n');
    await expect(migrate(db, mdir)).rejects.toThrow(/0001_a\.sql was changed/);
    writeFileSync(join(mdir, '0001_a.sql'), 'CREATE TABLE mig_a (x int);\n');
    writeFileSync(join(mdir, '0002_b.sql'), 'CREATE TABLE mig_b (x int);\nSELECT no_such_function();\n');
    await expect(migrate(db, mdir)).rejects.toThrow(/0002_b\.sql failed/);
    const t = await db.query("SELECT to_regclass('mig_b') AS t");
    expect(t[0]!.t).toBeNull();
  });
});

describe('splitStatements', () => {
  it('splits at line-ending semicolons, keeps dollar-quoted bodies and drops comments', () => {
    const sql = `-- a comment\nCREATE TABLE a (x int);\nCREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\n`;
    const out = splitStatements(sql);
    expect(out).toHaveLength(2);
    expect(out[1]).toContain('RETURN 1;');
  });
});
