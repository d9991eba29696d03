import { Writable } from 'node:stream';
import pino, { type Logger as PinoLogger, type DestinationStream } from 'pino';

/** A structured logger; one per module, named like `sfu:room`. */
export type Logger = PinoLogger;

/** Levels accepted by `log.level`, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Output formats: `json` (one object per line) or `pretty` (a human-readable line). */
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

// Field names whose values are secrets wherever they appear in a log record.
const REDACT_PATHS = [
  'password', '*.password', 'secret', '*.secret', 'token', '*.token', 'authorization', '*.authorization',
  'cookie', '*.cookie', 'headers.authorization', 'headers.cookie', 'req.headers.authorization', 'req.headers.cookie',
];

let root: PinoLogger = makeRoot('info', 'json', undefined);
const children = new Map<string, PinoLogger>();

function makeRoot(level: LogLevel, format: LogFormat, destination: DestinationStream | undefined): PinoLogger {
  const dest = destination ?? (format === 'pretty' ? prettyStream(process.stdout) : pino.destination({ fd: 1, sync: true }));
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  );
}

/**
 * Sets the level, format and destination of every logger, also of those already handed out.
 * Tests pass a stream to read what was logged.
 */
export function configureLogging(opts: { level?: LogLevel; format?: LogFormat; destination?: DestinationStream }): void {
  root = makeRoot(opts.level ?? 'info', opts.format ?? 'json', opts.destination);
  for (const [name] of children) children.set(name, root.child({ module: name }));
}

/** The logger of one module (`camera-node:rtsp`). Cheap to call; the same name gives the same logger. */
export function createLogger(module: string): Logger {
  // A proxy keeps handed-out loggers valid across configureLogging() calls.
  return new Proxy({} as PinoLogger, {
    get(_t, prop) {
      let child = children.get(module);
      if (!child) {
        child = root.child({ module });
        children.set(module, child);
      }
      const v = Reflect.get(child, prop, child) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(child) : v;
    },
  });
}

/** Removes user:password from a URL so it can be logged: `rtsp://u:p@h/x` → `rtsp://***@h/x`. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1***@');
}

/** Replaces every occurrence of each secret (and its URL-encoded form) in `text` with `***`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('***');
  }
  return out;
}

const LEVEL_COLOURS: Record<string, string> = { trace: '90', debug: '36', info: '32', warn: '33', error: '31', fatal: '35' };

function prettyStream(out: NodeJS.WritableStream): DestinationStream {
  const colour = (out as { isTTY?: boolean }).isTTY === true;
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as Record<string, unknown>;
          const { time, level, module, msg, pid: _pid, ...rest } = rec;
          const lvl = String(level).toUpperCase().padEnd(5);
          const t = String(time).slice(11, 23);
          const fields = Object.keys(rest).length ? ' ' + JSON.stringify(rest) : '';
          const head = colour ? `\x1b[${LEVEL_COLOURS[String(level)] ?? '0'}m${lvl}\x1b[0m` : lvl;
          out.write(`${t} ${head} ${module ? `[${String(module)}] ` : ''}${String(msg ?? '')}${fields}\n`);
        } catch {
          out.write(line + '\n');
        }
      }
      cb();
    },
  }) as unknown as DestinationStream;
}
