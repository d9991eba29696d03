import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { liveChildCount, loadConfig } from '@cctv/core';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { watch } from '../../test/support/whepClient.js';
import { startSystem, type System } from './system.js';

// The whole one-process system on a real port, against the machine's Postgres.
let dir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let system: System;
let base: string;

const config = (url: string) =>
  loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } },
      dataDir: dir,
      database: { url },
      sfu: { ice: { loopback: true, hostAddresses: ['127.0.0.1'] } },
      cameras: [{ id: 'cfg', name: 'From the file', source: { kind: 'test', width: 320, height: 180, fps: 15 } }],
    },
  });

async function until<T>(fn: () => Promise<T | undefined> | T | undefined, what: string, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let auth: Record<string, string> = {};
const api = async (path: string, init: RequestInit = {}) => fetch(base + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });

/** A Bearer token for the admin, as a script gets one. */
async function signIn(): Promise<void> {
  const r = await fetch(`${base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'system-test-password' }) });
  auth = { authorization: `Bearer ${((await r.json()) as { token: string }).token}` };
}
const cameraState = async (id: string) => ((await (await api(`/api/cameras/${id}`)).json()) as { status: { state: string } }).status.state;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-system-'));
  database = await createTestDatabase();
  system = await startSystem({ config: config(database.url), webDir: null, adminPassword: 'system-test-password' });
  base = `http://127.0.0.1:${system.port}`;
  await signIn();
});

afterAll(async () => {
  await system?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the system on one machine', () => {
  it('starts the cameras of the config file, and no demo camera beside them', async () => {
    const list = (await (await api('/api/cameras')).json()) as Array<{ id: string; name: string }>;
    expect(list.map((c) => c.id)).toEqual(['cfg']);
    await until(async () => (await cameraState('cfg')) === 'live', 'cfg live');
  });

  it('adds a camera over REST, pushes its state on the WebSocket, and plays it over WHEP', async () => {
    // Without credentials the socket is refused at the upgrade.
    const refused = new WebSocket(`ws://127.0.0.1:${system.port}/api/ws`);
    await expect(new Promise((resolve, reject) => { refused.once('open', resolve); refused.once('error', reject); })).rejects.toThrow('Unexpected server response: 401');
    const ws = new WebSocket(`ws://127.0.0.1:${system.port}/api/ws`, { headers: auth });
    const messages: Array<{ type: string; status?: { id: string; state: string } }> = [];
    ws.on('message', (d) => messages.push(JSON.parse(String(d))));
    await new Promise((r) => ws.once('open', r));
    try {
      const r = await api('/api/cameras', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'rest', source: { kind: 'test', width: 320, height: 180, fps: 15 } }) });
      expect(r.status).toBe(201);
      await until(() => messages.find((m) => m.type === 'status' && m.status?.id === 'rest' && m.status.state === 'live'), 'a live status on the socket');
      expect(messages[0]!.type).toBe('snapshot');

      await expect(watch(`${base}/api/cameras/rest/whep`)).rejects.toThrow(/401/);
      const viewer = await watch(`${base}/api/cameras/rest/whep`, { headers: auth });
      try {
        await viewer.waitForPackets(30);
        expect([...viewer.payloadTypes()]).toEqual([96]);
        await until(async () => ((await (await api('/api/cameras/rest')).json()) as { status: { viewers: number } }).status.viewers === 1, 'viewer count 1');
      } finally {
        await viewer.close();
      }
      await until(async () => ((await (await api('/api/cameras/rest')).json()) as { status: { viewers: number } }).status.viewers === 0, 'viewer count 0');
      const metrics = await (await api('/metrics')).text();
      // Watching is audited: who, which camera, from where.
      const audit = (await (await api('/api/audit?action=view.live_started&camera=rest')).json()) as { entries: Array<{ actor: string; ip: string }> };
      expect(audit.entries[0]).toMatchObject({ actor: 'admin', ip: '127.0.0.1' });
      expect(metrics).toMatch(/cctv_camera_up\{camera="rest"\} 1/);
      expect(metrics).toMatch(/cctv_sfu_whep_sessions_total\{camera="rest"\} 1/);
      // Its token revoked, the open socket is closed within a few seconds.
      // (A token cannot make tokens over the API; this one is made as the dashboard would, for the admin.)
      const admin = (await system.auth.users.getByName('admin'))!;
      const { token, record } = await system.auth.tokens.create(admin.id, { name: 'ws', kind: 'api', permissions: null, cameras: null, ttlMs: null });
      const t = { token, id: record.id };
      const short = new WebSocket(`ws://127.0.0.1:${system.port}/api/ws`, { headers: { authorization: `Bearer ${t.token}` } });
      await new Promise((r) => short.once('open', r));
      const closed = new Promise<number>((r) => short.once('close', (code) => r(code)));
      expect((await api(`/api/tokens/${t.id}`, { method: 'DELETE' })).status).toBe(204);
      expect(await closed).toBe(4401);
    } finally {
      ws.close();
    }
  });

  it('stops the ffmpeg of a deleted camera and of a disabled one', async () => {
    const pids = system.cameraNode!.get('rest').pids;
    expect(pids.length).toBe(1);
    expect((await api('/api/cameras/rest', { method: 'DELETE' })).status).toBe(204);
    await until(() => !system.cameraNode!.has('rest'), 'camera removed from the node');
    await until(() => pids.every((p) => !isAlive(p)), 'ffmpeg gone');
    const cfgPids = system.cameraNode!.get('cfg').pids;
    await api('/api/cameras/cfg', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: false }) });
    await until(async () => (await cameraState('cfg')) === 'stopped', 'cfg stopped');
    await until(() => cfgPids.every((p) => !isAlive(p)), 'cfg ffmpeg gone');
    await expect(watch(`${base}/api/cameras/cfg/whep`, { headers: auth })).rejects.toThrow(/409.*CAMERA_DISABLED/);
    await api('/api/cameras/cfg', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true }) });
    await until(async () => (await cameraState('cfg')) === 'live', 'cfg live again');
  });

  it('keeps its cameras across a restart, and leaves no ffmpeg behind when it stops', async () => {
    await api('/api/cameras', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'kept', source: { kind: 'test', width: 320, height: 180, fps: 15 } }) });
    await system.settled();
    await system.close();
    expect(liveChildCount()).toBe(0);
    system = await startSystem({ config: config(database.url), webDir: null });
    base = `http://127.0.0.1:${system.port}`;
    // Users live in the database too: the same password still signs in (no new admin was made).
    expect(system.generatedAdminPassword).toBeNull();
    await signIn();
    const ids = ((await (await api('/api/cameras')).json()) as Array<{ id: string }>).map((c) => c.id);
    expect(ids).toEqual(['cfg', 'kept']);
    await until(async () => (await cameraState('kept')) === 'live', 'kept live after restart');
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
