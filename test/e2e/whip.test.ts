import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@cctv/core';
import { startSystem, type System } from '@cctv/signaling';
import { launchChromium } from '../support/browser.js';
import { watch } from '../support/whepClient.js';

// WHIP ingest end to end: a Chromium tab draws a moving box on a canvas and publishes it to a `whip`
// camera with a small WHIP client (RFC 9725) written in the page; the camera is then live, watched over
// WHEP, recorded and analysed like any other.
let dir: string;
let system: System;
let browser: Browser;
let page: Page;
let token: string;
/** The publishing session's URL (the Location of the WHIP POST). */
let location = '';
const PASSWORD = 'whip-e2e-password';
// Plain HTTP on 127.0.0.1: a secure context for the browser, and Node's fetch needs no certificate.
const url = (path = '/') => `http://127.0.0.1:${system.port}${path}`;
const count = async (sql: string) => Number((await system.db.query<{ n: number }>(sql))[0]!.n);

async function until(fn: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The page's publisher: a 640×360 canvas with a box moving across it (requestAnimationFrame), captured
 * at 15 fps and sent with H.264; ICE gathering completes before the POST (no trickle).
 */
async function publishFromPage(p: Page, endpoint: string, bearer: string): Promise<{ status: number; location: string | null; error?: string }> {
  return p.evaluate(
    async ({ endpoint, bearer }) => {
      const canvas = document.createElement('canvas');
      canvas.width = 640;
      canvas.height = 360;
      document.body.appendChild(canvas);
      const ctx = canvas.getContext('2d')!;
      const started = performance.now();
      const draw = () => {
        const t = (performance.now() - started) / 1000;
        ctx.fillStyle = '#404040';
        ctx.fillRect(0, 0, 640, 360);
        ctx.fillStyle = '#f0f0f0';
        ctx.fillRect(20 + ((Math.sin(t * 1.5) + 1) / 2) * 480, 110, 120, 140);
        requestAnimationFrame(draw);
      };
      draw();
      const stream = canvas.captureStream(15);
      const pc = new RTCPeerConnection();
      const transceiver = pc.addTransceiver(stream.getVideoTracks()[0]!, { direction: 'sendonly', streams: [stream] });
      const codecs = RTCRtpSender.getCapabilities('video')?.codecs ?? [];
      const h264 = codecs.filter((c) => c.mimeType === 'video/H264' && /packetization-mode=1/.test(c.sdpFmtpLine ?? ''));
      if (h264.length === 0) return { status: 0, location: null, error: `no H.264 encoder (${codecs.map((c) => c.mimeType).join(', ')})` };
      transceiver.setCodecPreferences(h264);
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise<void>((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
      });
      const res = await fetch(endpoint, { method: 'POST', headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/sdp' }, body: pc.localDescription!.sdp });
      if (res.status !== 201) return { status: res.status, location: null, error: await res.text() };
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      (window as unknown as { whip: RTCPeerConnection }).whip = pc;
      return { status: res.status, location: res.headers.get('location') };
    },
    { endpoint, bearer },
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-e2e-whip-'));
  const config = loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0, tls: { mode: 'off' } }, dataDir: dir, demoCamera: false, recorder: { segmentSeconds: 1 },
      sfu: { ice: { loopback: true, hostAddresses: ['127.0.0.1'] } },
      cameras: [{ id: 'tab', name: 'Browser tab', source: { kind: 'whip' }, recording: { enabled: true }, motion: { enabled: true } }],
    },
  });
  system = await startSystem({ config, adminPassword: PASSWORD });
  const res = await fetch(url('/api/auth/token'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
  expect(res.status).toBe(200);
  token = ((await res.json()) as { token: string }).token;
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  // The system's own origin: the client's fetch is same-origin.
  await page.goto(url('/'));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a browser tab publishing over WHIP', () => {
  const camera = async () => (await (await fetch(url('/api/cameras/tab'), { headers: { authorization: `Bearer ${token}` } })).json()) as { status: { state: string; lastError: string | null }; placement: { cameraNode: string | null; sfu: string | null; problem: string | null } };

  it('waits for a publisher, with no camera-node and no problem', async () => {
    await until(async () => (await camera()).placement?.sfu != null, 'the camera placed on an SFU', 15_000);
    const c = await camera();
    expect(c.placement).toMatchObject({ cameraNode: null, problem: null });
    expect(c.status).toMatchObject({ state: 'reconnecting', lastError: 'waiting for a WHIP publisher' });
  });

  it('publishes the canvas: the camera goes live and a WHEP viewer receives its video', async () => {
    const r = await publishFromPage(page, url('/api/cameras/tab/whip'), token);
    expect(r, r.error).toMatchObject({ status: 201 });
    expect(r.location).toMatch(/^\/api\/cameras\/tab\/whip\/.+~.+$/);
    location = r.location!;
    await until(async () => (await camera()).status.state === 'live', 'the camera live', 20_000);
    const viewer = await watch(url('/api/cameras/tab/whep'), { headers: { authorization: `Bearer ${token}` } });
    try {
      await viewer.waitForPackets(100, 15_000);
    } finally {
      await viewer.close();
    }
    const audited = await count("SELECT count(*)::int AS n FROM audit_log WHERE action = 'live.publish_started' AND camera_id = 'tab'");
    expect(audited).toBe(1);
  });

  it('records it and finds the motion of the box', async () => {
    await until(async () => (await count("SELECT count(*)::int AS n FROM segments WHERE camera_id = 'tab' AND state IN ('spool', 'stored')")) >= 2, 'two segments of tab', 40_000);
    await until(async () => (await count("SELECT count(*)::int AS n FROM events WHERE camera_id = 'tab'")) >= 1, 'a motion event of tab', 40_000);
  });

  it('refuses a publisher for a camera that is not a whip camera', async () => {
    await fetch(url('/api/cameras'), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'pattern', source: { kind: 'test' }, enabled: false }) });
    const res = await fetch(url('/api/cameras/pattern/whip'), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/sdp' }, body: 'v=0\r\n' });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('NOT_WHIP_CAMERA');
  });

  it('ends the publisher on DELETE; the camera stops being live', async () => {
    const del = await fetch(url(location), { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(del.status).toBe(200);
    await until(async () => (await camera()).status.state !== 'live', 'the camera not live', 15_000);
  });
});
