import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { CameraSchema, migrate, openDatabase, registry, type CameraInput, type Config, type Database } from '@cctv/core';
import { createTestDatabase } from '../../../core/src/db/testing/testDatabase.js';
import type { MotionEvent } from '../motion/types.js';
import { MqttPublisher } from './mqtt.js';
import { AlertService } from './service.js';
import { newMessageId, verify } from './standardWebhooks.js';

const MQTT_URL = process.env.TEST_MQTT_URL ?? 'mqtt://127.0.0.1:1883';

// Every test owns its database, receivers, services and MQTT clients; cleanups run in reverse.
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function database(): Promise<Database> {
  const t = await createTestDatabase('cctv_alerts');
  const db = await openDatabase({ url: t.url });
  cleanups.push(() => t.drop());
  cleanups.push(() => db.close());
  await migrate(db);
  return db;
}

const alertsConfig = (o: Partial<Config['alerts']> = {}, webhook: Partial<Config['alerts']['webhook']> = {}): Config['alerts'] => ({
  webhook: { timeoutMs: 2000, maxAttempts: 8, initialBackoffMs: 50, maxBackoffMs: 200, ...webhook },
  ...o,
});

function service(db: Database, config: Config['alerts'], node = 'node-a'): AlertService {
  const s = new AlertService({ db, node, config, publicUrl: 'https://cctv.example.com/' });
  cleanups.push(() => s.close());
  return s;
}

type Motion = NonNullable<CameraInput['motion']>;
const camera = (alerts: Motion['alerts'] = [{ name: 'door', cooldownS: 0 }], zones: Motion['zones'] = []) =>
  CameraSchema.parse({ id: 'front', name: 'Front door', source: { kind: 'test' }, motion: { enabled: true, zones, alerts } });
const zone = (name: string) => ({ name, points: [[0, 0], [1, 0], [1, 1]] as Array<[number, number]> });

async function motionEvent(db: Database, o: Partial<MotionEvent> = {}): Promise<MotionEvent> {
  const e: MotionEvent = {
    id: 0, camera: 'front', kind: 'motion', startMs: Date.now() - 300, endMs: null, peakScore: 0.4, zones: ['all'],
    box: { x: 0.1, y: 0.2, w: 0.3, h: 0.4 }, node: 'det-1', hasThumbnail: true, protectedId: null, ...o,
  };
  const rows = await db.query<{ id: number }>(
    'INSERT INTO events (camera_id, start_ms, end_ms, peak_score, zones, box, node) VALUES ($1, $2, $3, $4, $5::text[], $6::jsonb, $7) RETURNING id',
    [e.camera, e.startMs, e.endMs, e.peakScore, e.zones, JSON.stringify(e.box), e.node],
  );
  return { ...e, id: Number(rows[0]!.id) };
}

const ended = (e: MotionEvent): MotionEvent => ({ ...e, endMs: e.startMs + 2000 });

interface Received {
  id: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** 'ok' or why `verify` refused it. */
  verified: string;
  status: number;
}

