import type { IncomingMessage } from 'node:http';
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
import { SocketSessions, credentialsOf, upgradePrincipal, type SocketSession, type UpgradeTarget } from './upgrades.js';

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
export class EventHub implements UpgradeTarget {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  // Open sockets with their principal, checked again while they stay open (sign-out, revocation).
  readonly #clients: SocketSessions<SocketSession>;
  readonly #auth: AuthService;
  readonly #timer: NodeJS.Timeout;
  readonly #pinger: NodeJS.Timeout;
  readonly #alive = new Set<WebSocket>();
  readonly #lastState = new Map<string, string>();

  constructor(store: CameraStore, runtime: ClusterRuntime, auth: AuthService) {
    this.#auth = auth;
    this.#clients = new SocketSessions(auth, (p) => can(p, Permission.CamerasRead), RECHECK_INTERVAL_MS);
    this.#wss.on('connection', (ws: WebSocket, p: Principal, req: IncomingMessage) => {
      this.#clients.add(ws, { principal: p }, credentialsOf(req));
      this.#alive.add(ws);
      wsClients.set(this.#clients.size);
      ws.on('pong', () => this.#alive.add(ws));
      ws.on('close', () => {
        this.#clients.delete(ws);
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
    this.#pinger = setInterval(() => {
      for (const [ws] of this.#clients.entries()) {
        // No pong since the last ping: the client is gone without closing.
        if (!this.#alive.delete(ws)) ws.terminate();
        else ws.ping();
      }
    }, PING_INTERVAL_MS);
  }

  /** Takes an upgrade of /api/ws (routeUpgrades sends it here): it needs cameras:read. */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const p = await upgradePrincipal(req, this.#auth, { anonymous: false });
    if (!can(p, Permission.CamerasRead)) throw new ApiError('FORBIDDEN', 'this needs the permission cameras:read');
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#wss.emit('connection', ws, p, req));
  }

  /** Pushes a motion event's change to the dashboards that may see the camera's archive. */
  motion(n: MotionNotice): void {
    if (this.#clients.size === 0) return;
    const camera = n.event.camera;
    const text = JSON.stringify({ type: 'event', phase: n.phase, event: eventView(n.event as unknown as MotionEvent) } satisfies ServerMessage);
    for (const [ws, { principal: p }] of this.#clients.entries()) if (canSeeCamera(p, camera) && can(p, Permission.Archive, camera)) this.#send(ws, text);
  }

  #broadcast(cameraId: string, msg: ServerMessage): void {
    if (this.#clients.size === 0) return;
    const text = JSON.stringify(msg);
    for (const [ws, { principal: p }] of this.#clients.entries()) if (canSeeCamera(p, cameraId)) this.#send(ws, text);
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
    this.#clients.close();
    for (const [ws] of this.#clients.entries()) ws.terminate();
    await new Promise<void>((r) => this.#wss.close(() => r()));
  }
}
