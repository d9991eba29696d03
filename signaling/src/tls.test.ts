import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@cctv/core';
import { startSystem, type System } from './system.js';

const dir = mkdtempSync(join(tmpdir(), 'cctv-tls-'));
let system: System | undefined;
afterAll(async () => {
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** GET over HTTPS, trusting exactly the given certificate (so its names are checked too). */
function get(url: string, ca: string): Promise<{ status: number; headers: Record<string, unknown>; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, method: 'GET' }, (res) => {
      res.resume();
      const cert = (res.socket as unknown as { getPeerX509Certificate(): X509Certificate }).getPeerX509Certificate();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, fingerprint: cert.fingerprint256 }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTPS built in', () => {
  it('makes a self-signed certificate on first start, serves with it and sends HSTS; keeps it across restarts', async () => {
    const config = loadConfig({ env: {}, overrides: { http: { host: '127.0.0.1', port: 0 }, dataDir: dir, cameras: [], sfu: { ice: { loopback: true } } } });
    system = await startSystem({ config, webDir: null, demoCamera: false, adminPassword: 'tls-test-password' });
    expect(system.url).toMatch(/^https:\/\//);
    expect(system.tls?.generated).toBe(true);
    const cert = new X509Certificate(system.tls!.cert);
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.subjectAltName).toContain('DNS:localhost');
    const r = await get(`https://127.0.0.1:${system.port}/api/health`, system.tls!.cert);
    expect(r.status).toBe(200);
    expect(r.fingerprint).toBe(system.tls!.fingerprint);
    expect(String(r.headers['strict-transport-security'])).toMatch(/max-age=\d+/);
    const first = system.tls!.fingerprint;
    await system.close();
    system = await startSystem({ config, webDir: null, demoCamera: false });
    expect(system.tls?.generated).toBe(false);
    expect(system.tls?.fingerprint).toBe(first);
  });

  it('names the field when the configured certificate cannot be read', async () => {
    const config = loadConfig({ env: {}, overrides: { http: { host: '127.0.0.1', port: 0, tls: { mode: 'files', certFile: join(dir, 'nope.pem'), keyFile: join(dir, 'nope.key') } }, dataDir: dir } });
    await expect(startSystem({ config, webDir: null, demoCamera: false })).rejects.toThrow(/http\.tls\.certFile/);
  });
});
