/**
 * The few named errors every part throws. Wire-level codes live in signaling's catalog;
 * these are for code, and carry a `cause` when they wrap something.
 */

/** A method was called on something that is closed, or not yet initialized. */
export class InvalidStateError extends Error {
  override name = 'InvalidStateError';
}

/** The thing asked for does not exist. */
export class NotFoundError extends Error {
  override name = 'NotFoundError';
}

/** The request is understood but not supported (a codec, a source kind, an SDP feature). */
export class UnsupportedError extends Error {
  override name = 'UnsupportedError';
}

/** Something did not happen in the time it was given. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/** Something needed is not available now (a camera not streaming, a limit reached); worth retrying later. */
export class UnavailableError extends Error {
  override name = 'UnavailableError';
  /** Seconds after which a retry may succeed. */
  readonly retryAfterS: number;
  /** A stable reason a client can branch on, e.g. `CAMERA_OFFLINE`. */
  readonly reason: string;
  constructor(reason: string, message: string, retryAfterS = 1, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
    this.retryAfterS = retryAfterS;
  }
}

/** A value from outside (config, request body, SDP) is not acceptable; `path` names the field. */
export class ValidationError extends Error {
  override name = 'ValidationError';
  /** Dotted path of the offending field, e.g. `cameras[0].source.port`; empty when the whole value is wrong. */
  readonly path: string;
  constructor(path: string, message: string, options?: { cause?: unknown }) {
    super(path ? `'${path}' ${message}` : message, options);
    this.path = path;
  }
}

/** Throws a TypeError naming the argument when `ok` is false. */
export function assertArg(ok: unknown, name: string, expected: string): asserts ok {
  if (!ok) throw new TypeError(`argument '${name}' must be ${expected}`);
}
