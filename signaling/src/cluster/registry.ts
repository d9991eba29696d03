import { Channel, Key, TypedEmitter, createLogger, gauge, open, type Bus, type CameraEvent, type MotionNotice, type Heartbeat, type Role } from '@cctv/core';
import type { NodeStore } from './nodes.js';

const log = createLogger('signaling:registry');

/** How a node stands, as this instance sees it. */
export type NodeState = 'alive' | 'dead';

/** Why a node was declared dead. */
export type DeathReason = 'connection' | 'lease';

export interface LoadSample {
  at: number;
  cpu: number;
  ingressBps: number;
  viewers: number;
  cameras: number;
}

/** A node of the registry. */
export interface NodeEntry {
  id: string;
  state: NodeState;
  /** When it entered that state, ms. */
  since: number;
  deathReason: DeathReason | null;
  /** The last heartbeat it sent. */
  heartbeat: Heartbeat;
  /** When this instance received it, ms (this instance's clock). */
  receivedAt: number;
  /** The node's clock minus this instance's, ms (best of the recent heartbeats), or null before one. */
  clockOffsetMs: number | null;
  /** Load every 10 s over the last hour, for the dashboard's charts. */
  history: LoadSample[];
}

export interface RegistryEvents extends Record<string, unknown[]> {
  /** A node registered (first heartbeat, or again after it was dead). */
  alive: [NodeEntry];
  /** A node missed its lease, or its connection to the bus closed. */
  dead: [NodeEntry];
  /** Every accepted heartbeat. */
  heartbeat: [NodeEntry];
  /** A signed camera event from a node. */
  camera: [CameraEvent];
  /** A motion event started, grew or ended (signed by the detector that saw it). */
  motion: [MotionNotice];
}

export interface RegistryOptions {
  bus: Bus;
  nodes: NodeStore;
  leaseMs: number;
  clockWarningMs: number;
  /** How often leases and connections are checked, ms; default 250. */
  checkMs?: number;
}

const OFFSET_SAMPLES = 10;
const HISTORY_EVERY_MS = 10_000;
const HISTORY_LENGTH = 360;

const registries = new Set<Registry>();
gauge('cctv_nodes', 'Nodes of the cluster by role and state, as this instance sees them', ['role', 'state'], function collect() {
  this.reset();
  for (const r of registries) {
    for (const n of r.list()) for (const role of n.heartbeat.roles) this.inc({ role, state: n.state });
  }
});
gauge('cctv_node_clock_offset_ms', "A node's clock minus this instance's, ms", ['node'], function collect() {
  this.reset();
  for (const r of registries) for (const n of r.list()) if (n.state === 'alive' && n.clockOffsetMs !== null) this.set({ node: n.id }, Math.round(n.clockOffsetMs * 10) / 10);
});
gauge('cctv_node_up', 'Whether a node is alive (1) or dead (0)', ['node'], function collect() {
  this.reset();
  for (const r of registries) for (const n of r.list()) this.set({ node: n.id }, n.state === 'alive' ? 1 : 0);
});

/**
 * The registry, kept by every signaling instance: heartbeats (signed by enrolled nodes, checked here),
 * and death detection two ways — at once when a node's `alive:` subscription disappears (its process died
 * and the kernel closed its Redis connection), and by the lease when a node goes silent (a frozen
 * process, a cut network). While this instance cannot reach the bus it knows nothing new and declares
 * nobody dead; after the bus returns, nodes get a lease's grace to re-register.
 */
export class Registry extends TypedEmitter<RegistryEvents> {
  readonly #o: RegistryOptions;
  readonly #nodes = new Map<string, NodeEntry>();
  readonly #offsets = new Map<string, number[]>();
  #unsubs: Array<() => Promise<void>> = [];
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #busDown = false;
  #connections = 0;
  /** Until when connection-based death is not trusted (after start or a bus outage), ms. */
  #graceUntil = 0;
  #lastReload = 0;
  #closed = false;

