import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  GraphQLError, Kind, buildSchema, execute, getOperationAST, parse, printSchema, specifiedRules, validate,
  type DocumentNode, type ExecutionResult, type FormattedExecutionResult, type GraphQLFieldResolver,
  type GraphQLFormattedError, type GraphQLSchema,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { counter, createLogger, gauge, parseWith, type CameraStatus, type MotionNotice } from '@cctv/core';
import type { MotionEvent } from '@cctv/recorder';
import { checkPermission, type Route } from '../app.js';
import type { Limit } from '../auth/rateLimit.js';
import { principal } from '../auth/routes.js';
import { ANONYMOUS, Permission, can, canSeeCamera, type Principal } from '../auth/permissions.js';
import type { AuthService } from '../auth/service.js';
import { ApiError, ERRORS, toApiError } from '../errors.js';
import { eventView } from '../events.js';
import { SocketSessions, credentialsOf, upgradePrincipal, type Credentials, type UpgradeTarget } from '../upgrades.js';
import { RouteDispatcher, type RouteCall } from './dispatch.js';
import { DEFAULT_LIMITS, limitsRule, type QueryLimits } from './limits.js';
import { LIST_MAX, SDL } from './sdl.js';

const log = createLogger('signaling:graphql');

/** A query's text may be this long. */
export const MAX_QUERY_BYTES = 32 * 1024;
/** Subscriptions one WebSocket may hold at once. */
export const MAX_SUBSCRIPTIONS = 32;
/** Items a subscription keeps for a client that reads slower than they come; older ones are dropped. */
const STREAM_BUFFER = 256;

const gqlRequests = counter('cctv_graphql_requests_total', 'GraphQL operations, by kind and result', ['kind', 'result']);
const gqlSockets = gauge('cctv_graphql_ws_clients', 'Clients connected to the GraphQL WebSocket (subscriptions)');

/** What a resolver knows of the caller: who, and the request (its address goes to the audit log). */
export interface GraphqlContext {
  principal: Principal;
  request: IncomingMessage;
}

/** The request body of POST /api/graphql (GraphQL over HTTP). */
export const GraphqlRequestSchema = z.strictObject({
  query: z.string().min(1).max(MAX_QUERY_BYTES),
  variables: z.record(z.string(), z.unknown()).nullable().optional(),
  operationName: z.string().max(200).nullable().optional(),
  extensions: z.record(z.string(), z.unknown()).nullable().optional(),
});

const GraphqlErrorSchema = z.looseObject({
  message: z.string(),
  locations: z.array(z.strictObject({ line: z.number().int(), column: z.number().int() })).optional(),
  path: z.array(z.union([z.string(), z.number().int()])).optional(),
  extensions: z.looseObject({ code: z.string() }).optional(),
});
/** Every answer of POST /api/graphql: data, errors, or both. */
export const GraphqlResultSchema = z.strictObject({
  data: z.record(z.string(), z.unknown()).nullable().optional(),
  errors: z.array(GraphqlErrorSchema).optional(),
});

/** Where the subscriptions' items come from. */
export interface GraphqlSources {
  /** Camera statuses as the cluster learns them (the runtime's `status` event). */
  statuses: { on?(event: 'status', fn: (s: CameraStatus) => void): unknown; off?(event: 'status', fn: (s: CameraStatus) => void): unknown; status(id: string): CameraStatus };
  /** Motion events as detectors raise, grow and end them (the registry's `motion` event). */
  motion: { on(event: 'motion', fn: (n: MotionNotice) => void): unknown; off(event: 'motion', fn: (n: MotionNotice) => void): unknown } | null;
}

/** The WebSocket side: the server graphql-ws runs on, its open sockets with their sessions. */
interface SocketServer {
  wss: WebSocketServer;
  sockets: SocketSessions<GraphqlContext>;
  dispose: () => unknown;
}

type Resolver = GraphQLFieldResolver<Record<string, unknown>, GraphqlContext, Record<string, unknown>>;
type Resolvers = Record<string, Record<string, Resolver | { subscribe: Resolver; resolve?: Resolver }>>;

