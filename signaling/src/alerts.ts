import type { Request, Response } from 'express';
import { z } from 'zod';
import { CAMERA_ID_PATTERN, parseWith, redactUrl } from '@cctv/core';
import { AuditAction, type AuditLog } from './auth/audit.js';
import { principal, requestMeta } from './auth/routes.js';
import { Permission } from './auth/permissions.js';
import { ApiError } from './errors.js';
import { IsoTime } from './schemas.js';
import type { Route } from './app.js';

/** A webhook endpoint as the API shows it (never with its secret, except once when it is made). */
export interface WebhookView {
  id: string;
  url: string;
  /** null: every camera. */
  cameras: string[] | null;
  enabled: boolean;
  createdBy: string;
  createdAt: string;
}

/** An alert delivery as the API shows it (the recorder's `Delivery`). */
export interface DeliveryView {
  id: string;
  eventId: number;
  camera: string;
  channel: string;
  webhookId: string | null;
  type: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
}

/** What the alert routes use of the recorder's AlertService. */
export interface AlertAdmin {
  createWebhook(o: { url: string; cameras?: string[] | null | undefined; createdBy: string }): Promise<WebhookView & { secret: string }>;
  listWebhooks(): Promise<WebhookView[]>;
  deleteWebhook(id: string): Promise<boolean>;
  setWebhookEnabled(id: string, enabled: boolean): Promise<WebhookView | null>;
  testWebhook(id: string): Promise<{ ok: boolean; status: number | null; error: string | null; durationMs: number; messageId: string } | null>;
  listDead(o: { limit?: number | undefined; before?: string | undefined }): Promise<{ deliveries: DeliveryView[]; next: string | null }>;
  retry(deliveryId: string): Promise<DeliveryView | null>;
}

const WEBHOOK_ID = /^wh_[A-Za-z0-9_-]{1,64}$/;
const DELIVERY_ID = /^msg_[A-Za-z0-9_-]{1,64}$/;

function httpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

const NewWebhookSchema = z.strictObject({
  url: z.string().max(2000).refine(httpUrl, 'must be an http:// or https:// URL'),
  /** Default (or null): every camera. */
  cameras: z.array(z.string().regex(CAMERA_ID_PATTERN, 'must be a camera id')).min(1, 'must name at least one camera, or be left out for every camera').max(1000).nullable().optional(),
});
const ChangeWebhookSchema = z.strictObject({ enabled: z.boolean() });
const DeadQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).optional(),
  before: z.string().max(100).optional(),
});

const WebhookViewSchema = z.strictObject({
  id: z.string(), url: z.string(), cameras: z.array(z.string()).nullable(), enabled: z.boolean(), createdBy: z.string(), createdAt: IsoTime,
});
const DeliveryViewSchema = z.looseObject({
  id: z.string(), eventId: z.number().int(), camera: z.string(), channel: z.string(), webhookId: z.string().nullable(), type: z.string(),
  state: z.string(), attempts: z.number().int(), lastStatus: z.number().int().nullable(), lastError: z.string().nullable(),
});
const WebhookTestSchema = z.strictObject({ ok: z.boolean(), status: z.number().int().nullable(), error: z.string().nullable(), durationMs: z.number(), messageId: z.string() });

/**
 * Webhook endpoints and the dead letters of alert deliveries. `service` is null on a server that sends
 * no alerts: every route then answers NO_ALERTS.
 */