/** A webhook receiver on 127.0.0.1:0 that checks every signature and answers with `answer(n)` (n from 1). */
async function receiver(answer: (n: number) => number, delayMs = 0) {
  const state = { secret: '', requests: [] as Received[], successes: 0, inFlight: 0, maxInFlight: 0, answer };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      const body = Buffer.concat(chunks).toString('utf8');
      let verified = 'ok';
      try {
        verify(state.secret, req.headers, body);
      } catch (error) {
        verified = (error as Error).message;
      }
      const status = state.answer(state.requests.length + 1);
      state.requests.push({ id: String(req.headers['webhook-id']), path: req.url ?? '', headers: req.headers, body, verified, status });
      setTimeout(() => {
        state.inFlight--;
        if (status >= 200 && status < 300) state.successes++;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? `answer ${status}` : 'ok');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  cleanups.push(() => server.closeAllConnections());
  return Object.assign(state, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` });
}

async function until<T>(what: string, f: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const row = (db: Database, id: string) =>
  db.query<{ state: string; attempts: number; claimed_by: string | null; delivered_ms: number | null; motion_ms: number; last_status: number | null }>(
    'SELECT state, attempts, claimed_by, delivered_ms, motion_ms, last_status FROM alert_deliveries WHERE id = $1', [id]).then((r) => r[0]);
const deliveriesOfEvent = (db: Database, eventId: number) =>
  db.query<{ id: string; channel: string; type: string; state: string }>('SELECT id, channel, type, state FROM alert_deliveries WHERE event_id = $1 ORDER BY created_ms, id', [eventId]);

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val) && !('le' in x.labels));
  return v?.value ?? 0;
}

describe('webhook delivery', () => {
  it('retries 500, 500 until 200: one delivery, three signed tries with the same webhook-id, three attempt rows', async () => {
    const db = await database();
    const hook = await receiver((n) => (n <= 2 ? 500 : 200));
    const alerts = service(db, alertsConfig());
    await alerts.start();
    const wh = await alerts.createWebhook({ url: hook.url, createdBy: 'admin' });
    hook.secret = wh.secret;
    expect(wh.secret).toMatch(/^whsec_/);
    expect(await alerts.listWebhooks()).toEqual([{ id: wh.id, url: hook.url, cameras: null, enabled: true, createdBy: 'admin', createdAt: expect.any(String) }]);

    const e = await motionEvent(db);
    const delivered = await metric('cctv_alerts_total', { channel: 'webhook', result: 'delivered' });
    await alerts.onEvent({ phase: 'start', event: e }, camera());
    const [d] = await deliveriesOfEvent(db, e.id);
    expect(d).toMatchObject({ channel: 'webhook', type: 'event.start' });
    await until('delivered', async () => (await row(db, d!.id))?.state === 'delivered');

    expect(hook.requests).toHaveLength(3);
    expect(hook.successes).toBe(1);
    expect(hook.requests.map((r) => r.id)).toEqual([d!.id, d!.id, d!.id]);
    expect(hook.requests.map((r) => r.verified)).toEqual(['ok', 'ok', 'ok']);
    expect(hook.requests[0]!.headers['content-type']).toBe('application/json');
    expect(hook.requests[0]!.headers['user-agent']).toMatch(/^cctv-alerts\//);
    const body = JSON.parse(hook.requests[2]!.body);
    expect(body).toEqual({
      type: 'event.start', timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      data: {
        id: e.id, camera: 'front', cameraName: 'Front door', kind: 'motion', start: new Date(e.startMs).toISOString(), startMs: e.startMs,
        end: null, endMs: null, peakScore: 0.4, zones: ['all'], box: e.box, node: 'det-1', rules: ['door'],
        thumbnailUrl: `https://cctv.example.com/api/events/${e.id}/thumbnail.jpg`, eventUrl: `https://cctv.example.com/api/events/${e.id}`,
      },
    });

    const tries = await db.query<{ n: number; status: number; error: string | null }>('SELECT n, status, error FROM alert_attempts WHERE delivery_id = $1 ORDER BY n', [d!.id]);
    expect(tries.map((t) => [t.n, t.status])).toEqual([[1, 500], [2, 500], [3, 200]]);
    expect(tries[0]!.error).toBe('HTTP 500: answer 500');
    const r = await row(db, d!.id);
    expect(r).toMatchObject({ state: 'delivered', attempts: 3, motion_ms: e.startMs, last_status: 200, claimed_by: 'node-a' });
    expect(r!.delivered_ms).toBeGreaterThanOrEqual(e.startMs);
    expect(await metric('cctv_alerts_total', { channel: 'webhook', result: 'delivered' })).toBe(delivered + 1);

    // The end goes to the endpoint that got the start.
    await alerts.onEvent({ phase: 'end', event: ended(e) }, camera());
    const all = await alerts.deliveriesOf(e.id);
    expect(all.map((x) => x.type)).toEqual(['event.start', 'event.end']);
    await until('end delivered', async () => (await alerts.deliveriesOf(e.id))[1]!.state === 'delivered');
    const last = JSON.parse(hook.requests[3]!.body);
    expect(last).toMatchObject({ type: 'event.end', data: { id: e.id, endMs: e.startMs + 2000, end: new Date(e.startMs + 2000).toISOString(), rules: ['door'] } });
    expect(hook.requests[3]!.verified).toBe('ok');
    expect((await alerts.deliveriesOf(e.id))[0]!.tries.map((t) => t.status)).toEqual([500, 500, 200]);
  });

  it('gives up after maxAttempts (dead letters), and retry() delivers it once the receiver is fixed', async () => {
    const db = await database();
    const hook = await receiver(() => 500);
    const alerts = service(db, alertsConfig({}, { maxAttempts: 3 }));
    await alerts.start();
    hook.secret = (await alerts.createWebhook({ url: hook.url, createdBy: 'admin' })).secret;
    const e = await motionEvent(db);
    await alerts.onEvent({ phase: 'start', event: e }, camera());
    const [d] = await deliveriesOfEvent(db, e.id);
    await until('dead', async () => (await row(db, d!.id))?.state === 'dead');
    expect(hook.requests).toHaveLength(3);
    const dead = await alerts.listDead({ limit: 10 });
    expect(dead.deliveries.map((x) => [x.id, x.state, x.attempts, x.lastStatus])).toEqual([[d!.id, 'dead', 3, 500]]);
    expect(dead.next).toBeNull();

    hook.answer = () => 204;
    expect(await alerts.retry('msg_nothing')).toBeNull();
    const again = await alerts.retry(d!.id);
    expect(again).toMatchObject({ id: d!.id, state: 'pending', attempts: 0 });
    await until('delivered after retry', async () => (await row(db, d!.id))?.state === 'delivered');
    expect(hook.requests.map((r) => r.status)).toEqual([500, 500, 500, 204]);
    expect(hook.requests.every((r) => r.id === d!.id && r.verified === 'ok')).toBe(true);
    expect(await row(db, d!.id)).toMatchObject({ attempts: 1, last_status: 204 });
    // The tries go on counting across the retry.
    expect((await alerts.deliveriesOf(e.id))[0]!.tries.map((t) => [t.n, t.status])).toEqual([[1, 500], [2, 500], [3, 500], [4, 204]]);
    expect((await alerts.listDead()).deliveries).toEqual([]);
    // Only a dead delivery can be retried.
    expect(await alerts.retry(d!.id)).toBeNull();
  });

  it('takes 410 Gone as final: dead at the first try', async () => {
    const db = await database();
    const hook = await receiver(() => 410);
    const alerts = service(db, alertsConfig());
    await alerts.start();
    hook.secret = (await alerts.createWebhook({ url: hook.url, createdBy: 'admin' })).secret;
    const e = await motionEvent(db);
    await alerts.onEvent({ phase: 'start', event: e }, camera());
    const [d] = await deliveriesOfEvent(db, e.id);
    await until('dead', async () => (await row(db, d!.id))?.state === 'dead');
    expect(hook.requests).toHaveLength(1);
    expect(await row(db, d!.id)).toMatchObject({ attempts: 1, last_status: 410 });
    // An end is still sent for an alerted start; it meets the same answer.
    await alerts.onEvent({ phase: 'end', event: ended(e) }, camera());
    await until('end dead', async () => (await alerts.deliveriesOf(e.id)).every((x) => x.state === 'dead'));
    expect(hook.requests).toHaveLength(2);
    // The dead letters come in pages, newest first.
    const p1 = await alerts.listDead({ limit: 1 });
    const p2 = await alerts.listDead({ limit: 1, before: p1.next! });
    const p3 = await alerts.listDead({ limit: 1, before: p2.next! });
    expect([...p1.deliveries, ...p2.deliveries].map((x) => x.type).sort()).toEqual(['event.end', 'event.start']);
    expect(p3).toEqual({ deliveries: [], next: null });
    await expect(alerts.listDead({ before: 'yesterday' })).rejects.toThrow(/'before' must be a cursor/);
  });

  it("takes over a pending delivery whose node's claim ran out, and leaves one whose claim holds", async () => {
    const db = await database();
    const hook = await receiver(() => 200);
    const setup = service(db, alertsConfig(), 'setup');
    const wh = await setup.createWebhook({ url: hook.url, createdBy: 'admin' });
    hook.secret = wh.secret;
    const e = await motionEvent(db);
    const now = Date.now();
    const orphan = newMessageId();
    const held = newMessageId();
    const payload = { type: 'event.start', timestamp: new Date(now).toISOString(), data: { id: e.id, camera: 'front', rules: ['door'] } };
    for (const [id, until_] of [[orphan, now - 1000], [held, now + 60_000]] as const) {
      await db.query(
        `INSERT INTO alert_deliveries (id, event_id, camera_id, channel, webhook_id, type, payload, state, attempts, next_ms, claimed_by, claim_until_ms, last_status, motion_ms, created_ms)
         VALUES ($1, $2, 'front', 'webhook', $3, 'event.start', $4::jsonb, 'pending', 1, $5, 'node-a', $6, 500, $7, $5)`,
        [id, e.id, wh.id, JSON.stringify(payload), now - 2000, until_, e.startMs],
      );
    }
    const b = service(db, alertsConfig(), 'node-b');
    await b.start();
    await until('taken over', async () => (await row(db, orphan))?.state === 'delivered');
    expect(await row(db, orphan)).toMatchObject({ claimed_by: 'node-b', attempts: 2 });
    expect(hook.requests.map((r) => [r.id, r.verified])).toEqual([[orphan, 'ok']]);
    expect(JSON.parse(hook.requests[0]!.body)).toEqual(payload);
    expect(await row(db, held)).toMatchObject({ state: 'pending', claimed_by: 'node-a' });
  });

  it('lets go of its pending deliveries when it closes, for another node to finish at once', async () => {
    const db = await database();
    const hook = await receiver(() => 503);
    const a = service(db, alertsConfig({}, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 }), 'node-a');
    await a.start();
    hook.secret = (await a.createWebhook({ url: hook.url, createdBy: 'admin' })).secret;
    const e = await motionEvent(db);
    await a.onEvent({ phase: 'start', event: e }, camera());
    const [d] = await deliveriesOfEvent(db, e.id);
    await until('first try', async () => (await row(db, d!.id))?.attempts === 1);
    await a.close();
    expect(await row(db, d!.id)).toMatchObject({ state: 'pending', claimed_by: null });
    hook.answer = () => 200;
    await db.query('UPDATE alert_deliveries SET next_ms = 0 WHERE id = $1', [d!.id]);
    const b = service(db, alertsConfig(), 'node-b');
    await b.start();
    await until('finished by node-b', async () => (await row(db, d!.id))?.state === 'delivered');
    expect(await row(db, d!.id)).toMatchObject({ claimed_by: 'node-b', attempts: 2 });
    expect(() => a.listWebhooks()).toThrow(/closed/);
  });

  it('sends at most a few requests to one endpoint at once', async () => {
    const db = await database();
    const hook = await receiver(() => 200, 100);
    const alerts = service(db, alertsConfig());
    await alerts.start();
    hook.secret = (await alerts.createWebhook({ url: hook.url, createdBy: 'admin' })).secret;
    const events: MotionEvent[] = [];
    for (let i = 0; i < 10; i++) {
      const e = await motionEvent(db);
      events.push(e);
      await alerts.onEvent({ phase: 'start', event: e }, camera());
    }
    await until('all delivered', () => hook.successes === 10);
    expect(hook.maxInFlight).toBeLessThanOrEqual(4);
    expect(hook.requests.every((r) => r.verified === 'ok')).toBe(true);
  });

  it("sends only to enabled endpoints whose cameras take the event's camera; tests an endpoint on demand", async () => {
    const db = await database();
    const hook = await receiver(() => 200);
    const alerts = service(db, alertsConfig());
    await alerts.start();
    const other = await alerts.createWebhook({ url: `${hook.url}?other`, cameras: ['back'], createdBy: 'admin' });
    const off = await alerts.createWebhook({ url: `${hook.url}?off`, createdBy: 'admin' });
    expect(await alerts.setWebhookEnabled(off.id, false)).toMatchObject({ id: off.id, enabled: false });
    const mine = await alerts.createWebhook({ url: hook.url, cameras: ['front'], createdBy: 'admin' });
    hook.secret = mine.secret;
    await expect(alerts.createWebhook({ url: 'ftp://example.com/x', createdBy: 'admin' })).rejects.toThrow(/'url' must be an http:\/\/ or https:\/\/ URL/);
    await expect(alerts.createWebhook({ url: 'https://example.com', cameras: ['a b'], createdBy: 'admin' })).rejects.toThrow(/'cameras.0' must be a camera id/);
    expect((await alerts.listWebhooks()).map((w) => w.id)).toEqual([other.id, off.id, mine.id]);
    expect(JSON.stringify(await alerts.listWebhooks())).not.toContain('whsec_');

    const e = await motionEvent(db);
    await alerts.onEvent({ phase: 'start', event: e }, camera());
    await until('delivered', () => hook.successes === 1);
    expect(hook.requests.map((r) => r.path)).toEqual(['/hook']);
    expect((await deliveriesOfEvent(db, e.id)).length).toBe(1);

    const test = await alerts.testWebhook(mine.id);
    expect(test).toMatchObject({ ok: true, status: 200, error: null });
    expect(JSON.parse(hook.requests.at(-1)!.body)).toMatchObject({ type: 'webhook.test', data: { webhook: mine.id } });
    expect(hook.requests.at(-1)!.verified).toBe('ok');
    expect(await alerts.testWebhook('wh_none')).toBeNull();

    expect(await alerts.deleteWebhook(other.id)).toBe(true);
    expect(await alerts.deleteWebhook(other.id)).toBe(false);
    expect(await alerts.setWebhookEnabled('wh_none', true)).toBeNull();
  });
});

