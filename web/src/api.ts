/** Shapes and calls of the signaling server's REST API, as it sends them. */

export const SOURCE_KINDS = ['test', 'rtsp', 'rpicam', 'rtp'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** The server's view of a camera's input. */
export type CameraState = 'starting' | 'live' | 'reconnecting' | 'stopped';

export type Source =
  | { kind: 'test'; width: number; height: number; fps: number; gop?: number; bitrateKbps: number; pattern: 'testsrc2' | 'timecode' }
  /** `url` has credentials replaced by `***@`; the password itself is never sent. */
  | { kind: 'rtsp'; url: string; transport: 'tcp' | 'udp'; username?: string; hasPassword: boolean }
  | { kind: 'rpicam'; width: number; height: number; fps: number; gop?: number; bitrateKbps: number; camera: number; command?: string; extraArgs: string[] }
  | { kind: 'rtp'; port: number; host: string; codec: 'H264' | 'H265'; payloadType: number };

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
}

/** What POST /api/cameras takes; the server fills in defaults and validates. */
export interface CameraInput {
  id: string;
  name?: string;
  enabled?: boolean;
  source: { kind: SourceKind } & Record<string, unknown>;
}

/** Messages of /api/ws, one JSON object per frame. */
export type ServerMessage =
  | { type: 'snapshot'; cameras: Camera[] }
  | { type: 'camera'; camera: Camera }
  | { type: 'camera-removed'; id: string }
  | { type: 'status'; status: CameraStatus };

/** A refusal of the API, with its stable code and the server's message. */
export class ApiError extends Error {
  override name = 'ApiError';
  readonly status: number;
  readonly code: string;
  /** The request field at fault (e.g. `source.url`), when the server names one. */
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/** Reads the `{ error: { code, message, field? } }` body of a refusal; anything else becomes a generic error. */
export async function readApiError(res: Response): Promise<ApiError> {
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string; field?: string } };
    if (body.error?.message) return new ApiError(res.status, body.error.code ?? 'UNKNOWN', body.error.message, body.error.field);
  } catch {
    // Not JSON (a proxy's error page, say): fall through to the status line.
  }
  return new ApiError(res.status, 'UNKNOWN', `HTTP ${res.status} ${res.statusText}`.trim());
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? null : JSON.stringify(body),
  });
  if (!res.ok) throw await readApiError(res);
  return (res.status === 204 ? undefined : await res.json()) as T;
}

export const api = {
  listCameras: () => request<Camera[]>('GET', '/api/cameras'),
  addCamera: (input: CameraInput) => request<Camera>('POST', '/api/cameras', input),
  updateCamera: (id: string, patch: Partial<Omit<CameraInput, 'id'>>) =>
    request<Camera>('PATCH', `/api/cameras/${encodeURIComponent(id)}`, patch),
  removeCamera: (id: string) => request<void>('DELETE', `/api/cameras/${encodeURIComponent(id)}`),
} as const;

/** The WHEP endpoint of a camera. */
export function whepUrl(id: string): string {
  return `/api/cameras/${encodeURIComponent(id)}/whep`;
}
