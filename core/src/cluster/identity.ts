import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { dirname } from 'node:path';
import { InvalidStateError, ValidationError } from '../errors.js';
import { createLogger } from '../log.js';
import { generateBoxKeys } from './box.js';
import { generateKeys } from './keys.js';
import type { Role } from './messages.js';

const log = createLogger('core:identity');

/**
 * What a node keeps of its enrolment, in `<dataDir>/node-identity.json` (mode 0600): its id, its signing
 * key (heartbeats, answers and events), its box key (assignments are sealed to it), and the site's
 * public key (commands must be signed by it).
 */
export interface NodeIdentity {
  id: string;
  roles: Role[];
  privateKey: string;
  publicKey: string;
  boxPrivateKey: string;
  boxPublicKey: string;
  sitePublicKey: string;
  enrolledAt: string;
}

/** What a node sends to enrol. */
export interface EnrollRequest {
  id: string;
  roles: Role[];
  publicKey: string;
  boxPublicKey: string;
  /** A one-time token made by an admin, or… */
  token?: string;
  /** …the deployment's shared enrolment secret. */
  secret?: string;
}

export function readIdentity(file: string): NodeIdentity | null {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const id = JSON.parse(raw) as NodeIdentity;
  for (const k of ['id', 'privateKey', 'publicKey', 'boxPrivateKey', 'boxPublicKey', 'sitePublicKey'] as const) {
    if (typeof id[k] !== 'string' || !id[k]) throw new InvalidStateError(`${file} is damaged ('${k}' is missing); delete it and enrol the node again`);
  }
  return id;
}

export function writeIdentity(file: string, identity: NodeIdentity): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file + '.tmp', JSON.stringify(identity, null, 2), { mode: 0o600 });
  renameSync(file + '.tmp', file);
  chmodSync(file, 0o600);
}

/** Fresh keys for a node that is about to enrol. */
export function newNodeKeys(): Pick<NodeIdentity, 'privateKey' | 'publicKey' | 'boxPrivateKey' | 'boxPublicKey'> {
  const sign = generateKeys();
  const box = generateBoxKeys();
  return { privateKey: sign.privateKey, publicKey: sign.publicKey, boxPrivateKey: box.privateKey, boxPublicKey: box.publicKey };
}

export interface EnrollOptions {
  /** The API of a signaling instance, e.g. https://master:8080. */
  masterUrl: string;
  /** SHA-256 fingerprint of its certificate, pinned (for a self-signed one). */
  fingerprint?: string | undefined;
  token?: string | undefined;
  secret?: string | undefined;
  id: string;
  roles: Role[];
  file: string;
}

/**
 * The node's identity: read from its file, or made by enrolling with the master (over HTTPS, with the
 * master's certificate pinned by fingerprint when it is self-signed). Enrolment needs a one-time token
 * or the deployment's secret; without either, or when the master refuses, start-up stops with why.
 */
