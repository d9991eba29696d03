import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@cctv/core';
import { startSystem, type System } from '@cctv/signaling';
import { launchChromium } from '../support/browser.js';

// The Recordings page in Debian's Chromium: the day's bar, hls.js playing the archive's VOD playlist
// across a gap, and an export.
let dir: string;
let system: System;
let browser: Browser;
let page: Page;
const PASSWORD = 'recordings-e2e-password';
const url = (path = '/') => `https://127.0.0.1:${system.port}${path}`;
const stored = () => system.db.query<{ n: number }>("SELECT count(*)::int AS n FROM segments WHERE camera_id = 'demo' AND state = 'stored'").then((r) => Number(r[0]!.n));

async function until(fn: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// The camera switched off and on as the API does it (the store announces the change to every part).
async function setEnabled(enabled: boolean): Promise<void> {
  expect(await system.store.update('demo', { enabled }, 'merge')).not.toBeNull();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-e2e-rec-'));
  const config = loadConfig({ env: {}, overrides: { http: { host: '127.0.0.1', port: 0 }, dataDir: dir, recorder: { segmentSeconds: 1 }, sfu: { ice: { loopback: true, hostAddresses: ['127.0.0.1'] } } } });
  system = await startSystem({ config, adminPassword: PASSWORD });
  // Recorded, then 5 s off, then recorded again: a gap in the middle.
  await until(async () => (await stored()) >= 5, '5 segments');
  await setEnabled(false);
  await new Promise((r) => setTimeout(r, 5000));
  const before = await stored();
  await setEnabled(true);
  await until(async () => (await stored()) >= before + 5, '5 more segments');
  browser = await launchChromium();
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
  await page.goto(url('/recordings/demo'));
  await page.waitForURL(/\/login/);
  await page.locator('input[name="username"]').fill('admin');
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
  await page.waitForURL(/\/recordings\/demo/);
});

afterAll(async () => {
  await browser?.close();
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

const video = () =>
  page.evaluate(() => {
    const v = document.querySelector('[data-testid="recordings-video"]') as HTMLVideoElement;
    return { time: v.currentTime, width: v.videoWidth, paused: v.paused, error: v.error?.message ?? null };
  });

describe('recordings in Chromium', () => {
  it('shows the day with both recorded stretches and the gap between them, and its reason', async () => {
    await until(async () => (await page.getByTestId('timeline-range').count()) === 2, 'two recorded stretches on the bar');
    const titles = await page.getByTestId('timeline-gap').evaluateAll((els) => els.map((e) => e.getAttribute('title') ?? ''));
    expect(titles.some((t) => /not recorded: .+/.test(t))).toBe(true);
  });

  it('plays the archive with hls.js from its start across the gap', async () => {
    const t = await page.evaluate(async () => (await (await fetch('/api/cameras/demo/archive/timeline')).json()) as { recorded: Array<{ startMs: number; endMs: number }> });
    expect(t.recorded.length).toBe(2);
    // The day is one bar: a click just before the first stretch plays from its start.
    const box = (await page.getByTestId('timeline-range').first().boundingBox())!;
    await page.mouse.click(box.x - 2, box.y + box.height / 2);
    await until(async () => (await video()).width > 0 && (await video()).time > 0.3, 'the video to play');
    const playhead = async () => Number(await page.getByTestId('timeline-bar').getAttribute('aria-valuenow'));
    expect(await playhead()).toBeLessThan(t.recorded[0]!.endMs);
    // It plays on through the discontinuity into the second stretch, dated by the wall clock.
    await until(async () => {
      const vv = await video();
      expect(vv.error).toBeNull();
      return (await playhead()) > t.recorded[1]!.startMs + 1000;
    }, 'playback past the gap', 40_000);
    // "Previous gap" goes back to the first stretch, "Next gap" to the second.
    await page.getByTestId('prev-gap').click();
    await until(async () => (await playhead()) < t.recorded[0]!.endMs, 'back in the first stretch');
    await page.getByTestId('next-gap').click();
    await until(async () => (await playhead()) >= t.recorded[1]!.startMs, 'in the second stretch again');
  });

  it('exports a clip around the playhead, with its proof', async () => {
    await page.getByRole('button', { name: 'Around the playhead' }).click();
    await page.getByTestId('export-button').click();
    await until(async () => (await page.getByTestId('export-links').count()) > 0 || (await page.locator('.export-form .error-text, .export-form [role="alert"]').count()) > 0, 'the export');
    const failure = await page.locator('.export-form').textContent();
    expect(await page.getByTestId('export-links').count(), failure ?? '').toBe(1);
    const links = await page.getByTestId('export-links').locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    expect(links[0]).toMatch(/\/api\/cameras\/demo\/archive\/exports\/demo-.*\.mp4$/);
    expect(links[1]).toMatch(/\.proof\.json$/);
    const status = await page.evaluate(async (href) => (await fetch(href!)).status, links[0]);
    expect(status).toBe(200);
  });
});
