import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBase32 } from '@oslojs/encoding';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '@cctv/core';
import { startSystem, type System } from '@cctv/signaling';
import { totpNow } from '../../signaling/src/auth/users.js';
import { launchChromium } from '../support/browser.js';

// The dashboard in Debian's Chromium against the whole system in its default mode: HTTPS with the
// self-signed certificate made on first start, the embedded database, the synthetic demo camera, the
// built web app, sign-in required.
let dir: string;
let config: Config;
let system: System;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const PASSWORD = 'e2e-admin-password';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-e2e-'));
  config = loadConfig({ env: {}, overrides: { http: { host: '127.0.0.1', port: 0 }, dataDir: dir, sfu: { ice: { loopback: true, hostAddresses: ['127.0.0.1'] } } } });
  system = await startSystem({ config, adminPassword: PASSWORD });
  browser = await launchChromium();
  // The certificate is self-signed: a person accepts it once in the browser; the test does the same.
  context = await browser.newContext({ ignoreHTTPSErrors: true });
  page = await context.newPage();
});

afterAll(async () => {
  await browser?.close();
  await system?.close();
  rmSync(dir, { recursive: true, force: true });
});

const url = (path = '/') => `https://127.0.0.1:${system.port}${path}`;

/** Frames the page has rendered for a camera's video, and whether the last one has a picture (not flat). */
async function frames(id: string): Promise<{ count: number; picture: boolean }> {
  return page.evaluate((camera) => {
    const w = window as unknown as { __frames?: Record<string, number> };
    const v = document.querySelector(`[data-testid="video-${camera}"]`) as HTMLVideoElement | null;
    if (!v) return { count: 0, picture: false };
    w.__frames ??= {};
    if (!(camera in w.__frames)) {
      w.__frames[camera] = 0;
      const tick = () => {
        w.__frames![camera]!++;
        (document.querySelector(`[data-testid="video-${camera}"]`) as HTMLVideoElement | null)?.requestVideoFrameCallback(tick);
      };
      v.requestVideoFrameCallback(tick);
    }
    let picture = false;
    if (v.videoWidth > 0) {
      const c = document.createElement('canvas');
      c.width = 64;
      c.height = 36;
      const ctx = c.getContext('2d')!;
      ctx.drawImage(v, 0, 0, 64, 36);
      const d = ctx.getImageData(0, 0, 64, 36).data;
      let min = 255;
      let max = 0;
      for (let i = 0; i < d.length; i += 4) {
        min = Math.min(min, d[i]!);
        max = Math.max(max, d[i]!);
      }
      picture = max - min > 64;
    }
    return { count: w.__frames[camera]!, picture };
  }, id);
}

