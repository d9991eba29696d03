import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { createLogger, gauge, type CameraStatus, type MotionNotice } from '@cctv/core';
import type { MotionEvent } from '@cctv/recorder';
import { eventView, type EventView } from './events.js';
import type { CameraStore } from './cameras.js';
import { cameraView } from './app.js';
import type { ClusterRuntime } from './cluster/runtime.js';
import { ApiError } from './errors.js';
import { Permission, can, canSeeCamera, type Principal } from './auth/permissions.js';
import type { AuthService } from './auth/service.js';

const log = createLogger('signaling:ws');

/** Messages the server pushes on /api/ws (JSON, one per frame). */
export type ServerMessage =
  /** Sent first: every camera the client may see, as GET /api/cameras shows it. */
  | { type: 'snapshot'; cameras: unknown[] }
  /** A camera was added or its config changed. */
  | { type: 'camera'; camera: unknown }
  | { type: 'camera-removed'; id: string }
  /** A camera's state or rates changed. */
  | { type: 'status'; status: CameraStatus }
  /** A motion event started, grew or ended (to those who may see the camera's archive). */
  | { type: 'event'; phase: 'start' | 'update' | 'end'; event: EventView };

// Rates change all the time: statuses are pushed at most this often per camera, in ms; state changes go at once.
const STATUS_INTERVAL_MS = 1000;
// A client that does not read is cut off rather than buffered without end.
const MAX_BUFFERED = 1024 * 1024;
// Pings keep idle connections open through proxies and find clients that vanished (no pong in time).
const PING_INTERVAL_MS = 15_000;
// How often an open socket's session or token is checked again (sign-out, revocation, a disabled user).
const RECHECK_INTERVAL_MS = 5_000;

const wsClients = gauge('cctv_ws_clients', 'Dashboards connected to the event WebSocket');

/**
 * Pushes camera changes to every connected dashboard, each only about the cameras its user may see.
 * The connection is authorised at the upgrade, like any route (session cookie or Bearer token).
 */