describe('alert rules in the service', () => {
  it('suppresses a second start within the cooldown, and sends no end for it', async () => {
    const db = await database();
    const hook = await receiver(() => 200);
    const alerts = service(db, alertsConfig());
    await alerts.start();
    hook.secret = (await alerts.createWebhook({ url: hook.url, createdBy: 'admin' })).secret;
    const cam = camera([{ name: 'door', cooldownS: 60 }]);
    const suppressed = await metric('cctv_alerts_total', { channel: 'webhook', result: 'suppressed' });
    const first = await motionEvent(db);
    await alerts.onEvent({ phase: 'start', event: first }, cam);
    await alerts.onEvent({ phase: 'end', event: ended(first) }, cam);
    const second = await motionEvent(db, { startMs: first.startMs + 10_000 });
    await alerts.onEvent({ phase: 'start', event: second }, cam);
    await alerts.onEvent({ phase: 'end', event: ended(second) }, cam);
    await until('first event delivered', () => hook.successes === 2);
    expect(await deliveriesOfEvent(db, second.id)).toEqual([]);
    expect(hook.requests.map((r) => [JSON.parse(r.body).type, JSON.parse(r.body).data.id])).toEqual([['event.start', first.id], ['event.end', first.id]]);
    expect(await metric('cctv_alerts_total', { channel: 'webhook', result: 'suppressed' })).toBe(suppressed + 1);
    // After the cooldown, the rule fires again.
    const third = await motionEvent(db, { startMs: first.startMs + 61_000 });
    await alerts.onEvent({ phase: 'start', event: third }, cam);
    expect(await deliveriesOfEvent(db, third.id)).toHaveLength(1);
  });

  it('sends nothing for an event outside the schedule, nor for zones or scores the rules do not take', async () => {
    const db = await database();
    const hook = await receiver(() => 200);
    const alerts = service(db, alertsConfig({ timeZone: 'UTC' }));
    await alerts.start();
    hook.secret = (await alerts.createWebhook({ url: hook.url, createdBy: 'admin' })).secret;
    const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
    // A window that opens two hours from now and lasts one: never now.
    const later = camera([{ name: 'later', schedule: [{ days: [0, 1, 2, 3, 4, 5, 6], from: hhmm(Date.now() + 2 * 3_600_000), to: hhmm(Date.now() + 3 * 3_600_000) }] }]);
    const e = await motionEvent(db);
    await alerts.onEvent({ phase: 'start', event: e }, later);
    await alerts.onEvent({ phase: 'end', event: ended(e) }, later);
    const picky = camera([{ name: 'gate', zones: ['gate'] }, { name: 'big', minScore: 0.9 }], [zone('gate'), zone('yard')]);
    const f = await motionEvent(db, { zones: ['yard'], peakScore: 0.5 });
    await alerts.onEvent({ phase: 'start', event: f }, picky);
    expect(await db.query('SELECT id FROM alert_deliveries')).toEqual([]);
    // The same event inside a window that is open now does alert.
    const now = camera([{ name: 'now', schedule: [{ days: [0, 1, 2, 3, 4, 5, 6], from: hhmm(Date.now() - 3_600_000), to: hhmm(Date.now() + 3_600_000) }] }]);
    const g = await motionEvent(db);
    await alerts.onEvent({ phase: 'start', event: g }, now);
    await until('delivered', () => hook.successes === 1);
    expect(hook.requests).toHaveLength(1);
  });
});