/**
 * GraphQL at /api/graphql: queries and mutations over HTTP (POST), everything including subscriptions over
 * WebSocket (graphql-ws, `graphql-transport-ws`). Each field runs a REST route (dispatch.ts); depth and
 * cost are checked before anything runs (limits.ts).
 */
export class GraphqlApi implements UpgradeTarget {
  readonly schema: GraphQLSchema;
  readonly limits: QueryLimits;
  #table: () => readonly Route[] = () => [];
  readonly #dispatch = new RouteDispatcher(() => this.#table());
  readonly #apiLimit: readonly Limit[];
  readonly #auth: AuthService;
  readonly #sources: GraphqlSources;
  // The WebSocket side, made at the first upgrade (an instance that only answers HTTP has none).
  #ws: SocketServer | null = null;
  // The principal each upgrade was authorised as, until its connection_init arrives.
  readonly #opened = new WeakMap<IncomingMessage, Principal>();

  /**
   * `apiLimit`: the per-principal API rate limit, which each subscription counts against (over HTTP, the
   * POST counts like any request).
   */
  constructor(opts: { auth: AuthService; sources: GraphqlSources; apiLimit: readonly Limit[]; limits?: QueryLimits }) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    this.#apiLimit = opts.apiLimit;
    this.#auth = opts.auth;
    this.#sources = opts.sources;
    this.schema = buildSchema(SDL);
    for (const [key, max] of Object.entries(LIST_MAX)) {
      const [type, field, arg] = key.split('.') as [string, string, string];
      const def = (this.schema.getType(type) as unknown as { getFields(): Record<string, { args: { name: string; extensions: unknown }[] }> }).getFields()[field]!.args.find((a) => a.name === arg)!;
      def.extensions = { max };
    }
    attachResolvers(this.schema, this.#resolvers());
  }

  /** The schema in SDL. */
  get sdl(): string {
    return printSchema(this.schema);
  }

  /**
   * The HTTP routes: POST /api/graphql (queries, mutations) and GET /api/graphql/schema (SDL). `table`
   * is the whole route table, whose routes the fields run.
   */
  routes(table: () => readonly Route[]): Route[] {
    this.#table = table;
    return [
      {
        method: 'POST', path: '/api/graphql', permission: 'authenticated', body: 'json',
        summary: 'GraphQL queries and mutations { query, variables?, operationName? } (subscriptions: a WebSocket to the same path, graphql-transport-ws); each field has the permission of its REST route',
        request: { body: GraphqlRequestSchema },
        responses: { 200: GraphqlResultSchema },
        handler: async (req, res) => {
          const body = parseWith(GraphqlRequestSchema, req.body);
          const result = await this.run(body, { principal: principal(res), request: req }, 'http');
          res.json(result);
        },
      },
      {
        method: 'GET', path: '/api/graphql/schema', permission: 'public',
        summary: 'The GraphQL schema (SDL)',
        responses: { 200: { contentType: 'text/plain' } },
        handler: (_req, res) => {
          res.type('text/plain').send(this.sdl);
        },
      },
    ];
  }

  /** Parses, checks (graphql's rules, depth and cost) and runs one query or mutation. */
  async run(body: { query: string; variables?: Record<string, unknown> | null | undefined; operationName?: string | null | undefined }, ctx: GraphqlContext, via: 'http' | 'ws'): Promise<FormattedExecutionResult> {
    const prepared = this.#prepare(body.query, body.variables ?? undefined, body.operationName ?? undefined);
    if (refused(prepared)) {
      gqlRequests.inc({ kind: 'invalid', result: 'refused' });
      return { errors: prepared.map(formatError) };
    }
    const op = getOperationAST(prepared, body.operationName ?? undefined);
    if (op?.operation === 'subscription' && via === 'http') {
      gqlRequests.inc({ kind: 'subscription', result: 'refused' });
      return { errors: [{ message: 'subscriptions run over a WebSocket to /api/graphql (graphql-transport-ws)', extensions: { code: 'SUBSCRIPTION_OVER_HTTP' } }] };
    }
    const result = (await execute({ schema: this.schema, document: prepared, variableValues: body.variables ?? undefined, operationName: body.operationName ?? undefined, contextValue: ctx })) as ExecutionResult;
    gqlRequests.inc({ kind: op?.operation ?? 'query', result: result.errors?.length ? 'errors' : 'ok' });
    return formatResult(result);
  }

