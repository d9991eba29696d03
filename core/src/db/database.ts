import { mkdirSync } from 'node:fs';
import { redactUrl } from '../log.js';
import { InvalidStateError, UnavailableError } from '../errors.js';

// What postgres.js and Node say when the server cannot be reached or went away mid-query.
const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH',
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006',
]);

/** Whether an error means the database cannot be reached now (as opposed to a bad statement). */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof UnavailableError) return error.reason === 'DATABASE_UNAVAILABLE';
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' && CONNECTION_CODES.has(code);
}

function unavailable(error: unknown): unknown {
  if (!isDatabaseUnavailable(error) || error instanceof UnavailableError) return error;
  return new UnavailableError('DATABASE_UNAVAILABLE', `the database is unavailable (${(error as Error).message}); try again when it is back`, 5, { cause: error });
}

/** Something SQL can be sent to: the database, or a transaction on it. Parameters are `$1`, `$2`, … */
export interface Queryable {
  /** Runs one statement and returns its rows. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

/**
 * The database: Postgres over the network, or Postgres embedded in the process (PGlite).
 * Both take the same SQL; int8 comes back as a number, timestamptz as a Date, jsonb parsed.
 */
export interface Database extends Queryable {
  /** Which engine is behind it. */
  readonly kind: 'postgres' | 'pglite';
  /** Where it is, without credentials (for logs). */
  readonly location: string;
  /** Runs `fn` in one transaction; it is rolled back when `fn` throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs several statements at once, without parameters (for migrations). */
  exec(sql: string): Promise<void>;
  /** Closes the connections. Idempotent. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** A postgres:// URL; without it an embedded database lives in `dataDir`. */
  url?: string | undefined;
  /** Folder of the embedded database; `memory://` keeps it in memory. */
  dataDir?: string;
  /** Largest number of connections to a Postgres server; default 10. */
  maxConnections?: number;
}

const INT8 = 20;

/** Opens Postgres at `url`, or PGlite in `dataDir` when there is no URL. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  if (opts.url) return openPostgres(opts.url, opts.maxConnections ?? 10);
  if (!opts.dataDir) throw new TypeError("argument 'dataDir' must be given when there is no database URL");
  return openPglite(opts.dataDir);
}

async function openPostgres(url: string, max: number): Promise<Database> {
  const { default: postgres } = await import('postgres');
  const sql = postgres(url, {
    max,
    onnotice: () => {},
    connect_timeout: 5,
    types: {
      bigint: { to: INT8, from: [INT8], serialize: (v: unknown) => String(v), parse: (v: string) => Number(v) },
    },
  });
  let closed = false;
  const run = async <T>(q: { unsafe: (s: string, p?: never[]) => Promise<unknown> }, text: string, params?: readonly unknown[]): Promise<T[]> => {
    if (closed) throw new InvalidStateError('database is closed');
    try {
      const rows = (await q.unsafe(text, (params ?? []) as never[])) as unknown as T[];
      return Array.from(rows);
    } catch (error) {
      throw unavailable(error);
    }
  };
  // Fail now, with the address, rather than at the first query.
  try {
    await sql`select 1`;
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => {});
    throw new Error(`cannot connect to Postgres at ${redactUrl(url)}: ${(error as Error).message}`, { cause: error });
  }
  return {
    kind: 'postgres',
    location: redactUrl(url),
    query: (text, params) => run(sql, text, params),
    async exec(text) {
      if (closed) throw new InvalidStateError('database is closed');
      await sql.unsafe(text).simple().catch((error: unknown) => {
        throw unavailable(error);
      });
    },
    async transaction(fn) {
      if (closed) throw new InvalidStateError('database is closed');
      try {
        return (await sql.begin(async (tx) => fn({ query: (text, params) => run(tx as never, text, params) }))) as never;
      } catch (error) {
        throw unavailable(error);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await sql.end({ timeout: 5 });
    },
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  const { PGlite, types } = await import('@electric-sql/pglite');
  if (dataDir !== 'memory://') mkdirSync(dataDir, { recursive: true });
  const db = await PGlite.create(dataDir, { parsers: { [types.INT8]: (v: string) => Number(v) } });
  let closed = false;
  // PGlite runs one statement at a time; a transaction holds it until it ends.
  const query = async <T>(q: { query: (s: string, p?: unknown[]) => Promise<{ rows: unknown[] }> }, text: string, params?: readonly unknown[]): Promise<T[]> => {
    if (closed) throw new InvalidStateError('database is closed');
    const r = await q.query(text, params ? [...params].map(toPgliteParam) : undefined);
    return r.rows as T[];
  };
  return {
    kind: 'pglite',
    location: dataDir,
    query: (text, params) => query(db, text, params),
    async exec(text) {
      if (closed) throw new InvalidStateError('database is closed');
      await db.exec(text);
    },
    async transaction(fn) {
      if (closed) throw new InvalidStateError('database is closed');
      return db.transaction(async (tx) => fn({ query: (text, params) => query(tx, text, params) }));
    },
    async close() {
      if (closed) return;
      closed = true;
      await db.close();
    },
  };
}

// postgres.js serializes plain objects given for jsonb; PGlite wants them as JSON text. Arrays stay
// arrays (Postgres arrays, e.g. text[]) on both; a jsonb array must be passed as JSON text by the caller.
function toPgliteParam(v: unknown): unknown {
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date) && !Buffer.isBuffer(v) && !(v instanceof Uint8Array)) return JSON.stringify(v);
  return v;
}
