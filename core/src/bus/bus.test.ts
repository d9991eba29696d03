import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBus, type Bus } from './bus.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

// The same behaviour from Redis and from the in-process bus; each run has its own key prefix.
describe.each(['redis', 'memory'] as const)('bus on %s', (kind) => {
  let bus: Bus;
  let other: Bus;
  beforeAll(async () => {
    const prefix = `test-${randomBytes(6).toString('hex')}`;
    bus = await openBus({ url: kind === 'redis' ? REDIS_URL : undefined, prefix });
    // A second connection to the same namespace (another process, for Redis).
    other = kind === 'redis' ? await openBus({ url: REDIS_URL, prefix }) : bus;
  });
  afterAll(async () => {
    await bus?.close();
    if (other !== bus) await other?.close();
  });

  it('counts in a window that starts at the first increment', async () => {
    expect(await bus.incr('c', 300)).toMatchObject({ count: 1 });
    expect((await bus.incr('c', 300)).count).toBe(2);
    const third = await other.incr('c', 300);
    expect(third.count).toBe(3);
    expect(third.ttlMs).toBeGreaterThan(0);
    expect(third.ttlMs).toBeLessThanOrEqual(300);
    await sleep(350);
    expect((await bus.incr('c', 300)).count).toBe(1);
  });

  it('sets, reads, expires and deletes keys; a lease is taken once', async () => {
    await bus.set('k', 'v', 200);
    expect(await other.get('k')).toBe('v');
    expect(await bus.ttl('k')).toBeGreaterThan(0);
    expect(await bus.setIfAbsent('k', 'w', 1000)).toBe(false);
    await sleep(250);
    expect(await bus.get('k')).toBeNull();
    expect(await bus.ttl('k')).toBe(-2);
    expect(await other.setIfAbsent('k', 'w', 1000)).toBe(true);
    await bus.set('forever', 'x');
    expect(await bus.ttl('forever')).toBe(-1);
    await bus.del('forever');
    expect(await bus.get('forever')).toBeNull();
  });

  it('delivers published messages to subscribers, as copies', async () => {
    const got: unknown[] = [];
    const off = await other.subscribe('ch', (m) => got.push(m));
    const msg = { a: 1, b: ['x'] };
    await bus.publish('ch', msg);
    await bus.publish('ch', 'two');
    for (let i = 0; i < 50 && got.length < 2; i++) await sleep(10);
    expect(got).toEqual([{ a: 1, b: ['x'] }, 'two']);
    expect(got[0]).not.toBe(msg);
    await off();
    await bus.publish('ch', 'three');
    await sleep(50);
    expect(got).toHaveLength(2);
  });

  it('renews and releases a lease only for its holder; counts only up; counts subscribers', async () => {
    expect(await bus.setIfAbsent('lease', 'me:1', 200)).toBe(true);
    expect(await other.renewIf('lease', 'you:2', 5000)).toBe(false);
    expect(await bus.renewIf('lease', 'me:1', 5000)).toBe(true);
    expect(await bus.ttl('lease')).toBeGreaterThan(1000);
    expect(await other.deleteIf('lease', 'you:2')).toBe(false);
    expect(await bus.deleteIf('lease', 'me:1')).toBe(true);
    expect(await bus.get('lease')).toBeNull();
    const n1 = await bus.next('epoch');
    expect(await other.next('epoch')).toBe(n1 + 1);
    expect(await bus.ttl('epoch')).toBe(-1);
    expect(await bus.subscriberCounts(['alive:x', 'alive:y'])).toEqual([0, 0]);
    const off = await other.subscribe('alive:x', () => {});
    expect(await bus.subscriberCounts(['alive:x', 'alive:y'])).toEqual([1, 0]);
    await off();
    expect(await bus.subscriberCounts(['alive:x'])).toEqual([0]);
    expect(bus.healthy).toBe(true);
    expect(bus.connections).toBeGreaterThan(0);
  });
});

describe('bus on a Redis that is not there', () => {
  it('stops start-up with the address, or starts anyway when asked to be lazy', async () => {
    await expect(openBus({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300 })).rejects.toThrow(/cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/);
    const lazy = await openBus({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 300, lazy: true });
    expect(lazy.healthy).toBe(false);
    await expect(lazy.get('k')).rejects.toThrow();
    await lazy.close();
  });
});