async function until(fn: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function signIn(password: string): Promise<void> {
  await page.locator('input[name="username"]').fill('admin');
  await page.locator('input[name="password"]').fill(password);
  await page.getByTestId('login-submit').click();
}

describe('dashboard in Chromium', () => {
  it('asks for sign-in, refuses a wrong password, then shows the synthetic camera live', async () => {
    await page.goto(url('/'));
    await page.waitForURL(/\/login/);
    await signIn('not-the-password');
    await expect.poll(async () => page.getByTestId('login-error').textContent()).toMatch(/not right/);
    await signIn(PASSWORD);
    await page.getByTestId('whoami').waitFor();
    expect(await page.getByTestId('whoami').textContent()).toContain('admin');
    const tile = page.getByTestId('tile-demo');
    await tile.waitFor();
    await until(async () => (await tile.getAttribute('data-state')) === 'live', 'the demo tile to be live');
    const first = await frames('demo');
    await until(async () => (await frames('demo')).count >= first.count + 30, '30 rendered frames');
    expect((await frames('demo')).picture).toBe(true);
    await until(async () => Number(await page.getByTestId('fps-demo').textContent()) > 20, 'an fps figure');
  });

  it('brings the picture back by itself after the camera ffmpeg is killed', async () => {
    const [pid] = system.cameraNode!.get('demo').pids;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid!, 'SIGKILL');
    const killedAt = Date.now();
    // The picture stops (frames already in flight may still arrive)…
    let last = (await frames('demo')).count;
    let stillSince = Date.now();
    await until(async () => {
      const n = (await frames('demo')).count;
      if (n !== last) [last, stillSince] = [n, Date.now()];
      return Date.now() - stillSince >= 200;
    }, 'the picture to stop');
    // …and comes back from the new ffmpeg, without a reload.
    await until(async () => (await frames('demo')).count > last, 'a frame from the new ffmpeg');
    console.log(`MEASURED e2e_picture_back_ms=${Date.now() - killedAt}`);
    const back = (await frames('demo')).count;
    await until(async () => (await frames('demo')).count >= back + 30, '30 more frames');
    expect(system.cameraNode!.get('demo').pids[0]).not.toBe(pid);
    expect((await frames('demo')).picture).toBe(true);
    expect(await page.getByTestId('tile-demo').getAttribute('data-state')).toBe('live');
  });

  it('enrols 2FA with the QR code, then asks for a code at the next sign-in', async () => {
    await page.goto(url('/account'));
    await page.getByRole('button', { name: /set up|turn on/i }).first().click();
    await page.getByTestId('totp-qr').waitFor();
    expect(await page.getByTestId('totp-qr').getAttribute('src')).toMatch(/^data:image\/svg\+xml/);
    const secret = decodeBase32((await page.getByTestId('totp-secret').textContent())!.trim());
    await page.locator('input[name="totpCode"]').fill(totpNow(secret));
    await page.getByTestId('totp-enable').click();
    await page.getByTestId('recovery-codes').waitFor();
    expect(await page.getByTestId('recovery-codes').locator('li').count()).toBe(10);
    await page.getByTestId('recovery-saved').click();
    await page.getByTestId('sign-out').click();
    await page.waitForURL(/\/login/);
    await signIn(PASSWORD);
    await page.locator('input[name="code"]').waitFor();
    // The code of the enrolment was used; the next time step's is accepted (within the ±1 step window).
    await page.locator('input[name="code"]').fill(totpNow(secret, Date.now() + 30_000));
    await page.getByTestId('code-submit').click();
    await page.getByTestId('tile-demo').waitFor();
  });

  it('shows the audit log with this session in it, and its chain intact', async () => {
    await page.goto(url('/audit'));
    await page.getByTestId('audit-row').first().waitFor();
    const text = await page.locator('body').textContent();
    expect(text).toContain('auth.2fa_enabled');
    expect(text).toContain('view.live_started');
    await page.getByTestId('audit-verify').click();
    await expect.poll(async () => page.getByTestId('audit-verify-result').textContent()).toMatch(/intact/);
  });

  it('shows the node on the nodes page; draining it there stops the demo camera, whose tile says why, and undraining brings it back', async () => {
    const id = config.node.id;
    await page.getByTestId('nav-nodes').click();
    await page.waitForURL(/\/nodes$/);
    const card = page.getByTestId(`node-${id}`);
    await card.waitFor();
    expect(await card.getAttribute('data-state')).toBe('alive');
    expect((await page.getByTestId(`node-roles-${id}`).textContent())!.split(', ').sort()).toEqual(['camera-node', 'detector', 'recorder', 'sfu', 'signaling']);
    await page.getByTestId(`node-leader-${id}`).waitFor();
    expect(await page.getByTestId('cluster-leader').textContent()).toContain(id);
    expect(await page.getByTestId(`node-clock-${id}`).textContent()).toMatch(/ms from this server/);
    const version = await page.getByTestId('cluster-config-version').textContent();
    expect(await page.getByTestId(`node-config-${id}`).textContent()).toBe(`applied ${version} of ${version} · up to date`);
    expect(await page.getByTestId(`chart-cpu-${id}`).locator('svg').count()).toBe(1);

    // A token for a new camera-node, shown once with the command that enrols it against this server.
    await page.getByTestId('enroll-submit').click();
    const command = await page.getByTestId('enroll-command').textContent();
    expect(command).toMatch(new RegExp(`^CCTV_ROLES=camera-node .*CCTV_MASTER_URL=${url('').replace(/[.]/g, '\\.')} .*CCTV_CLUSTER__MASTER_FINGERPRINT=.* CCTV_ENROLL_TOKEN=cctv_enroll_\\S+ npm start$`));

    // Drained, the one node runs no camera: the demo camera has nowhere to go, and its tile says so.
    await page.getByTestId(`drain-${id}`).click();
    await page.getByTestId(`node-drained-${id}`).waitFor();
    await page.getByTestId('nav-live').click();
    await expect.poll(async () => page.getByTestId('placement-problem-demo').textContent(), { timeout: 10_000 }).toMatch(/drained/);
    expect(await page.getByTestId('tile-demo').getAttribute('data-state')).not.toBe('live');

    // Pinned to a node that does not exist, it says so instead; unpinned, it is back to waiting for the drain.
    await page.getByTestId('placement-demo-edit').click();
    const editor = page.getByTestId('placement-editor-demo');
    await editor.locator('input[name="node"]').fill('elsewhere');
    await page.getByTestId('pin-demo').click();
    await expect.poll(async () => page.getByTestId('placement-problem-demo').textContent(), { timeout: 10_000 }).toMatch(/pinned to elsewhere/);
    await page.getByTestId('placement-demo-edit').click();
    await page.getByTestId('unpin-demo').click();
    await expect.poll(async () => page.getByTestId('placement-problem-demo').textContent(), { timeout: 10_000 }).toMatch(/drained/);

    await page.getByTestId('nav-nodes').click();
    await page.getByTestId(`undrain-${id}`).click();
    await expect.poll(async () => card.getAttribute('data-drained')).toBe('false');
    await page.getByTestId('nav-live').click();
    const tile = page.getByTestId('tile-demo');
    await until(async () => (await tile.getAttribute('data-state')) === 'live', 'the demo tile to be live again');
    // The frame counter watched the video of before the page changed; count this one's.
    await page.evaluate(() => delete (window as unknown as { __frames?: unknown }).__frames);
    const first = await frames('demo');
    await until(async () => (await frames('demo')).count >= first.count + 10, '10 rendered frames after the undrain');
    await expect.poll(async () => page.getByTestId('placement-demo').textContent()).toBe(`on ${id} via ${id}`);
  });

  it('lets the admin reset the 2FA of a user who lost their phone, on the users page', async () => {
    const { totpNow } = await import('../../signaling/src/auth/users.js');
    await system.auth.users.create({ username: 'olga', password: 'olga-password-1', role: 'operator' });
    const olga = (await system.auth.users.getByName('olga'))!;
    const key = await system.auth.users.beginTotp(olga.id, 'CCTV');
    await system.auth.users.confirmTotp(olga.id, totpNow(decodeBase32(key!.secret)));
    await page.goto(url('/users'));
    const row = page.getByTestId('user-olga');
    await expect.poll(async () => row.textContent()).toContain('2FA on');
    await row.getByTestId('user-edit').click();
    await row.getByTestId('reset-2fa').click();
    await row.getByTestId('reset-2fa-confirm').click();
    await expect.poll(async () => row.getByRole('status').textContent()).toMatch(/2FA turned off/);
    await expect.poll(async () => row.textContent()).toContain('2FA off');
    expect((await system.auth.users.getByName('olga'))!.totpEnabled).toBe(false);
  });
});
