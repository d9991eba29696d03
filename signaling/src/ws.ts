import type { Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { createLogger, gauge, type CameraStatus } from '@cctv/core';
import type { CameraStore } from './cameras.js';
import { cameraView } from './app.js';
import type { CameraRuntime, LocalRuntime } from './local.js';

const log = createLogger('signaling:ws');

/** Messages the server pushes on /api/ws (JSON, one per frame). */
export type ServerMessage =
  /** Sent first: every camera as GET /api/cameras shows it. */
  | { type: 'snapshot'; cameras: unknown[] }
  /** A camera was added or its config changed. */
  | { type: 'camera'; camera: unknown }
  | { type: 'camera-removed'; id: string }
  /** A camera's state or rates changed. */
  | { type: 'status'; status: CameraStatus };

// Rates change all the time: statuses are pushed at most this often per camera, in ms; state changes go at once.
const STATUS_INTERVAL_MS = 1000;
// A client that does not read is cut off rather than buffered without end.
const MAX_BUFFERED = 1024 * 1024;
// Pings keep idle connections open through proxies and find clients that vanished (no pong in time).
const PING_INTERVAL_MS = 15_000;

const wsClients = gauge('cctv_ws_clients', 'Dashboards connected to the event WebSocket');

/**
 * Pushes camera changes to every connected dashboard. Read-only: clients only listen.
 */
export class EventHub {
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<WebSocket>();
  readonly #timer: NodeJS.Timeout;
  readonly #pinger: NodeJS.Timeout;
  readonly #alive = new Set<WebSocket>();
  readonly #lastState = new Map<string, string>();

  constructor(server: Server, store: CameraStore, runtime: CameraRuntime & LocalRuntime) {
    this.#wss = new WebSocketServer({ server, path: '/api/ws', maxPayload: 4096 });
    this.#wss.on('connection', (ws) => {
      this.#clients.add(ws);
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
        .then((cams) => this.#send(ws, { type: 'snapshot', cameras: cams.map((c) => cameraView(c, runtime)) }))
        .catch((error: unknown) => log.warn({ err: error }, 'snapshot failed'));
    });
    store.on('changed', (cam) => this.broadcast({ type: 'camera', camera: cameraView(cam, runtime) }));
    store.on('removed', (id) => {
      this.#lastState.delete(id);
      this.broadcast({ type: 'camera-removed', id });
    });
    runtime.on('status', (s) => {
      if (this.#lastState.get(s.id) !== s.state) {
        this.#lastState.set(s.id, s.state);
        this.broadcast({ type: 'status', status: s });
      }
    });
    this.#timer = setInterval(() => {
      if (this.#clients.size === 0) return;
      void store.list().then((cams) => {
        for (const c of cams) this.broadcast({ type: 'status', status: runtime.status(c.config.id) });
      }).catch(() => {});
    }, STATUS_INTERVAL_MS);
    this.#pinger = setInterval(() => {
      for (const ws of this.#clients) {
        // No pong since the last ping: the client is gone without closing.
        if (!this.#alive.delete(ws)) ws.terminate();
        else ws.ping();
      }
    }, PING_INTERVAL_MS);
  }

  broadcast(msg: ServerMessage): void {
    if (this.#clients.size === 0) return;
    const text = JSON.stringify(msg);
    for (const ws of this.#clients) this.#send(ws, text);
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
    for (const ws of this.#clients) ws.terminate();
    await new Promise<void>((r) => this.#wss.close(() => r()));
  }
}
