import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networkInterfaces } from 'node:os';
import { NodeAgent, collectDefaultMetrics, createLogger, migrate, openBus, openDatabase, type Bus, type Config, type Database } from '@cctv/core';
import { startCameraNodeRole, type CameraNode } from '@cctv/camera-node';
import { startSfuRole, type Sfu } from '@cctv/sfu';
import { AlertService, Archive, EventStore, Storage, signPendingManifests, siteIdOf, startDetectorRole, startRecorderRole, type Detector, type Recorder } from '@cctv/recorder';
import type { ArchiveAccess } from './archive.js';
import { buildApp } from './app.js';
import { CameraStore } from './cameras.js';
import { ChangeQueue } from './changes.js';
import { createCluster, localIdentity, type Cluster } from './cluster/cluster.js';
import type { ClusterRuntime } from './cluster/runtime.js';
import { EventHub } from './ws.js';
import { GraphqlApi } from './graphql/api.js';
import { routeUpgrades } from './upgrades.js';
import { AuthService } from './auth/service.js';
import { AuditAction } from './auth/audit.js';
import { loadTls, type TlsMaterial } from './tls.js';

const log = createLogger('signaling');

/** The built dashboard, next to this package. */
export const WEB_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

/** This package's version. */
export const VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version;

/** A running system; `close()` stops everything in reverse order of start. */
export interface System {
  /** The dashboard's URL on this machine. */
  url: string;
  port: number;
  db: Database;
  bus: Bus;
  auth: AuthService;
  store: CameraStore;
  /** The cluster parts of this signaling instance (registry, leadership, master, routing). */
  cluster: Cluster;
  /** The live state of the cameras, as this instance sees the cluster. */
  runtime: ClusterRuntime;
  /** This process as a node: its heartbeats and the commands it takes. */
  agent: NodeAgent;
  /** The SFU of this process, when it runs the sfu role. */
  sfu: Sfu | null;
  /** The cameras of this process, when it runs the camera-node role. */
  cameraNode: CameraNode | null;
  /** The recorder in this process, when `node.roles` has it. */
  recorder: Recorder | null;
  /** The motion detector in this process, when `node.roles` has it. */
  detector: Detector | null;
  server: Server;
  /** The HTTPS certificate in use, when TLS is on. */
  tls: TlsMaterial | null;
  /** The admin password made on this (first) start, to be shown once; null otherwise. */
  generatedAdminPassword: string | null;
  /** Resolves when the master has no round running and the local roles have applied what they were told. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

export interface StartOptions {
  config: Readonly<Config>;
  /** Dashboard folder; default the built web/ next to this package. */
  webDir?: string | null;
  /** Create the demo camera on a first start with no cameras (default: config.demoCamera). */
  demoCamera?: boolean;
  /** Password of the first admin; default CCTV_ADMIN_PASSWORD, else one is generated. */
  adminPassword?: string;
  /** Shorter checks for tests (registry, leadership), ms. */
  checkMs?: number;
}

/** The synthetic camera a first start gets, so a new user sees video at once. */
// The demo camera shows a box crossing a still scene every 20 s, watched for motion, so a first start has events to show.
const DEMO_CAMERA = { id: 'demo', name: 'Synthetic camera', source: { kind: 'test' as const, pattern: 'motion' as const }, motion: { enabled: true } };

/**
 * Starts a signaling instance: database (Postgres or embedded), bus (Redis or in-process), the
 * cluster's registry and master, the API and the dashboard — and, when `node.roles` has them, an SFU
 * and a camera-node in this same process (the one-machine mode runs all three). Local roles are
 * nodes like any other: they heartbeat, and the master places cameras on them over the bus. A part that
 * fails to start closes what was already started.
 */
