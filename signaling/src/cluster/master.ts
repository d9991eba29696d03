import {
  Channel, Key, TypedEmitter, canonicalJson, counter, createLogger, histogram, seal, sealBox,
  type Bus, type CameraAssignment, type CameraConfig, type Database, type KeyPair, type RpcClient, type WireCommand,
} from '@cctv/core';
import type { CameraStore } from '../cameras.js';
import type { GapStore, GapTracker } from './gaps.js';
import type { Leadership } from './leader.js';
import type { NodeStore } from './nodes.js';
import { place, smooth, type Candidate, type Move, type Placement } from './placement.js';
import type { NodeEntry, Registry } from './registry.js';

const log = createLogger('signaling:master');

const moves = counter('cctv_placement_moves_total', 'Cameras moved by the master, by role and cause', ['role', 'cause']);
const reconcileSeconds = histogram('cctv_placement_round_seconds', 'Time of one placement round (decide, open rooms, send assignments)', [], [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2]);

/** Where a camera runs, as the master published it. */
export interface PlacementRecord extends Placement {
  camera: string;
  /** When it last changed, ms. */
  since: number;
}

/** The master's placements as published on the bus. */
export interface PublishedPlacements {
  epoch: number;
  at: number;
  placements: PlacementRecord[];
}

export interface MoveRecord extends Move {
  at: number;
  epoch: number;
}

export interface MasterEvents extends Record<string, unknown[]> {
  moved: [MoveRecord];
  /** A round finished (placements may be unchanged). */
  round: [];
}

export interface MasterOptions {
  bus: Bus;
  db: Database;
  store: CameraStore;
  nodes: NodeStore;
  registry: Registry;
  leadership: Leadership;
  rpc: RpcClient;
  siteKey: KeyPair;
  gaps: { tracker: GapTracker; store: GapStore };
  /** A round runs at least this often, ms; default 1000. */
  roundMs?: number;
}

class FencedError extends Error {
  override name = 'FencedError';
}

/** Smoothed CPU above which a node sheds cameras (when it stays there a minute). */
const OVERLOAD_CPU = 0.9;

/** Resend an assignment a node does not report running after this, ms. */
const RESEND_MS = 3000;

/**
 * The master: runs in every signaling instance, acts only in the one that leads. Each round it places
 * the cameras (placement.ts), opens and closes rooms on the SFUs (a request that answers with each
 * room's port), sends each camera-node its cameras and where their RTP goes (signed, sealed to the
 * node, fenced by the epoch), publishes the placements for the other instances' WHEP routing, and
 * writes them to Postgres fenced by the epoch. Rounds run on every change (a node dead or back, a
 * camera changed, a drain) and every second; Postgres being down delays only the write.
 */
export class Master extends TypedEmitter<MasterEvents> {
  readonly #o: MasterOptions;
  #cameras: CameraConfig[] = [];
  #version = 0;
  #placements = new Map<string, PlacementRecord>();
  readonly #sentCameraNode = new Map<string, { hash: string; at: number; startedAt: number }>();
  readonly #sfuRooms = new Map<string, { key: string; startedAt: number; ports: Record<string, number> }>();
  readonly #cpu = new Map<string, { v: number; at: number; overSince: number | null }>();
  readonly #recent: MoveRecord[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #imported = false;
  #dbDirty = false;
  #unsubs: Array<() => Promise<void>> = [];
  #closed = false;
  #ticks = 0;
  #dbEpoch = 0;
  /** Placements as last published by whoever leads (every instance keeps them for routing). */
  published: PublishedPlacements = { epoch: 0, at: 0, placements: [] };

  constructor(o: MasterOptions) {
    super();
    this.#o = o;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'master listener failed');
  }

