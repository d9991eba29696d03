import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Database } from './database.js';
import { createLogger } from '../log.js';

const log = createLogger('core:migrate');

/** The folder of plain SQL migrations shipped with core (`0001_name.sql`, applied in name order). */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

// Any fixed number; every instance takes the same lock so two never migrate at once.
const LOCK_KEY = 7_244_213_001;

export interface MigrationResult {
  /** Names of the migrations applied by this call. */
  applied: string[];
  /** Names that had already run. */
  skipped: string[];
}

/**
 * Applies every migration in `dir` that has not run yet, each in its own transaction, and records it
 * in `schema_migrations` with a checksum. A changed file that already ran is an error: migrations are
 * append-only.
 */
export async function migrate(db: Database, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  const files = readdirSync(dir).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  const result: MigrationResult = { applied: [], skipped: [] };
  // One transaction under a transaction-scoped advisory lock: instances starting together wait for
  // each other, and a failing migration leaves nothing half-applied (Postgres DDL is transactional).
  await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Map((await tx.query<{ name: string; checksum: string }>('SELECT name, checksum FROM schema_migrations')).map((r) => [r.name, r.checksum]));
    for (const file of files) {
      const text = readFileSync(join(dir, file), 'utf8');
      const sum = createHash('sha256').update(text).digest('hex');
      const prior = done.get(file);
      if (prior !== undefined) {
        if (prior !== sum) throw new Error(`migration ${file} was changed after it ran (checksum ${prior.slice(0, 12)} → ${sum.slice(0, 12)}); add a new migration instead`);
        result.skipped.push(file);
        continue;
      }
      for (const stmt of splitStatements(text)) {
        try {
          await tx.query(stmt);
        } catch (error) {
          throw new Error(`migration ${file} failed: ${(error as Error).message}`, { cause: error });
        }
      }
      await tx.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [file, sum]);
      result.applied.push(file);
    }
  });
  for (const name of result.applied) log.info({ migration: name }, 'applied migration');
  return result;
}

/**
 * Splits a migration into statements at semicolons that end a line, outside dollar-quoted bodies,
 * so each runs as its own extended-protocol query on both engines.
 */
export function splitStatements(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inDollar = false;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!inDollar && (t.startsWith('--') || t === '')) {
      if (cur) cur += '\n';
      continue;
    }
    const dollars = (line.match(/\$\$/g) ?? []).length;
    if (dollars % 2 === 1) inDollar = !inDollar;
    cur += line + '\n';
    if (!inDollar && t.endsWith(';')) {
      if (cur.trim()) out.push(cur.trim());
      cur = '';
    }
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}
