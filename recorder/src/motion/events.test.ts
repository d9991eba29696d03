import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, type Database } from '@cctv/core';
import { createTestDatabase } from '../../../core/src/db/testing/testDatabase.js';
import { EventStore } from './events.js';

let testDb: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Database;
let store: EventStore;
const DAY = 86_400_000;
const now = Date.now();

beforeAll(async () => {
  testDb = await createTestDatabase('cctv_events');
  db = await openDatabase({ url: testDb.url });
  await migrate(db);
  store = new EventStore(db);
  for (const [id, motion] of [['a', { retainDays: 10 }], ['b', {}], ['c', { retainDays: 0 }]] as const) {
    await db.query("INSERT INTO cameras (id, name, source, motion) VALUES ($1, $1, '{\"kind\":\"test\"}', $2)", [id, motion]);
  }
});

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

const add = (camera: string, startMs: number, zones = ['all'], score = 0.5) =>
  store.insert({ camera, kind: 'motion', startMs, endMs: startMs + 3000, peakScore: score, zones, box: null, node: 'n1' }, null);

describe('the events table', () => {
  it('pages newest first by cursor without skipping or repeating, also among equal start times', async () => {
    const ids: number[] = [];
    for (let i = 0; i < 25; i++) ids.push((await add('b', now - 1000 - Math.floor(i / 5) * 1000, i % 2 ? ['door'] : ['all'], i / 25)).id);
    const seen: number[] = [];
    let after: { startMs: number; id: number } | null = null;
    for (;;) {
      const page = await store.search({ cameras: ['b'], fromMs: now - DAY, toMs: now, limit: 7, after });
      seen.push(...page.map((e) => e.id));
      if (page.length < 7) break;
      after = { startMs: page[6]!.startMs, id: page[6]!.id };
    }
    expect(seen.length).toBe(25);
    expect(new Set(seen).size).toBe(25);
    const door = await store.search({ cameras: ['b'], fromMs: now - DAY, toMs: now, limit: 50, zone: 'door', minScore: 0.5 });
    expect(door.every((e) => e.zones.includes('door') && e.peakScore >= 0.5)).toBe(true);
    expect(door.length).toBe(6);
  });

  it('deletes events past their camera\'s retention, never a protected one, and keeps all with retainDays 0', async () => {
    const old = await add('a', now - 20 * DAY);
    const kept = await add('a', now - 20 * DAY);
    await store.protect(kept.id, 'tester');
    const recent = await add('a', now - 2 * DAY);
    const forever = await add('c', now - 900 * DAY);
    const yearOld = await add('b', now - 400 * DAY);
    expect(await store.applyRetention(now)).toBe(2);
    expect(await store.get(old.id)).toBeNull();
    expect(await store.get(yearOld.id)).toBeNull();
    for (const e of [kept, recent, forever]) expect(await store.get(e.id)).not.toBeNull();
    // Protection is a range the archive's retention respects.
    const range = await db.query<{ start_ms: string; end_ms: string }>('SELECT start_ms, end_ms FROM protected_ranges WHERE camera_id = $1', ['a']);
    expect(Number(range[0]!.start_ms)).toBeLessThan(kept.startMs);
    expect(await store.unprotect(kept.id)).toBe(true);
    expect((await db.query('SELECT 1 FROM protected_ranges WHERE camera_id = $1', ['a'])).length).toBe(0);
  });

  it('ends the events a node left open at their last update, not at the time it came back', async () => {
    const e = await store.insert({ camera: 'b', kind: 'motion', startMs: now - 60_000, endMs: null, peakScore: 0.2, zones: ['all'], box: null, node: 'gone' }, null);
    await db.query("UPDATE events SET updated_at = now() - interval '50 seconds' WHERE id = $1", [e.id]);
    expect(await store.endOpen('gone', null, null)).toBe(1);
    const ended = await store.get(e.id);
    expect(ended!.endMs).toBeGreaterThanOrEqual(now - 60_000);
    expect(ended!.endMs).toBeLessThan(now - 40_000);
  });
});