  constructor(o: RegistryOptions) {
    super();
    this.#o = o;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'registry listener failed');
  }

  /** Loads the enrolled nodes' keys, reads their last heartbeats, subscribes and starts checking. */
  async start(): Promise<void> {
    const { bus } = this.#o;
    await this.#o.nodes.load().catch((error: unknown) => log.warn({ err: error }, 'cannot load the enrolled nodes; using what is cached'));
    this.#graceUntil = Date.now() + this.#o.leaseMs;
    this.#connections = bus.connections;
    for (const n of this.#o.nodes.all()) {
      const raw = await bus.get(Key.node(n.id)).catch(() => null);
      if (!raw) continue;
      const ttl = await bus.ttl(Key.node(n.id)).catch(() => this.#o.leaseMs);
      this.#accept(JSON.parse(raw), Date.now() - Math.max(0, this.#o.leaseMs - ttl), false);
    }
    this.#unsubs.push(await bus.subscribe(Channel.heartbeats, (m) => this.#accept(m, Date.now(), true)));
    this.#unsubs.push(await bus.subscribe(Channel.events, (m) => this.#onEvent(m)));
    this.#timer = setInterval(() => void this.#check(), this.#o.checkMs ?? 250);
    registries.add(this);
  }

  get(id: string): NodeEntry | undefined {
    return this.#nodes.get(id);
  }

  list(): NodeEntry[] {
    return [...this.#nodes.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Live nodes with a role. */
  alive(role?: Role): NodeEntry[] {
    return this.list().filter((n) => n.state === 'alive' && (!role || n.heartbeat.roles.includes(role)));
  }

  /** Whether a node's clock is further from this instance's than the warning allows. */
  clockWarning(n: NodeEntry): boolean {
    return n.clockOffsetMs !== null && Math.abs(n.clockOffsetMs) > this.#o.clockWarningMs;
  }

  /** The highest master epoch any node has obeyed (a new master starts above it). */
  maxEpoch(): number {
    let e = 0;
    for (const n of this.#nodes.values()) e = Math.max(e, n.heartbeat.epoch ?? 0);
    return e;
  }

  #verify(m: unknown): Heartbeat | null {
    const from = (m as { from?: unknown })?.from;
    if (typeof from !== 'string') return null;
    let key = this.#o.nodes.publicKey(from);
    if (!key) {
      // Enrolled by another instance since we loaded: look again, but not more than every 2 s.
      if (Date.now() - this.#lastReload > 2000) {
        this.#lastReload = Date.now();
        void this.#o.nodes.load().then(() => this.#o.nodes.publicKey(from) && this.#accept(m, Date.now(), true)).catch(() => {});
      }
      return null;
    }
    const hb = open<Heartbeat>(m, key);
    if (!hb || hb.id !== from) {
      log.warn({ from }, 'dropped a heartbeat that is not signed by its node');
      return null;
    }
    return hb;
  }

  #accept(m: unknown, receivedAt: number, live: boolean): void {
    if (this.#closed) return;
    const hb = this.#verify(m);
    if (!hb) return;
    const prev = this.#nodes.get(hb.id);
    if (prev && hb.clock < prev.heartbeat.clock && hb.startedAt === prev.heartbeat.startedAt) return; // out of order
    if (live) {
      // The heartbeat left the node at hb.clock (its clock) and arrived now (ours), after some delay ≥ 0:
      // hb.clock − receivedAt = offset − delay, so the largest recent sample is the best estimate.
      const samples = this.#offsets.get(hb.id) ?? [];
      samples.push(hb.clock - receivedAt);
      if (samples.length > OFFSET_SAMPLES) samples.shift();
      this.#offsets.set(hb.id, samples);
    }
    const samples = this.#offsets.get(hb.id);
    const offset = samples?.length ? Math.max(...samples) : null;
    const history = prev?.history ?? [];
    const last = history[history.length - 1];
    if (!last || receivedAt - last.at >= HISTORY_EVERY_MS) {
      history.push({ at: receivedAt, cpu: hb.load.cpu, ingressBps: hb.load.ingressBps, viewers: hb.load.viewers, cameras: hb.load.cameras });
      if (history.length > HISTORY_LENGTH) history.shift();
    }
    const wasDead = !prev || prev.state === 'dead';
    const entry: NodeEntry = {
      id: hb.id,
      state: 'alive',
      since: wasDead ? receivedAt : prev.since,
      deathReason: null,
      heartbeat: hb,
      receivedAt,
      clockOffsetMs: offset,
      history,
    };
    this.#nodes.set(hb.id, entry);
    if (wasDead) {
      log.info({ node: hb.id, roles: hb.roles, again: !!prev }, prev ? 'node is back' : 'node registered');
      this.safeEmit('alive', entry);
    }
    this.safeEmit('heartbeat', entry);
  }

  #onEvent(m: unknown): void {
    const from = (m as { from?: unknown })?.from;
    const key = typeof from === 'string' ? this.#o.nodes.publicKey(from) : undefined;
    const e = key ? open<CameraEvent | MotionNotice>(m, key) : null;
    if (!e || e.node !== from) return;
    if (e.type === 'camera.status') this.safeEmit('camera', e);
    else if (e.type === 'motion.event' && e.event && typeof e.event.camera === 'string') this.safeEmit('motion', e);
  }

  #declareDead(n: NodeEntry, reason: DeathReason): void {
    const dead: NodeEntry = { ...n, state: 'dead', since: Date.now(), deathReason: reason };
    this.#nodes.set(n.id, dead);
    this.#offsets.delete(n.id);
    log.warn({ node: n.id, roles: n.heartbeat.roles, reason, silentMs: Date.now() - n.receivedAt }, reason === 'lease' ? 'node missed its lease' : 'node lost its connection');
    this.safeEmit('dead', dead);
  }

  async #check(): Promise<void> {
    if (this.#checking || this.#closed) return;
    this.#checking = true;
    try {
      const now = Date.now();
      const { bus, leaseMs } = this.#o;
      if (!bus.healthy) {
        if (!this.#busDown) log.warn('the bus is unreachable: no node is declared dead until it returns');
        this.#busDown = true;
        return;
      }
      if (this.#busDown || bus.connections !== this.#connections) {
        this.#connections = bus.connections;
        // We heard nothing while we were cut off; that says nothing of the nodes. Give them a lease.
        this.#busDown = false;
        this.#graceUntil = now + leaseMs;
        for (const n of this.#nodes.values()) if (n.state === 'alive') n.receivedAt = Math.max(n.receivedAt, now);
        log.info('the bus is back');
      }
      const alive = [...this.#nodes.values()].filter((n) => n.state === 'alive');
      for (const n of alive) if (now - n.receivedAt > leaseMs) this.#declareDead(n, 'lease');
      if (now < this.#graceUntil) return;
      const still = alive.filter((n) => this.#nodes.get(n.id)?.state === 'alive');
      if (still.length === 0) return;
      const counts = await bus.subscriberCounts(still.map((n) => Channel.alive(n.id)));
      if (!bus.healthy || Date.now() < this.#graceUntil) return;
      still.forEach((n, i) => {
        const cur = this.#nodes.get(n.id);
        // A heartbeat newer than the count means the node is there after all (it re-subscribed).
        if (counts[i] === 0 && cur?.state === 'alive' && cur.receivedAt <= now) this.#declareDead(cur, 'connection');
      });
    } catch (error) {
      log.debug({ err: error }, 'registry check failed');
    } finally {
      this.#checking = false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    registries.delete(this);
    clearInterval(this.#timer);
    await Promise.allSettled(this.#unsubs.map((u) => u()));
    this.removeAllListeners();
  }
}
