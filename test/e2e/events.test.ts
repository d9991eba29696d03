import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@cctv/core';
import { startSystem, type System } from '@cctv/signaling';
import { launchChromium } from '../support/browser.js';

// Motion in the dashboard, in Debian's Chromium: the live tile's mark while the box moves, the events
// page with thumbnails, an event opening the recordings at its time with its mark on the timeline, and
// a zone drawn in the editor and saved.
let dir: string;
let system: System;
let browser: Browser;
let page: Page;
const PASSWORD = 'events-e2e-password';
const url = (path = '/') => `https://127.0.0.1:${system.port}${path}`;
const ended = () => system.db.query<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE camera_id = 'yard' AND end_ms IS NOT NULL AND thumbnail IS NOT NULL").then((r) => Number(r[0]!.n));

async function until(fn: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-e2e-events-'));
  const config = loadConfig({
    env: {},
    overrides: {
      http: { host: '127.0.0.1', port: 0 }, dataDir: dir, demoCamera: false, recorder: { segmentSeconds: 1 }, sfu: { ice: { loopback: true, hostAddresses: ['127.0.0.1'] } },
      cameras: [{ id: 'yard', name: 'Yard', source: { kind: 'test', width: 640, height: 360, fps: 15, pattern: 'motion', periodS: 6, motionS: 3 }, motion: { enabled: true } }],
    },
  });
  system = await startSystem({ config, adminPassword: PASSWORD });
  browser = await launchChromium();
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  await page.goto(url('/'));
  await page.waitForURL(/\/login/);
  await page.locator('input[name="username"]').fill('admin');
  await page.locator('input[name="password"]').fill(PASSWORD);
  await page.getByTestId('login-submit').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('motion in the dashboard', () => {
  it('marks the live tile while the box moves, with its box over the video', async () => {
    await page.goto(url('/'));
    await page.getByTestId('live-motion').first().waitFor({ timeout: 30_000 });
    // And the mark goes when the motion ends.
    await page.getByTestId('live-motion').first().waitFor({ state: 'detached', timeout: 15_000 });
  });

  it('lists events with thumbnails, newest first, and opens the recordings at an event with its mark on the timeline', async () => {
    await until(async () => (await ended()) >= 2, 'two ended events with thumbnails', 40_000);
    await page.goto(url('/events'));
    await page.getByTestId('event-row').first().waitFor();
    expect(await page.getByTestId('event-row').count()).toBeGreaterThanOrEqual(2);
    // The thumbnails are real pictures.
    await until(async () => (await page.getByTestId('event-thumbnail').first().evaluate((img) => (img as HTMLImageElement).naturalWidth)) > 0, 'a thumbnail loaded');
    // Open the oldest listed (its footage is in the archive by now).
    await page.getByTestId('event-row').last().click();
    await page.waitForURL(/\/recordings\/yard\?t=\d+/);
    await page.getByTestId('timeline-event').first().waitFor({ timeout: 15_000 });
    expect(await page.getByTestId('timeline-event').count()).toBeGreaterThanOrEqual(1);
  });

  it('draws a zone on the live picture and saves it to the camera', async () => {
    await page.goto(url('/'));
    await page.getByTestId('motion-yard-edit').click();
    await page.getByTestId('zone-editor').waitFor();
    await page.getByTestId('zone-rectangle').click();
    await page.getByTestId('zone-item').first().waitFor();
    await page.getByTestId('zone-name').first().fill('driveway');
    await page.getByTestId('zone-save').click();
    await page.getByTestId('zone-saved').waitFor({ timeout: 10_000 });
    const cam = await system.store.get('yard');
    expect(cam!.config.motion.zones.map((z) => z.name)).toEqual(['driveway']);
    expect(cam!.config.motion.zones[0]!.points.length).toBeGreaterThanOrEqual(3);
  });
});
