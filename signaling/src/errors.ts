import {
  InvalidStateError, NotFoundError, TimeoutError, UnavailableError, UnsupportedError, ValidationError,
} from '@cctv/core';

/**
 * The one catalog of error codes the API answers with. Clients branch on `code`; the HTTP status and
 * the default message come with it. Every error body is `{ "error": { "code", "message", "field"? } }`.
 */
export const ERRORS = {
  BAD_REQUEST: { status: 400, message: 'The request is not valid' },
  VALIDATION_FAILED: { status: 400, message: 'A field of the request is not valid' },
  MALFORMED_JSON: { status: 400, message: 'The body is not valid JSON' },
  BAD_SDP: { status: 400, message: 'The SDP offer is not valid' },
  UNAUTHENTICATED: { status: 401, message: 'Sign in first (a session cookie or a Bearer token)' },
  BAD_CREDENTIALS: { status: 401, message: 'The username, password or code is not right' },
  SECOND_FACTOR_REQUIRED: { status: 401, message: 'This account uses 2FA: a code from the authenticator app is needed' },
  FORBIDDEN: { status: 403, message: 'You may not do this' },
  CSRF_FAILED: { status: 403, message: 'The request does not come from this site' },
  SECOND_FACTOR_PENDING: { status: 403, message: 'Finish signing in: enter the code from your authenticator app' },
  ENROLLMENT_REQUIRED: { status: 403, message: 'This site requires 2FA for your role: set it up first' },
  NOT_FOUND: { status: 404, message: 'No such resource' },
  USER_NOT_FOUND: { status: 404, message: 'No user with this id' },
  NODE_NOT_FOUND: { status: 404, message: 'No node with this id' },
  TOKEN_NOT_FOUND: { status: 404, message: 'No token with this id' },
  CAMERA_NOT_FOUND: { status: 404, message: 'No camera with this id' },
  SESSION_NOT_FOUND: { status: 404, message: 'No viewing or publishing session with this id' },
  SEGMENT_NOT_FOUND: { status: 404, message: 'No recording with this id for this camera' },
  EVENT_NOT_FOUND: { status: 404, message: 'No event with this id' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'This method is not allowed here' },
  UNSUPPORTED_CODEC: { status: 406, message: 'The offer has no codec this camera can be sent in' },
  CAMERA_EXISTS: { status: 409, message: 'A camera with this id exists' },
  CAMERA_DISABLED: { status: 409, message: 'The camera is disabled' },
  NOT_WHIP_CAMERA: { status: 409, message: 'The camera does not take WHIP publishers (its source kind is not whip)' },
  ENROLLMENT_REFUSED: { status: 403, message: 'The enrolment token or secret is not valid' },
  USER_EXISTS: { status: 409, message: 'A user with this name exists' },
  TWO_FACTOR_STATE: { status: 409, message: '2FA is not in the state this needs (already on, or not being set up)' },
  BODY_TOO_LARGE: { status: 413, message: 'The body is larger than allowed' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'The Content-Type is not accepted here' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; see Retry-After' },
  ACCOUNT_LOCKED: { status: 429, message: 'Too many failed sign-ins: the account is locked for a while; see Retry-After' },
  INTERNAL: { status: 500, message: 'Something went wrong on our side' },
  CAMERA_OFFLINE: { status: 503, message: 'The camera is not sending video' },
  TOO_MANY_VIEWERS: { status: 503, message: 'The camera has its maximum of viewers' },
  UNAVAILABLE: { status: 503, message: 'The service is not available right now' },
  DATABASE_UNAVAILABLE: { status: 503, message: 'The database is unavailable; try again when it is back' },
  CAMERA_NOT_PLACED: { status: 503, message: 'No node runs this camera right now' },
  STORAGE_UNAVAILABLE: { status: 503, message: 'The archive storage cannot be read right now' },
  NO_ARCHIVE: { status: 503, message: 'This server has no recorder or archive storage' },
  NODE_UNREACHABLE: { status: 503, message: 'The node that serves this did not answer' },
  NODE_UNKNOWN: { status: 503, message: 'The node that serves this is not enrolled' },
  BUS_UNAVAILABLE: { status: 503, message: 'The message bus (Redis) is unavailable' },
  WEBHOOK_NOT_FOUND: { status: 404, message: 'No webhook endpoint with this id' },
  DELIVERY_NOT_FOUND: { status: 404, message: 'No alert delivery with this id' },
  NO_ALERTS: { status: 503, message: 'This server has no alert service' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

/** An error that goes to the client as is, with its catalog code. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly code: ErrorCode;
  readonly status: number;
  /** The request field at fault, when there is one. */
  readonly field: string | undefined;
  /** Seconds for a Retry-After header. */
  readonly retryAfterS: number | undefined;
  constructor(code: ErrorCode, message?: string, opts: { field?: string | undefined; retryAfterS?: number; cause?: unknown } = {}) {
    super(message ?? ERRORS[code].message, { cause: opts.cause });
    this.code = code;
    this.status = ERRORS[code].status;
    this.field = opts.field;
    this.retryAfterS = opts.retryAfterS;
  }
}

/** Maps what the services throw to the catalog; anything unknown is INTERNAL (and logged by the caller). */
export function toApiError(error: unknown, context: { notFound?: ErrorCode; validation?: ErrorCode } = {}): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof ValidationError) return new ApiError(context.validation ?? 'VALIDATION_FAILED', error.message, { field: error.path || undefined, cause: error });
  if (error instanceof NotFoundError) return new ApiError(context.notFound ?? 'NOT_FOUND', error.message, { cause: error });
  if (error instanceof UnsupportedError) return new ApiError('UNSUPPORTED_CODEC', error.message, { cause: error });
  if (error instanceof UnavailableError) {
    const code = error.reason in ERRORS ? (error.reason as ErrorCode) : 'UNAVAILABLE';
    return new ApiError(code, error.message, { retryAfterS: error.retryAfterS, cause: error });
  }
  if (error instanceof TimeoutError || error instanceof InvalidStateError) return new ApiError('UNAVAILABLE', error.message, { retryAfterS: 1, cause: error });
  return new ApiError('INTERNAL', undefined, { cause: error });
}
