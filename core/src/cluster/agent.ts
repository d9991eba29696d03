import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Bus } from '../bus/bus.js';
import { InvalidStateError } from '../errors.js';
import { TypedEmitter } from '../events.js';
import { createLogger } from '../log.js';
import { open, seal } from './keys.js';
import { serveRpc } from './rpc.js';
import { openBox } from './box.js';
import { Channel, Key, type CameraAssignment, type Command, type Heartbeat, type Role, type WireCommand } from './messages.js';

const log = createLogger('core:agent');

export interface AgentOptions {
  bus: Bus;
  id: string;
  roles: Role[];
  labels: Record<string, string>;
  version: string;
  /** This node's signing key, its box key (commands sealed to it) and the site's public key (from enrolment). */
  keys: { privateKey: string; boxPrivateKey: string; sitePublicKey: string };
  /** Where the last commands are kept, so the node resumes them without the master. */
  stateFile: string;
  /** Heartbeat period, ms; default 1000. */
  heartbeatMs?: number;
  /** Lease of the registry key, ms; default 3000. */
  leaseMs?: number;
  /** With a master present, how long to wait for its assignment before running the saved one, ms; default 3000. */
  replayWaitMs?: number;
}

/** What a role adds to each heartbeat. */
export interface ReportPart {
  cameras?: Heartbeat['cameras'];
  rooms?: Heartbeat['rooms'];
  ingestHost?: string | null;
  api?: string | null;
  ingressBps?: number;
  viewers?: number;
  recorder?: Heartbeat['recorder'];
  detector?: Heartbeat['detector'];
}

export interface AgentEvents extends Record<string, unknown[]> {
  /** A command from the master (also the saved ones, at start). */
  command: [Command];
}

interface SavedState {
  /** The last command of each type, as received (assignments stay sealed on disk). */
  commands: Record<string, WireCommand>;
  /** The newest master epoch obeyed. */
  epoch?: number;
}

/**
 * A node's side of the cluster: it registers and heartbeats (signed), keeps its `alive:` subscription,
 * takes commands signed by the site (dropping those of an older master epoch) and keeps the last of
 * each on disk, and serves requests. The bus may be down: heartbeats fail quietly and the node goes on
 * with what it was last told.
 */
export class NodeAgent extends TypedEmitter<AgentEvents> {
  readonly #o: AgentOptions;
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #unsubs: Array<() => Promise<void>> = [];
  #rpc = new Map<string, (params: unknown) => Promise<unknown>>();
  #state: SavedState = { commands: {} };
  #epoch = 0;
  #appliedVersion = 0;
  #cpu = { idle: 0, total: 0, share: 0 };
  #ntp: Heartbeat['ntp'] = { source: 'none', synchronized: null, offsetMs: null };
  #ntpTimer: NodeJS.Timeout | undefined;
  #busDown = false;
  #closed = false;
  #fresh = false;
  #replayTimer: NodeJS.Timeout | undefined;
  #parts: Array<() => ReportPart> = [];
  /** Heartbeats that could not be sent (bus down). */
  missedHeartbeats = 0;

  constructor(o: AgentOptions) {
    super();
    this.#o = o;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'agent listener failed');
  }

  get id(): string {
    return this.#o.id;
  }

  /** Marks the config version the node now runs (reported in heartbeats). */
  set appliedVersion(v: number) {
    this.#appliedVersion = Math.max(this.#appliedVersion, v);
  }

  /** Registers a request handler. */
  handle(method: string, fn: (params: unknown) => Promise<unknown>): void {
    this.#rpc.set(method, fn);
  }

  /** Adds a role's part to every heartbeat (a process may run several roles under one node). */
  contribute(part: () => ReportPart): void {
    this.#parts.push(part);
  }

