import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AlertService, Archive, EventStore } from '@cctv/recorder';
import inject from 'light-my-request';
import { CameraState, loadConfig, migrate, openBus, openDatabase, type Bus, type CameraStatus, type ConfigInput, type Database } from '@cctv/core';
import { buildApp, type AppDeps } from '../app.js';
import { CameraStore } from '../cameras.js';
import type { CameraRuntime, WhepTarget, WhipTarget } from '../cluster/runtime.js';
import { createCluster, type Cluster } from '../cluster/cluster.js';
import { AuthService, SESSION_COOKIE } from '../auth/service.js';
import type { Role } from '../auth/permissions.js';

/**
 * The HTTP app on a real embedded database and an in-process bus, with small fakes for the media side:
 * what these tests exercise is the HTTP edge (routes, access, errors), not the cameras.
 */
export interface Harness {
  app: ReturnType<typeof buildApp>;
  db: Database;
  bus: Bus;
  store: CameraStore;
  auth: AuthService;
  whep: FakeWhep;
  /** The real cluster parts (registry, master, nodes) on the in-process bus; no node runs. */
  cluster: Cluster;
  deps: AppDeps;
  /** A user with a password (created once per name). */
  user(username: string, role: Role, cameras?: Record<string, string[]> | null): Promise<{ id: string; password: string }>;
  /** Headers of a signed-in browser session of `username` (2FA done), with this site's Origin. */
  session(username: string, opts?: { twoFactorVerified?: boolean }): Promise<Record<string, string>>;
  /** Headers with a Bearer API token of `username`. */
  token(username: string, scope?: { permissions?: string[] | null; cameras?: string[] | null; ttlMs?: number | null }): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export const HOST = 'cctv.test';
export const ORIGIN = `http://${HOST}`;

export const liveStatus = (id: string): CameraStatus => ({
  id, state: CameraState.Live, since: 0, lastError: null, viewers: 0,
  input: { codec: 'H264', fps: 30, bitrateKbps: 1000, packets: 1, bytes: 1, keyframes: 1, junk: 0, reconnects: 0, lastPacketAt: 0 },
});

/** A fake SFU door for WHEP viewers and WHIP publishers alike (`next` says how the next offer ends). */
export class FakeWhep implements WhepTarget, WhipTarget {
  sessions = new Set<string>();
  next: 'ok' | 'bad-sdp' | 'codec' | 'offline' = 'ok';
  async createViewer(cameraId: string, offer: string) {
    const core = await import('@cctv/core');
    if (this.next === 'bad-sdp') throw new core.ValidationError('sdp', 'has no m= section');
    if (this.next === 'codec') throw new core.UnsupportedError('the offer has no H.264 with packetization-mode=1 (offered: VP8)');
    if (this.next === 'offline') throw new core.UnavailableError('CAMERA_OFFLINE', `camera ${cameraId} is not sending video`, 2);
    const id = `s${this.sessions.size + 1}-${Math.random().toString(36).slice(2, 8)}`;
    this.sessions.add(id);
    return { id, sdp: `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=answer to ${offer.length} bytes\r\n` };
  }
  createPublisher(cameraId: string, offer: string) {
    return this.createViewer(cameraId, offer);
  }
  deletePublisher(cameraId: string, session: string) {
    return this.deleteViewer(cameraId, session);
  }
  async deleteViewer(_cameraId: string, viewerId: string) {
    if (!this.sessions.delete(viewerId)) {
      const { NotFoundError } = await import('@cctv/core');
      throw new NotFoundError(`viewer ${viewerId} is not watching`);
    }
  }
}

export async function harness(overrides: ConfigInput = {}): Promise<Harness> {
  const db = await openDatabase({ dataDir: 'memory://' });
  await migrate(db);
  const bus = await openBus({ prefix: 'test' });
  const config = loadConfig({ env: {}, overrides: { http: { bodyLimitBytes: 4096, tls: { mode: 'off' } }, ...overrides } });
  const auth = new AuthService({ db, bus, config });
  await auth.initialize('admin-password-0');
  const store = new CameraStore(db);
  const whep = new FakeWhep();
  const runtime: CameraRuntime = { status: liveStatus };
  const cluster = await createCluster({ db, bus, config, store, id: 'signaling-test' });
  // The archive's rows without a storage: routes that read files answer STORAGE_UNAVAILABLE.
  const archive = { archive: new Archive(db), storage: null, spoolDir: null, recorder: null, siteKey: cluster.siteKey, exportDir: join(tmpdir(), `cctv-exports-${process.pid}`), thumbnailDir: join(tmpdir(), `cctv-thumbs-${process.pid}`) };
  const alerts = new AlertService({ db, node: 'test', config: config.alerts });
  const deps: AppDeps = { config, db, store, runtime, whep, whip: whep, auth, cluster, archive, events: new EventStore(db), alerts, webDir: null, version: 'test' };
  const app = buildApp(deps);
  const passwords = new Map<string, { id: string; password: string }>([['admin', { id: (await auth.users.getByName('admin'))!.id, password: 'admin-password-0' }]]);
  return {
    app, db, bus, store, auth, whep, cluster, deps,
    async user(username, role, cameras = null) {
      const known = passwords.get(username);
      if (known) return known;
      const password = `${username}-password-1`;
      const u = await auth.users.create({ username, password, role, cameras });
      const entry = { id: u!.id, password };
      passwords.set(username, entry);
      return entry;
    },
    async session(username, opts = {}) {
      const u = (await auth.users.getByName(username))!;
      const { token, session } = await auth.sessions.create(u.id, { twoFactorVerified: false, ip: '127.0.0.1', userAgent: 'test' });
      if (opts.twoFactorVerified !== false) await auth.sessions.markTwoFactorVerified(session.id);
      return { cookie: `${SESSION_COOKIE}=${token}`, origin: ORIGIN, host: HOST };
    },
    async token(username, scope = {}) {
      const u = (await auth.users.getByName(username))!;
      const { token } = await auth.tokens.create(u.id, { name: 'test', kind: 'api', permissions: scope.permissions ?? null, cameras: scope.cameras ?? null, ttlMs: scope.ttlMs ?? null });
      return { authorization: `Bearer ${token}`, host: HOST };
    },
    async close() {
      await alerts.close();
      await cluster.close();
      await bus.close();
      await db.close();
    },
  };
}

/** A JSON request through the app (no port). */
export function call(h: Harness, method: string, url: string, headers: Record<string, string>, body?: unknown, contentType = 'application/json') {
  return inject(h.app, {
    method: method as 'GET',
    url,
    headers: { host: HOST, ...headers, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { payload: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
}