export async function loadOrEnroll(o: EnrollOptions): Promise<NodeIdentity> {
  const have = readIdentity(o.file);
  if (have) {
    if (have.id !== o.id) throw new ValidationError('node.id', `is '${o.id}' but this data folder is enrolled as '${have.id}'; use that id, or another data folder`);
    return have;
  }
  if (!o.masterUrl) throw new ValidationError('cluster.masterUrl', 'is needed to enrol this node (CCTV_MASTER_URL, e.g. https://master:8080)');
  if (!o.token && !o.secret) throw new ValidationError('cluster.enrollToken', 'or cluster.enrollSecret is needed to enrol this node (CCTV_ENROLL_TOKEN from the dashboard, or the deployment\'s CCTV_ENROLL_SECRET)');
  const keys = newNodeKeys();
  const body: EnrollRequest = { id: o.id, roles: o.roles, publicKey: keys.publicKey, boxPublicKey: keys.boxPublicKey, ...(o.token ? { token: o.token } : { secret: o.secret! }) };
  const url = new URL('/api/nodes/enroll', o.masterUrl);
  let res: { status: number; body: unknown; retryAfterS?: number } | null = null;
  // The master may not be up yet (every service starting at once), or may ask us to slow down: wait and
  // try again. A refusal (a bad token or secret) is final.
  for (let attempt = 0; ; attempt++) {
    let why: string;
    try {
      res = await postJson(url, body, o.fingerprint);
      if (![429, 502, 503, 504].includes(res.status)) break;
      why = `the master answered ${res.status}`;
    } catch (error) {
      if (error instanceof InvalidStateError && /fingerprint/.test(error.message)) throw error;
      why = (error as Error).message;
    }
    const waitMs = res?.retryAfterS ? res.retryAfterS * 1000 : Math.min(500 * 2 ** attempt, 10_000);
    if (attempt === 0 || attempt % 10 === 0) log.warn({ master: o.masterUrl, why, retryInMs: waitMs }, 'cannot enrol yet; trying again');
    res = null;
    await new Promise((r) => setTimeout(r, waitMs));
  }
  if (res.status !== 201) {
    const msg = (res.body as { error?: { message?: string } })?.error?.message ?? `HTTP ${res.status}`;
    throw new InvalidStateError(`the master at ${o.masterUrl} refused to enrol node '${o.id}': ${msg}`);
  }
  const site = (res.body as { sitePublicKey?: unknown }).sitePublicKey;
  if (typeof site !== 'string' || !site.includes('PUBLIC KEY')) throw new InvalidStateError(`the master at ${o.masterUrl} answered the enrolment without a site key`);
  const identity: NodeIdentity = { id: o.id, roles: o.roles, ...keys, sitePublicKey: site, enrolledAt: new Date().toISOString() };
  writeIdentity(o.file, identity);
  log.info({ node: o.id, master: o.masterUrl }, 'enrolled');
  return identity;
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/;

/** POSTs JSON; over HTTPS, a pinned fingerprint is checked before a byte of the body is sent. */
async function postJson(url: URL, body: unknown, fingerprint: string | undefined): Promise<{ status: number; body: unknown; retryAfterS?: number }> {
  const data = Buffer.from(JSON.stringify(body));
  const headers = { 'content-type': 'application/json', 'content-length': String(data.length) };
  if (url.protocol === 'http:' && !LOOPBACK.test(url.hostname)) {
    log.warn({ master: url.origin }, 'enrolling over plain HTTP: the enrolment secret crosses the network unencrypted; use https and cluster.masterFingerprint');
  }
  let socket: TLSSocket | undefined;
  if (url.protocol === 'https:' && fingerprint) {
    socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 443), servername: LOOPBACK.test(url.hostname) ? undefined : url.hostname, rejectUnauthorized: false });
      s.once('error', reject);
      s.once('secureConnect', () => {
        const got = s.getPeerCertificate().fingerprint256;
        if (got?.toUpperCase() !== fingerprint.toUpperCase()) {
          s.destroy();
          reject(new InvalidStateError(`the master's certificate has fingerprint ${got}, not the pinned ${fingerprint} ('cluster.masterFingerprint')`));
          return;
        }
        s.off('error', reject);
        resolve(s);
      });
    });
  }
  return new Promise((resolve, reject) => {
    const opts = { method: 'POST', headers, timeout: 10_000, ...(socket ? { createConnection: () => socket } : {}) };
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let parsed: unknown = null;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          parsed = null;
        }
        const retryAfter = Number(res.headers['retry-after']);
        resolve({ status: res.statusCode ?? 0, body: parsed, ...(retryAfter > 0 ? { retryAfterS: retryAfter } : {}) });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (error) => reject(new InvalidStateError(`cannot reach the master at ${url.origin} to enrol: ${error.message}`, { cause: error })));
    req.end(data);
  });
}
