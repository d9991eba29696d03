import { readFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import { ConfigSchema, type Config, type ConfigInput } from './schema.js';

/** Variables that name a config key directly, beside the generic `CCTV_A__B_C` form. */
const ENV_ALIASES: Record<string, string> = {
  CCTV_PORT: 'http.port',
  CCTV_HOST: 'http.host',
  CCTV_DATA_DIR: 'dataDir',
  CCTV_LOG_LEVEL: 'log.level',
  CCTV_LOG_FORMAT: 'log.format',
  CCTV_NODE_ID: 'node.id',
  DATABASE_URL: 'database.url',
  REDIS_URL: 'redis.url',
  CCTV_ROLES: 'node.roles',
  CCTV_SPOOL_DIR: 'recorder.spoolDir',
  CCTV_NAS_DIR: 'recorder.storage.path',
  CCTV_MASTER_URL: 'cluster.masterUrl',
  CCTV_ENROLL_SECRET: 'cluster.enrollSecret',
  CCTV_ENROLL_TOKEN: 'cluster.enrollToken',
};

/** CCTV_ variables that are read elsewhere, not config keys. */
const ENV_NOT_CONFIG = new Set(['CCTV_CONFIG', 'CCTV_ADMIN_PASSWORD']);

/**
 * Turns a zod error into one message that names every bad key and what is allowed,
 * e.g. `'http.port' must be <= 65535` or `'sfu.ice.foo' is not a known key (known: hostAddresses, …)`.
 */
export function formatIssues(error: z.ZodError, schema?: z.ZodType, input?: unknown, prefix = ''): ValidationError {
  const lines: string[] = [];
  let firstPath = '';
  for (const issue of error.issues) {
    const path = joinPath(prefix, issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const full = joinPath(path, [key]);
        firstPath ||= full;
        const known = schema ? keysAt(schema, issue.path, input) : [];
        lines.push(`'${full}' is not a known key${known.length ? ` (known: ${known.join(', ')})` : ''}`);
      }
      continue;
    }
    firstPath ||= path;
    lines.push(`${path ? `'${path}' ` : ''}${describeIssue(issue)}`);
  }
  const err = new ValidationError('', lines.join('; '));
  (err as { path: string }).path = firstPath;
  return err;
}

type Def = { type: string; innerType?: z.ZodType; element?: z.ZodType; options?: z.ZodType[]; shape?: Record<string, z.ZodType>; discriminator?: string; in?: z.ZodType; valueType?: z.ZodType };

function defOf(s: z.ZodType): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** The keys an object schema allows at `path`, following the input through unions by their discriminator. */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[], input: unknown): string[] {
  let s: z.ZodType | undefined = schema;
  let v: unknown = input;
  const unwrap = (): void => {
    for (let d = s && defOf(s); s && d && ['default', 'prefault', 'optional', 'nullable', 'pipe', 'readonly', 'catch'].includes(d.type); d = s && defOf(s)) {
      s = d.type === 'pipe' ? d.in : d.innerType;
    }
    const d = s && defOf(s);
    if (s && d?.type === 'union' && d.options) {
      const disc = d.discriminator;
      const kind = disc && v && typeof v === 'object' ? (v as Record<string, unknown>)[disc] : undefined;
      s = d.options.find((o) => {
        const od = defOf(o);
        const lit = od.shape?.[disc ?? ''];
        return lit && (lit as unknown as { _zod: { def: { values?: unknown[] } } })._zod.def.values?.includes(kind);
      });
    }
  };
  unwrap();
  for (const key of path) {
    if (!s) return [];
    const d = defOf(s);
    if (d.type === 'object' && d.shape) s = d.shape[String(key)];
    else if (d.type === 'array') s = d.element;
    else if (d.type === 'record') s = d.valueType;
    else return [];
    v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[key] : undefined;
    unwrap();
  }
  const d = s && defOf(s);
  return d?.type === 'object' && d.shape ? Object.keys(d.shape) : [];
}

