/** Shapes and calls of the signaling server's REST API, as it sends them. */

export const SOURCE_KINDS = ['test', 'rtsp', 'rpicam', 'rtp', 'whip'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The server's view of a camera's input. */
export type CameraState = 'starting' | 'live' | 'reconnecting' | 'stopped';

export type Source =
  | { kind: 'test'; width: number; height: number; fps: number; gop?: number; bitrateKbps: number; pattern: 'testsrc2' | 'timecode' }
  /** `url` has credentials replaced by `***@`; the password itself is never sent. */
  | { kind: 'rtsp'; url: string; transport: 'tcp' | 'udp'; username?: string; hasPassword: boolean }
  | { kind: 'rpicam'; width: number; height: number; fps: number; gop?: number; bitrateKbps: number; camera: number; command?: string; extraArgs: string[] }
  | { kind: 'rtp'; port: number; host: string; codec: 'H264' | 'H265'; payloadType: number }
  | { kind: 'whip' };

export interface CameraStatus {
  id: string;
  state: CameraState;
  /** When `state` was entered, ms since the epoch. */
  since: number;
  lastError: string | null;
  input: {
    codec: 'H264' | 'H265' | null;
    fps: number;
    bitrateKbps: number;
    packets: number;
    bytes: number;
    keyframes: number;
    junk: number;
    reconnects: number;
    /** ms since the epoch. */
    lastPacketAt: number | null;
  };
  viewers: number;
}

/** Where a camera may run, part of its config (PATCH replaces the whole object). */
export interface PlacementConfig {
  /** Run on this camera-node only; absent: wherever fits. */
  node?: string;
  /** Labels the camera-node must have. */
  require: Record<string, string>;
  /** Labels preferred when several camera-nodes fit. */
  prefer: Record<string, string>;
}

/** Where a camera runs now, as the cluster's master placed it. */
export interface CameraPlacement {
  /** null: no camera-node runs it (see `problem`). */
  cameraNode: string | null;
  /** The SFU its viewers connect through; null: none. */
  sfu: string | null;
  /** Why it is not (fully) placed, or null. */
  problem: string | null;
  /** When the placement last changed, ms since the epoch. */
  since: number;
}

export interface Camera {
  id: string;
  name: string;
  enabled: boolean;
  source: Source;
  /** Bumped by the server at every change; lets a client drop an older copy. */
  version: number;
  createdAt: string;
  updatedAt: string;
  status: CameraStatus;
  /** Where it runs now; null when the cluster has not placed it (disabled, or not yet seen). */
  placement: CameraPlacement | null;
  /** Where it may run: its pin and the labels it requires and prefers (its config). */
  placementRules: PlacementConfig;
  /** Motion detection and its alerts (its config; PATCH replaces the whole object). Absent from servers without motion detection. */
  motion?: MotionConfig;
}

/** A polygon of the picture that motion is looked for in (`include`) or ignored in (`mask`). */
export interface MotionZone {
  /** 1–32 characters: letters, digits, `_` or `-`, starting with a letter or digit. */
  name: string;
  kind: 'include' | 'mask';
  /** 3–64 corners, `[x, y]` as shares 0–1 of the picture's width and height; the edges must not cross. */
  points: Array<[number, number]>;
  /** How much a spot of the picture must change to count as moving, as a share of the grey scale, 0.005–1; default 0.06. */
  threshold: number;
  /** Share of the zone's area that must be moving to raise an event, 0.0001–1; default 0.005. */
  minArea: number;
}

/** One stretch of a week when an alert rule fires; `to` before `from` runs past midnight. */
export interface AlertWindow {
  /** 0 = Sunday … 6 = Saturday; at least one. */
  days: number[];
  /** `HH:MM`, in the site's time zone. */
  from: string;
  to: string;
}

/** When motion raises an alert, and where it goes. */
export interface AlertRule {
  /** Same pattern as a zone's name; in alert payloads. */
  name: string;
  /** Include zones (or `all`) whose motion counts; empty: any. */
  zones: string[];
  /** Lowest peak score that alerts, 0–1; default 0. */
  minScore: number;
  /** Empty: at any time. */
  schedule: AlertWindow[];
  /** Quiet time after an alert, s, 0–86400; default 60. */
  cooldownS: number;
  /** Send to the webhook endpoints whose cameras include this one; default true. */
  webhooks: boolean;
  /** Publish to the MQTT broker; default true. */
  mqtt: boolean;
}

/** A camera's motion detection: what is analysed, where, and when it alerts. */
export interface MotionConfig {
  /** Default false. */
  enabled: boolean;
  /** Frames analysed per second, 1–30; default 5. */
  fps: number;
  /** Width the picture is scaled to for analysis, px: 64–1280, a multiple of 16; default 320. */
  width: number;
  /** At most 16. */
  zones: MotionZone[];
  /** For the whole picture when there is no include zone (it is then the zone named `all`); default 0.06. */
  threshold: number;
  /** For the whole picture when there is no include zone; default 0.005. */
  minArea: number;
  /** Motion must last this long to raise an event, ms, 0–30000; default 200. */
  minDurationMs: number;
  /** An event ends after this long without motion, ms, 200–300000; default 1500. */
  endAfterMs: number;
  /** How fast the background follows slow changes (daylight): its time constant, s, 0.2–3600; default 4. */
  adaptS: number;
  /** Something that stops moving becomes background after this long, s, 0.5–86400; default 3. */
  settleS: number;
  /** Events older than this many days are deleted (not protected ones; 0: never), 0–3650; default 365. */
  retainDays: number;
  /** This share of the picture changing at once is a change of light, not motion, 0.05–1; default 0.6. */
  lightChange: number;
  /** At most 16. */
  alerts: AlertRule[];
}

/** What a camera without a `motion` section behaves as (the server's defaults). */
export const MOTION_DEFAULTS: MotionConfig = {
  enabled: false,
  fps: 5,
  width: 320,
  zones: [],
  threshold: 0.06,
  minArea: 0.005,
  minDurationMs: 200,
  endAfterMs: 1500,
  adaptS: 4,
  settleS: 3, retainDays: 365,
  lightChange: 0.6,
  alerts: [],
};

/** A detected event, as the events API and the event socket show it. */
export interface EventView {
  id: number;
  camera: string;
  kind: 'motion';
  /** ms since the epoch. */
  startMs: number;
  /** ms since the epoch; null while in progress. */
  endMs: number | null;
  /** Highest motion score so far, 0–1. */
  peakScore: number;
  zones: string[];
  /** Where the change was, as shares 0–1 of the picture; null when unknown. */
  box: { x: number; y: number; w: number; h: number } | null;
  /** The camera-node that detected it. */
  node: string;
  hasThumbnail: boolean;
  /** The protected clip holding it, or null. */
  protectedId: number | null;
  /** The frame with the changed region marked; null when none. */
  thumbnailUrl: string | null;
}

/** GET /api/events/:event: an event with the recording around it. */
export interface EventDetail extends EventView {
  recording: { from: number; to: number; playlistUrl: string } | null;
}

export interface EventQuery {
  /** Any of these cameras; absent: every camera the user may see. */
  cameras?: string[];
  /** ms since the epoch. */
  from?: number;
  to?: number;
  zone?: string;
  /** 0–1. */
  minScore?: number;
  /** 1–200; default 50. */
  limit?: number;
  /** The `next` of the page before. */
  cursor?: string;
}

export interface EventPage {
  /** Newest first. */
  events: EventView[];
  /** The cursor of the next page; null on the last. */
  next: string | null;
}

/** A webhook endpoint that alerts are POSTed to. */
export interface Webhook {
  /** `wh_…`. */
  id: string;
  url: string;
  /** null: every camera. */
  cameras: string[] | null;
  enabled: boolean;
  createdBy: string;
  /** ISO 8601 or ms since the epoch. */
  createdAt: string | number;
}

/** POST /api/webhooks: the endpoint with its signing secret, shown once. */
export interface NewWebhook extends Webhook {
  secret: string;
}

/** An alert that could not be delivered after its attempts (a dead letter). */
export interface DeadDelivery {
  /** The message id, `msg_…`. */
  id: string;
  eventId: number;
  camera: string;
  /** `webhook` or `mqtt`. */
  channel: string;
  /** null: not a webhook delivery. */
  webhookId: string | null;
  /** What was sent (the event's phase). */
  type: string;
  /** `dead` here. */
  state?: string;
  attempts: number;
  /** The last HTTP status, null when there was no answer. */
  lastStatus: number | null;
  lastError: string | null;
  /** When it was made, ms since the epoch. */
  createdMs?: number;
}

export interface DeadPage {
  /** Newest first. */
  deliveries: DeadDelivery[];
  /** `before` of the next page; null on the last. */
  next: string | null;
}

/** What POST /api/cameras takes; the server fills in defaults and validates. */
export interface CameraInput {
  id: string;
  name?: string;
  enabled?: boolean;
  source: { kind: SourceKind } & Record<string, unknown>;
  placement?: PlacementConfig;
  motion?: MotionConfig;
}

/**
 * A camera change the server accepted while its database was away (202): it was checked and waits on
 * that server, and is applied when the database is back. Neither done nor refused.
 */
export interface QueuedChange {
  queued: true;
  change: { id: string; op: 'create' | 'replace' | 'merge' | 'remove'; camera: string; at: string };
  error: { code: 'DATABASE_UNAVAILABLE'; message: string };
}

/** Whether a camera write's answer is a queued change rather than the result. */
export function isQueued(answer: unknown): answer is QueuedChange {
  return typeof answer === 'object' && answer !== null && (answer as { queued?: unknown }).queued === true;
}

/** Messages of /api/ws, one JSON object per frame. */
export type ServerMessage =
  | { type: 'snapshot'; cameras: Camera[] }
  | { type: 'camera'; camera: Camera }
  | { type: 'camera-removed'; id: string }
  | { type: 'status'; status: CameraStatus }
  /** A detected event began, changed (score, zones, box) or ended; only for cameras the user may see. */
  | { type: 'event'; phase: 'start' | 'update' | 'end'; event: EventView };

/** Every permission a user or token can hold, as the server names them. */
export const PERMISSIONS = [
  'cameras:read', 'cameras:manage', 'camera:live', 'camera:archive', 'camera:export', 'camera:control',
  'users:manage', 'audit:read', 'settings:manage', 'metrics:read', 'nodes:read', 'nodes:manage',
  'alerts:manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Permissions that hold per camera; the rest hold site-wide. */
export const CAMERA_PERMISSIONS = ['camera:live', 'camera:archive', 'camera:export', 'camera:control'] as const;
export type CameraPermission = (typeof CAMERA_PERMISSIONS)[number];

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** null: every camera with the role's permissions; otherwise the camera permissions per camera id. */
export type CameraGrants = Record<string, CameraPermission[]> | null;

export interface User {
  id: string;
  username: string;
  role: Role;
  cameras: CameraGrants;
  disabled: boolean;
  totpEnabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What a session still owes after the password: a 2FA code (`verify`) or a 2FA set-up (`enroll`). */
export type Pending = 'verify' | 'enroll' | null;

/** GET /api/auth/me. */
export interface Me {
  user: User;
  kind: 'user' | 'token';
  pending: Pending;
  /** What this session may do (camera permissions on the cameras in `cameras`). */
  permissions: Permission[];
  /** null: every camera; otherwise the camera permissions held per camera. */
  cameras: Record<string, CameraPermission[]> | null;
  /** Whether the site requires 2FA of this user's role (then 2FA cannot be turned off). */
  require2fa: boolean;
}

export interface SessionInfo {
  id: string;
  createdAt: string;
  expiresAt: string;
  lastSeenAt: string;
  twoFactorVerified: boolean;
  ip: string | null;
  userAgent: string | null;
  /** The session of this browser. */
  current: boolean;
}

export interface TokenInfo {
  id: string;
  name: string;
  /** `api` (made by a user) or `short` (POST /api/auth/token). */
  kind: string;
  /** The first characters of the token, to recognise it. */
  prefix: string;
  /** null: all of the user's. */
  permissions: Permission[] | null;
  /** null: every camera the user may use. */
  cameras: string[] | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

export interface NewToken {
  name: string;
  permissions?: Permission[];
  cameras?: string[];
  expiresInDays?: number;
}

export interface TotpSetup {
  /** The key in base32, for typing into an app by hand. */
  secret: string;
  /** otpauth:// URI, what the QR code holds. */
  uri: string;
  /** The QR code as an SVG document. */
  qrSvg: string;
}

export interface SecuritySettings {
  require2fa: { all: boolean; roles: Role[] };
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  actorKind: 'user' | 'token' | 'system' | 'anonymous';
  action: string;
  target: string | null;
  cameraId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditQuery {
  actor?: string;
  /** An action (`auth.sign_in`) or an area (`auth.*`). */
  action?: string;
  camera?: string;
  /** ISO 8601 with an offset. */
  from?: string;
  to?: string;
  /** Entries older than this sequence number. */
  before?: number;
  limit?: number;
}

export interface AuditPage {
  /** Newest first. */
  entries: AuditEntry[];
  /** `before` for the next page; null when nothing was returned. */
  next: number | null;
}

export interface ChainBreak {
  seq: number;
  kind: 'altered' | 'missing' | 'inserted' | 'reordered';
  message: string;
}

export interface ChainCheck {
  ok: boolean;
  /** Entries checked. */
  entries: number;
  breaks: ChainBreak[];
}

/** What a process of the cluster runs. */
export const NODE_ROLES = ['signaling', 'sfu', 'camera-node', 'recorder', 'detector'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

/** How a node stands: heard from within its lease, declared dead, or enrolled and never heard from. */
export type NodeState = 'alive' | 'dead' | 'unseen';

/** A node's load, from its last heartbeat. */
export interface NodeLoad {
  /** Share of the machine's CPUs in use, 0–1. */
  cpu: number;
  cpus: number;
  /** Camera video coming in, bit/s. */
  ingressBps: number;
  viewers: number;
  cameras: number;
}

/** One load sample; the server keeps one every 10 s for an hour. */
export interface LoadSample {
  /** ms since the epoch. */
  at: number;
  cpu: number;
  ingressBps: number;
  viewers: number;
  cameras: number;
}

/** An SFU room as its node reports it. */
export interface NodeRoom {
  camera: string;
  viewers: number;
  codec: 'H264' | 'H265' | null;
  /** Last RTP packet, ms since the epoch; null: none yet. */
  lastPacketAt: number | null;
  /** When the current run of packets began, ms since the epoch; null: none. */
  streamStartAt: number | null;
}

/** GET /api/nodes: one node of the cluster. */
export interface NodeView {
  id: string;
  roles: NodeRole[];
  state: NodeState;
  /** When it entered `state`, ms since the epoch; null when unseen. */
  since: number | null;
  /** Why it was declared dead: its bus connection closed, or it missed its heartbeats. */
  deathReason: 'connection' | 'lease' | null;
  drained: boolean;
  /** Enrolled with a key (signaling instances are not: they share the database). */
  enrolled: boolean;
  /** Whether this node leads the cluster (runs placement). */
  leader: boolean;
  labels: Record<string, string>;
  version: string | null;
  /** When its process started, ms since the epoch. */
  startedAt: number | null;
  /** When its last heartbeat arrived, ms since the epoch (the answering instance's clock). */
  lastHeartbeatAt: number | null;
  addresses: { ingestHost: string | null; api: string | null } | null;
  load: NodeLoad | null;
  cameras: { id: string; state: CameraState }[];
  rooms: NodeRoom[];
  clock: {
    /** Its clock minus the answering instance's, ms; null before a live heartbeat. */
    offsetMs: number | null;
    /** The offset is over the cluster's limit (100 ms by default): the shared timeline is off. */
    warning: boolean;
    ntp: { source: 'chrony' | 'timesyncd' | 'none'; synchronized: boolean | null; offsetMs: number | null } | null;
  };
  config: {
    /** The config version it last applied. */
    applied: number | null;
    /** The cluster's config version. */
    current: number;
    /** null: its roles take no config. */
    upToDate: boolean | null;
  };
  history: LoadSample[];
}

/** Where the master placed one camera. */
export interface PlacementRecord extends CameraPlacement {
  camera: string;
}

/** A camera moved from one node to another (or to none). */
export interface MoveRecord {
  camera: string;
  role: 'camera-node' | 'sfu';
  from: string | null;
  to: string | null;
  reason: string;
  /** ms since the epoch. */
  at: number;
  /** The leader's epoch that made the move. */
  epoch: number;
}

/** A camera change waiting on the answering instance for the database. */
export interface PendingChange {
  id: string;
  op: 'create' | 'replace' | 'merge' | 'remove';
  camera: string;
  /** ISO 8601. */
  at: string;
  actor: string;
  /** Why it could not be applied (failed changes only). */
  error?: string;
}

/** GET /api/cluster. */
export interface ClusterView {
  /** The signaling instance that answered. */
  instance: string;
  leader: { id: string; epoch: number } | null;
  /** Whether the answering instance leads. */
  leading: boolean;
  configVersion: number;
  bus: { kind: string; healthy: boolean };
  database: { kind: string; available: boolean };
  nodes: { total: number; alive: number };
  placements: PlacementRecord[];
  /** Oldest first. */
  moves: MoveRecord[];
  /** Gaps in recording not yet written to the database. */
  pendingGaps: number;
  queuedChanges: PendingChange[];
  failedChanges: PendingChange[];
  warnings: string[];
}

/** POST /api/nodes/enrollment-tokens: shown once. */
export interface EnrollmentToken {
  token: string;
  roles: NodeRole[];
  /** ISO 8601. */
  expiresAt: string;
}

/** A refusal of the API, with its stable code and the server's message. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  /** The request field at fault (e.g. `source.url`), when the server names one. */
  readonly field: string | undefined;
  /** Seconds to wait before trying again (Retry-After), when the server says. */
  readonly retryAfterS: number | undefined;
  constructor(status: number, code: string, message: string, field?: string, retryAfterS?: number) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfterS = retryAfterS;
  }
}

/** Reads the `{ error: { code, message, field? } }` body of a refusal; anything else becomes a generic error. */
export async function readApiError(res: Response): Promise<ApiError> {
  const retryAfterS = retryAfterSeconds(res.headers.get('Retry-After'));
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; field?: string; details?: { field?: unknown } } };
    // The field is `error.field`, or `error.details.field` in validation refusals.
    const field = body.error?.field ?? (typeof body.error?.details?.field === 'string' ? body.error.details.field : undefined);
    if (body.error?.message) return new ApiError(res.status, body.error.code ?? 'UNKNOWN', body.error.message, field, retryAfterS);
  } catch {
    // Not JSON (a proxy's error page, say): fall through to the status line.
  }
  return new ApiError(res.status, 'UNKNOWN', `HTTP ${res.status} ${res.statusText}`.trim(), undefined, retryAfterS);
}

/** Retry-After in whole seconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined when absent or unreadable. */
export function retryAfterSeconds(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/**
 * Refusals that mean the page cannot go on as it is: the user must sign in (again) or finish signing
 * in. Whoever meets one reports it, and the app moves to the page that fixes it.
 */
export const AuthRefusal = {
  Unauthenticated: 'UNAUTHENTICATED',
  SecondFactorPending: 'SECOND_FACTOR_PENDING',
  EnrollmentRequired: 'ENROLLMENT_REQUIRED',
} as const;
export type AuthRefusal = (typeof AuthRefusal)[keyof typeof AuthRefusal];

const AUTH_REFUSALS: readonly string[] = Object.values(AuthRefusal);
const authListeners = new Set<(code: AuthRefusal) => void>();

/** Calls `listener` at every refusal that needs a sign-in step; returns the unsubscribe function. */
export function onAuthRefusal(listener: (code: AuthRefusal) => void): () => void {
  authListeners.add(listener);
  return () => authListeners.delete(listener);
}

/** Tells the listeners when `error` is a refusal that needs a sign-in step. */
export function reportRefusal(error: ApiError): void {
  if (!AUTH_REFUSALS.includes(error.code)) return;
  for (const listener of authListeners) listener(error.code as AuthRefusal);
}

// The session cookie goes with every call (same-origin credentials, fetch's default), and fetch adds the
// Origin header to writes by itself, which is what the server's CSRF check looks at.
async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (!res.ok) {
    const error = await readApiError(res);
    reportRefusal(error);
    throw error;
  }
  return (res.status === 204 ? undefined : await res.json()) as T;
}

/** `?a=1&b=2` from the defined, non-empty values (a list repeats its key); '' when there are none. */
function query(params: Record<string, string | number | readonly string[] | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (Array.isArray(v)) for (const item of v) q.append(k, item);
    else if (v !== undefined && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

const seg = encodeURIComponent;

export const api = {
  listCameras: () => request<Camera[]>('GET', '/api/cameras'),
  // Camera writes answer 202 with a QueuedChange while the database is away.
  addCamera: (input: CameraInput) => request<Camera | QueuedChange>('POST', '/api/cameras', input),
  updateCamera: (id: string, patch: Partial<Omit<CameraInput, 'id'>>) =>
    request<Camera | QueuedChange>('PATCH', `/api/cameras/${seg(id)}`, patch),
  removeCamera: (id: string) => request<QueuedChange | undefined>('DELETE', `/api/cameras/${seg(id)}`),

  signIn: (username: string, password: string) => request<{ user: User; pending: Pending }>('POST', '/api/auth/login', { username, password }),
  verifySecondFactor: (proof: { code: string } | { recoveryCode: string }) => request<void>('POST', '/api/auth/2fa/verify', proof),
  signOut: () => request<void>('POST', '/api/auth/logout'),
  signOutEverywhere: () => request<void>('POST', '/api/auth/logout-all'),
  me: () => request<Me>('GET', '/api/auth/me'),
  changePassword: (current: string, password: string) => request<void>('POST', '/api/auth/password', { current, password }),

  beginTotp: () => request<TotpSetup>('POST', '/api/auth/2fa/setup'),
  enableTotp: (code: string) => request<{ recoveryCodes: string[] }>('POST', '/api/auth/2fa/enable', { code }),
  disableTotp: (password: string) => request<void>('POST', '/api/auth/2fa/disable', { password }),
  renewRecoveryCodes: (code: string) => request<{ recoveryCodes: string[] }>('POST', '/api/auth/2fa/recovery-codes', { code }),

  mySessions: () => request<SessionInfo[]>('GET', '/api/auth/sessions'),
  endMySession: (id: string) => request<void>('DELETE', `/api/auth/sessions/${seg(id)}`),
  myTokens: () => request<TokenInfo[]>('GET', '/api/tokens'),
  createToken: (input: NewToken) => request<TokenInfo & { token: string }>('POST', '/api/tokens', input),
  revokeMyToken: (id: string) => request<void>('DELETE', `/api/tokens/${seg(id)}`),

  listUsers: () => request<User[]>('GET', '/api/users'),
  addUser: (input: { username: string; password: string; role: Role; cameras?: CameraGrants }) => request<User>('POST', '/api/users', input),
  updateUser: (id: string, patch: { role?: Role; disabled?: boolean; cameras?: CameraGrants; password?: string; resetTwoFactor?: true }) =>
    request<User>('PATCH', `/api/users/${seg(id)}`, patch),
  removeUser: (id: string) => request<void>('DELETE', `/api/users/${seg(id)}`),
  userSessions: (id: string) => request<SessionInfo[]>('GET', `/api/users/${seg(id)}/sessions`),
  endUserSessions: (id: string) => request<void>('DELETE', `/api/users/${seg(id)}/sessions`),
  userTokens: (id: string) => request<TokenInfo[]>('GET', `/api/users/${seg(id)}/tokens`),
  revokeUserToken: (id: string, tokenId: string) => request<void>('DELETE', `/api/users/${seg(id)}/tokens/${seg(tokenId)}`),

  security: () => request<SecuritySettings>('GET', '/api/security'),
  setSecurity: (s: SecuritySettings) => request<SecuritySettings>('PUT', '/api/security', s),

  audit: (q: AuditQuery) => request<AuditPage>('GET', `/api/audit${query({ ...q })}`),
  verifyAudit: () => request<ChainCheck>('GET', '/api/audit/verify'),

  archiveTimeline: (id: string, from: number, to: number) => request<Timeline>('GET', `/api/cameras/${seg(id)}/archive/timeline${query({ from, to })}`),
  exportClip: (id: string, from: string, to: string) => request<ExportResult>('POST', `/api/cameras/${seg(id)}/archive/exports`, { from, to }),

  events: ({ cameras, ...q }: EventQuery) => request<EventPage>('GET', `/api/events${query({ camera: cameras, ...q })}`),
  event: (id: number) => request<EventDetail>('GET', `/api/events/${id}`),
  protectEvent: (id: number) => request<{ protectedId: number }>('POST', `/api/events/${id}/protect`),
  unprotectEvent: (id: number) => request<void>('DELETE', `/api/events/${id}/protect`),

  // `{ webhooks: [...] }`; a bare list is taken too.
  webhooks: () => request<Webhook[] | { webhooks: Webhook[] }>('GET', '/api/webhooks').then((r) => (Array.isArray(r) ? r : r.webhooks)),
  addWebhook: (input: { url: string; cameras?: string[] }) => request<NewWebhook>('POST', '/api/webhooks', input),
  setWebhookEnabled: (id: Webhook['id'], enabled: boolean) => request<Webhook>('PATCH', `/api/webhooks/${seg(id)}`, { enabled }),
  removeWebhook: (id: Webhook['id']) => request<void>('DELETE', `/api/webhooks/${seg(id)}`),
  testWebhook: (id: Webhook['id']) => request<WebhookTest | undefined>('POST', `/api/webhooks/${seg(id)}/test`),
  deadDeliveries: (q: { limit?: number; before?: string }) => request<DeadPage>('GET', `/api/alerts/dead${query(q)}`),
  retryDelivery: (id: DeadDelivery['id']) => request<DeadDelivery>('POST', `/api/alerts/deliveries/${seg(id)}/retry`),

  cluster: () => request<ClusterView>('GET', '/api/cluster'),
  nodes: () => request<NodeView[]>('GET', '/api/nodes'),
  drainNode: (id: string) => request<NodeView>('POST', `/api/nodes/${seg(id)}/drain`),
  undrainNode: (id: string) => request<NodeView>('POST', `/api/nodes/${seg(id)}/undrain`),
  revokeNode: (id: string) => request<void>('DELETE', `/api/nodes/${seg(id)}`),
  createEnrollmentToken: (roles: NodeRole[], ttlS?: number) =>
    request<EnrollmentToken>('POST', '/api/nodes/enrollment-tokens', ttlS === undefined ? { roles } : { roles, ttlS }),
} as const;

/** A camera's recorded stretches and gaps over a window (GET …/archive/timeline). */
export interface Timeline {
  camera: string;
  fromMs: number;
  toMs: number;
  recorded: Array<{ startMs: number; endMs: number }>;
  gaps: Array<{ startMs: number; endMs: number; reason: string | null }>;
  recordedMs: number;
  bytes: number;
}

/** An exported clip: where to download it and its proof. */
export interface ExportResult {
  mp4: string;
  proof: string;
  sha256: string;
  bytes: number;
  segments: number;
}

/** What a test POST to a webhook endpoint met, as far as the server says. */
export interface WebhookTest {
  ok?: boolean;
  /** The endpoint's HTTP status; null when it did not answer. */
  status?: number | null;
  error?: string | null;
  /** How long the endpoint took, ms. */
  durationMs?: number;
}

/** An event's marked frame; the events API gives it as `thumbnailUrl` when there is one. */
export function eventThumbnailUrl(id: number): string {
  return `/api/events/${id}/thumbnail.jpg`;
}

/** The WHEP endpoint of a camera. */
export function whepUrl(id: string): string {
  return `/api/cameras/${encodeURIComponent(id)}/whep`;
}
