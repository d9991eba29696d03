import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../core/src/db/testing/testDatabase.js';
import { launchChromium } from '../support/browser.js';
import { ADMIN_PASSWORD, TestCluster, until } from '../support/cluster.js';

// The dashboard's player in Chromium through node failovers: a cluster of separate processes (one
// signaling instance, two SFUs, two camera-nodes) against the machine's Redis and Postgres; the node
// that carries the watched camera is killed with SIGKILL, and the tile must show frames again by itself.

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let cluster: TestCluster;
let browser: Browser;
let page: Page;

const CAMERA = { id: 'cam-a', source: { kind: 'test', width: 320, height: 180, fps: 15, bitrateKbps: 300 } };

/** When each frame of the camera's video was rendered, ms since the epoch (recorded in the page). */
async function renderedAt(): Promise<number[]> {
  return page.evaluate((camera) => {
    const w = window as unknown as { __stamps?: number[]; __watched?: HTMLVideoElement };
    const v = document.querySelector(`[data-testid="video-${camera}"]`) as HTMLVideoElement | null;
    if (v && w.__watched !== v) {
      w.__watched = v;
      w.__stamps ??= [];
      const tick = () => {
        if (w.__watched !== v) return;
        w.__stamps!.push(Date.now());
        v.requestVideoFrameCallback(tick);
      };
      v.requestVideoFrameCallback(tick);
    }
    return w.__stamps ?? [];
  }, CAMERA.id);
}

const placement = async () => until(async () => {
  const p = await cluster.placement(CAMERA.id);
  return p?.cameraNode && p.sfu ? p : null;
}, `${CAMERA.id} placed`);

/**
 * Kills a node, waits until the page renders frames steadily again (2 s of them), and returns how long
 * after the kill the picture came back: the end of the longest pause in the frames, ms.
 */
async function killAndWaitForPicture(node: string): Promise<number> {
  await until(async () => (await renderedAt()).length > 0, 'frames before the kill');
  const t0 = Date.now();
  await cluster.get(node).kill9();
  const stamps = await until(async () => {
    const s = await renderedAt();
    const after = s.filter((t) => t > t0);
    // Frames over 2 s, the last one recent: the picture is back and stays.
    return after.length > 10 && after[after.length - 1]! - after[0]! > 2_000 && Date.now() - after[after.length - 1]! < 500 ? s : null;
  }, 'frames after the failover', 20_000, 100);
  let back = t0;
  let longest = 0;
  for (let i = 1; i < stamps.length; i++) {
    const gap = stamps[i]! - Math.max(stamps[i - 1]!, t0);
    if (stamps[i]! > t0 && gap > longest) [longest, back] = [gap, stamps[i]!];
  }
  return back - t0;
}

beforeAll(async () => {
  db = await createTestDatabase();
  cluster = new TestCluster({ redisUrl: 'redis://127.0.0.1:6379', databaseUrl: db.url, prefix: `e2e-failover-${randomBytes(4).toString('hex')}` });
  await cluster.add({ id: 'sig1', roles: ['signaling'] });
  for (const id of ['sfu1', 'sfu2', 'cn1', 'cn2']) await cluster.add({ id, roles: [id.startsWith('sfu') ? 'sfu' : 'camera-node'] });
  await until(async () => (await cluster.api<Array<{ state: string }>>('/api/nodes')).body.filter((n) => n.state === 'alive').length === 5, 'five nodes alive', 30_000);
  expect((await cluster.api('/api/cameras', { method: 'POST', body: CAMERA })).status).toBe(201);
  browser = await launchChromium();
  page = await (await browser.newContext()).newPage();
  await page.goto(`${cluster.get('sig1').url}/`);
  await page.locator('input[name="username"]').fill('admin');
  await page.locator('input[name="password"]').fill(ADMIN_PASSWORD);
  await page.getByTestId('login-submit').click();
  const tile = page.getByTestId(`tile-${CAMERA.id}`);
  await tile.waitFor();
  await until(async () => (await tile.getAttribute('data-state')) === 'live', 'the tile live', 30_000);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.close();
  await db?.drop();
});

describe('the dashboard player through failovers', { timeout: 60_000 }, () => {
  it('shows frames again after the camera-node is killed, and says where the camera went', async () => {
    const before = await placement();
    const ms = await killAndWaitForPicture(before.cameraNode!);
    console.log(`MEASURED e2e_camera_node_failover_picture_back_ms=${ms}`);
    const after = await placement();
    expect(after.cameraNode).not.toBe(before.cameraNode);
    await expect.poll(async () => page.getByTestId(`placement-${CAMERA.id}`).textContent(), { timeout: 15_000 }).toBe(`on ${after.cameraNode} via ${after.sfu}`);
  });

  it('shows frames again after the SFU is killed: the player starts a new session through the front door', async () => {
    const before = await placement();
    const ms = await killAndWaitForPicture(before.sfu!);
    console.log(`MEASURED e2e_sfu_failover_picture_back_ms=${ms}`);
    expect((await placement()).sfu).not.toBe(before.sfu);
    expect(await page.getByTestId(`tile-${CAMERA.id}`).getAttribute('data-state')).toBe('live');
  });
});