function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_big':
      return `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}${issue.origin === 'string' ? ' characters long' : issue.origin === 'array' ? ' items' : ''}`;
    case 'too_small':
      return `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}${issue.origin === 'string' ? ' characters long' : issue.origin === 'array' ? ' items' : ''}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_union':
      return issue.message;
    case 'invalid_type':
      return `must be ${issue.expected === 'int' ? 'an integer' : `a ${issue.expected}`}${issue.input === undefined ? ' (missing)' : ''}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    default:
      return issue.message;
  }
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

/** Parses with `schema`; on failure throws a ValidationError naming the fields. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw formatIssues(r.error, schema, value, prefix);
  return r.data;
}

/** Reads a YAML or JSON config file; the error names the file and the line when it does not parse. */
export function readConfigFile(path: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ValidationError('', `cannot read config file ${path}: ${(error as Error).message}`, { cause: error });
  }
  try {
    const value: unknown = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : YAML.parse(text);
    if (value === null || value === undefined) return {};
    if (typeof value !== 'object' || Array.isArray(value)) throw new Error('the top level must be a mapping of keys');
    return value as ConfigInput;
  } catch (error) {
    throw new ValidationError('', `config file ${path} does not parse: ${(error as Error).message}`, { cause: error });
  }
}

/** Env var name → dotted config path: `CCTV_SFU__ICE__LOOPBACK` → `sfu.ice.loopback`. */
function envPath(name: string): string {
  return name
    .slice('CCTV_'.length)
    .split('__')
    .map((seg) => seg.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()))
    .join('.');
}

function envValue(raw: string): unknown {
  const t = raw.trim();
  if (/^(true|false|null)$/.test(t) || /^-?\d+(\.\d+)?$/.test(t) || /^[[{"]/.test(t)) {
    try {
      return JSON.parse(t);
    } catch {
      return raw;
    }
  }
  // Comma lists become arrays for array-valued keys (checked by the schema afterwards).
  return raw;
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur: Record<string, unknown> = target;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

const ARRAY_KEYS = new Set(['node.roles', 'sfu.ice.hostAddresses', 'sfu.ice.announcedAddresses']);

/** Applies CCTV_* (and DATABASE_URL) overrides to a raw config object, in place. */
export function applyEnv(raw: Record<string, unknown>, env: NodeJS.ProcessEnv): void {
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) continue;
    let path = ENV_ALIASES[name];
    if (!path) {
      if (!name.startsWith('CCTV_') || ENV_NOT_CONFIG.has(name)) continue;
      path = envPath(name);
    }
    // An empty variable is as if unset (Compose's `${NAME:-}`), except for lists, where it means none.
    if (value === '' && !ARRAY_KEYS.has(path)) continue;
    let v = envValue(value);
    if (ARRAY_KEYS.has(path) && typeof v === 'string') v = v.split(',').map((s) => s.trim()).filter(Boolean);
    try {
      setPath(raw, path, v);
    } catch {
      throw new ValidationError(path, `cannot be set from ${name}`);
    }
  }
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

export interface LoadConfigOptions {
  /** Config file (YAML or JSON); default $CCTV_CONFIG, or none. */
  file?: string | undefined;
  /** Environment to read overrides from; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Values applied over the file and under the environment (used by tests and the CLI). */
  overrides?: ConfigInput;
}

/**
 * Defaults → file → overrides → environment → validate → freeze. Throws a ValidationError
 * whose message names each bad key (environment variables are named by the key they set).
 */
export function loadConfig(opts: LoadConfigOptions = {}): Readonly<Config> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.CCTV_CONFIG;
  const raw: Record<string, unknown> = file ? (readConfigFile(resolve(file)) as Record<string, unknown>) : {};
  if (opts.overrides) mergeInto(raw, opts.overrides as Record<string, unknown>);
  applyEnv(raw, env);
  const cfg = parseWith(ConfigSchema, raw, '');
  return deepFreeze(cfg);
}

function mergeInto(target: Record<string, unknown>, src: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(src)) {
    const cur = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      mergeInto(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else {
      target[k] = v;
    }
  }
}
