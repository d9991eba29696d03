import { Channel, Key, TypedEmitter, createLogger, gauge, type Bus } from '@cctv/core';

const log = createLogger('signaling:leader');

export interface LeadershipEvents extends Record<string, unknown[]> {
  /** This instance now leads, with this fencing epoch. */
  elected: [number];
  /** It no longer does. */
  deposed: [string];
}

export interface LeadershipOptions {
  bus: Bus;
  /** This instance's node id (it holds `alive:<id>` while it runs). */
  id: string;
  /** Lease of the leader key, ms. */
  leaseMs: number;
  /** The lowest epoch a new leader may take: above every epoch a node has obeyed or the database holds. */
  floor: () => number;
  /** How often a follower looks at the lease, ms; default 250. */
  checkMs?: number;
}

const leaders = new Set<Leadership>();
gauge('cctv_leader', 'Whether this signaling instance leads the cluster (1) and its epoch', ['epoch'], function collect() {
  this.reset();
  for (const l of leaders) this.set({ epoch: String(l.epoch) }, l.isLeader ? 1 : 0);
});

/**
 * Leadership by a lease in the bus: the key `leader` holds `<id>:<epoch>` with a time to live; the leader
 * renews it, the others watch it. The epoch comes from a counter that only grows, and every command and
 * database write of a leader carries it, so a deposed leader that has not noticed yet is ignored (a
 * fencing token). A follower takes over when the lease lapses, or at once when the leader's `alive:`
 * subscription is gone (its process died). A leader that cannot renew in time stops leading by itself.
 */
export class Leadership extends TypedEmitter<LeadershipEvents> {
  readonly #o: LeadershipOptions;
  #value: string | null = null;
  #epoch = 0;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #closed = false;
  #leaderGoneSince = 0;
  #connections = -1;
  #stableSince = 0;
  /** Who leads, as last seen (`<id>:<epoch>`), or null. */
  holder: string | null = null;

  constructor(o: LeadershipOptions) {
    super();
    this.#o = o;
    this.onListenerError = (event, error) => log.error({ event, err: error }, 'leadership listener failed');
  }

  get isLeader(): boolean {
    return this.#value !== null;
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The leading instance's id, as last seen. */
  get leaderId(): string | null {
    return this.holder ? this.holder.slice(0, this.holder.lastIndexOf(':')) : null;
  }

  start(): void {
    leaders.add(this);
    void this.#tick();
    this.#timer = setInterval(() => void this.#tick(), this.#o.checkMs ?? 250);
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#closed) return;
    this.#busy = true;
    try {
      if (this.#value) await this.#renew();
      else await this.#follow();
    } catch (error) {
      log.debug({ err: error }, 'leadership check failed');
    } finally {
      this.#busy = false;
      if (this.#value && Date.now() - this.#lastRenew > this.#o.leaseMs - this.#margin()) this.#depose('the lease could not be renewed in time');
    }
  }

  #margin(): number {
    return Math.min(500, this.#o.leaseMs / 4);
  }

  async #renew(): Promise<void> {
    const { bus, leaseMs } = this.#o;
    // Renewed a third of the way through: two renewals may fail before the lease is at risk.
    if (Date.now() - this.#lastRenew < leaseMs / 3) return;
    const ok = await bus.renewIf(Key.leader, this.#value!, leaseMs);
    if (ok) this.#lastRenew = Date.now();
    else this.#depose('another instance holds the lease');
  }

  async #follow(): Promise<void> {
    const { bus, id, leaseMs } = this.#o;
    if (bus.connections !== this.#connections) {
      // Just (re)connected: subscriptions everywhere are being made again; trust no count for a lease.
      this.#connections = bus.connections;
      this.#stableSince = Date.now();
    }
    const cur = await bus.get(Key.leader);
    this.holder = cur;
    if (cur) {
      const leader = cur.slice(0, cur.lastIndexOf(':'));
      if (leader === id || Date.now() - this.#stableSince < leaseMs) return;
      // The leader's process is gone when nobody holds its alive channel; wait one more look to be sure.
      const [n] = await bus.subscriberCounts([Channel.alive(leader)]);
      if (n !== 0) {
        this.#leaderGoneSince = 0;
        return;
      }
      if (this.#leaderGoneSince === 0) {
        this.#leaderGoneSince = Date.now();
        return;
      }
      if (!(await bus.deleteIf(Key.leader, cur))) return;
      log.warn({ leader: cur }, 'the leader is gone; taking over');
    }
    this.#leaderGoneSince = 0;
    let epoch = await bus.next(Key.leaderEpoch);
    const floor = this.#o.floor();
    if (epoch <= floor) {
      // The counter was lost (Redis restarted empty): start above anything a node has obeyed.
      await bus.set(Key.leaderEpoch, String(floor));
      epoch = await bus.next(Key.leaderEpoch);
    }
    const value = `${id}:${epoch}`;
    if (!(await bus.setIfAbsent(Key.leader, value, leaseMs))) return;
    this.#value = value;
    this.#epoch = epoch;
    this.#lastRenew = Date.now();
    this.holder = value;
    log.info({ epoch }, 'leading the cluster');
    this.safeEmit('elected', epoch);
  }

  #depose(why: string): void {
    if (!this.#value) return;
    log.warn({ epoch: this.#epoch, why }, 'no longer leading');
    this.#value = null;
    this.safeEmit('deposed', why);
  }

  /** Stops leading now (a newer master has written); may be elected again later. */
  async resign(): Promise<void> {
    const v = this.#value;
    this.#depose('resigned');
    if (v) await this.#o.bus.deleteIf(Key.leader, v).catch(() => {});
  }

  /** Gives up leadership (so another takes over at once) and stops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    leaders.delete(this);
    clearInterval(this.#timer);
    const v = this.#value;
    this.#depose('stopping');
    if (v) await this.#o.bus.deleteIf(Key.leader, v).catch(() => {});
    this.removeAllListeners();
  }
}
