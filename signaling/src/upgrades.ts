import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { createLogger } from '@cctv/core';
import { ANONYMOUS, type Principal } from './auth/permissions.js';
import type { AuthService } from './auth/service.js';
import { ApiError } from './errors.js';

const log = createLogger('signaling:upgrade');

/** A WebSocket endpoint: takes the upgrades of its path (after `routeUpgrades` found it). */
export interface UpgradeTarget {
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void>;
}

/**
 * Sends each WebSocket upgrade to the endpoint of its path (`/api/ws`, `/api/graphql`); an unknown path
 * or a refused upgrade gets an HTTP error answer with the API's error body. Returns a function that
 * stops listening.
 */
export function routeUpgrades(server: Server, targets: Readonly<Record<string, UpgradeTarget>>): () => void {
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const target = Object.hasOwn(targets, path) ? targets[path] : undefined;
    const done = target
      ? target.handleUpgrade(req, socket, head)
      : Promise.reject(new ApiError('NOT_FOUND', `no WebSocket at ${path.slice(0, 80)}; use ${Object.keys(targets).join(' or ')}`));
    done.catch((error: unknown) => {
      const api = error instanceof ApiError ? error : new ApiError('INTERNAL');
      if (api.code === 'INTERNAL') log.error({ err: error, path }, 'websocket upgrade failed');
      const body = JSON.stringify({ error: { code: api.code, message: api.message } });
      socket.end(`HTTP/1.1 ${api.status} ${api.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    });
  };
  server.on('upgrade', onUpgrade);
  return () => server.off('upgrade', onUpgrade);
}

/** The credentials a socket was opened with, to check them again while it stays open. */
export interface Credentials {
  cookie?: string;
  authorization?: string;
}

export function credentialsOf(req: IncomingMessage): Credentials {
  return { ...(req.headers.cookie ? { cookie: req.headers.cookie } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) };
}

/**
 * Who opens a WebSocket: the session cookie or Bearer token of the upgrade, like any route. A
 * cookie-authenticated socket must be opened by a page of this site (cross-site WebSocket hijacking);
 * a sign-in that still owes its 2FA step is refused. With `anonymous`, a request without credentials
 * passes as ANONYMOUS (the endpoint authenticates in its own protocol).
 */
export async function upgradePrincipal(req: IncomingMessage, auth: AuthService, opts: { anonymous: boolean }): Promise<Principal> {
  const p = await auth.resolve(req);
  if (p.kind === 'anonymous') {
    if (opts.anonymous) return ANONYMOUS;
    throw new ApiError('UNAUTHENTICATED');
  }
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
  return p;
}

/** What a socket keeps of its opener: the principal, brought up to date while the socket lives. */
export interface SocketSession {
  principal: Principal;
}

/**
 * The open sockets of an endpoint with the credentials each was opened with. Every `intervalMs` the
 * credentials are resolved again: a socket whose session or token ended (sign-out, revocation, a
 * disabled user) or that `accept` no longer accepts is closed with 4401; a changed role or grant
 * changes its principal, so what it is told follows at once.
 */
export class SocketSessions<S extends SocketSession> {
  readonly #sessions = new Map<WebSocket, { session: S; credentials: Credentials }>();
  readonly #timer: NodeJS.Timeout;

  constructor(auth: AuthService, accept: (p: Principal) => boolean, intervalMs = 5000) {
    this.#timer = setInterval(() => {
      for (const [ws, { session, credentials }] of this.#sessions) {
        void auth
          .resolve({ headers: credentials } as IncomingMessage)
          .then((p) => {
            if (p.kind === 'anonymous' || p.pending || !accept(p)) ws.close(4401, 'signed out');
            else session.principal = p;
          })
          .catch(() => ws.close(4401, 'signed out'));
      }
    }, intervalMs);
    this.#timer.unref();
  }

  add(ws: WebSocket, session: S, credentials: Credentials): void {
    this.#sessions.set(ws, { session, credentials });
  }

  get(ws: WebSocket): S | undefined {
    return this.#sessions.get(ws)?.session;
  }

  delete(ws: WebSocket): void {
    this.#sessions.delete(ws);
  }

  get size(): number {
    return this.#sessions.size;
  }

  *entries(): IterableIterator<[WebSocket, S]> {
    for (const [ws, { session }] of this.#sessions) yield [ws, session];
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
