import {
  InvalidStateError, counter, createLogger, histogram, type AlertRule, type CameraConfig, type Config, type Database,
} from '@cctv/core';
import type { EventNotice, MotionEvent } from '../motion/types.js';
import {
  AlertChannel, AlertType, Deliveries, DeliveryState, WebhookEndpoints,
  type Delivery, type DeliveryAttempt, type NewDelivery, type Webhook,
} from './deliveries.js';
import { MqttPublisher } from './mqtt.js';
import { Cooldowns, evaluateRules } from './rules.js';
import { newMessageId, signatureHeaders } from './standardWebhooks.js';

const log = createLogger('recorder:alerts');

const alertsTotal = counter(
  'cctv_alerts_total',
  'Alert deliveries by channel and result: delivered, failed (a try that failed; channel all: the alerts of an event could not be entered), retried (another try scheduled), dead (given up: the dead letters), suppressed (a rule cooling down).',
  ['channel', 'result'],
);
const alertDelay = histogram(
  'cctv_alert_delay_seconds',
  "From an event's first moving frame to its alert delivered (the receiver's 2xx, the broker's PUBACK).",
  ['channel'],
  [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600],
);

/** Requests in flight to one endpoint at most; more wait their turn. */
const MAX_PER_ENDPOINT = 4;
/** How often a node looks for deliveries whose node stopped, ms. */
const CLAIM_INTERVAL_MS = 5000;
/** A claim outlasts the try it covers by this much, ms. */
const CLAIM_MARGIN_MS = 10_000;
/** An MQTT delivery is held this long past each claim round (the client holds the message until the broker acks), ms. */
const MQTT_HOLD_MS = 60_000;
/** Of an answer that is not 2xx, this much of the body is kept as the error, characters. */
const ERROR_EXCERPT = 300;
/** Alerted events remembered as going on, per camera, at most. */
const MAX_LIVE_EVENTS = 32;
const USER_AGENT = 'cctv-alerts/0.1 (Standard Webhooks)';

export interface AlertServiceOptions {
  db: Database;
  /** This node's id: it claims the deliveries it sends. */
  node: string;
  /** The site's alert settings (`alerts` of the config). */
  config: Config['alerts'];
  /** The site's public base URL (e.g. https://cctv.example.com) for thumbnailUrl and eventUrl; default none (they are null). */
  publicUrl?: string | undefined;
  /** For tests; default the global fetch. */
  fetch?: typeof fetch;
}

/** The `data` of an event message (webhook body and MQTT event JSON). */
export interface AlertEventData {
  id: number;
  camera: string;
  cameraName: string;
  kind: MotionEvent['kind'];
  /** ISO 8601. */
  start: string;
  startMs: number;
  /** ISO 8601; null at the start. */
  end: string | null;
  endMs: number | null;
  peakScore: number;
  zones: string[];
  box: MotionEvent['box'];
  /** The detector node that saw it. */
  node: string;
  /** The rules that fired. */
  rules: string[];
  thumbnailUrl: string | null;
  eventUrl: string | null;
}

/** A Standard Webhooks message body. */
export interface AlertMessage<T = AlertEventData> {
  type: string;
  /** When the message was made, ISO 8601. */
  timestamp: string;
  data: T;
}

/** What `testWebhook` found. */
export interface WebhookTestResult {
  ok: boolean;
  /** The HTTP status; null when no answer came. */
  status: number | null;
  error: string | null;
  durationMs: number;
  /** The webhook-id of the test message. */
  messageId: string;
}

interface TryResult {
  status: number | null;
  error: string | null;
  durationMs: number;
  /** The try was cut short by close(): not recorded. */
  aborted: boolean;
}

/** Waits for 2xx bodies to be dropped and reads the start of other bodies (as the error). */
async function excerpt(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes < ERROR_EXCERPT * 4) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      bytes += value.length;
    }
  } catch {
    // Whatever came is enough.
  } finally {
    await reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, ERROR_EXCERPT);
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const cause = e.cause?.code ?? e.cause?.message;
  return cause ? `${e.message ?? 'request failed'} (${cause})` : (e.message ?? String(error));
}