  /** The parsed document, or the errors that refuse it (syntax, validation, depth, cost). */
  #prepare(query: string, variables: Readonly<Record<string, unknown>> | undefined, operationName: string | undefined): DocumentNode | readonly GraphQLError[] {
    if (Buffer.byteLength(query) > MAX_QUERY_BYTES) return [new GraphQLError(`the query is longer than ${MAX_QUERY_BYTES} bytes`, { extensions: { code: 'QUERY_TOO_LONG' } })];
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: 5000 });
    } catch (error) {
      return [error instanceof GraphQLError ? withCode(error, 'GRAPHQL_PARSE_FAILED') : new GraphQLError(String(error))];
    }
    const errors = validate(this.schema, document, [...specifiedRules, limitsRule(this.limits, variables)], { maxErrors: 20 });
    if (errors.length > 0) return errors.map((e) => (e.extensions.code ? e : withCode(e, 'GRAPHQL_VALIDATION_FAILED')));
    const ops = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
    if (ops.length > 1 && !operationName) return [new GraphQLError('the document has several operations: give operationName', { extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })];
    return document;
  }

  /** Takes an upgrade of /api/graphql: credentials at the upgrade, or `{ authorization: 'Bearer …' }` in connection_init. */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const p = await upgradePrincipal(req, this.#auth, { anonymous: true });
    this.#opened.set(req, p);
    const { wss } = (this.#ws ??= this.#serveWebSocket());
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
  }

  #serveWebSocket(): SocketServer {
    const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_QUERY_BYTES + 4096 });
    const sockets = new SocketSessions<GraphqlContext>(this.#auth, () => true);
    const server = useServer<Record<string, unknown> | undefined, { session?: GraphqlContext }>(
      {
        schema: this.schema,
        onConnect: async (ctx) => {
          const req = ctx.extra.request;
          let p = this.#opened.get(req) ?? ANONYMOUS;
          let credentials: Credentials = credentialsOf(req);
          const given = ctx.connectionParams?.authorization;
          if (p.kind === 'anonymous' && typeof given === 'string') {
            credentials = { authorization: given };
            p = await this.#auth.resolve({ headers: credentials } as IncomingMessage).catch(() => ANONYMOUS);
          }
          // graphql-ws closes with 4403 Forbidden.
          if (p.kind === 'anonymous' || p.pending) return false;
          const session: GraphqlContext = { principal: p, request: req };
          ctx.extra.session = session;
          sockets.add(ctx.extra.socket, session, credentials);
          gqlSockets.set(sockets.size);
          return true;
        },
        onSubscribe: async (ctx, _id, payload) => {
          const session = ctx.extra.session;
          if (!session) return [new GraphQLError('not signed in', { extensions: { code: 'UNAUTHENTICATED' } })];
          if (Object.keys(ctx.subscriptions).length >= MAX_SUBSCRIPTIONS) {
            return [new GraphQLError(`a connection may hold ${MAX_SUBSCRIPTIONS} operations at once`, { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } })];
          }
          const p = session.principal;
          const d = await this.#auth.limiter.hit(`api:${p.tokenId ?? p.userId!}`, this.#apiLimit);
          if (!d.ok) return [new GraphQLError(`too many requests; try again in ${d.retryAfterS} s`, { extensions: { code: 'RATE_LIMITED', retryAfterS: d.retryAfterS } })];
          const variables = payload.variables ?? undefined;
          const prepared = this.#prepare(payload.query, variables, payload.operationName ?? undefined);
          if (refused(prepared)) return prepared;
          return { schema: this.schema, document: prepared, variableValues: variables, operationName: payload.operationName ?? undefined, contextValue: session };
        },
        onNext: (_ctx, _id, _payload, _args, result) => formatResult(result),
        onError: (_ctx, _id, _payload, errors) => errors.map(formatError),
        // Called for every socket, acknowledged or not.
        onClose: (ctx) => {
          sockets.delete(ctx.extra.socket);
          gqlSockets.set(sockets.size);
        },
      },
      wss,
      15_000,
    );
    return { wss, sockets, dispose: () => server.dispose() };
  }

  async close(): Promise<void> {
    const ws = this.#ws;
    if (!ws) return;
    this.#ws = null;
    ws.sockets.close();
    await ws.dispose();
    for (const c of ws.wss.clients) c.terminate();
    await new Promise<void>((r) => ws.wss.close(() => r()));
  }

  #resolvers(): Resolvers {
    const d = this.#dispatch;
    const call = async (key: Parameters<RouteDispatcher['call']>[0], ctx: GraphqlContext, rest: Omit<RouteCall, 'principal' | 'request'> = {}) => {
      try {
        return await d.call(key, { principal: ctx.principal, request: ctx.request, ...rest });
      } catch (error) {
        throw graphqlError(error);
      }
    };
    const get = async (key: Parameters<RouteDispatcher['call']>[0], ctx: GraphqlContext, rest: Omit<RouteCall, 'principal' | 'request'> = {}) => (await call(key, ctx, rest)).body;
    // A lookup by id answers null rather than an error when there is nothing the caller may see.
    const orNull = async (p: Promise<unknown>) => {
      try {
        return await p;
      } catch (error) {
        if (error instanceof GraphQLError && /_NOT_FOUND$/.test(String(error.extensions.code))) return null;
        throw error;
      }
    };
    const cameraChange = (a: { status: number; body: unknown }) =>
      a.status === 202 ? { camera: null, queued: (a.body as { change: unknown }).change, applied: false } : { camera: a.status === 204 ? null : a.body, queued: null, applied: true };
    const eventQuery = (a: Record<string, unknown>, camera?: string): Record<string, string> => query({
      camera: camera ?? (Array.isArray(a.cameras) ? a.cameras.join(',') : undefined),
      from: a.from, to: a.to, zone: a.zone, minScore: a.minScore, limit: a.first, cursor: a.after,
    });
    const sources = this.#sources;
    const dispatch = this.#dispatch;
    return {
      Query: {
        me: (_s, _a, ctx) => get('GET /api/auth/me', ctx),
        cameras: (_s, _a, ctx) => get('GET /api/cameras', ctx),
        camera: (_s, a, ctx) => orNull(get('GET /api/cameras/:id', ctx, { params: { id: String(a.id) } })),
        nodes: (_s, _a, ctx) => get('GET /api/nodes', ctx),
        node: (_s, a, ctx) => orNull(get('GET /api/nodes/:id', ctx, { params: { id: String(a.id) } })),
        cluster: (_s, _a, ctx) => get('GET /api/cluster', ctx),
        archive: (_s, _a, ctx) => get('GET /api/archive', ctx),
        events: (_s, a, ctx) => get('GET /api/events', ctx, { query: eventQuery(a) }),
        event: (_s, a, ctx) => orNull(get('GET /api/events/:event', ctx, { params: { event: String(a.id) } })),
        users: (_s, _a, ctx) => get('GET /api/users', ctx),
        user: (_s, a, ctx) => orNull(get('GET /api/users/:user', ctx, { params: { user: String(a.id) } })),
        audit: (_s, a, ctx) => get('GET /api/audit', ctx, { query: query({ actor: a.actor, action: a.action, camera: a.camera, from: a.from, to: a.to, before: a.before, limit: a.limit }) }),
      },
      Mutation: {
        createCamera: async (_s, a, ctx) => cameraChange(await call('POST /api/cameras', ctx, { body: a.camera })),
        updateCamera: async (_s, a, ctx) => cameraChange(await call('PATCH /api/cameras/:id', ctx, { params: { id: String(a.id) }, body: a.changes })),
        deleteCamera: async (_s, a, ctx) => cameraChange(await call('DELETE /api/cameras/:id', ctx, { params: { id: String(a.id) } })),
        protectEvent: async (_s, a, ctx) => {
          await call('POST /api/events/:event/protect', ctx, { params: { event: String(a.id) } });
          return get('GET /api/events/:event', ctx, { params: { event: String(a.id) } });
        },
        unprotectEvent: async (_s, a, ctx) => {
          await call('DELETE /api/events/:event/protect', ctx, { params: { event: String(a.id) } });
          return get('GET /api/events/:event', ctx, { params: { event: String(a.id) } });
        },
        drainNode: (_s, a, ctx) => get('POST /api/nodes/:id/drain', ctx, { params: { id: String(a.id) } }),
        undrainNode: (_s, a, ctx) => get('POST /api/nodes/:id/undrain', ctx, { params: { id: String(a.id) } }),
        createUser: (_s, a, ctx) => get('POST /api/users', ctx, { body: a.user }),
        updateUser: (_s, a, ctx) => get('PATCH /api/users/:user', ctx, { params: { user: String(a.id) }, body: a.changes }),
        deleteUser: async (_s, a, ctx) => (await call('DELETE /api/users/:user', ctx, { params: { user: String(a.id) } })).status === 204,
      },
      Camera: {
        timeline: (cam, a, ctx) => get('GET /api/cameras/:id/archive/timeline', ctx, { params: { id: String(cam.id) }, query: query({ from: a.from, to: a.to }) }),
        events: (cam, a, ctx) => get('GET /api/events', ctx, { query: eventQuery(a, String(cam.id)) }),
        protectedRanges: async (cam, _a, ctx) => ((await get('GET /api/cameras/:id/archive/protected', ctx, { params: { id: String(cam.id) } })) as { protected: unknown[] }).protected,
      },
      Event: {
        cameraInfo: (e, _a, ctx) => orNull(get('GET /api/cameras/:id', ctx, { params: { id: String(e.camera) } })),
        // A page of events has no recording; one event (GET /api/events/:event) has.
        recording: async (e, _a, ctx) => ('recording' in e ? e.recording : ((await get('GET /api/events/:event', ctx, { params: { event: String(e.id) } })) as { recording: unknown }).recording),
      },
      NodeCamera: {
        camera: (c, _a, ctx) => orNull(get('GET /api/cameras/:id', ctx, { params: { id: String(c.id) } })),
      },
      Subscription: {
        cameraStatus: {
          subscribe: async (_s, a, ctx) => {
            // What /api/ws needs; each status then goes only to those who may see its camera.
            const list = (await get('GET /api/cameras', ctx)) as { id: string; status: CameraStatus }[];
            const asked = Array.isArray(a.cameras) ? new Set(a.cameras.map(String)) : null;
            const last = new Map<string, string>();
            const stream = new Stream<{ cameraStatus: CameraStatus }>(STREAM_BUFFER);
            const push = (s: CameraStatus): void => {
              if ((asked && !asked.has(s.id)) || !canSeeCamera(ctx.principal, s.id) || last.get(s.id) === s.state) return;
              last.set(s.id, s.state);
              stream.push({ cameraStatus: s });
            };
            const { on, off } = sources.statuses;
            if (!on || !off) throw graphqlError(new ApiError('UNAVAILABLE', 'this server does not follow camera statuses'));
            for (const c of list) push(c.status);
            on.call(sources.statuses, 'status', push);
            stream.onClose(() => off.call(sources.statuses, 'status', push));
            // A change between the list and the listener is not lost: the runtime's state now.
            for (const c of list) push(sources.statuses.status(c.id));
            return stream;
          },
        },
        motionEvents: {
          subscribe: async (_s, a, ctx) => {
            // The permission of GET /api/events; each event then only for cameras whose archive one may see.
            try {
              checkPermission(dispatch.route('GET /api/events'), ctx.principal, undefined);
            } catch (error) {
              throw graphqlError(error);
            }
            const motion = sources.motion;
            if (!motion) throw graphqlError(new ApiError('UNAVAILABLE', 'this server does not follow motion events'));
            const asked = Array.isArray(a.cameras) ? new Set(a.cameras.map(String)) : null;
            const stream = new Stream<{ motionEvents: { phase: string; event: unknown } }>(STREAM_BUFFER);
            const push = (n: MotionNotice): void => {
              const camera = n.event.camera;
              if ((asked && !asked.has(camera)) || !canSeeCamera(ctx.principal, camera) || !can(ctx.principal, Permission.Archive, camera)) return;
              stream.push({ motionEvents: { phase: n.phase, event: eventView(n.event as unknown as MotionEvent) } });
            };
            motion.on('motion', push);
            stream.onClose(() => motion.off('motion', push));
            return stream;
          },
        },
      },
    };
  }
}

