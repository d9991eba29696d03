import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import { Channel, ROLES, ValidationError, type Config, type Role } from '@cctv/core';
import type { Route } from '../app.js';
import { ApiError } from '../errors.js';
import { ErrorBodySchema, IsoTime } from '../schemas.js';
import { AuditAction } from '../auth/audit.js';
import { Permission, canSeeCamera } from '../auth/permissions.js';
import { principal, requestMeta } from '../auth/routes.js';
import type { AuthService } from '../auth/service.js';
import type { ChangeQueue } from '../changes.js';
import type { Cluster } from './cluster.js';
import type { NodeEntry } from './registry.js';

const NODE_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;
const PEM_PUBLIC = /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/;

function nodeId(req: Request): string {
  const id = String(req.params.id ?? '');
  if (!NODE_ID.test(id)) throw new ApiError('NODE_NOT_FOUND', `no node with id '${id.slice(0, 80)}'`);
  return id;
}

function roles(v: unknown, field: string): Role[] {
  if (!Array.isArray(v) || v.length === 0 || !v.every((r) => (ROLES as readonly string[]).includes(r))) {
    throw new ValidationError(field, `must be a non-empty list of roles (${ROLES.join(', ')})`);
  }
  return [...new Set(v as Role[])];
}

function sameSecret(a: string, b: string): boolean {
  const h = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(h(a), h(b));
}

/** A node as the API shows it. */
export function nodeView(c: Cluster, id: string): Record<string, unknown> {
  const n: NodeEntry | undefined = c.registry.get(id);
  const enrolled = c.nodes.get(id);
  const hb = n?.heartbeat;
  const leader = c.leadership.leaderId;
  const version = c.master.configVersion;
  return {
    id,
    roles: hb?.roles ?? enrolled?.roles ?? [],
    state: n?.state ?? 'unseen',
    since: n?.since ?? null,
    deathReason: n?.deathReason ?? null,
    drained: enrolled?.drained ?? false,
    enrolled: !!enrolled,
    leader: leader === id,
    labels: hb?.labels ?? {},
    version: hb?.version ?? null,
    startedAt: hb?.startedAt ?? null,
    lastHeartbeatAt: n?.receivedAt ?? null,
    addresses: hb?.addresses ?? null,
    load: hb?.load ?? null,
    cameras: hb?.cameras.map((s) => ({ id: s.id, state: s.state })) ?? [],
    rooms: hb?.rooms.map((r) => ({ camera: r.camera, viewers: r.viewers, codec: r.codec, lastPacketAt: r.lastPacketAt || null, streamStartAt: r.streamStartAt || null })) ?? [],
    clock: {
      offsetMs: n?.clockOffsetMs === null || n?.clockOffsetMs === undefined ? null : Math.round(n.clockOffsetMs * 10) / 10,
      warning: n ? c.registry.clockWarning(n) : false,
      ntp: hb?.ntp ?? null,
    },
    config: {
      applied: hb?.appliedVersion ?? null,
      current: version,
      // Only nodes that run cameras or rooms take the config.
      upToDate: hb && (hb.roles.includes('camera-node') || hb.roles.includes('sfu')) ? hb.appliedVersion >= version : null,
    },
    history: n?.history ?? [],
  };
}

