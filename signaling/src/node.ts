import { createServer, type Server } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import { ValidationError, createLogger, joinCluster, metricsText, openDatabase, type Bus, type Config, type NodeAgent } from '@cctv/core';
import { startCameraNodeRole, type CameraNode } from '@cctv/camera-node';
import { AlertService, siteIdOf, startDetectorRole, startRecorderRole, type Detector, type Recorder } from '@cctv/recorder';
import { startSfuRole, type Sfu } from '@cctv/sfu';
import { VERSION } from './system.js';

const log = createLogger('node');

/** A node process without signaling: an SFU, a camera-node, a recorder, a detector, or several of them. */
export interface RunningNode {
  id: string;
  bus: Bus;
  agent: NodeAgent;
  sfu: Sfu | null;
  cameraNode: CameraNode | null;
  recorder: Recorder | null;
  detector: Detector | null;
  close(): Promise<void>;
}

/**
 * Starts the roles of `node.roles` (sfu, camera-node, recorder, detector) as a node of a cluster: enrols with the master on
 * the first start, then heartbeats over Redis and does what the master assigns. It keeps running on its
 * last assignment while Redis or the master is away.
 */
export async function startNode(config: Readonly<Config>): Promise<RunningNode> {
  const roles = config.node.roles;
  if (roles.includes('recorder') && !config.database.url) {
    throw new ValidationError('database.url', 'a recorder keeps its segments in the database: set DATABASE_URL (the cluster\'s Postgres)');
  }
  if (roles.includes('detector') && !config.database.url) {
    throw new ValidationError('database.url', 'a detector keeps its events in the database: set DATABASE_URL (the cluster\'s Postgres)');
  }
  const m = await joinCluster(config, roles, VERSION);
  const closers: Array<() => Promise<void>> = [() => m.bus.close(), () => m.agent.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch((error: unknown) => log.warn({ err: error }, 'error while stopping'));
    closers.length = 0;
  };
  try {
    let sfu: Sfu | null = null;
    let cameraNode: CameraNode | null = null;
    if (roles.includes('sfu')) {
      const role = await startSfuRole({ config, dataDir: m.dataDir, agent: m.agent });
      closers.push(() => role.close());
      sfu = role.sfu;
    }
    if (roles.includes('camera-node')) {
      const role = await startCameraNodeRole({ config, dataDir: m.dataDir, agent: m.agent });
      closers.push(() => role.close());
      cameraNode = role.node;
    }
    let recorder: Recorder | null = null;
    let detector: Detector | null = null;
    const db = roles.includes('recorder') || roles.includes('detector') ? await openDatabase({ url: config.database.url, maxConnections: 4 }) : null;
    if (db) closers.push(() => db.close());
    if (db && roles.includes('recorder')) {
      const role = await startRecorderRole({
        config, db, bus: m.bus, agent: m.agent, site: siteIdOf(m.identity.sitePublicKey),
        onDeleted: (r) => log.info({ segments: r.deleted, bytes: r.bytes, byReason: r.byReason, cameras: r.cameras }, 'retention removed recordings'),
      });
      closers.push(() => role.close());
      recorder = role.recorder;
    }
    if (db && roles.includes('detector')) {
      // Alerts of this detector's events are sent from here; pending ones of a dead node are taken over.
      const alerts = new AlertService({ db, node: m.identity.id, config: config.alerts, publicUrl: config.alerts.publicUrl ?? config.cluster.masterUrl });
      await alerts.start();
      closers.push(() => alerts.close());
      const role = await startDetectorRole({ config, db, bus: m.bus, agent: m.agent, alerts });
      closers.push(() => role.close());
      detector = role.detector;
    }
    if (config.metrics.port > 0) {
      const server = await serveNodeMetrics(config.metrics);
      closers.push(() => new Promise<void>((r) => server.close(() => r())));
    }
    await m.agent.start();
    log.info({ node: m.identity.id, roles, bus: m.bus.location }, 'node running');
    let closed = false;
    return {
      id: m.identity.id, bus: m.bus, agent: m.agent, sfu, cameraNode, recorder, detector,
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

/**
 * A node's `/metrics` for Prometheus (plain HTTP: a node has no certificate of its own), asked for a
 * Bearer token when `metrics.token` is set. Nothing else is served.
 */
async function serveNodeMetrics(o: Config['metrics']): Promise<Server> {
  const expected = o.token ? Buffer.from(`Bearer ${o.token}`) : null;
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    const got = Buffer.from(req.headers.authorization ?? '');
    if (expected && (got.length !== expected.length || !timingSafeEqual(got, expected))) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('a Bearer token (metrics.token) is needed\n');
      return;
    }
    void metricsText().then((m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.body), (error: unknown) => {
      log.warn({ err: error }, 'cannot make the metrics');
      res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new ValidationError('metrics.port', `port ${o.port} on ${o.host} is in use`) : err));
    server.listen(o.port, o.host, () => resolve());
  });
  log.info({ host: o.host, port: o.port, token: Boolean(o.token) }, 'serving /metrics');
  return server;
}