function refused(p: DocumentNode | readonly GraphQLError[]): p is readonly GraphQLError[] {
  return Array.isArray(p);
}

/** Query-string values as Express would have parsed them (absent ones left out). */
function query(values: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== null) out[k] = String(v);
  return out;
}

function attachResolvers(schema: GraphQLSchema, resolvers: Resolvers): void {
  for (const [typeName, fields] of Object.entries(resolvers)) {
    const type = schema.getType(typeName) as { getFields(): Record<string, { resolve?: unknown; subscribe?: unknown }> } | undefined;
    if (!type) throw new Error(`no type ${typeName} in the schema`);
    const defs = type.getFields();
    for (const [name, r] of Object.entries(fields)) {
      const def = defs[name];
      if (!def) throw new Error(`no field ${typeName}.${name} in the schema`);
      if (typeof r === 'function') def.resolve = r;
      else {
        def.subscribe = r.subscribe;
        if (r.resolve) def.resolve = r.resolve;
      }
    }
  }
}

function withCode(e: GraphQLError, code: string): GraphQLError {
  return new GraphQLError(e.message, { nodes: e.nodes ?? null, source: e.source ?? null, positions: e.positions ?? null, path: e.path ?? null, extensions: { ...e.extensions, code } });
}

/** What a route threw, as a GraphQL error with the REST catalog's code and status in its extensions. */
function graphqlError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  const api = toApiError(error);
  if (api.code === 'INTERNAL') log.error({ err: error }, 'a GraphQL field failed');
  return new GraphQLError(api.code === 'INTERNAL' ? ERRORS.INTERNAL.message : api.message, {
    extensions: { code: api.code, status: api.status, ...(api.field ? { field: api.field } : {}), ...(api.retryAfterS !== undefined ? { retryAfterS: api.retryAfterS } : {}) },
  });
}