export function alertRoutes(service: AlertAdmin | null, audit: Pick<AuditLog, 'append'>, trustProxy = false): Route[] {
  const need = (): AlertAdmin => {
    if (!service) throw new ApiError('NO_ALERTS', 'this server has no alert service: webhooks and deliveries are managed where alerts are sent');
    return service;
  };
  const webhookId = (req: Request): string => {
    const id = String(req.params.webhook ?? '');
    if (!WEBHOOK_ID.test(id)) throw new ApiError('WEBHOOK_NOT_FOUND', `no webhook endpoint '${id.slice(0, 80)}'`);
    return id;
  };
  const record = (req: Request, res: Response, action: string, target: string, details: Record<string, unknown>) => {
    const p = principal(res);
    return audit.append({ actor: p.username ?? 'anonymous', actorKind: p.kind === 'anonymous' ? 'anonymous' : p.kind, action, target, ip: requestMeta(req, trustProxy).ip, details });
  };
  return [
    {
      method: 'GET', path: '/api/webhooks', permission: Permission.AlertsManage,
      summary: 'The webhook endpoints that get motion alerts (without their secrets)',
      responses: { 200: z.strictObject({ webhooks: z.array(WebhookViewSchema) }) },
      handler: async (_req, res) => {
        res.json({ webhooks: await need().listWebhooks() });
      },
    },
    {
      method: 'POST', path: '/api/webhooks', permission: Permission.AlertsManage, body: 'json',
      summary: 'Add a webhook endpoint { url, cameras? } (cameras left out: every camera); the answer holds its signing secret, shown only this once',
      request: { body: NewWebhookSchema },
      responses: { 201: WebhookViewSchema.extend({ secret: z.string() }) },
      handler: async (req, res) => {
        const b = parseWith(NewWebhookSchema, req.body ?? {});
        const created = await need().createWebhook({ url: b.url, cameras: b.cameras ?? null, createdBy: principal(res).username ?? 'unknown' });
        await record(req, res, AuditAction.WebhookCreated, created.id, { url: redactUrl(created.url), cameras: created.cameras });
        res.status(201).location(`/api/webhooks/${created.id}`).json(created);
      },
    },
    {
      method: 'PATCH', path: '/api/webhooks/:webhook', permission: Permission.AlertsManage, body: 'json',
      summary: 'Turn a webhook endpoint on or off: { enabled }',
      request: { body: ChangeWebhookSchema },
      responses: { 200: WebhookViewSchema },
      handler: async (req, res) => {
        const id = webhookId(req);
        const b = parseWith(ChangeWebhookSchema, req.body ?? {});
        const w = await need().setWebhookEnabled(id, b.enabled);
        if (!w) throw new ApiError('WEBHOOK_NOT_FOUND', `no webhook endpoint '${id}'`);
        await record(req, res, AuditAction.WebhookChanged, id, { enabled: w.enabled });
        res.json(w);
      },
    },
    {
      method: 'DELETE', path: '/api/webhooks/:webhook', permission: Permission.AlertsManage,
      summary: 'Remove a webhook endpoint; its pending deliveries go to the dead letters',
      responses: { 204: 'empty' },
      handler: async (req, res) => {
        const id = webhookId(req);
        const a = need();
        const w = (await a.listWebhooks()).find((x) => x.id === id);
        if (!w || !(await a.deleteWebhook(id))) throw new ApiError('WEBHOOK_NOT_FOUND', `no webhook endpoint '${id}'`);
        await record(req, res, AuditAction.WebhookDeleted, id, { url: redactUrl(w.url), cameras: w.cameras });
        res.status(204).end();
      },
    },
    {
      method: 'POST', path: '/api/webhooks/:webhook/test', permission: Permission.AlertsManage,
      summary: 'Send a signed webhook.test message to an endpoint once and say what it answered',
      responses: { 200: WebhookTestSchema },
      handler: async (req, res) => {
        const id = webhookId(req);
        const r = await need().testWebhook(id);
        if (!r) throw new ApiError('WEBHOOK_NOT_FOUND', `no webhook endpoint '${id}'`);
        res.json(r);
      },
    },
    {
      method: 'GET', path: '/api/alerts/dead', permission: Permission.AlertsManage,
      summary: 'Alert deliveries given up (the dead letters), newest first: ?limit (1–500, default 50) and ?before (the `next` of the previous page)',
      request: { query: DeadQuerySchema },
      responses: { 200: z.strictObject({ deliveries: z.array(DeliveryViewSchema), next: z.string().nullable() }) },
      handler: async (req, res) => {
        const q = parseWith(DeadQuerySchema, req.query);
        res.json(await need().listDead({ limit: q.limit, before: q.before }));
      },
    },
    {
      method: 'POST', path: '/api/alerts/deliveries/:delivery/retry', permission: Permission.AlertsManage,
      summary: 'Send a dead delivery again: back to pending with its tries counted from 0',
      responses: { 202: DeliveryViewSchema },
      handler: async (req, res) => {
        const id = String(req.params.delivery ?? '');
        if (!DELIVERY_ID.test(id)) throw new ApiError('DELIVERY_NOT_FOUND', `no alert delivery '${id.slice(0, 80)}'`);
        const d = await need().retry(id);
        if (!d) throw new ApiError('DELIVERY_NOT_FOUND', `no dead alert delivery '${id}' (only a dead delivery can be retried)`);
        await record(req, res, AuditAction.DeliveryRetried, id, { event: d.eventId, camera: d.camera, channel: d.channel, webhook: d.webhookId });
        res.status(202).json(d);
      },
    },
  ];
}