/** The body of a webhook message with its keys in a stable, readable order (jsonb keeps its own). */
function webhookBody(payload: unknown): string {
  const p = payload as AlertMessage<Record<string, unknown>>;
  if (!p || typeof p !== 'object' || !('data' in p)) return JSON.stringify(payload);
  const order = ['id', 'camera', 'cameraName', 'kind', 'start', 'startMs', 'end', 'endMs', 'peakScore', 'zones', 'box', 'node', 'rules', 'thumbnailUrl', 'eventUrl'];
  const data: Record<string, unknown> = {};
  for (const k of order) if (k in p.data) data[k] = p.data[k];
  for (const k of Object.keys(p.data)) if (!(k in data)) data[k] = p.data[k];
  return JSON.stringify({ type: p.type, timestamp: p.timestamp, data });
}

/**
 * Motion alerts: decides which rules fire for an event (zones, score, schedule, cooldown) and delivers
 * them to the webhook endpoints (Standard Webhooks, signed, retried with exponential backoff until
 * they are delivered or go to the dead letters) and to an MQTT broker. Every message is a row in
 * `alert_deliveries` and every try a row in `alert_attempts`, so another node finishes the deliveries of
 * a node that stopped.
 */
export class AlertService {
  readonly node: string;
  readonly deliveries: Deliveries;
  readonly webhooks: WebhookEndpoints;
  #o: AlertServiceOptions;
  readonly #fetch: typeof fetch;
  readonly #mqtt: MqttPublisher | null;
  readonly #cooldowns = new Cooldowns();
  readonly #chains = new Map<string, Promise<void>>();
  /** Deliveries queued or being sent by this node. */
  readonly #active = new Set<string>();
  readonly #endpoints = new Map<string, { running: number; waiting: Array<() => void> }>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #work = new Set<Promise<unknown>>();
  /** Alerted events going on, per camera, with the zones they moved in (for the retained MQTT states). */
  readonly #live = new Map<string, Map<number, Set<string>>>();
  readonly #abort = new AbortController();
  #claimTimer: NodeJS.Timeout | null = null;
  #claiming: Promise<void> = Promise.resolve();
  #started = false;
  #closed = false;

  constructor(o: AlertServiceOptions) {
    this.#o = o;
    this.node = o.node;
    this.#fetch = o.fetch ?? fetch;
    this.deliveries = new Deliveries(o.db);
    this.webhooks = new WebhookEndpoints(o.db);
    this.#mqtt = o.config.mqtt ? new MqttPublisher({ config: o.config.mqtt, node: o.node }) : null;
  }