const NodeViewSchema = z.looseObject({
  id: z.string(),
  roles: z.array(z.string()),
  state: z.string(),
  since: z.number().nullable(),
  deathReason: z.string().nullable(),
  drained: z.boolean(),
  enrolled: z.boolean(),
  leader: z.boolean(),
  labels: z.record(z.string(), z.string()),
  version: z.string().nullable(),
  startedAt: z.number().nullable(),
  lastHeartbeatAt: z.number().nullable(),
  addresses: z.looseObject({}).nullable(),
  load: z.looseObject({}).nullable(),
  cameras: z.array(z.strictObject({ id: z.string(), state: z.string() })),
  rooms: z.array(z.looseObject({ camera: z.string(), viewers: z.number() })),
  clock: z.strictObject({ offsetMs: z.number().nullable(), warning: z.boolean(), ntp: z.unknown() }),
  config: z.strictObject({ applied: z.number().nullable(), current: z.number(), upToDate: z.boolean().nullable() }),
  history: z.array(z.unknown()),
});
const Roles = z.array(z.enum(ROLES)).min(1);
/** Checked by hand in the handler (its messages name the field); this describes it. */
const EnrollSchema = z.strictObject({
  id: z.string().regex(NODE_ID),
  roles: Roles,
  publicKey: z.string().describe('PEM public key (SPKI)'),
  boxPublicKey: z.string().describe('PEM public key (SPKI)'),
  token: z.string().optional().describe('A one-time enrolment token (or give secret)'),
  secret: z.string().optional().describe("The site's enrolment secret (or give token)"),
});
const EnrolledSchema = z.strictObject({ node: z.strictObject({ id: z.string(), roles: z.array(z.string()) }), sitePublicKey: z.string() });
const EnrollmentTokenRequestSchema = z.strictObject({ roles: Roles.optional(), ttlS: z.number().int().min(60).max(30 * 86_400).optional() });
const EnrollmentTokenSchema = z.strictObject({ token: z.string(), roles: z.array(z.string()), expiresAt: IsoTime });
const ChangeRow = { id: z.string(), op: z.string(), camera: z.string(), at: IsoTime, actor: z.string() };
const ClusterSchema = z.strictObject({
  instance: z.string(),
  leader: z.strictObject({ id: z.string().nullable(), epoch: z.number() }).nullable(),
  leading: z.boolean(),
  configVersion: z.number(),
  bus: z.strictObject({ kind: z.string(), healthy: z.boolean() }),
  database: z.strictObject({ kind: z.string(), available: z.boolean() }),
  nodes: z.strictObject({ total: z.number().int(), alive: z.number().int() }),
  placements: z.array(z.looseObject({ camera: z.string() })),
  moves: z.array(z.looseObject({ camera: z.string() })),
  pendingGaps: z.number().int(),
  queuedChanges: z.array(z.strictObject(ChangeRow)),
  failedChanges: z.array(z.strictObject({ ...ChangeRow, error: z.string() })),
  warnings: z.array(z.string()),
});
/** Checked by hand in the handler; this describes it. */
const GapsQuerySchema = z.strictObject({
  camera: z.string().optional(),
  from: IsoTime.optional(),
  to: IsoTime.optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const GapSchema = z.strictObject({ camera: z.string(), start: IsoTime, end: IsoTime, durationMs: z.number(), reason: z.string().nullable() });

/** Nodes, enrolment, drains, the cluster's state and gaps. */
export function clusterRoutes(c: Cluster, auth: AuthService, config: Readonly<Config>, changes: ChangeQueue | null): Route[] {
  const trustProxy = config?.http.trustProxy ?? false;
  const audit = (req: Request, res: Parameters<Route['handler']>[1], action: string, target: string, details: Record<string, unknown> = {}) => {
    const p = principal(res);
    return auth.audit.append({ actor: p.username ?? 'anonymous', actorKind: p.kind === 'anonymous' ? 'anonymous' : p.kind, action, target, ip: requestMeta(req, trustProxy).ip, details });
  };
  const allIds = () => [...new Set([...c.nodes.all().map((n) => n.id), ...c.registry.list().map((n) => n.id)])].sort();
  const mustKnow = (id: string) => {
    if (!c.nodes.get(id) && !c.registry.get(id)) throw new ApiError('NODE_NOT_FOUND', `no node with id '${id}'`);
  };
  const setDrained = async (req: Request, res: Parameters<Route['handler']>[1], drained: boolean) => {
    const id = nodeId(req);
    const n = await c.nodes.setDrained(id, drained);
    if (!n) throw new ApiError('NODE_NOT_FOUND', `no enrolled node with id '${id}'`);
    await c.bus.publish(Channel.nodes, { id, drained }).catch(() => {});
    c.master.kick();
    await audit(req, res, drained ? AuditAction.NodeDrained : AuditAction.NodeUndrained, id);
    res.json(nodeView(c, id));
  };
  return [
    {
      method: 'POST', path: '/api/nodes/enroll', permission: 'public', body: 'json',
      summary: 'A node enrols: { id, roles, publicKey, boxPublicKey, token | secret } → 201 { sitePublicKey }',
      request: { body: EnrollSchema },
      responses: { 201: EnrolledSchema, 403: ErrorBodySchema, 429: ErrorBodySchema },
      handler: async (req, res) => {
        const ip = requestMeta(req, trustProxy).ip;
        // Guessing tokens is throttled like guessing passwords.
        const d = await auth.limiter.hit(`enroll:${ip}`, config.security.limits.signInPerAddress);
        if (!d.ok) throw new ApiError('RATE_LIMITED', `too many enrolment attempts; try again in ${d.retryAfterS} s`, { retryAfterS: d.retryAfterS });
        const b = (req.body ?? {}) as Record<string, unknown>;
        if (typeof b.id !== 'string' || !NODE_ID.test(b.id)) throw new ValidationError('id', 'must be 1–64 letters, digits, _ . - (starting with a letter or digit)');
        const want = roles(b.roles, 'roles');
        if (want.includes('signaling')) throw new ValidationError('roles', 'cannot include signaling: signaling instances share the database and need no enrolment');
        for (const k of ['publicKey', 'boxPublicKey'] as const) {
          if (typeof b[k] !== 'string' || !PEM_PUBLIC.test(b[k] as string)) throw new ValidationError(k, 'must be a PEM public key (SPKI)');
        }
        let allowed: Role[] | null = null;
        let how: 'token' | 'secret';
        if (typeof b.token === 'string') {
          how = 'token';
          allowed = await c.nodes.useToken(b.token, b.id);
        } else if (typeof b.secret === 'string') {
          how = 'secret';
          allowed = config.cluster.enrollSecret && sameSecret(b.secret, config.cluster.enrollSecret) ? [...ROLES] : null;
        } else {
          throw new ValidationError('token', 'or secret must be given');
        }
        if (!allowed) {
          await auth.audit.append({ actor: b.id, actorKind: 'anonymous', action: AuditAction.NodeEnrollmentRefused, target: b.id, ip, details: { how } });
          throw new ApiError('ENROLLMENT_REFUSED', how === 'token' ? 'the enrolment token is unknown, used or expired' : 'the enrolment secret is not right (or none is set on the master)');
        }
        const extra = want.filter((r) => !allowed!.includes(r));
        if (extra.length) throw new ApiError('ENROLLMENT_REFUSED', `the token does not allow the roles ${extra.join(', ')}`);
        await c.nodes.enroll(b.id, want, b.publicKey as string, b.boxPublicKey as string);
        await c.bus.publish(Channel.nodes, { id: b.id, enrolled: true }).catch(() => {});
        await auth.audit.append({ actor: b.id, actorKind: 'system', action: AuditAction.NodeEnrolled, target: b.id, ip, details: { roles: want, how } });
        res.status(201).json({ node: { id: b.id, roles: want }, sitePublicKey: c.siteKey.publicKey });
      },
    },
    {
      method: 'GET', path: '/api/nodes', permission: Permission.NodesRead,
      summary: 'Every node: role, state, load, cameras, clock offset, config version, last heartbeat',
      responses: { 200: z.array(NodeViewSchema) },
      handler: (_req, res) => {
        res.json(allIds().map((id) => nodeView(c, id)));
      },
    },
    {
      method: 'GET', path: '/api/nodes/:id', permission: Permission.NodesRead,
      summary: 'One node, with its load over the last hour',
      responses: { 200: NodeViewSchema },
      handler: (req, res) => {
        const id = nodeId(req);
        mustKnow(id);
        res.json(nodeView(c, id));
      },
    },
    {
      method: 'POST', path: '/api/nodes/:id/drain', permission: Permission.NodesManage,
      summary: 'Drain a node: it keeps running, its cameras move away and it gets no new ones',
      responses: { 200: NodeViewSchema },
      handler: (req, res) => setDrained(req, res, true),
    },
    {
      method: 'POST', path: '/api/nodes/:id/undrain', permission: Permission.NodesManage,
      summary: 'Take a node back into placement',
      responses: { 200: NodeViewSchema },
      handler: (req, res) => setDrained(req, res, false),
    },
    {
      method: 'DELETE', path: '/api/nodes/:id', permission: Permission.NodesManage,
      summary: "Revoke a node's enrolment: its heartbeats, answers and events are ignored from now on",
      responses: { 204: 'empty', 400: ErrorBodySchema },
      handler: async (req, res) => {
        const id = nodeId(req);
        if (id === c.id) throw new ValidationError('id', 'is this signaling instance; stop it instead');
        if (!(await c.nodes.revoke(id))) throw new ApiError('NODE_NOT_FOUND', `no enrolled node with id '${id}'`);
        await c.bus.publish(Channel.nodes, { id, revoked: true }).catch(() => {});
        c.master.kick();
        await audit(req, res, AuditAction.NodeRevoked, id);
        res.status(204).end();
      },
    },
    {
      method: 'POST', path: '/api/nodes/enrollment-tokens', permission: Permission.NodesManage, body: 'json',
      summary: 'A one-time enrolment token for a new node: { roles, ttlS? } → { token, expiresAt } (shown once)',
      request: { body: EnrollmentTokenRequestSchema },
      responses: { 201: EnrollmentTokenSchema },
      handler: async (req, res) => {
        const b = (req.body ?? {}) as Record<string, unknown>;
        const want = roles(b.roles ?? ['camera-node', 'sfu'], 'roles');
        if (want.includes('signaling')) throw new ValidationError('roles', 'cannot include signaling');
        const ttlS = b.ttlS === undefined ? 86_400 : b.ttlS;
        if (typeof ttlS !== 'number' || !Number.isInteger(ttlS) || ttlS < 60 || ttlS > 30 * 86_400) throw new ValidationError('ttlS', 'must be a whole number of seconds from 60 to 2592000');
        const p = principal(res);
        const t = await c.nodes.createToken(want, p.username ?? 'unknown', ttlS * 1000);
        await audit(req, res, AuditAction.NodeEnrollmentTokenCreated, 'enrollment-token', { roles: want, expiresAt: t.expiresAt.toISOString() });
        res.status(201).json({ token: t.token, roles: want, expiresAt: t.expiresAt });
      },
    },
    {
      method: 'GET', path: '/api/cluster', permission: Permission.NodesRead,
      summary: 'The cluster: leader, this instance, config version, bus and database, placements, recent moves, warnings',
      responses: { 200: ClusterSchema },
      handler: async (_req, res) => {
        const p = principal(res);
        const nodes = allIds().map((id) => nodeView(c, id));
        const placements = c.master.placements().filter((x) => canSeeCamera(p, x.camera));
        const warnings: string[] = [];
        for (const n of c.registry.list()) {
          if (n.state === 'alive' && c.registry.clockWarning(n)) warnings.push(`node ${n.id}'s clock is ${Math.round(n.clockOffsetMs!)} ms from this instance's (more than ${config.cluster.clockWarningMs} ms)`);
          if (n.state === 'dead') warnings.push(`node ${n.id} is down (${n.deathReason === 'lease' ? 'missed its heartbeats' : 'its connection closed'})`);
        }
        for (const x of placements) if (x.problem) warnings.push(`camera ${x.camera}: ${x.problem}`);
        let database = true;
        try {
          await c.db.query('SELECT 1');
        } catch {
          database = false;
          warnings.push('the database is unavailable');
        }
        if (!c.bus.healthy) warnings.push('the bus (Redis) is unavailable');
        const queued = changes?.list() ?? [];
        if (queued.length) warnings.push(`${queued.length} camera change(s) wait for the database on this instance`);
        if (auth.audit.backlog) warnings.push(`${auth.audit.backlog} audit entries wait for the database on this instance`);
        res.json({
          instance: c.id,
          leader: c.leadership.holder ? { id: c.leadership.leaderId, epoch: Number(c.leadership.holder.slice(c.leadership.holder.lastIndexOf(':') + 1)) } : null,
          leading: c.leadership.isLeader,
          configVersion: c.master.configVersion,
          bus: { kind: c.bus.kind, healthy: c.bus.healthy },
          database: { kind: c.db.kind, available: database },
          nodes: { total: nodes.length, alive: nodes.filter((n) => n.state === 'alive').length },
          placements,
          moves: c.master.recentMoves().filter((m) => canSeeCamera(p, m.camera)).slice(-50),
          pendingGaps: c.gaps.pending,
          queuedChanges: queued.map((q) => ({ id: q.id, op: q.op, camera: q.camera, at: new Date(q.at).toISOString(), actor: q.actor })),
          failedChanges: (changes?.failed() ?? []).map((f) => ({ id: f.id, op: f.op, camera: f.camera, at: new Date(f.at).toISOString(), actor: f.actor, error: f.error })),
          warnings,
        });
      },
    },
    {
      method: 'GET', path: '/api/gaps', permission: Permission.CamerasRead,
      summary: 'Intervals in which a camera was not ingested: ?camera=&from=&to=&limit=',
      request: { query: GapsQuerySchema },
      responses: { 200: z.array(GapSchema), 404: ErrorBodySchema },
      handler: async (req, res) => {
        const p = principal(res);
        const q = req.query as Record<string, string | undefined>;
        const date = (v: string | undefined, field: string) => {
          if (v === undefined) return undefined;
          const d = new Date(v);
          if (Number.isNaN(d.getTime())) throw new ValidationError(field, 'must be an ISO 8601 time');
          return d;
        };
        const limit = q.limit === undefined ? 100 : Number(q.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new ValidationError('limit', 'must be a whole number from 1 to 1000');
        if (q.camera !== undefined && !canSeeCamera(p, q.camera)) throw new ApiError('CAMERA_NOT_FOUND', `no camera with id '${q.camera.slice(0, 80)}'`);
        const from = date(q.from, 'from');
        const to = date(q.to, 'to');
        const gaps = await c.gaps.list({ ...(q.camera ? { camera: q.camera } : {}), ...(from ? { from } : {}), ...(to ? { to } : {}), limit });
        res.json(gaps.filter((g) => canSeeCamera(p, g.camera)).map((g) => ({ camera: g.camera, start: new Date(g.start).toISOString(), end: new Date(g.end).toISOString(), durationMs: g.end - g.start, reason: g.reason })));
      },
    },
  ];
}