export class EventHub {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  readonly #clients = new Map<WebSocket, Principal>();
  // The credentials each socket was opened with, to check them again while it stays open.
  readonly #credentials = new Map<WebSocket, { cookie?: string; authorization?: string }>();
  readonly #rechecker: NodeJS.Timeout;
  readonly #timer: NodeJS.Timeout;
  readonly #pinger: NodeJS.Timeout;
  readonly #alive = new Set<WebSocket>();
  readonly #lastState = new Map<string, string>();
  readonly #server: Server;
  readonly #onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  constructor(server: Server, store: CameraStore, runtime: ClusterRuntime, auth: AuthService) {
    this.#server = server;
    this.#onUpgrade = (req, socket, head) => {
      void this.#upgrade(req, socket, head, auth).catch((error: unknown) => {
        const api = error instanceof ApiError ? error : new ApiError('INTERNAL');
        if (api.code === 'INTERNAL') log.error({ err: error }, 'websocket upgrade failed');
        socket.end(`HTTP/1.1 ${api.status} ${api.code}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${JSON.stringify({ error: { code: api.code, message: api.message } })}`);
      });
    };
    server.on('upgrade', this.#onUpgrade);
    this.#wss.on('connection', (ws: WebSocket, p: Principal, req: IncomingMessage) => {
      this.#clients.set(ws, p);
      this.#credentials.set(ws, { ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      this.#alive.add(ws);
      wsClients.set(this.#clients.size);
      ws.on('pong', () => this.#alive.add(ws));
      ws.on('close', () => {
        this.#clients.delete(ws);
        this.#credentials.delete(ws);
        this.#alive.delete(ws);
        wsClients.set(this.#clients.size);
      });
      ws.on('error', () => ws.terminate());
      // Clients have nothing to say; anything they send is ignored.
      ws.on('message', () => {});
      void store
        .list()
        .then((cams) => this.#send(ws, { type: 'snapshot', cameras: cams.filter((c) => canSeeCamera(p, c.config.id)).map((c) => cameraView(c, runtime)) }))
        .catch((error: unknown) => log.warn({ err: error }, 'snapshot failed'));
    });
    store.on('changed', (cam) => this.#broadcast(cam.config.id, { type: 'camera', camera: cameraView(cam, runtime) }));
    store.on('removed', (id) => {
      this.#lastState.delete(id);
      this.#broadcast(id, { type: 'camera-removed', id });
    });
    runtime.on('status', (s) => {
      if (this.#lastState.get(s.id) !== s.state) {
        this.#lastState.set(s.id, s.state);
        this.#broadcast(s.id, { type: 'status', status: s });
      }
    });
    this.#timer = setInterval(() => {
      if (this.#clients.size === 0) return;
      void store.list().then((cams) => {
        for (const c of cams) this.#broadcast(c.config.id, { type: 'status', status: runtime.status(c.config.id) });
      }).catch(() => {});
    }, STATUS_INTERVAL_MS);
    // A socket lives as long as its session or token: signed out, revoked or disabled, it is closed
    // (4401); a changed role or grant changes what it is told.
    this.#rechecker = setInterval(() => {
      for (const [ws, creds] of this.#credentials) {
        void auth
          .resolve({ headers: creds } as IncomingMessage)
          .then((p) => {
            if (p.kind === 'anonymous' || p.pending || !can(p, Permission.CamerasRead)) ws.close(4401, 'signed out');
            else if (this.#clients.has(ws)) this.#clients.set(ws, p);
          })
          .catch(() => ws.close(4401, 'signed out'));
      }
    }, RECHECK_INTERVAL_MS);
    this.#pinger = setInterval(() => {
      for (const ws of this.#clients.keys()) {
        // No pong since the last ping: the client is gone without closing.
        if (!this.#alive.delete(ws)) ws.terminate();
        else ws.ping();
      }
    }, PING_INTERVAL_MS);
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, auth: AuthService): Promise<void> {
    if (new URL(req.url ?? '/', 'http://x').pathname !== '/api/ws') throw new ApiError('NOT_FOUND', 'no WebSocket here; use /api/ws');
    const p = await auth.resolve(req);
    if (p.kind === 'anonymous') throw new ApiError('UNAUTHENTICATED');
    // Cross-site WebSocket hijacking: a cookie-authenticated socket must be opened by a page of this site.
    if (p.kind === 'user') {
      let ok = false;
      try {
        ok = new URL(String(req.headers.origin)).host === req.headers.host;
      } catch {
        ok = false;
      }
      if (!ok) throw new ApiError('CSRF_FAILED', 'the WebSocket must be opened from a page of this site (Origin header)');
    }
    if (p.pending) throw new ApiError(p.pending === 'verify' ? 'SECOND_FACTOR_PENDING' : 'ENROLLMENT_REQUIRED');
    if (!can(p, Permission.CamerasRead)) throw new ApiError('FORBIDDEN', 'this needs the permission cameras:read');
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#wss.emit('connection', ws, p, req));
  }

  /** Pushes a motion event's change to the dashboards that may see the camera's archive. */
  motion(n: MotionNotice): void {
    if (this.#clients.size === 0) return;
    const camera = n.event.camera;
    const text = JSON.stringify({ type: 'event', phase: n.phase, event: eventView(n.event as unknown as MotionEvent) } satisfies ServerMessage);
    for (const [ws, p] of this.#clients) if (canSeeCamera(p, camera) && can(p, Permission.Archive, camera)) this.#send(ws, text);
  }

  #broadcast(cameraId: string, msg: ServerMessage): void {
    if (this.#clients.size === 0) return;
    const text = JSON.stringify(msg);
    for (const [ws, p] of this.#clients) if (canSeeCamera(p, cameraId)) this.#send(ws, text);
  }

  #send(ws: WebSocket, msg: ServerMessage | string): void {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED) {
      ws.terminate();
      return;
    }
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearInterval(this.#pinger);
    clearInterval(this.#rechecker);
    this.#server.off('upgrade', this.#onUpgrade);
    for (const ws of this.#clients.keys()) ws.terminate();
    await new Promise<void>((r) => this.#wss.close(() => r()));
  }
}
