import { EventEmitter } from 'node:events';
import { InvalidStateError } from '../errors.js';
import { createLogger, redactUrl } from '../log.js';

const log = createLogger('core:bus');

/**
 * The shared fast state of a deployment: pub/sub channels and keys with a time to live. Redis when a URL
 * is given (every process of a cluster sees the same), otherwise in this process only. Keys and channels
 * are namespaced by `prefix`, so several deployments (or tests) can share one Redis.
 */
export interface Bus {
  readonly kind: 'redis' | 'memory';
  /** Where it is, without credentials (for logs). */
  readonly location: string;
  /** Sends a JSON-serializable message to every subscriber of `channel` (in every process, for Redis). */
  publish(channel: string, message: unknown): Promise<void>;
  /** Calls `handler` for each message on `channel`; resolves with the unsubscribe. */
  subscribe(channel: string, handler: (message: unknown) => void): Promise<() => Promise<void>>;
  /** Adds 1 to a counter; the counter expires `ttlMs` after it was created. Returns the count and ms left. */
  incr(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }>;
  get(key: string): Promise<string | null>;
  /** Sets a key, with a time to live in ms when given. */
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Sets a key only if it does not exist (a lease); true when it was set. */
  setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Ms until the key expires; -1 when it never does, -2 when it does not exist. */
  ttl(key: string): Promise<number>;
  del(key: string): Promise<void>;
  /** Adds 1 to a counter that never expires; returns the new value (fencing tokens). */
  next(key: string): Promise<number>;
  /** Extends a key's time to live only while it still holds `value` (a lease held by its owner). */
  renewIf(key: string, value: string, ttlMs: number): Promise<boolean>;
  /** Deletes a key only while it still holds `value`. */
  deleteIf(key: string, value: string): Promise<boolean>;
  /** Subscribers of each channel, across every process (Redis PUBSUB NUMSUB). */
  subscriberCounts(channels: readonly string[]): Promise<number[]>;
  /** Whether commands go through now (false while Redis is unreachable). */
  readonly healthy: boolean;
  /**
   * Connections made so far: it changes after every outage (Redis restarted or the link came back), when
   * subscriptions everywhere are being made again and what the bus held may be gone.
   */
  readonly connections: number;
  /** Closes connections. Idempotent. */
  close(): Promise<void>;
}

export interface OpenBusOptions {
  /** A redis:// URL; without it the bus lives in this process. */
  url?: string | undefined;
  /** Namespace of keys and channels; default `cctv`. */
  prefix?: string;
  /**
   * Start even when Redis cannot be reached yet (a node must come up and stream on its saved assignment
   * during an outage): commands fail until it connects. Otherwise a Redis that does not answer within
   * `connectTimeoutMs` stops start-up with an error.
   */
  lazy?: boolean;
  /** How long to wait for the first connection, ms; default 5000. */
  connectTimeoutMs?: number;
}

/** Opens Redis at `url`, or the in-process bus when there is none. */
export async function openBus(opts: OpenBusOptions = {}): Promise<Bus> {
  const prefix = (opts.prefix ?? 'cctv') + ':';
  return opts.url ? openRedisBus(opts.url, prefix, opts.lazy ?? false, opts.connectTimeoutMs ?? 5000) : new MemoryBus(prefix);
}