describe('MQTT', () => {
  async function subscriber(topics: string[]) {
    const client: MqttClient = await mqtt.connectAsync(MQTT_URL, { reconnectPeriod: 0 });
    cleanups.push(() => client.endAsync(true));
    const got: Array<{ topic: string; payload: string; retain: boolean }> = [];
    client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString('utf8'), retain: packet.retain }));
    await client.subscribeAsync(topics, { qos: 1 });
    return { client, got };
  }

  it('refuses messages past its queue bound while the broker is away, and rejects what waits when it closes', async () => {
    const m = new MqttPublisher({ config: { url: 'mqtt://127.0.0.1:1', topicPrefix: 'cctv', homeAssistant: true, discoveryPrefix: 'homeassistant' }, node: 'n', maxQueue: 2 });
    cleanups.push(() => m.close());
    m.start();
    const waiting = [m.motion('front', true), m.event('front', { type: 'event.start' })];
    const settled = Promise.allSettled(waiting);
    expect(m.queued).toBe(2);
    await expect(m.motion('front', false)).rejects.toThrow(/2 MQTT messages already wait for the broker/);
    await m.close();
    expect((await settled).map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(m.motion('front', false)).rejects.toThrow(/closed/);
  });

  it('publishes discovery, the retained ON then OFF states, and the event JSON; records the deliveries', async () => {
    const db = await database();
    const prefix = `cctv_test_${randomBytes(4).toString('hex')}`;
    const discovery = `ha_test_${randomBytes(4).toString('hex')}`;
    const sub = await subscriber([`${prefix}/#`, `${discovery}/#`]);
    // Retained messages outlive the test on the broker: cleared at the end.
    cleanups.push(async () => {
      for (const t of [`${prefix}/status`, `${prefix}/front/motion`, `${prefix}/front/zone/door/motion`, `${discovery}/binary_sensor/cctv_front_motion/config`]) {
        await sub.client.publishAsync(t, '', { retain: true, qos: 1 });
      }
    });
    const alerts = service(db, alertsConfig({ mqtt: { url: MQTT_URL, topicPrefix: prefix, homeAssistant: true, discoveryPrefix: discovery } }));
    await alerts.start();
    await until('online', () => sub.got.find((m) => m.topic === `${prefix}/status` && m.payload === 'online'));

    const cam = camera([{ name: 'door', zones: ['door'], cooldownS: 0 }], [zone('door')]);
    const e = await motionEvent(db, { zones: ['door'] });
    await alerts.onEvent({ phase: 'start', event: e }, cam);
    await alerts.onEvent({ phase: 'end', event: ended(e) }, cam);
    await until('OFF', () => sub.got.filter((m) => m.topic.startsWith(`${prefix}/front/`)).length === 6);
    const mine = sub.got.filter((m) => m.topic !== `${prefix}/status`);
    expect(mine.map((m) => [m.topic, m.topic.endsWith('/event') ? JSON.parse(m.payload).type : m.topic.endsWith('/config') ? 'config' : m.payload])).toEqual([
      [`${discovery}/binary_sensor/cctv_front_motion/config`, 'config'],
      [`${prefix}/front/motion`, 'ON'],
      [`${prefix}/front/zone/door/motion`, 'ON'],
      [`${prefix}/front/event`, 'event.start'],
      [`${prefix}/front/motion`, 'OFF'],
      [`${prefix}/front/zone/door/motion`, 'OFF'],
      [`${prefix}/front/event`, 'event.end'],
    ]);
    expect(JSON.parse(mine[0]!.payload)).toEqual({
      name: 'Motion', unique_id: 'cctv_front_motion', state_topic: `${prefix}/front/motion`, device_class: 'motion', payload_on: 'ON', payload_off: 'OFF',
      availability_topic: `${prefix}/status`, payload_available: 'online', payload_not_available: 'offline',
      device: { identifiers: ['cctv_front'], name: 'Front door', manufacturer: 'cctv' },
    });
    expect(JSON.parse(mine[3]!.payload)).toMatchObject({ type: 'event.start', id: e.id, camera: 'front', cameraName: 'Front door', zones: ['door'], rules: ['door'], endMs: null });
    expect(JSON.parse(mine[6]!.payload)).toMatchObject({ type: 'event.end', id: e.id, endMs: e.startMs + 2000 });

    await until('recorded', async () => (await alerts.deliveriesOf(e.id)).every((d) => d.state === 'delivered'));
    const rows = await alerts.deliveriesOf(e.id);
    expect(rows.map((d) => [d.channel, d.type, d.state, d.tries.length])).toEqual([['mqtt', 'event.start', 'delivered', 1], ['mqtt', 'event.end', 'delivered', 1]]);

    // The states are retained (a new subscriber gets them at once); the events are not.
    const late = await subscriber([`${prefix}/front/#`, `${prefix}/status`]);
    await until('retained', () => late.got.length >= 3);
    expect(late.got.map((m) => [m.topic, m.payload, m.retain]).sort()).toEqual([
      [`${prefix}/front/motion`, 'OFF', true],
      [`${prefix}/front/zone/door/motion`, 'OFF', true],
      [`${prefix}/status`, 'online', true],
    ]);

    // Closing says offline (retained).
    await alerts.close();
    await until('offline', () => late.got.find((m) => m.topic === `${prefix}/status` && m.payload === 'offline'));
  });
});
