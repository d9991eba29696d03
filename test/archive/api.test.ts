import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@cctv/core';
import { signPendingManifests } from '@cctv/recorder';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { startSystem, type System } from '../../signaling/src/system.js';

// The one-process system recording a camera, read through the API and checked with the CLI.
const ROOT = resolve(import.meta.dirname, '../..');
let dir: string;
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let system: System;
let base: string;
let auth: Record<string, string> = {};

const api = async (path: string, init: RequestInit = {}) => fetch(base + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
const json = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
  const r = await api(path, init);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return (await r.json()) as T;
};
async function until<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const cli = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', join(ROOT, 'test/support/tsxRegister.mjs'), join(ROOT, 'signaling/src/cli.ts'), ...args], {
    encoding: 'utf8', env: { ...process.env, DATABASE_URL: database.url, CCTV_DATA_DIR: dir, CCTV_LOG_LEVEL: 'error' },
  });
const stored = () => system.db.query<{ n: number }>("SELECT count(*)::int AS n FROM segments WHERE camera_id = 'a1' AND state = 'stored'").then((r) => Number(r[0]!.n));

type Timeline = { recorded: Array<{ startMs: number; endMs: number }>; gaps: Array<{ startMs: number; endMs: number; reason: string | null }> };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-archive-api-'));
  database = await createTestDatabase('cctv_archive_api');
  const config = loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } },
      dataDir: dir,
      database: { url: database.url },
      demoCamera: false,
      recorder: { segmentSeconds: 1 },
      cameras: [{ id: 'a1', source: { kind: 'test', width: 320, height: 180, fps: 15 } }],
    },
  });
  system = await startSystem({ config, webDir: null, adminPassword: 'archive-test-password' });
  base = `http://127.0.0.1:${system.port}`;
  const r = await fetch(`${base}/api/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'archive-test-password' }) });
  auth = { authorization: `Bearer ${((await r.json()) as { token: string }).token}` };
  await until(async () => (await stored()) >= 4, '4 segments stored');
});

afterAll(async () => {
  await system?.close();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the archive through the API and the CLI', () => {
  it('shows the recording on the timeline, and after the camera was off for a while, the gap with its reason', async () => {
    const t0 = await json<Timeline>('/api/cameras/a1/archive/timeline');
    expect(t0.recorded.length).toBe(1);
    const status = await json<{ storage: { available: boolean }; recorder: { cameras: Array<{ id: string; recording: boolean }> } }>('/api/archive');
    expect(status.storage.available).toBe(true);
    expect(status.recorder.cameras).toEqual([expect.objectContaining({ id: 'a1', recording: true })]);
    // Off for 4 s, then on again.
    await api('/api/cameras/a1', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: false }) });
    await new Promise((r) => setTimeout(r, 4000));
    const before = await stored();
    await api('/api/cameras/a1', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true }) });
    await until(async () => (await stored()) >= before + 3, 'recording again');
    const t = await json<Timeline>('/api/cameras/a1/archive/timeline');
    expect(t.recorded.length).toBe(2);
    const gap = t.gaps.find((g) => g.startMs >= t.recorded[0]!.endMs - 1 && g.endMs <= t.recorded[1]!.startMs + 1)!;
    expect(gap.endMs - gap.startMs).toBeGreaterThan(3000);
    expect(gap.reason).toBeTruthy();
    // Bad input is named.
    const bad = await api('/api/cameras/a1/archive/timeline?from=yesterday');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { field: string } }).error.field).toBe('from');
  });

  it('serves a playlist across the gap whose init sections and segments are what was recorded, and audits the playback', async () => {
    const t = await json<Timeline>('/api/cameras/a1/archive/timeline');
    const from = t.recorded[0]!.startMs;
    const r = await api(`/api/cameras/a1/archive/playlist.m3u8?from=${from}&to=${Date.now()}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/mpegurl/);
    const pl = await r.text();
    expect(pl).toContain('#EXT-X-DISCONTINUITY');
    const uris = pl.split('\n').filter((l) => l.startsWith('segments/') || l.startsWith('#EXT-X-MAP'));
    for (const u of uris) {
      const path = u.startsWith('#') ? /URI="([^"]+)"/.exec(u)![1]! : u;
      const res = await api(`/api/cameras/a1/archive/${path}`);
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      const want = path.startsWith('init/') ? /init\/([0-9a-f]+)\.mp4/.exec(path)![1] : res.headers.get('x-content-sha256');
      expect(createHash('sha256').update(body).digest('hex')).toBe(want);
    }
    // A thumbnail per minute, made from the minute's first keyframe, then kept.
    const th = await api(`/api/cameras/a1/archive/thumbnail?at=${from}`);
    expect(th.status).toBe(200);
    expect(th.headers.get('content-type')).toBe('image/jpeg');
    const jpeg = Buffer.from(await th.arrayBuffer());
    expect(jpeg.subarray(0, 2).toString('hex')).toBe('ffd8');
    const minute = Math.floor(from / 60_000) * 60_000;
    expect(readFileSync(join(dir, 'thumbnails', 'a1', `${minute}.jpg`)).equals(jpeg)).toBe(true);
    expect((await api(`/api/cameras/a1/archive/thumbnail?at=${from - 3_600_000}`)).status).toBe(404);
    expect((await api('/api/cameras/a1/archive/thumbnail?at=soon')).status).toBe(400);
    // Another camera's segment is not reachable through this one.
    expect((await api('/api/cameras/zz/archive/segments/1.m4s')).status).toBe(404);
    const audit = await json<{ entries: Array<{ action: string; cameraId: string }> }>('/api/audit?action=view.archive_played');
    expect(audit.entries.some((e) => e.action === 'view.archive_played' && e.cameraId === 'a1')).toBe(true);
  });

  it('exports a range as one MP4 with a proof that verify-export checks offline, and catches a changed clip', async () => {
    // The master signs ended hours; here the hour is ended by moving the clock forward.
    expect(await signPendingManifests(system.db, system.cluster.siteKey.privateKey, Date.now() + 2 * 3_600_000)).toBeGreaterThan(0);
    const t = await json<Timeline>('/api/cameras/a1/archive/timeline');
    const from = t.recorded[0]!.startMs;
    const to = t.recorded[1]!.endMs;
    const ex = await json<{ mp4: string; proof: string; sha256: string; segments: number }>('/api/cameras/a1/archive/exports', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: new Date(from).toISOString(), to: new Date(to).toISOString() }),
    });
    expect(ex.segments).toBeGreaterThanOrEqual(6);
    const mp4 = Buffer.from(await (await api(ex.mp4)).arrayBuffer());
    const proof = await (await api(ex.proof)).text();
    const mp4File = join(dir, 'clip.mp4');
    const proofFile = join(dir, 'clip.proof.json');
    writeFileSync(mp4File, mp4);
    writeFileSync(proofFile, proof);
    expect(createHash('sha256').update(mp4).digest('hex')).toBe(ex.sha256);
    // A real MP4 of both recorded stretches.
    const probe = spawnSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration:stream=codec_name', '-of', 'json', mp4File], { encoding: 'utf8' });
    const info = JSON.parse(probe.stdout) as { format: { duration: string }; streams: Array<{ codec_name: string }> };
    expect(info.streams[0]!.codec_name).toBe('h264');
    expect(Number(info.format.duration)).toBeGreaterThan(5);
    const ok = cli('verify-export', mp4File, proofFile);
    expect(ok.stdout, ok.stderr).toMatch(/^OK: /);
    expect(ok.stdout).toMatch(new RegExp(`${ex.segments} segment\\(s\\), ${ex.segments} of them in signed hourly manifests`));
    expect(ok.status).toBe(0);
    // One byte changed in the clip.
    mp4.writeUInt8(mp4.readUInt8(mp4.length >> 1) ^ 1, mp4.length >> 1);
    writeFileSync(mp4File, mp4);
    const bad = cli('verify-export', mp4File, proofFile);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/NOT VERIFIED[\s\S]*the clip was changed/);
    const audit = await json<{ entries: Array<{ action: string }> }>('/api/audit?action=view.exported');
    expect(audit.entries.length).toBe(1);
  });

  it('verify (API and CLI) reports an intact archive, then the segment someone changed', async () => {
    const report = await json<{ ok: boolean; segments: number; findings: unknown[]; manifests: number }>('/api/archive/verify', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(report.findings).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.manifests).toBeGreaterThan(0);
    const row = (await system.db.query<{ id: number; path: string }>("SELECT id, path FROM segments WHERE state = 'stored' ORDER BY id LIMIT 1"))[0]!;
    const file = join(dir, 'archive', row.path);
    const data = readFileSync(file);
    data.writeUInt8(data.readUInt8(100) ^ 1, 100);
    writeFileSync(file, data);
    const out = cli('verify', 'a1');
    expect(out.status, out.stderr).toBe(1);
    expect(out.stdout).toMatch(new RegExp(`PROBLEMS FOUND[\\s\\S]*altered: segment ${Number(row.id)} `));
  });
});