class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly location = 'in-process';
  readonly #prefix: string;
  readonly #keys = new Map<string, { value: string; expiresAt: number }>();
  readonly #channels = new EventEmitter();
  readonly #sweeper: NodeJS.Timeout;
  #closed = false;

  constructor(prefix: string) {
    this.#prefix = prefix;
    this.#channels.setMaxListeners(Infinity);
    // Expired keys are dropped on read; the sweep bounds memory for keys never read again.
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const [k, v] of this.#keys) if (v.expiresAt <= now) this.#keys.delete(k);
    }, 10_000);
    this.#sweeper.unref();
  }

  #live(key: string): { value: string; expiresAt: number } | undefined {
    this.#assertOpen();
    const k = this.#prefix + key;
    const e = this.#keys.get(k);
    if (e && e.expiresAt <= Date.now()) {
      this.#keys.delete(k);
      return undefined;
    }
    return e;
  }

  async publish(channel: string, message: unknown): Promise<void> {
    this.#assertOpen();
    // Through JSON, as with Redis: a subscriber never shares an object with the publisher.
    const copy: unknown = JSON.parse(JSON.stringify(message ?? null));
    queueMicrotask(() => this.#channels.emit(this.#prefix + channel, copy));
  }

  async subscribe(channel: string, handler: (message: unknown) => void): Promise<() => Promise<void>> {
    this.#assertOpen();
    const name = this.#prefix + channel;
    const safe = (m: unknown) => {
      try {
        handler(m);
      } catch (error) {
        log.error({ channel, err: error }, 'bus subscriber failed');
      }
    };
    this.#channels.on(name, safe);
    return async () => {
      this.#channels.off(name, safe);
    };
  }

  async incr(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }> {
    const e = this.#live(key);
    if (e) {
      e.value = String(Number(e.value) + 1);
      return { count: Number(e.value), ttlMs: e.expiresAt === Infinity ? -1 : e.expiresAt - Date.now() };
    }
    this.#keys.set(this.#prefix + key, { value: '1', expiresAt: Date.now() + ttlMs });
    return { count: 1, ttlMs };
  }

  async get(key: string): Promise<string | null> {
    return this.#live(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.#assertOpen();
    this.#keys.set(this.#prefix + key, { value, expiresAt: ttlMs === undefined ? Infinity : Date.now() + ttlMs });
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.#live(key)) return false;
    await this.set(key, value, ttlMs);
    return true;
  }

  async ttl(key: string): Promise<number> {
    const e = this.#live(key);
    if (!e) return -2;
    return e.expiresAt === Infinity ? -1 : e.expiresAt - Date.now();
  }

  async del(key: string): Promise<void> {
    this.#assertOpen();
    this.#keys.delete(this.#prefix + key);
  }

  async next(key: string): Promise<number> {
    const e = this.#live(key);
    const n = (e ? Number(e.value) : 0) + 1;
    this.#keys.set(this.#prefix + key, { value: String(n), expiresAt: Infinity });
    return n;
  }

  async renewIf(key: string, value: string, ttlMs: number): Promise<boolean> {
    const e = this.#live(key);
    if (!e || e.value !== value) return false;
    e.expiresAt = Date.now() + ttlMs;
    return true;
  }

  async deleteIf(key: string, value: string): Promise<boolean> {
    const e = this.#live(key);
    if (!e || e.value !== value) return false;
    this.#keys.delete(this.#prefix + key);
    return true;
  }

  async subscriberCounts(channels: readonly string[]): Promise<number[]> {
    this.#assertOpen();
    return channels.map((c) => this.#channels.listenerCount(this.#prefix + c));
  }

  get healthy(): boolean {
    return !this.#closed;
  }

  readonly connections = 1;

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#channels.removeAllListeners();
    this.#keys.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('bus is closed');
  }
}

