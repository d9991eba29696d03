import type { IncomingMessage } from 'node:http';
import type { Request, Response } from 'express';
import { checkPermission, type Method, type Route } from '../app.js';
import type { Principal } from '../auth/permissions.js';
import { ApiError } from '../errors.js';

/** One call of a REST route from inside the process: what its handler would see of a request. */
export interface RouteCall {
  principal: Principal;
  /** The route's path parameters (`:id` → `{ id }`). */
  params?: Record<string, string>;
  /** The query string, as Express parses it (strings). */
  query?: Record<string, string>;
  /** The JSON body. */
  body?: unknown;
  /** The HTTP request or WebSocket upgrade the call is made for: its client address goes to the audit log. */
  request: IncomingMessage;
}

export interface RouteAnswer {
  status: number;
  body: unknown;
  /** The Location header, when the route set one (a created resource). */
  location: string | null;
}

/**
 * The routes by `METHOD path`, so a GraphQL field names the REST route it is (`GET /api/cameras`) and
 * runs that route's permission check and handler: the two APIs cannot differ in who may do what, in
 * validation, or in what is written to the audit log.
 */
export class RouteDispatcher {
  readonly #routes: () => readonly Route[];
  #byKey: Map<string, Route> | null = null;

  constructor(routes: () => readonly Route[]) {
    this.#routes = routes;
  }

  /** The route `METHOD path`; throws when the table has none (a programming error, found by the tests). */
  route(key: `${Method} ${string}`): Route {
    if (!this.#byKey) this.#byKey = new Map(this.#routes().map((r) => [`${r.method} ${r.path}`, r]));
    const r = this.#byKey.get(key);
    if (!r) throw new Error(`no route ${key} in the route table`);
    return r;
  }

  /**
   * Runs the route's permission check (on its camera for a camera route) and its handler, and returns
   * what the handler answered. An error answer is thrown as the ApiError the handler threw.
   */
  async call(key: `${Method} ${string}`, call: RouteCall): Promise<RouteAnswer> {
    const route = this.route(key);
    const params = call.params ?? {};
    checkPermission(route, call.principal, route.camera ? params.id ?? '' : undefined);
    const answer: RouteAnswer = { status: 200, body: undefined, location: null };
    let answered = false;
    const done = (body: unknown): void => {
      answer.body = body;
      answered = true;
    };
    // The handler sees the request it was made for (headers, client address), with this call's
    // parameters; it answers into `answer`.
    const req = {
      method: route.method,
      params,
      query: call.query ?? {},
      body: call.body,
      headers: call.request.headers,
      socket: call.request.socket,
      is: (type: string) => (route.body === 'json' && type === 'application/json' ? type : false),
    } as unknown as Request;
    const res = {
      locals: { principal: call.principal },
      status(code: number) {
        answer.status = code;
        return res;
      },
      location(url: string) {
        answer.location = url;
        return res;
      },
      // Headers (Allow, Retry-After) are HTTP's; a GraphQL answer has none.
      setHeader() {
        return res;
      },
      type() {
        return res;
      },
      // As the client of the REST route would read it (a Date becomes its ISO string, and so on).
      json: (body: unknown) => done(body === undefined ? undefined : JSON.parse(JSON.stringify(body))),
      send: done,
      end: () => done(undefined),
    } as unknown as Response;
    await route.handler(req, res);
    if (!answered) throw new ApiError('INTERNAL', `${key} did not answer`);
    return answer;
  }
}
