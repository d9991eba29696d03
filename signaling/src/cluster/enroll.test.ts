import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, loadOrEnroll } from '@cctv/core';
import { startSystem, type System } from '../system.js';

// Enrolment over HTTPS against a signaling instance with a self-signed certificate: a node pins the
// certificate by its fingerprint and proves itself with a one-time token or the deployment's secret.

let dir: string;
let system: System;
let base: string;
let auth: Record<string, string>;
const SECRET = 'a-deployment-secret-of-some-length';
/** A JSON request trusting exactly the instance's own certificate. */
function api(path: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  return new Promise<{ status: number; body: Record<string, unknown> & Array<Record<string, unknown>> }>((resolve, reject) => {
    const data = init.body === undefined ? undefined : JSON.stringify(init.body);
    const req = request(base + path, { method: init.method ?? 'GET', ca: system.tls!.cert, headers: { ...auth, ...init.headers, ...(data ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null });
      });
    });
    req.on('error', reject);
    req.end(data);
  });
}
const enrol = (id: string, o: { token?: string; secret?: string; fingerprint?: string; roles?: Array<'sfu' | 'camera-node'> }) =>
  loadOrEnroll({ masterUrl: base, fingerprint: o.fingerprint ?? system.tls!.fingerprint, token: o.token, secret: o.secret, id, roles: o.roles ?? ['camera-node'], file: join(dir, id, 'node-identity.json') });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-enrol-'));
  const config = loadConfig({
    env: {},
    overrides: { node: { id: 'sig1', roles: ['signaling'] }, http: { host: '127.0.0.1', port: 0, tls: { mode: 'self-signed' } }, dataDir: join(dir, 'sig1'), demoCamera: false, cluster: { enrollSecret: SECRET } },
  });
  system = await startSystem({ config, webDir: null, adminPassword: 'enrol-test-password' });
  base = `https://127.0.0.1:${system.port}`;
  auth = {};
  const r = await api('/api/auth/token', { method: 'POST', body: { username: 'admin', password: 'enrol-test-password' } });
  auth = { authorization: `Bearer ${r.body.token as string}` };
});
afterAll(async () => {
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('enrolment', () => {
  it('with a one-time token from an admin, over HTTPS pinned by fingerprint', async () => {
    const made = await api('/api/nodes/enrollment-tokens', { method: 'POST', body: { roles: ['camera-node'], ttlS: 600 } });
    expect(made.status).toBe(201);
    const token = made.body.token as string;
    expect(token).toMatch(/^cctv_enroll_/);
    // The wrong certificate: refused before the token is sent.
    await expect(enrol('pi1', { token, fingerprint: '00:'.repeat(31) + '00' })).rejects.toThrow(/fingerprint .* not the pinned/);
    const id = await enrol('pi1', { token });
    expect(id.sitePublicKey).toBe(system.cluster.siteKey.publicKey);
    expect(statSync(join(dir, 'pi1', 'node-identity.json')).mode & 0o777).toBe(0o600);
    // Used once: a second node cannot take it.
    await expect(enrol('pi2', { token })).rejects.toThrow(/refused to enrol node 'pi2': the enrolment token is unknown, used or expired/);
    // The enrolled node is known (not yet seen: it has not heartbeated).
    const listed = (await api('/api/nodes')).body.find((n) => n.id === 'pi1');
    expect(listed).toMatchObject({ id: 'pi1', roles: ['camera-node'], state: 'unseen', enrolled: true });
    // Its identity is kept: the next start reads it and asks nobody.
    expect((await enrol('pi1', { token: 'ignored' })).publicKey).toBe(id.publicKey);
  });

  it('refuses roles the token does not allow, a wrong secret, and a node that would be signaling', async () => {
    const made = await api('/api/nodes/enrollment-tokens', { method: 'POST', body: { roles: ['camera-node'] } });
    await expect(enrol('sfu9', { token: made.body.token as string, roles: ['sfu'] })).rejects.toThrow(/does not allow the roles sfu/);
    await expect(enrol('n2', { secret: 'not-the-secret-at-all' })).rejects.toThrow(/the enrolment secret is not right/);
    expect((await enrol('n3', { secret: SECRET, roles: ['sfu', 'camera-node'] })).id).toBe('n3');
    const bad = await api('/api/nodes/enroll', { method: 'POST', body: { id: 'x', roles: ['signaling'], publicKey: 'x', boxPublicKey: 'x', secret: SECRET } });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'roles' });
    const audit = (await api('/api/audit?action=node.*')).body.entries as unknown as Array<{ action: string; target: string }>;
    expect(audit.map((e) => `${e.action} ${e.target}`)).toEqual(expect.arrayContaining(['node.enrolled pi1', 'node.enrolled n3', 'node.enrollment_refused n2', 'node.enrollment_token_created enrollment-token']));
  });

  it('drains, undrains and revokes a node from the API', async () => {
    expect((await api('/api/nodes/n3/drain', { method: 'POST' })).body).toMatchObject({ id: 'n3', drained: true });
    expect((await api('/api/nodes/n3/undrain', { method: 'POST' })).body).toMatchObject({ drained: false });
    expect((await api('/api/nodes/n3', { method: 'DELETE' })).status).toBe(204);
    expect((await api('/api/nodes/n3')).status).toBe(404);
    expect((await api('/api/nodes/nobody/drain', { method: 'POST' })).body.error).toMatchObject({ code: 'NODE_NOT_FOUND' });
  });
});