async function openRedisBus(url: string, prefix: string, lazy: boolean, connectTimeoutMs: number): Promise<Bus> {
  const { createClient } = await import('redis');
  const where = redactUrl(url);
  // Commands fail fast while Redis is down (no offline queue), so callers can fall back; the client
  // reconnects by itself with a capped backoff.
  const options = {
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 3000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2000) },
  };
  const client = createClient(options);
  const subscriber = createClient(options);
  let lastError = 0;
  const onError = (error: Error) => {
    // Logged at most every 10 s: a Redis outage would otherwise flood the log.
    if (Date.now() - lastError > 10_000) log.warn({ err: error, redis: where }, 'redis connection problem');
    lastError = Date.now();
  };
  client.on('error', onError);
  subscriber.on('error', onError);
  let connections = 0;
  client.on('ready', () => connections++);
  subscriber.on('ready', () => connections++);
  // The client keeps trying in the background; `connect()` settles once it is in.
  const connected = Promise.all([client.connect(), subscriber.connect()]);
  connected.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    connected.then(() => 'ok' as const, (error: unknown) => error as Error),
    new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), connectTimeoutMs))),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ok') {
    if (lazy && outcome === 'timeout') {
      log.warn({ redis: where }, 'Redis is not reachable yet; going on without it and connecting in the background');
    } else {
      await Promise.allSettled([client.destroy(), subscriber.destroy()]);
      const why = outcome === 'timeout' ? `no connection within ${connectTimeoutMs} ms (is it running? is the URL right?)` : outcome.message;
      throw new Error(`cannot connect to Redis at ${where}: ${why}`, { cause: outcome === 'timeout' ? undefined : outcome });
    }
  }
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new InvalidStateError('bus is closed');
  };
  // Compare-and-set scripts: a lease is renewed or released only by whoever holds it.
  const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
  const DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
  return {
    kind: 'redis',
    location: where,
    get healthy() {
      return !closed && client.isReady && subscriber.isReady;
    },
    get connections() {
      return connections;
    },
    async next(key) {
      assertOpen();
      return Number(await client.incr(prefix + key));
    },
    async renewIf(key, value, ttlMs) {
      assertOpen();
      return Number(await client.eval(RENEW, { keys: [prefix + key], arguments: [value, String(Math.round(ttlMs))] })) === 1;
    },
    async deleteIf(key, value) {
      assertOpen();
      return Number(await client.eval(DELETE, { keys: [prefix + key], arguments: [value] })) === 1;
    },
    async subscriberCounts(channels) {
      assertOpen();
      if (channels.length === 0) return [];
      const r = (await client.pubSubNumSub(channels.map((c) => prefix + c))) as unknown as Record<string, number>;
      return channels.map((c) => Number(r[prefix + c] ?? 0));
    },
    async publish(channel, message) {
      assertOpen();
      await client.publish(prefix + channel, JSON.stringify(message ?? null));
    },
    async subscribe(channel, handler) {
      assertOpen();
      const listener = (raw: string) => {
        try {
          handler(JSON.parse(raw));
        } catch (error) {
          log.error({ channel, err: error }, 'bus subscriber failed');
        }
      };
      await subscriber.subscribe(prefix + channel, listener);
      return async () => {
        if (!closed) await subscriber.unsubscribe(prefix + channel, listener);
      };
    },
    async incr(key, ttlMs) {
      assertOpen();
      const k = prefix + key;
      // One round trip: count, start the expiry only for a new counter (NX), read what is left.
      const [count, , ttl] = (await client.multi().incr(k).pExpire(k, ttlMs, 'NX').pTTL(k).exec()) as unknown as [number, number, number];
      return { count: Number(count), ttlMs: Number(ttl) };
    },
    async get(key) {
      assertOpen();
      return (await client.get(prefix + key)) as string | null;
    },
    async set(key, value, ttlMs) {
      assertOpen();
      if (ttlMs === undefined) await client.set(prefix + key, value);
      else await client.set(prefix + key, value, { PX: Math.max(1, Math.round(ttlMs)) });
    },
    async setIfAbsent(key, value, ttlMs) {
      assertOpen();
      return (await client.set(prefix + key, value, { PX: Math.max(1, Math.round(ttlMs)), NX: true })) === 'OK';
    },
    async ttl(key) {
      assertOpen();
      return Number(await client.pTTL(prefix + key));
    },
    async del(key) {
      assertOpen();
      await client.del(prefix + key);
    },
    async close() {
      if (closed) return;
      closed = true;
      // destroy() when not connected: close() would wait for a connection that may never come.
      await Promise.allSettled([client.isReady ? client.close() : client.destroy(), subscriber.isReady ? subscriber.close() : subscriber.destroy()]);
    },
  };
}
