import { z } from 'zod';
import { ERRORS, type ErrorCode } from './errors.js';

/**
 * Schemas of what the API answers, shared by several route files. They describe the JSON as it is on
 * the wire (a `Date` is an ISO 8601 string there), and the OpenAPI document is generated from them.
 */

/** A time as JSON carries it: ISO 8601 with a zone (what `Date#toJSON` writes). */
export const IsoTime = z.iso.datetime({ offset: true });

/** Every error answer: `{ error: { code, message, field? } }`, `code` from the catalog (errors.ts). */
export const ErrorBodySchema = z.strictObject({
  error: z.strictObject({
    code: z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    /** The request field at fault, when there is one. */
    field: z.string().optional(),
  }),
}).describe('The body of every 4xx and 5xx answer');

/** A camera's live status (core `CameraStatus`). */
export const CameraStatusSchema = z.looseObject({
  id: z.string(),
  state: z.string(),
  since: z.number(),
  lastError: z.string().nullable(),
  input: z.looseObject({}),
  viewers: z.number().int(),
});

/** A camera as the API shows it (app.ts `cameraView`): config without secrets, status, placement. */
export const CameraViewSchema = z.strictObject({
  id: z.string(),
  name: z.string(),
  enabled: z.boolean(),
  /** The source without its password; credentials in a URL read `***`. */
  source: z.looseObject({ kind: z.string(), hasPassword: z.boolean().optional() }),
  version: z.number().int(),
  createdAt: IsoTime,
  updatedAt: IsoTime,
  status: CameraStatusSchema,
  placementRules: z.looseObject({ require: z.record(z.string(), z.string()), prefer: z.record(z.string(), z.string()), node: z.string().optional() }),
  recording: z.looseObject({ enabled: z.boolean(), retainDays: z.number(), retainBytes: z.number(), storageCodec: z.string() }),
  motion: z.looseObject({}),
  placement: z.strictObject({
    cameraNode: z.string().nullable(),
    sfu: z.string().nullable(),
    recorder: z.string().nullable(),
    detector: z.string().nullable(),
    problem: z.string().nullable(),
    since: z.number(),
  }).nullable(),
});

/** A camera change that waits for the database (202). */
export const QueuedChangeSchema = z.strictObject({
  queued: z.literal(true),
  change: z.strictObject({ id: z.string(), op: z.enum(['create', 'replace', 'merge', 'remove']), camera: z.string(), at: IsoTime }),
  error: z.strictObject({ code: z.literal('DATABASE_UNAVAILABLE'), message: z.string() }),
});

/** A ms timestamp or an ISO 8601 time, as the archive and event routes read `from`/`to`/`at`. */
export const TimeParam = z.union([z.string().regex(/^\d+$/), IsoTime]).describe('ISO 8601 time or milliseconds since 1970');