  /** Sets the base URL of links in alerts once it is known (the server listens after the service starts). */
  setPublicUrl(url: string): void {
    if (this.#o.publicUrl === undefined) this.#o = { ...this.#o, publicUrl: url };
  }

  /** The MQTT publisher; null without `alerts.mqtt`. */
  get mqtt(): MqttPublisher | null {
    return this.#mqtt;
  }

  #check(): void {
    if (this.#closed) throw new InvalidStateError('the alert service is closed');
  }

  /** Connects to the MQTT broker, takes over deliveries whose node stopped, and keeps doing so every few seconds. */
  async start(): Promise<void> {
    this.#check();
    if (this.#started) return;
    this.#started = true;
    this.#mqtt?.start();
    await this.#claim();
    this.#claimTimer = setInterval(() => {
      this.#claiming = this.#claiming.then(() => this.#claim());
    }, CLAIM_INTERVAL_MS);
    this.#claimTimer.unref();
    log.info({ node: this.node, mqtt: Boolean(this.#mqtt) }, 'alert service running');
  }

  /**
   * An event started ('start') or ended ('end') on a camera (`camera` is its config). Writes the
   * delivery rows and starts sending; never waits for a receiver. Notices of one camera are handled in
   * the order given. Never rejects: what cannot be written is logged and counted as failed.
   */
  onEvent(notice: EventNotice, camera: CameraConfig): Promise<void> {
    this.#check();
    if (notice.phase === 'update') return Promise.resolve();
    const prev = this.#chains.get(camera.id) ?? Promise.resolve();
    const next = prev.then(() => this.#handle(notice, camera)).catch((error: unknown) => {
      alertsTotal.inc({ channel: 'all', result: 'failed' });
      log.error({ camera: camera.id, event: notice.event.id, phase: notice.phase, err: error }, 'cannot enter the alerts of an event');
    });
    this.#chains.set(camera.id, next);
    void next.then(() => {
      if (this.#chains.get(camera.id) === next) this.#chains.delete(camera.id);
    });
    return next;
  }

  async #handle(notice: EventNotice, camera: CameraConfig): Promise<void> {
    if (this.#closed) return;
    const rules = camera.motion.alerts;
    if (this.#mqtt && rules.some((r) => r.mqtt)) this.#mqtt.announce(camera);
    if (notice.phase === 'start') await this.#onStart(notice.event, camera, rules);
    else await this.#onEnd(notice.event, camera);
  }

  #data(e: MotionEvent, camera: CameraConfig, rules: string[]): AlertEventData {
    const base = this.#o.publicUrl?.replace(/\/+$/, '');
    return {
      id: e.id, camera: e.camera, cameraName: camera.name ?? camera.id, kind: e.kind,
      start: new Date(e.startMs).toISOString(), startMs: e.startMs,
      end: e.endMs === null ? null : new Date(e.endMs).toISOString(), endMs: e.endMs,
      peakScore: e.peakScore, zones: e.zones, box: e.box, node: e.node, rules,
      thumbnailUrl: base && e.hasThumbnail ? `${base}/api/events/${e.id}/thumbnail.jpg` : null,
      eventUrl: base ? `${base}/api/events/${e.id}` : null,
    };
  }

  async #onStart(e: MotionEvent, camera: CameraConfig, rules: readonly AlertRule[]): Promise<void> {
    const verdict = evaluateRules(camera.id, rules, e, { cooldowns: this.#cooldowns, timeZone: this.#o.config.timeZone });
    for (const r of verdict.suppressed) {
      if (r.webhooks) alertsTotal.inc({ channel: AlertChannel.Webhook, result: 'suppressed' });
      if (r.mqtt && this.#mqtt) alertsTotal.inc({ channel: AlertChannel.Mqtt, result: 'suppressed' });
    }
    if (verdict.suppressed.length > 0) log.debug({ camera: camera.id, event: e.id, rules: verdict.suppressed.map((r) => r.name) }, 'alert suppressed: the rule is cooling down');
    if (verdict.fired.length === 0) return;
    const names = verdict.fired.map((r) => r.name);
    const message: AlertMessage = { type: AlertType.EventStart, timestamp: new Date().toISOString(), data: this.#data(e, camera, names) };
    const endpoints = verdict.fired.some((r) => r.webhooks) ? await this.webhooks.forCamera(camera.id) : [];
    const mqtt = this.#mqtt !== null && verdict.fired.some((r) => r.mqtt);
    await this.#enter(e, camera, message, endpoints, mqtt);
    log.info({ camera: camera.id, event: e.id, rules: names, webhooks: endpoints.length, mqtt }, 'motion alert');
  }

  async #onEnd(e: MotionEvent, camera: CameraConfig): Promise<void> {
    const starts = await this.deliveries.startsOf(e.id);
    if (starts.length === 0) return;
    const names = starts[0]!.rules;
    const ids = [...new Set(starts.filter((s) => s.channel === AlertChannel.Webhook && s.webhookId).map((s) => s.webhookId!))];
    const open = await this.webhooks.enabledOf(ids);
    const endpoints = ids.filter((id) => open.has(id));
    const mqtt = this.#mqtt !== null && starts.some((s) => s.channel === AlertChannel.Mqtt);
    const message: AlertMessage = { type: AlertType.EventEnd, timestamp: new Date().toISOString(), data: this.#data(e, camera, names) };
    await this.#enter(e, camera, message, endpoints, mqtt);
  }

  /** Writes the deliveries of one message, then sends them (not waited for). */
  async #enter(e: MotionEvent, camera: CameraConfig, message: AlertMessage, endpoints: string[], mqtt: boolean): Promise<void> {
    const now = Date.now();
    const claimUntilMs = now + this.#o.config.webhook.timeoutMs + CLAIM_MARGIN_MS;
    const rows: NewDelivery[] = endpoints.map((webhookId) => ({
      id: newMessageId(), eventId: e.id, camera: camera.id, channel: AlertChannel.Webhook, webhookId, type: message.type,
      payload: message, motionMs: e.startMs, claimedBy: this.node, claimUntilMs,
    }));
    const mqttBody = { type: message.type, timestamp: message.timestamp, ...message.data };
    const mqttRow: NewDelivery | null = mqtt
      ? { id: newMessageId(), eventId: e.id, camera: camera.id, channel: AlertChannel.Mqtt, webhookId: null, type: message.type, payload: mqttBody, motionMs: e.startMs, claimedBy: this.node, claimUntilMs: now + MQTT_HOLD_MS }
      : null;
    await this.deliveries.insert(mqttRow ? [...rows, mqttRow] : rows, now);
    for (const r of rows) this.#kick(r.id, r.webhookId!);
    if (mqttRow) this.#publishMqtt(mqttRow, message.type === AlertType.EventStart, e);
  }

  // --- MQTT -------------------------------------------------------------------------------------

  /** Publishes the states and the event JSON of one message; the delivery is settled on the broker's acks. */
  #publishMqtt(row: NewDelivery, starting: boolean, e: MotionEvent): void {
    const m = this.#mqtt!;
    const camera = row.camera;
    const startedAt = Date.now();
    const sent: Array<Promise<void>> = [];
    let live = this.#live.get(camera);
    if (starting) {
      if (!live) this.#live.set(camera, (live = new Map()));
      live.set(e.id, new Set(e.zones));
      // An event whose end never came (its detector stopped) is forgotten after a while.
      if (live.size > MAX_LIVE_EVENTS) live.delete(live.keys().next().value!);
      sent.push(m.motion(camera, true));
      for (const z of e.zones) sent.push(m.zone(camera, z, true));
    } else {
      const zones = new Set([...(live?.get(e.id) ?? []), ...e.zones]);
      live?.delete(e.id);
      if (live?.size === 0) this.#live.delete(camera);
      const still = new Set([...(live?.values() ?? [])].flatMap((s) => [...s]));
      if (!live || live.size === 0) sent.push(m.motion(camera, false));
      for (const z of zones) if (!still.has(z)) sent.push(m.zone(camera, z, false));
    }
    sent.push(m.event(camera, row.payload));
    this.#settleMqtt(row.id, row.motionMs, startedAt, Promise.all(sent));
  }

  #settleMqtt(id: string, motionMs: number, startedAt: number, acked: Promise<unknown>): void {
    const work = acked.then(
      async () => {
        const now = Date.now();
        await this.deliveries.settleMqtt(id, this.node, true, { atMs: startedAt, durationMs: now - startedAt }, null, now);
        alertsTotal.inc({ channel: AlertChannel.Mqtt, result: 'delivered' });
        alertDelay.observe({ channel: AlertChannel.Mqtt }, Math.max(0, now - motionMs) / 1000);
      },
      async (error: unknown) => {
        alertsTotal.inc({ channel: AlertChannel.Mqtt, result: 'dead' });
        log.warn({ delivery: id, err: error }, 'an MQTT alert was not published');
        await this.deliveries.settleMqtt(id, this.node, false, { atMs: startedAt, durationMs: Date.now() - startedAt }, (error as Error).message ?? String(error));
      },
    ).catch((error: unknown) => log.warn({ delivery: id, err: error }, 'cannot record an MQTT delivery'));
    this.#track(work);
  }

  #track(p: Promise<unknown>): void {
    this.#work.add(p);
    void p.finally(() => this.#work.delete(p));
  }

  // --- Webhooks ---------------------------------------------------------------------------------

  /** Sends a delivery now (after the ones before it to the same endpoint); at most a few requests per endpoint at once. */
  #kick(id: string, webhookId: string): void {
    if (this.#closed || this.#active.has(id)) return;
    this.#active.add(id);
    let ep = this.#endpoints.get(webhookId);
    if (!ep) this.#endpoints.set(webhookId, (ep = { running: 0, waiting: [] }));
    const slot = ep;
    const run = () => {
      slot.running++;
      const p = this.#attempt(id)
        .catch((error: unknown) => log.warn({ delivery: id, err: error }, 'a webhook try could not be recorded; another round takes it up'))
        .finally(() => {
          this.#active.delete(id);
          slot.running--;
          const next = slot.waiting.shift();
          if (next) next();
          else if (slot.running === 0) this.#endpoints.delete(webhookId);
        });
      this.#track(p);
    };
    if (slot.running < MAX_PER_ENDPOINT) run();
    else slot.waiting.push(run);
  }

  /** Sends a delivery at `atMs` (now or later). */
  #schedule(id: string, webhookId: string, atMs: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timers.get(id));
    const t = setTimeout(() => {
      this.#timers.delete(id);
      this.#kick(id, webhookId);
    }, Math.max(0, atMs - Date.now()));
    t.unref();
    this.#timers.set(id, t);
  }

  /** The wait before try n + 1 after n failed tries: doubling from initialBackoffMs, at most maxBackoffMs, ±20 %. */
  #backoff(failed: number): number {
    const w = this.#o.config.webhook;
    const base = Math.min(w.initialBackoffMs * 2 ** Math.min(failed - 1, 40), w.maxBackoffMs);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  /** One try of a webhook delivery this node holds: POST, then the outcome written (delivered, retry later, or dead). */
  async #attempt(id: string): Promise<void> {
    const w = this.#o.config.webhook;
    const d = await this.deliveries.renew(id, this.node, Date.now() + w.timeoutMs + CLAIM_MARGIN_MS);
    if (!d || this.#closed) return;
    const endpoint = d.webhookId ? await this.webhooks.withSecret(d.webhookId) : null;
    if (!endpoint || !endpoint.enabled) {
      const why = endpoint ? 'the endpoint is disabled' : 'the endpoint was deleted';
      await this.deliveries.kill(id, this.node, why);
      alertsTotal.inc({ channel: AlertChannel.Webhook, result: 'dead' });
      log.info({ delivery: id, webhook: d.webhookId }, `webhook delivery given up: ${why}`);
      return;
    }
    const atMs = Date.now();
    const r = await this.#post(endpoint.url, endpoint.secret, id, webhookBody(d.payload));
    if (r.aborted) return;
    const attempts = d.attempts + 1;
    const now = Date.now();
    const ok = r.status !== null && r.status >= 200 && r.status < 300;
    const gone = r.status === 410;
    const at = { atMs, durationMs: r.durationMs };
    if (ok) {
      await this.deliveries.recordAttempt(id, this.node, at, { state: DeliveryState.Delivered, attempts, nextMs: d.nextMs, claimUntilMs: null, status: r.status, error: null, deliveredMs: now });
      alertsTotal.inc({ channel: AlertChannel.Webhook, result: 'delivered' });
      alertDelay.observe({ channel: AlertChannel.Webhook }, Math.max(0, now - d.motionMs) / 1000);
      log.debug({ delivery: id, webhook: endpoint.id, status: r.status, attempts }, 'webhook delivered');
      return;
    }
    alertsTotal.inc({ channel: AlertChannel.Webhook, result: 'failed' });
    if (gone || attempts >= w.maxAttempts) {
      await this.deliveries.recordAttempt(id, this.node, at, { state: DeliveryState.Dead, attempts, nextMs: d.nextMs, claimUntilMs: null, status: r.status, error: r.error, deliveredMs: null });
      alertsTotal.inc({ channel: AlertChannel.Webhook, result: 'dead' });
      if (gone) {
        // Standard Webhooks: 410 Gone means the receiver wants no more messages.
        log.warn({ delivery: id, webhook: endpoint.id, url: endpoint.url }, 'the webhook endpoint answered 410 Gone: delivery given up; disable or delete the endpoint');
      } else {
        log.warn({ delivery: id, webhook: endpoint.id, attempts, status: r.status, error: r.error }, 'webhook delivery given up after its last try: in the dead letters');
      }
      return;
    }
    const nextMs = now + this.#backoff(attempts);
    await this.deliveries.recordAttempt(id, this.node, at, {
      state: DeliveryState.Pending, attempts, nextMs, claimUntilMs: nextMs + w.timeoutMs + CLAIM_MARGIN_MS, status: r.status, error: r.error, deliveredMs: null,
    });
    alertsTotal.inc({ channel: AlertChannel.Webhook, result: 'retried' });
    log.debug({ delivery: id, webhook: endpoint.id, attempts, status: r.status, error: r.error, retryInMs: nextMs - now }, 'webhook try failed; retrying');
    this.#schedule(id, endpoint.id, nextMs);
  }

  /** POSTs a signed message; never throws. */
  async #post(url: string, secret: string, msgId: string, body: string): Promise<TryResult> {
    const timeoutMs = this.#o.config.webhook.timeoutMs;
    const started = performance.now();
    const took = () => Math.round(performance.now() - started);
    try {
      const res = await this.#fetch(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...signatureHeaders(secret, msgId, body) },
        signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#abort.signal]),
        // A redirect is an answer that is not 2xx: the endpoint's URL is to be fixed, not followed.
        redirect: 'manual',
      });
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel().catch(() => {});
        return { status: res.status, error: null, durationMs: took(), aborted: false };
      }
      const text = res.status >= 300 && res.status < 400 ? `redirects are not followed (Location: ${res.headers.get('location') ?? 'none'})` : await excerpt(res);
      return { status: res.status, error: `HTTP ${res.status}${text ? `: ${text}` : ''}`, durationMs: took(), aborted: false };
    } catch (error) {
      if (this.#abort.signal.aborted) return { status: null, error: 'closing', durationMs: took(), aborted: true };
      return { status: null, error: describeFetchError(error, timeoutMs), durationMs: took(), aborted: false };
    }
  }

  /** Claims deliveries whose claim ran out (their node stopped) and schedules them; holds this node's MQTT deliveries. */
  async #claim(): Promise<void> {
    if (this.#closed) return;
    try {
      const now = Date.now();
      const taken = await this.deliveries.claimExpired(this.node, AlertChannel.Webhook, now, this.#o.config.webhook.timeoutMs + CLAIM_MARGIN_MS);
      if (taken.length > 0) log.info({ deliveries: taken.length }, 'took over pending webhook deliveries');
      for (const d of taken) if (d.webhookId) this.#schedule(d.id, d.webhookId, d.nextMs);
      else await this.deliveries.kill(d.id, this.node, 'a webhook delivery without an endpoint');
      await this.deliveries.holdClaims(this.node, AlertChannel.Mqtt, now + MQTT_HOLD_MS);
      const lost = await this.deliveries.expireMqtt(now);
      if (lost > 0) {
        alertsTotal.inc({ channel: AlertChannel.Mqtt, result: 'dead' }, lost);
        log.warn({ deliveries: lost }, 'MQTT deliveries of a node that stopped were lost with it: in the dead letters');
      }
    } catch (error) {
      log.warn({ err: error }, 'cannot look for deliveries to take over now');
    }
  }

  // --- Admin ------------------------------------------------------------------------------------

  /** A dead delivery back to pending with its tries counted from 0, sent now; null when there is no dead delivery with this id. */
  async retry(deliveryId: string): Promise<Delivery | null> {
    this.#check();
    const existing = await this.deliveries.get(deliveryId);
    if (!existing || existing.state !== DeliveryState.Dead) return null;
    if (existing.channel === AlertChannel.Mqtt && !this.#mqtt) throw new InvalidStateError('this node publishes to no MQTT broker (alerts.mqtt): it cannot retry an MQTT delivery');
    const holdMs = existing.channel === AlertChannel.Mqtt ? MQTT_HOLD_MS : this.#o.config.webhook.timeoutMs + CLAIM_MARGIN_MS;
    const d = await this.deliveries.revive(deliveryId, this.node, Date.now() + holdMs);
    if (!d) return null;
    log.info({ delivery: d.id, channel: d.channel, webhook: d.webhookId }, 'dead delivery retried');
    if (d.channel === AlertChannel.Webhook && d.webhookId) this.#kick(d.id, d.webhookId);
    else if (d.channel === AlertChannel.Mqtt) {
      // The event message again; the retained states have moved on since.
      this.#settleMqtt(d.id, d.motionMs, Date.now(), this.#mqtt!.event(d.camera, d.payload));
    }
    return d;
  }

  /** The dead letters, newest first: `limit` (1–500, default 50), `before` a cursor from the previous page's `next`. */
  listDead(o: { limit?: number | undefined; before?: string | undefined } = {}): Promise<{ deliveries: Delivery[]; next: string | null }> {
    this.#check();
    return this.deliveries.dead({ ...(o.limit !== undefined ? { limit: o.limit } : {}), ...(o.before !== undefined ? { before: o.before } : {}) });
  }

  /** Every delivery of an event, with its tries. */
  deliveriesOf(eventId: number): Promise<Array<Delivery & { tries: DeliveryAttempt[] }>> {
    this.#check();
    return this.deliveries.ofEvent(eventId);
  }

  /** Adds a webhook endpoint (http or https URL; cameras: null or left out for every camera). The answer holds the secret, shown once. */
  createWebhook(o: { url: string; cameras?: string[] | null | undefined; createdBy: string }): Promise<Webhook & { secret: string }> {
    this.#check();
    return this.webhooks.create(o);
  }

  /** The webhook endpoints, without their secrets. */
  listWebhooks(): Promise<Webhook[]> {
    this.#check();
    return this.webhooks.list();
  }

  /** Removes an endpoint; its pending deliveries go to the dead letters. False when there is none. */
  deleteWebhook(id: string): Promise<boolean> {
    this.#check();
    return this.webhooks.delete(id);
  }

  /** Turns an endpoint on or off (off: its deliveries go to the dead letters at their next try). Null when there is none. */
  setWebhookEnabled(id: string, enabled: boolean): Promise<Webhook | null> {
    this.#check();
    return this.webhooks.setEnabled(id, enabled);
  }

  /** Sends a signed `webhook.test` message to an endpoint once (no retries, not recorded); null when there is no such endpoint. */
  async testWebhook(id: string): Promise<WebhookTestResult | null> {
    this.#check();
    const endpoint = await this.webhooks.withSecret(id);
    if (!endpoint) return null;
    const messageId = newMessageId();
    const body: AlertMessage<{ webhook: string; node: string }> = { type: AlertType.Test, timestamp: new Date().toISOString(), data: { webhook: id, node: this.node } };
    const r = await this.#post(endpoint.url, endpoint.secret, messageId, JSON.stringify(body));
    const ok = r.status !== null && r.status >= 200 && r.status < 300;
    return { ok, status: r.status, error: r.aborted ? 'the service closed' : r.error, durationMs: r.durationMs, messageId };
  }

  /**
   * Stops: requests in flight are cut short (not counted as tries), this node's pending webhook
   * deliveries are let go so another node takes them at once, the MQTT client disconnects. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#claimTimer) clearInterval(this.#claimTimer);
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const ep of this.#endpoints.values()) ep.waiting.length = 0;
    this.#abort.abort();
    await this.#claiming;
    await Promise.allSettled([...this.#chains.values()]);
    await this.#mqtt?.close();
    await Promise.allSettled([...this.#work]);
    try {
      const n = await this.deliveries.release(this.node, AlertChannel.Webhook);
      if (n > 0) log.info({ deliveries: n }, 'let go of pending webhook deliveries for another node');
    } catch (error) {
      log.warn({ err: error }, 'cannot let go of pending deliveries; another node takes them when their claim runs out');
    }
    this.#live.clear();
  }
}