  async start(): Promise<void> {
    const { bus, registry, leadership, store } = this.#o;
    await this.#loadCameras();
    const raw = await bus.get(Key.placements).catch(() => null);
    if (raw) this.#takePublished(JSON.parse(raw));
    this.#unsubs.push(await bus.subscribe(Channel.placements, (m) => this.#takePublished(m)));
    this.#unsubs.push(await bus.subscribe(Channel.config, () => void this.#loadCameras().then(() => this.kick())));
    registry.on('alive', () => this.kick());
    registry.on('dead', (n) => {
      for (const p of this.placements()) {
        if (p.cameraNode === n.id) this.#o.gaps.tracker.cause(p.camera, `camera-node ${n.id} went down`);
        if (p.sfu === n.id) this.#o.gaps.tracker.cause(p.camera, `sfu ${n.id} went down`);
      }
      this.kick();
    });
    registry.on('heartbeat', (n) => {
      this.#sampleCpu(n);
      if (n.heartbeat.roles.includes('sfu')) this.#o.gaps.tracker.observe(n);
    });
    this.#o.gaps.tracker.on('gap', (g) => {
      if (leadership.isLeader) this.#o.gaps.store.add(g);
    });
    store.on('changed', () => this.#configChanged());
    store.on('removed', (id) => {
      this.#o.gaps.tracker.forget(id);
      this.#configChanged();
    });
    leadership.on('elected', () => {
      this.#imported = false;
      this.#sentCameraNode.clear();
      this.#sfuRooms.clear();
      this.kick();
    });
    this.#timer = setInterval(() => {
      if (leadership.isLeader) {
        if (this.#dbDirty) void this.#writeDb();
        void this.#o.gaps.store.flush();
        this.kick();
      } else if (++this.#ticks % 5 === 0) {
        // Followers refresh their camera list now and then (changes also arrive on the bus).
        void this.#loadCameras();
      }
    }, this.#o.roundMs ?? 1000);
  }

  /** The current placements (the leader's own, or the last published by the leader). */
  placements(): PlacementRecord[] {
    return this.#o.leadership.isLeader ? [...this.#placements.values()] : this.published.placements;
  }

  placement(camera: string): PlacementRecord | undefined {
    return this.#o.leadership.isLeader ? this.#placements.get(camera) : this.published.placements.find((p) => p.camera === camera);
  }

  /** The last moves (newest last), for the API. */
  recentMoves(): MoveRecord[] {
    return [...this.#recent];
  }

  get configVersion(): number {
    return this.#version;
  }

  /** The epoch in the database, as last read (a new leader starts above it). */
  get dbEpoch(): number {
    return this.#dbEpoch;
  }

  /** Asks for a round soon (coalesced). */
  kick(): void {
    if (this.#closed || !this.#o.leadership.isLeader) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#round()
      .catch((error: unknown) => log.error({ err: error }, 'placement round failed'))
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.kick();
        }
      });
  }

  /** Resolves when no round is running or due (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  #configChanged(): void {
    // Other instances reload from the database on this; the leader does it now.
    void this.#o.bus.publish(Channel.config, { at: Date.now() }).catch(() => {});
    void this.#loadCameras().then(() => this.kick());
  }

  async #loadCameras(): Promise<void> {
    try {
      const list = await this.#o.store.list();
      this.#cameras = list.map((c) => c.config);
      const s = await this.#o.store.clusterState();
      this.#version = s.configVersion;
      this.#dbEpoch = s.epoch;
    } catch (error) {
      log.debug({ err: error }, 'cannot read the cameras now; placing the last known ones');
    }
  }

  #takePublished(m: unknown): void {
    const p = m as PublishedPlacements;
    if (!p || !Array.isArray(p.placements) || typeof p.epoch !== 'number') return;
    if (p.epoch < this.published.epoch) return;
    this.published = p;
  }

  #sampleCpu(n: NodeEntry): void {
    // A process starting up (loading, compiling) says nothing of the machine's load.
    if (n.receivedAt - n.heartbeat.startedAt < 15_000) return;
    const prev = this.#cpu.get(n.id);
    const v = smooth(prev?.v, n.heartbeat.load.cpu, prev ? n.receivedAt - prev.at : 0);
    const over = v > OVERLOAD_CPU;
    this.#cpu.set(n.id, { v, at: n.receivedAt, overSince: over ? (prev?.overSince ?? n.receivedAt) : null });
  }

  #candidates(): Candidate[] {
    return this.#o.registry.list().map((n) => ({
      id: n.id,
      roles: n.heartbeat.roles,
      labels: n.heartbeat.labels,
      alive: n.state === 'alive',
      drained: this.#o.nodes.get(n.id)?.drained ?? false,
      cpu: this.#cpu.get(n.id)?.v ?? 0,
      overloadedMs: this.#cpu.get(n.id)?.overSince ? Date.now() - this.#cpu.get(n.id)!.overSince! : 0,
      cpus: n.heartbeat.load.cpus,
      ingressBps: n.heartbeat.load.ingressBps,
      viewers: n.heartbeat.load.viewers,
    }));
  }

  /** At election: where cameras really run (heartbeats) wins over what the database last said. */
  async #importCurrent(): Promise<void> {
    const fromDb = new Map<string, { cameraNode: string | null; sfu: string | null; recorder?: string | null; detector?: string | null }>();
    try {
      const rows = await this.#o.db.query<{ camera_id: string; camera_node: string | null; sfu_node: string | null; recorder_node: string | null; detector_node: string | null }>(
        'SELECT camera_id, camera_node, sfu_node, recorder_node, detector_node FROM placements',
      );
      for (const r of rows) fromDb.set(r.camera_id, { cameraNode: r.camera_node, sfu: r.sfu_node, recorder: r.recorder_node, detector: r.detector_node });
    } catch (error) {
      log.warn({ err: error }, 'cannot read the placements from the database; taking them from the nodes');
    }
    for (const p of this.published.placements) if (!fromDb.has(p.camera)) fromDb.set(p.camera, { cameraNode: p.cameraNode, sfu: p.sfu, recorder: p.recorder ?? null, detector: p.detector ?? null });
    const alive = this.#o.registry.alive();
    const runs = (role: 'camera-node' | 'sfu' | 'recorder' | 'detector', cam: string) =>
      alive
        .filter((n) => n.heartbeat.roles.includes(role) && (
          role === 'sfu' ? n.heartbeat.rooms.some((r) => r.camera === cam)
            : role === 'recorder' ? (n.heartbeat.recorder?.ports[cam] ?? 0) > 0
              : role === 'detector' ? (n.heartbeat.detector?.ports[cam] ?? 0) > 0
                : n.heartbeat.cameras.some((c) => c.id === cam)))
        .map((n) => n.id);
    const now = Date.now();
    this.#placements = new Map();
    for (const cam of this.#cameras) {
      const db = fromDb.get(cam.id);
      const cns = runs('camera-node', cam.id);
      const sfus = runs('sfu', cam.id);
      const cameraNode = db?.cameraNode && cns.includes(db.cameraNode) ? db.cameraNode : (cns[0] ?? db?.cameraNode ?? null);
      const sfu = db?.sfu && sfus.includes(db.sfu) ? db.sfu : (sfus[0] ?? db?.sfu ?? null);
      const recs = runs('recorder', cam.id);
      const recorder = db?.recorder && recs.includes(db.recorder) ? db.recorder : (recs[0] ?? db?.recorder ?? null);
      const dets = runs('detector', cam.id);
      const detector = db?.detector && dets.includes(db.detector) ? db.detector : (dets[0] ?? db?.detector ?? null);
      const was = this.published.placements.find((p) => p.camera === cam.id);
      const since = was && was.cameraNode === cameraNode && was.sfu === sfu ? was.since : now;
      this.#placements.set(cam.id, { camera: cam.id, cameraNode, sfu, recorder, detector, problem: null, since });
    }
    this.#imported = true;
  }

  async #round(): Promise<void> {
    const { leadership } = this.#o;
    if (!leadership.isLeader) return;
    const t0 = process.hrtime.bigint();
    const epoch = leadership.epoch;
    if (!this.#imported) await this.#importCurrent();
    const now = Date.now();
    const { placements, moves: moved } = place(this.#cameras, this.#candidates(), this.#placements, { now, overloadCpu: OVERLOAD_CPU });
    if (!leadership.isLeader || leadership.epoch !== epoch) return;

    const next = new Map<string, PlacementRecord>();
    let changed = placements.size !== this.#placements.size;
    for (const [camera, p] of placements) {
      const prev = this.#placements.get(camera);
      const same = prev && prev.cameraNode === p.cameraNode && prev.sfu === p.sfu && (prev.recorder ?? null) === (p.recorder ?? null) && (prev.detector ?? null) === (p.detector ?? null) && prev.problem === p.problem && (prev.publisher ?? null) === (p.publisher ?? null);
      if (!same) changed = true;
      next.set(camera, { ...p, camera, since: same ? prev.since : now });
    }
    for (const m of moved) {
      const rec: MoveRecord = { ...m, at: now, epoch };
      this.#recent.push(rec);
      if (this.#recent.length > 200) this.#recent.shift();
      moves.inc({ role: m.role, cause: m.reason === 'new' ? 'new' : m.reason.endsWith('overloaded') ? 'load' : m.reason.endsWith('drained') ? 'drain' : m.reason.startsWith('pinned') ? 'pin' : 'failure' });
      if (m.reason !== 'new') {
        log.info({ camera: m.camera, role: m.role, from: m.from, to: m.to, reason: m.reason }, 'camera moved');
        // An event the old detector had open ends now: it cannot end it itself (it is down or gone).
        if (m.role === 'detector' && m.from) {
          void this.#o.db.query('UPDATE events SET end_ms = GREATEST(start_ms, $3::int8), updated_at = now() WHERE node = $1 AND camera_id = $2 AND end_ms IS NULL', [m.from, m.camera, now])
            .catch((error: unknown) => log.warn({ camera: m.camera, err: error }, 'cannot end the events of a moved detector'));
        }
        // Live video is not interrupted by a recorder or detector moving; the new recorder records its gap itself.
        if (m.role !== 'recorder' && m.role !== 'detector') this.#o.gaps.tracker.cause(m.camera, `${m.role} ${m.from ?? 'none'} → ${m.to ?? 'none'}: ${m.reason}`, now);
      }
      this.safeEmit('moved', rec);
    }
    this.#placements = next;

    await this.#openRooms(epoch);
    this.#sendAssignments(epoch);
    if (!this.#subscribing) {
      this.#subscribing = true;
      void this.#subscribeTaps().finally(() => (this.#subscribing = false));
    }
    if (changed) {
      const pub: PublishedPlacements = { epoch, at: now, placements: [...next.values()] };
      this.published = pub;
      await this.#o.bus.set(Key.placements, JSON.stringify(pub)).catch(() => {});
      await this.#o.bus.publish(Channel.placements, pub).catch(() => {});
      this.#dbDirty = true;
      void this.#writeDb();
    }
    reconcileSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    this.safeEmit('round');
  }

  /** Opens and closes rooms so that each live SFU has exactly the cameras placed on it. */
  async #openRooms(epoch: number): Promise<void> {
    const want = new Map<string, string[]>();
    for (const p of this.#placements.values()) if (p.sfu) want.set(p.sfu, [...(want.get(p.sfu) ?? []), p.camera]);
    const calls: Array<Promise<void>> = [];
    for (const n of this.#o.registry.alive('sfu')) {
      const cams = (want.get(n.id) ?? []).sort();
      // The config version is part of it: every node acknowledges every version.
      const key = `${this.#version}\n${cams.join('\n')}`;
      const had = this.#sfuRooms.get(n.id);
      const reported = n.heartbeat.rooms.map((r) => r.camera).sort().join('\n');
      const stale = had && had.key === key && had.startedAt === n.heartbeat.startedAt && (reported === cams.join('\n') || Date.now() - n.receivedAt > 1500);
      if (stale) continue;
      calls.push(
        this.#o.rpc
          .call(n.id, 'sfu.rooms', { epoch, version: this.#version, cameras: cams }, 2000)
          .then((r) => {
            this.#sfuRooms.set(n.id, { key, startedAt: n.heartbeat.startedAt, ports: r.ports });
          })
          .catch((error: unknown) => log.warn({ node: n.id, err: error }, 'could not set the rooms of an SFU')),
      );
    }
    await Promise.all(calls);
  }

  #target(p: PlacementRecord): CameraAssignment['target'] {
    if (!p.sfu) return null;
    const rooms = this.#sfuRooms.get(p.sfu);
    const port = rooms?.ports[p.camera];
    const host = this.#o.registry.get(p.sfu)?.heartbeat.addresses.ingestHost;
    return port && host ? { host, port } : null;
  }

  /** Sends each live camera-node its cameras, when they changed or it does not run them. */
  #sendAssignments(epoch: number): void {
    const byNode = new Map<string, CameraAssignment[]>();
    const configs = new Map(this.#cameras.map((c) => [c.id, c]));
    for (const p of this.#placements.values()) {
      const config = configs.get(p.camera);
      if (!p.cameraNode || !config) continue;
      byNode.set(p.cameraNode, [...(byNode.get(p.cameraNode) ?? []), { config, target: this.#target(p) }]);
    }
    const now = Date.now();
    for (const n of this.#o.registry.alive('camera-node')) {
      const cams = (byNode.get(n.id) ?? []).sort((a, b) => a.config.id.localeCompare(b.config.id));
      const hash = `${this.#version}:${canonicalJson(cams)}`;
      const sent = this.#sentCameraNode.get(n.id);
      const runs = n.heartbeat.cameras.map((c) => c.id).sort().join('\n');
      const wants = cams.map((c) => c.config.id).join('\n');
      const due = !sent || sent.hash !== hash || sent.startedAt !== n.heartbeat.startedAt || (runs !== wants && now - sent.at > RESEND_MS);
      if (!due) continue;
      const boxKey = this.#o.nodes.get(n.id)?.boxPublicKey;
      if (!boxKey) continue;
      const cmd: WireCommand = { type: 'camera-node.assign', epoch, version: this.#version, cameras: sealBox(cams, boxKey) };
      this.#sentCameraNode.set(n.id, { hash, at: now, startedAt: n.heartbeat.startedAt });
      this.#o.bus.publish(Channel.cmd(n.id), seal('site', cmd, this.#o.siteKey.privateKey)).catch((error: unknown) => {
        this.#sentCameraNode.delete(n.id);
        log.warn({ node: n.id, err: error }, 'could not send an assignment');
      });
    }
  }

  #subscribing = false;
  // Plain-RTP subscriptions made on the SFUs for recorders and detectors: `<role>:<camera>` → where it goes.
  readonly #rtpSubs = new Map<string, { camera: string; sfu: string; host: string; port: number; id: string; renewedAt: number }>();

  /**
   * Subscribes each recorded or watched camera's SFU to its recorder's and its detector's port (as they
   * report them), renews every 3 s (the SFU drops a subscription not renewed for 10 s), and moves the
   * subscription when the camera's SFU, recorder or detector changes.
   */
  async #subscribeTaps(): Promise<void> {
    const { rpc, registry } = this.#o;
    const wanted = new Set<string>();
    const calls: Array<Promise<void>> = [];
    for (const p of this.#placements.values()) {
      for (const role of ['recorder', 'detector'] as const) {
        const nodeId = p[role];
        if (!p.sfu || !nodeId) continue;
        const node = registry.get(nodeId);
        const report = node?.heartbeat[role];
        const host = report?.host;
        const port = report?.ports[p.camera];
        if (!node || node.state !== 'alive' || !host || !port) continue;
        const key = `${role}:${p.camera}`;
        wanted.add(key);
        const cur = this.#rtpSubs.get(key);
        const same = cur !== undefined && cur.sfu === p.sfu && cur.host === host && cur.port === port;
        if (same && Date.now() - cur.renewedAt < 3000) continue;
        const sfu = p.sfu;
        const camera = p.camera;
        calls.push((async () => {
          try {
            if (same) {
              if ((await rpc.call(sfu, 'sfu.renew', { camera, id: cur.id }, 2000)).ok) {
                cur.renewedAt = Date.now();
                return;
              }
            } else if (cur) {
              void rpc.call(cur.sfu, 'sfu.unsubscribe', { camera, id: cur.id }, 2000).catch(() => {});
            }
            const r = await rpc.call(sfu, 'sfu.subscribe', { camera, host, port, leaseMs: 10_000 }, 3000);
            this.#rtpSubs.set(key, { camera, sfu, host, port, id: r.id, renewedAt: Date.now() });
          } catch (error) {
            if (!same) this.#rtpSubs.delete(key);
            log.debug({ camera, sfu, role, err: error }, 'cannot subscribe yet');
          }
        })());
      }
    }
    for (const [key, cur] of this.#rtpSubs) {
      if (wanted.has(key)) continue;
      this.#rtpSubs.delete(key);
      void rpc.call(cur.sfu, 'sfu.unsubscribe', { camera: cur.camera, id: cur.id }, 2000).catch(() => {});
    }
    await Promise.all(calls);
  }

  /** Writes the placements, fenced: a master whose epoch is below the stored one is deposed, not obeyed. */
  async #writeDb(): Promise<void> {
    const { db, leadership } = this.#o;
    if (!leadership.isLeader || !this.#dbDirty) return;
    const epoch = leadership.epoch;
    const rows = [...this.#placements.values()];
    this.#dbDirty = false;
    try {
      await db.transaction(async (tx) => {
        const fence = await tx.query('UPDATE cluster_state SET epoch = $1 WHERE id = 1 AND epoch <= $1 RETURNING epoch', [epoch]);
        if (fence.length === 0) throw new FencedError(`a master with an epoch above ${epoch} has written`);
        await tx.query('DELETE FROM placements WHERE NOT (camera_id = ANY($1::text[]))', [rows.map((r) => r.camera)]);
        for (const r of rows) {
          await tx.query(
            `INSERT INTO placements (camera_id, camera_node, sfu_node, recorder_node, detector_node, epoch, updated_at) VALUES ($1, $2, $3, $5, $6, $4, now())
             ON CONFLICT (camera_id) DO UPDATE SET camera_node = EXCLUDED.camera_node, sfu_node = EXCLUDED.sfu_node, recorder_node = EXCLUDED.recorder_node,
               detector_node = EXCLUDED.detector_node, epoch = EXCLUDED.epoch, updated_at = now()
             WHERE placements.camera_node IS DISTINCT FROM EXCLUDED.camera_node OR placements.sfu_node IS DISTINCT FROM EXCLUDED.sfu_node
               OR placements.recorder_node IS DISTINCT FROM EXCLUDED.recorder_node OR placements.detector_node IS DISTINCT FROM EXCLUDED.detector_node`,
            [r.camera, r.cameraNode, r.sfu, epoch, r.recorder ?? null, r.detector ?? null],
          );
        }
      });
    } catch (error) {
      if (error instanceof FencedError) {
        log.error({ epoch }, error.message + '; stepping down');
        await leadership.resign();
        return;
      }
      // A camera deleted meanwhile (foreign key) or Postgres away: tried again next round.
      this.#dbDirty = true;
      log.warn({ err: error }, 'cannot write the placements now; will retry');
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.idle().catch(() => {});
    await Promise.allSettled(this.#unsubs.map((u) => u()));
    this.removeAllListeners();
  }
}