export async function startSystem(opts: StartOptions): Promise<System> {
  const { config } = opts;
  const roles = config.node.roles;
  if (!roles.includes('signaling')) throw new Error("startSystem runs a signaling instance: 'node.roles' must include signaling");
  const dataDir = resolve(config.dataDir);
  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.reverse()) {
      try {
        await c();
      } catch (error) {
        log.warn({ err: error }, 'error while stopping');
      }
    }
    closers.length = 0;
  };
  try {
    collectDefaultMetrics();
    const db = await openDatabase({ url: config.database.url, dataDir: join(dataDir, 'db') });
    closers.push(() => db.close());
    log.info({ database: db.kind, location: db.location }, 'database open');
    await migrate(db);
    const bus = await openBus({ url: config.redis.url, prefix: config.redis.prefix });
    closers.push(() => bus.close());
    log.info({ bus: bus.kind, location: bus.location }, 'bus open');
    const auth = new AuthService({ db, bus, config, auditBacklogFile: join(dataDir, 'audit-backlog.json') });
    closers.push(async () => auth.close());
    const admin = await auth.initialize(opts.adminPassword ?? process.env.CCTV_ADMIN_PASSWORD);

    const store = new CameraStore(db);
    for (const cam of config.cameras) await store.upsert(cam);
    if ((opts.demoCamera ?? config.demoCamera) && config.cameras.length === 0 && !(await store.setting<boolean>('demo_camera_created'))) {
      if ((await store.list()).length === 0) await store.create(DEMO_CAMERA);
      await store.setSetting('demo_camera_created', true);
    }

    const id = config.node.id;
    const cluster = await createCluster({ db, bus, config, store, id, ...(opts.checkMs ? { checkMs: opts.checkMs } : {}) });
    closers.push(() => cluster.close());
    const identity = await localIdentity(cluster.nodes, cluster.siteKey, dataDir, id, roles);
    const agent = new NodeAgent({
      bus, id, roles, labels: config.node.labels, version: VERSION,
      keys: { privateKey: identity.privateKey, boxPrivateKey: identity.boxPrivateKey, sitePublicKey: identity.sitePublicKey },
      stateFile: join(dataDir, 'node-state.json'),
      heartbeatMs: config.cluster.heartbeatMs,
      leaseMs: config.cluster.leaseMs,
    });
    closers.push(() => agent.close());
    let sfu: Sfu | null = null;
    let cameraNode: CameraNode | null = null;
    const settles: Array<() => Promise<void>> = [];
    if (roles.includes('sfu')) {
      const role = await startSfuRole({ config, dataDir, agent });
      closers.push(() => role.close());
      sfu = role.sfu;
    }
    if (roles.includes('camera-node')) {
      const role = await startCameraNodeRole({ config, dataDir, agent });
      closers.push(() => role.close());
      cameraNode = role.node;
      settles.push(() => role.settled());
    }

    // The recorder is a node like the others: the master places cameras on it and subscribes their SFUs
    // to its ports.
    let recorder: Recorder | null = null;
    const site = siteIdOf(cluster.siteKey.publicKey);
    if (roles.includes('recorder')) {
      const role = await startRecorderRole({
        config, db, bus, agent, site,
        onDeleted: (r) => void auth.audit.append({ actor: `recorder:${id}`, actorKind: 'system', action: AuditAction.ArchiveDeleted, details: { segments: r.deleted, bytes: r.bytes, byReason: r.byReason, cameras: r.cameras } }),
      });
      closers.push(() => role.close());
      recorder = role.recorder;
    }
    // The detector too: the master places the cameras with motion detection on it and subscribes their SFUs.
    // Alerts are sent by whichever instance or detector holds them (deliveries are rows every node can
    // take over); the service also answers the admin API (endpoints, dead letters).
    const alerts = new AlertService({ db, node: id, config: config.alerts, publicUrl: config.alerts.publicUrl });
    await alerts.start();
    closers.push(() => alerts.close());
    let detector: Detector | null = null;
    if (roles.includes('detector')) {
      const role = await startDetectorRole({ config, db, bus, agent, alerts });
      closers.push(() => role.close());
      detector = role.detector;
    }
    // The master signs each camera-hour of the archive with the site's key once the hour has ended.
    // It also deletes the motion events past their camera's retention.
    const events = detector?.events ?? new EventStore(db);
    const manifests = setInterval(() => {
      if (!cluster.leadership.isLeader) return;
      void signPendingManifests(db, cluster.siteKey.privateKey).catch((error: unknown) => log.warn({ err: error }, 'cannot sign archive manifests now'));
      void events.applyRetention().then((n) => n > 0 && log.info({ events: n }, 'deleted motion events past their retention'))
        .catch((error: unknown) => log.warn({ err: error }, 'cannot apply the events\' retention now'));
    }, 60_000);
    manifests.unref();
    closers.push(async () => clearInterval(manifests));
    // Without a recorder here, recordings are read from the storage (the NAS, mounted here too) through
    // a storage of our own that only reads.
    let storage = recorder?.storage ?? null;
    if (!storage) {
      const sc = config.recorder.storage ?? { id: 'nas', path: join(dataDir, 'archive'), requireMount: false, minFreeBytes: 0 };
      const reader = new Storage({ config: { ...sc, path: resolve(sc.path) }, db, site, ioTimeoutMs: config.recorder.ioTimeoutMs });
      closers.push(async () => reader.close());
      storage = reader;
    }
    const archiveAccess: ArchiveAccess = {
      archive: recorder?.archive ?? new Archive(db),
      storage,
      spoolDir: recorder?.spoolDir ?? null,
      recorder,
      siteKey: cluster.siteKey,
      exportDir: join(dataDir, 'exports'),
      thumbnailDir: join(dataDir, 'thumbnails'),
    };

    const changes = new ChangeQueue(join(dataDir, 'queued-changes.json'), store, auth.audit);
    closers.push(async () => changes.close());
    const graphql = new GraphqlApi({ auth, sources: { statuses: cluster.runtime, motion: cluster.registry }, apiLimit: config.security.limits.apiPerPrincipal });
    const app = buildApp({ config, db, store, runtime: cluster.runtime, whep: cluster.runtime, whip: cluster.runtime, auth, cluster, changes, archive: archiveAccess, events, alerts, graphql, webDir: opts.webDir === undefined ? WEB_DIR : opts.webDir, version: VERSION });
    const tls = await loadTls(config.http.tls, dataDir);
    const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, app) : createServer(app);
    server.keepAliveTimeout = 5000;
    // Slow-loris bounds: a client gets this long to send its headers and its request.
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    const hub = new EventHub(store, cluster.runtime, auth);
    cluster.registry.on('motion', (n) => hub.motion(n));
    // WebSockets: the dashboard's events at /api/ws, GraphQL (subscriptions) at /api/graphql.
    const stopUpgrades = routeUpgrades(server, { '/api/ws': hub, '/api/graphql': graphql });
    await new Promise<void>((res, rej) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        rej(err.code === 'EADDRINUSE' ? new Error(`port ${config.http.port} on ${config.http.host} is in use; set CCTV_PORT to another port`, { cause: err }) : err),
      );
      server.listen(config.http.port, config.http.host, () => res());
    });
    closers.push(async () => {
      stopUpgrades();
      await hub.close();
      await graphql.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as AddressInfo).port;
    const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? 'localhost' : config.http.host;
    const url = `${tls ? 'https' : 'http'}://${host}:${port}/`;
    agent.contribute(() => ({ api: url }));
    alerts.setPublicUrl(url.replace(/\/$/, ''));
    // Heartbeating first, so that followers can see this instance alive before it may lead.
    await agent.start();
    cluster.startLeadership();
    let closed = false;
    return {
      url, port, db, bus, auth, store, cluster, runtime: cluster.runtime, agent, sfu, cameraNode, recorder, detector, server, tls, generatedAdminPassword: admin.generatedPassword,
      async settled() {
        await cluster.master.idle();
        for (const s of settles) await s();
      },
      async close() {
        if (closed) return;
        closed = true;
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** URLs the dashboard can be reached at from other machines on the LAN. */
export function lanUrls(port: number, scheme: 'http' | 'https'): string[] {
  return Object.values(networkInterfaces())
    .flatMap((l) => l ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal)
    .map((a) => `${scheme}://${a.address}:${port}/`);
}
