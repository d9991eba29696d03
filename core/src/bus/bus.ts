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
  /** Closes connections. Idempotent. */
  close(): Promise<void>;
}

export interface OpenBusOptions {
  /** A redis:// URL; without it the bus lives in this process. */
  url?: string | undefined;
  /** Namespace of keys and channels; default `cctv`. */
  prefix?: string;
}

/** Opens Redis at `url`, or the in-process bus when there is none. */
export async function openBus(opts: OpenBusOptions = {}): Promise<Bus> {
  const prefix = (opts.prefix ?? 'cctv') + ':';
  return opts.url ? openRedisBus(opts.url, prefix) : new MemoryBus(prefix);
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

async function openRedisBus(url: string, prefix: string): Promise<Bus> {
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
  try {
    await client.connect();
    await subscriber.connect();
  } catch (error) {
    await Promise.allSettled([client.destroy(), subscriber.destroy()]);
    throw new Error(`cannot connect to Redis at ${where}: ${(error as Error).message}`, { cause: error });
  }
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new InvalidStateError('bus is closed');
  };
  return {
    kind: 'redis',
    location: where,
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
      await Promise.allSettled([client.close(), subscriber.close()]);
    },
  };
}