/** An error as it goes out; one that no resolver turned into a GraphQL error is not shown (it is logged). */
function formatError(e: GraphQLError): GraphQLFormattedError {
  const original = e.originalError;
  if (original && !(original instanceof GraphQLError)) {
    log.error({ err: original }, 'a GraphQL field failed');
    return { message: ERRORS.INTERNAL.message, ...(e.locations ? { locations: e.locations } : {}), ...(e.path ? { path: e.path } : {}), extensions: { code: 'INTERNAL' } };
  }
  return e.toJSON();
}

function formatResult(r: ExecutionResult): FormattedExecutionResult {
  return { ...(r.errors ? { errors: r.errors.map(formatError) } : {}), ...('data' in r ? { data: r.data ?? null } : {}) };
}

/**
 * A subscription's items: pushed by a listener, pulled by graphql-ws. Ended from either side at any time
 * (`return()` does not wait for a next item, so an idle subscription's listener goes at once); a reader
 * slower than `max` items loses the oldest.
 */
class Stream<T> implements AsyncIterableIterator<T> {
  readonly #max: number;
  #queue: T[] = [];
  #waiting: ((r: IteratorResult<T>) => void) | null = null;
  #done = false;
  #cleanup: (() => void)[] = [];

  constructor(max: number) {
    this.#max = max;
  }

  onClose(fn: () => void): void {
    if (this.#done) fn();
    else this.#cleanup.push(fn);
  }

  push(value: T): void {
    if (this.#done) return;
    const w = this.#waiting;
    if (w) {
      this.#waiting = null;
      w({ value, done: false });
      return;
    }
    this.#queue.push(value);
    if (this.#queue.length > this.#max) this.#queue.shift();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift()!, done: false });
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => {
      this.#waiting = r;
    });
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.#done) {
      this.#done = true;
      this.#queue = [];
      for (const fn of this.#cleanup.splice(0)) fn();
      const w = this.#waiting;
      this.#waiting = null;
      w?.({ value: undefined, done: true });
    }
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
