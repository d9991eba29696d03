import { randomUUID } from 'node:crypto';
import type { Bus } from '../bus/bus.js';
import { NotFoundError, TimeoutError, UnavailableError, UnsupportedError, ValidationError, InvalidStateError } from '../errors.js';
import { createLogger } from '../log.js';
import { open, seal } from './keys.js';
import { Channel, type RpcError, type RpcRequest, type RpcResults } from './messages.js';

const log = createLogger('core:rpc');

interface WireRequest {
  id: string;
  replyTo: string;
  method: string;
  params: unknown;
}

interface WireResponse {
  id: string;
  result?: unknown;
  error?: RpcError;
}

/** Turns an error into what travels back, keeping the class and what the HTTP edge needs. */
export function toRpcError(e: unknown): RpcError {
  const err = e as Error & { path?: string; reason?: string; retryAfterS?: number };
  return {
    name: err?.name ?? 'Error',
    message: err?.message ?? String(e),
    ...(err?.path !== undefined ? { path: err.path } : {}),
    ...(err?.reason !== undefined ? { reason: err.reason } : {}),
    ...(err?.retryAfterS !== undefined ? { retryAfterS: err.retryAfterS } : {}),
  };
}

/** The core error an RPC error stands for. */
export function fromRpcError(e: RpcError): Error {
  switch (e.name) {
    case 'ValidationError':
      return new ValidationError(e.path ?? '', e.message.replace(/^'[^']*' /, ''));
    case 'NotFoundError':
      return new NotFoundError(e.message);
    case 'UnsupportedError':
      return new UnsupportedError(e.message);
    case 'UnavailableError':
      return new UnavailableError(e.reason ?? 'UNAVAILABLE', e.message, e.retryAfterS ?? 1);
    case 'InvalidStateError':
      return new InvalidStateError(e.message);
    case 'TimeoutError':
      return new TimeoutError(e.message);
    default:
      return new Error(e.message);
  }
}

export interface RpcClientOptions {
  bus: Bus;
  /** This process's instance id (its reply channel). */
  instance: string;
  /** The site's private key: requests are signed with it. */
  siteKey: string;
  /** A node's enrolled public key, or undefined when the node is not enrolled. */
  nodeKey: (node: string) => string | undefined;
}

/**
 * Requests to nodes over the bus: signed with the site key, answered on this process's reply channel,
 * the answer checked against the node's enrolled key.
 */
export class RpcClient {
  readonly #o: RpcClientOptions;
  readonly #pending = new Map<string, { node: string; resolve: (r: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #unsubscribe: (() => Promise<void>) | null = null;

  constructor(o: RpcClientOptions) {
    this.#o = o;
  }

  async initialize(): Promise<void> {
    this.#unsubscribe = await this.#o.bus.subscribe(`reply:${this.#o.instance}`, (m) => this.#onReply(m));
  }

  /** Calls `method` on `node`; rejects with the node's error, or a TimeoutError/UnavailableError. */
  async call<M extends RpcRequest['method']>(node: string, method: M, params: Extract<RpcRequest, { method: M }>['params'], timeoutMs = 3000): Promise<RpcResults[M]> {
    if (!this.#o.nodeKey(node)) throw new UnavailableError('NODE_UNKNOWN', `node ${node} is not enrolled`, 5);
    const id = randomUUID();
    const req: WireRequest = { id, replyTo: `reply:${this.#o.instance}`, method, params };
    return new Promise<RpcResults[M]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new UnavailableError('NODE_UNREACHABLE', `node ${node} did not answer ${method} within ${timeoutMs} ms`, 1));
      }, timeoutMs);
      this.#pending.set(id, { node, resolve: resolve as (r: unknown) => void, reject, timer });
      this.#o.bus.publish(Channel.rpc(node), seal('site', req, this.#o.siteKey)).catch((error: unknown) => {
        clearTimeout(timer);
        this.#pending.delete(id);
        reject(new UnavailableError('BUS_UNAVAILABLE', `the bus is unavailable: ${(error as Error).message}`, 2));
      });
    });
  }

  #onReply(m: unknown): void {
    const from = (m as { from?: unknown })?.from;
    if (typeof from !== 'string') return;
    const key = this.#o.nodeKey(from);
    const r = key ? open<WireResponse>(m, key) : null;
    if (!r) {
      log.warn({ from }, 'dropped an RPC answer that is not signed by an enrolled node');
      return;
    }
    const p = this.#pending.get(r.id);
    if (!p || p.node !== from) return;
    this.#pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.error) p.reject(fromRpcError(r.error));
    else p.resolve(r.result);
  }

  async close(): Promise<void> {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new InvalidStateError('rpc client closed'));
      this.#pending.delete(id);
    }
    await this.#unsubscribe?.().catch(() => {});
  }
}

/** Serves requests for one node: checks the site's signature, runs the handler, signs the answer. */
export async function serveRpc(
  bus: Bus,
  node: string,
  keys: { privateKey: string; sitePublicKey: string },
  handle: (method: string, params: unknown) => Promise<unknown>,
): Promise<() => Promise<void>> {
  return bus.subscribe(Channel.rpc(node), (m) => {
    const req = open<WireRequest>(m, keys.sitePublicKey);
    if (!req || typeof req.id !== 'string' || typeof req.replyTo !== 'string' || !req.replyTo.startsWith('reply:')) {
      log.warn({ node }, 'dropped a request that is not signed by the site');
      return;
    }
    void handle(req.method, req.params)
      .then((result) => ({ id: req.id, result }))
      .catch((error: unknown) => ({ id: req.id, error: toRpcError(error) }))
      .then((res: WireResponse) => bus.publish(req.replyTo, seal(node, res, keys.privateKey)))
      .catch((error: unknown) => log.warn({ err: error }, 'could not answer a request'));
  });
}