  /** Replays the saved commands, subscribes and starts heartbeating. The bus being down is not an error. */
  async start(): Promise<void> {
    if (this.#closed) throw new InvalidStateError('agent is closed');
    this.#load();
    this.#epoch = Math.max(this.#epoch, this.#state.epoch ?? 0);
    for (const w of Object.values(this.#state.commands)) this.#epoch = Math.max(this.#epoch, w.epoch);
    this.#sampleCpu();
    this.#readNtp();
    this.#ntpTimer = setInterval(() => this.#readNtp(), 60_000);
    this.#ntpTimer.unref();
    await this.#subscribe().catch((error: unknown) => log.warn({ err: error }, 'bus unavailable at start'));
    await this.#beat();
    this.#timer = setInterval(() => void this.#beat(), this.#o.heartbeatMs ?? 1000);
    // The saved assignment is what the node runs when nobody tells it otherwise. With a master there,
    // its answer to our first heartbeat comes first (the cameras may have moved while we were away);
    // without one (the bus or the master is down), the saved assignment runs at once.
    const leader = this.#o.bus.healthy ? await this.#o.bus.get(Key.leader).catch(() => null) : null;
    const replay = () => {
      this.#replayTimer = undefined;
      if (this.#closed || this.#fresh) return;
      for (const w of Object.values(this.#state.commands)) {
        const c = this.#unwrap(w);
        if (c) this.safeEmit('command', c);
      }
    };
    if (leader) this.#replayTimer = setTimeout(replay, this.#o.replayWaitMs ?? 3000);
    else replay();
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#subscribeAll();
    } catch (error) {
      // All or nothing: the next heartbeat tries again from scratch.
      await Promise.allSettled(this.#unsubs.map((u) => u()));
      this.#unsubs = [];
      throw error;
    }
  }

  async #subscribeAll(): Promise<void> {
    const { bus, id, keys } = this.#o;
    // Held for the life of the process: its subscriber count going to 0 tells the master at once.
    this.#unsubs.push(await bus.subscribe(Channel.alive(id), () => {}));
    this.#unsubs.push(
      await bus.subscribe(Channel.cmd(id), (m) => {
        const w = open<WireCommand>(m, keys.sitePublicKey);
        if (!w) return void log.warn({ node: id }, 'dropped a command that is not signed by the site');
        // Fencing: a command from a master older than the newest one seen is stale.
        if (typeof w.epoch !== 'number' || w.epoch < this.#epoch) return void log.info({ node: id, epoch: w.epoch, newest: this.#epoch }, 'dropped a command of an older master');
        const c = this.#unwrap(w);
        if (!c) return void log.warn({ node: id, type: w.type }, 'dropped a command that could not be opened');
        this.#epoch = w.epoch;
        this.#fresh = true;
        this.#state.commands[w.type] = w;
        this.#save();
        this.safeEmit('command', c);
      }),
    );
    this.#unsubs.push(
      await serveRpc(bus, id, keys, async (method, params) => {
        const fn = this.#rpc.get(method);
        if (method === 'ping') return { clock: Date.now() };
        if (!fn) throw new Error(`node ${id} does not serve ${method}`);
        return fn(params);
      }),
    );
  }

  #unwrap(w: WireCommand): Command | null {
    if (w.type === 'camera-node.assign') {
      const cameras = openBox<CameraAssignment[]>(w.cameras, this.#o.keys.boxPrivateKey);
      return Array.isArray(cameras) ? { type: w.type, epoch: w.epoch, version: w.version, cameras } : null;
    }
    return null;
  }

  /** The newest master epoch this node has obeyed. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * Fencing for requests that change something: true when `epoch` is the newest master's (it is then
   * remembered), false when it comes from a master older than one already obeyed.
   */
  admit(epoch: number): boolean {
    if (!Number.isInteger(epoch) || epoch < this.#epoch) return false;
    if (epoch > this.#epoch) {
      this.#epoch = epoch;
      this.#save();
    }
    return true;
  }

  /** Publishes a signed event (camera state changes, motion events). */
  async publish(body: unknown): Promise<void> {
    try {
      await this.#o.bus.publish(Channel.events, seal(this.#o.id, body, this.#o.keys.privateKey));
    } catch {
      // The next heartbeat carries the state anyway.
    }
  }

  /** This node's heartbeat now. */
  heartbeat(): Heartbeat {
    const r = { cameras: [] as Heartbeat['cameras'], rooms: [] as Heartbeat['rooms'], ingestHost: null as string | null, api: null as string | null, ingressBps: 0, viewers: 0, recorder: null as Heartbeat['recorder'], detector: null as Heartbeat['detector'] };
    for (const part of this.#parts) {
      const p = part();
      r.cameras.push(...(p.cameras ?? []));
      r.rooms.push(...(p.rooms ?? []));
      r.ingestHost = p.ingestHost ?? r.ingestHost;
      r.api = p.api ?? r.api;
      r.ingressBps += p.ingressBps ?? 0;
      r.viewers += p.viewers ?? 0;
      r.recorder = p.recorder ?? r.recorder;
      r.detector = p.detector ?? r.detector;
    }
    return {
      id: this.#o.id,
      roles: this.#o.roles,
      labels: this.#o.labels,
      version: this.#o.version,
      startedAt: this.#startedAt,
      clock: Date.now(),
      ntp: this.#ntp,
      addresses: { ingestHost: r.ingestHost, api: r.api },
      load: { cpu: this.#cpu.share, cpus: cpus().length, ingressBps: r.ingressBps, viewers: r.viewers, cameras: Math.max(r.cameras.length, r.rooms.length) },
      appliedVersion: this.#appliedVersion,
      epoch: this.#epoch,
      cameras: r.cameras,
      rooms: r.rooms,
      recorder: r.recorder,
      detector: r.detector,
    };
  }

  async #beat(): Promise<void> {
    if (this.#closed) return;
    this.#sampleCpu();
    const { bus, id, keys, leaseMs } = this.#o;
    const env = seal(id, this.heartbeat(), keys.privateKey);
    try {
      if (this.#unsubs.length === 0) {
        if (!bus.healthy) throw new Error('the bus is not connected');
        await this.#subscribe();
      }
      await bus.set(Key.node(id), JSON.stringify(env), leaseMs ?? 3000);
      await bus.publish(Channel.heartbeats, env);
      if (this.#busDown) log.info({ node: id }, 'bus is back; registered again');
      this.#busDown = false;
    } catch (error) {
      this.missedHeartbeats++;
      if (!this.#busDown) log.warn({ node: id, err: error }, 'cannot reach the bus; streaming on with the last assignment');
      this.#busDown = true;
    }
  }

  #sampleCpu(): void {
    let idle = 0;
    let total = 0;
    for (const c of cpus()) {
      idle += c.times.idle;
      total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
    }
    const dIdle = idle - this.#cpu.idle;
    const dTotal = total - this.#cpu.total;
    const share = dTotal > 0 ? Math.max(0, Math.min(1, 1 - dIdle / dTotal)) : this.#cpu.share;
    this.#cpu = { idle, total, share };
  }

  // chrony first (its offset is the useful number), then systemd-timesyncd's yes/no.
  #readNtp(): void {
    execFile('chronyc', ['-c', 'tracking'], { timeout: 2000 }, (err, out) => {
      if (!err && out.includes(',')) {
        const f = out.trim().split(',');
        const offsetS = Number(f[4]);
        this.#ntp = { source: 'chrony', synchronized: !/Not synchronised/i.test(out) && f[0] !== '00000000', offsetMs: Number.isFinite(offsetS) ? offsetS * 1000 : null };
        return;
      }
      execFile('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: 2000 }, (err2, out2) => {
        if (!err2 && /^(yes|no)$/m.test(out2.trim())) this.#ntp = { source: 'timesyncd', synchronized: out2.trim() === 'yes', offsetMs: null };
      });
    });
  }

  #load(): void {
    try {
      this.#state = JSON.parse(readFileSync(this.#o.stateFile, 'utf8')) as SavedState;
      this.#state.commands ??= {};
    } catch {
      this.#state = { commands: {} };
    }
  }

  #save(): void {
    try {
      mkdirSync(dirname(this.#o.stateFile), { recursive: true });
      // Written aside and renamed: a crash mid-write never leaves a half file.
      writeFileSync(this.#o.stateFile + '.tmp', JSON.stringify({ ...this.#state, epoch: this.#epoch }));
      renameSync(this.#o.stateFile + '.tmp', this.#o.stateFile);
    } catch (error) {
      log.warn({ err: error }, 'could not save the assignment to disk');
    }
  }

  /** Stops heartbeating and leaves the registry (so the master moves the work at once). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearInterval(this.#ntpTimer);
    clearTimeout(this.#replayTimer);
    await Promise.allSettled(this.#unsubs.map((u) => u()));
    await this.#o.bus.del(Key.node(this.#o.id)).catch(() => {});
    this.removeAllListeners();
  }
}
