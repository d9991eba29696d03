import { createLogger, type Bus } from '@cctv/core';

const log = createLogger('signaling:rate-limit');

/** At most `max` events in `windowS` seconds. */
export interface Limit {
  max: number;
  windowS: number;
}

export interface RateDecision {
  ok: boolean;
  /** Seconds until a refused caller may try again (whole seconds, at least 1). */
  retryAfterS: number;
}

/**
 * Fixed-window counters on the bus (Redis in a cluster, so every signaling instance counts together;
 * in-process otherwise). When Redis cannot be reached the limiter lets requests through and logs it:
 * an outage of Redis must not lock everyone out.
 */
export class RateLimiter {
  readonly #bus: Bus;

  constructor(bus: Bus) {
    this.#bus = bus;
  }

  /** Counts one event for `key` against every limit; refused when any is exceeded. */
  async hit(key: string, limits: readonly Limit[]): Promise<RateDecision> {
    let retryAfterS = 0;
    try {
      for (const l of limits) {
        const { count, ttlMs } = await this.#bus.incr(`rl:${key}:${l.windowS}`, l.windowS * 1000);
        if (count > l.max) retryAfterS = Math.max(retryAfterS, Math.ceil(Math.max(ttlMs, 1) / 1000));
      }
    } catch (error) {
      log.warn({ err: error, key }, 'rate limit not checked (the bus is unavailable)');
      return { ok: true, retryAfterS: 0 };
    }
    return { ok: retryAfterS === 0, retryAfterS };
  }
}

/** Sign-in lockout policy: `maxFailures` within `windowS` locks the account for `lockS`. */
export interface LockoutPolicy {
  maxFailures: number;
  windowS: number;
  lockS: number;
}

/**
 * Locks an account after repeated failed sign-ins. A locked account is refused even with the right
 * password until the lock ends; a successful sign-in clears the failures.
 */
export class Lockout {
  readonly #bus: Bus;
  readonly #p: LockoutPolicy;

  constructor(bus: Bus, policy: LockoutPolicy) {
    this.#bus = bus;
    this.#p = policy;
  }

  /** Seconds the account stays locked, or 0. */
  async lockedFor(account: string): Promise<number> {
    try {
      const ttl = await this.#bus.ttl(`lock:${account.toLowerCase()}`);
      return ttl > 0 ? Math.ceil(ttl / 1000) : ttl === -1 ? this.#p.lockS : 0;
    } catch {
      return 0;
    }
  }

  /** Records a failure; returns the seconds of the lock it caused, or 0. */
  async fail(account: string): Promise<number> {
    const a = account.toLowerCase();
    try {
      const { count } = await this.#bus.incr(`fail:${a}`, this.#p.windowS * 1000);
      if (count >= this.#p.maxFailures) {
        await this.#bus.set(`lock:${a}`, '1', this.#p.lockS * 1000);
        await this.#bus.del(`fail:${a}`);
        return this.#p.lockS;
      }
    } catch (error) {
      log.warn({ err: error }, 'sign-in failure not counted (the bus is unavailable)');
    }
    return 0;
  }

  async succeed(account: string): Promise<void> {
    await this.#bus.del(`fail:${account.toLowerCase()}`).catch(() => {});
  }
}
