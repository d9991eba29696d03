import { fileURLToPath } from 'node:url';
import { spawnGuarded, terminate } from '@cctv/core';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { FakeSfu } from './testing/fakeSfu.js';
import { Resources, cmdline, killIfStill, processGone, tempDir, waitFor } from './testing/helpers.js';

const CHILD = fileURLToPath(new URL('./testing/sigkillChild.ts', import.meta.url));
const REGISTER = fileURLToPath(new URL('../../test/support/tsxRegister.mjs', import.meta.url));

const res = new Resources();
const dir = tempDir();
afterEach(() => res.closeAll());
afterAll(() => dir.remove());

describe('no orphan ffmpeg', () => {
  test('kill -9 of the camera-node process takes every ffmpeg with it', async () => {
    const sfu = res.add(await FakeSfu.start(), (s) => s.close());
    const child = spawnGuarded(process.execPath, ['--import', REGISTER, CHILD, dir.path, String(sfu.address.port)], ['ignore', 'pipe', 'pipe']);
    res.defer(() => terminate(child, 0));
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));

    const line = await waitFor(`the child to print its ffmpeg pids (stderr: ${err.slice(-500)})`, () => out.split('\n').find((l) => l.startsWith('{')), 30_000);
    const { pids } = JSON.parse(line) as { pids: number[] };
    // Should the test fail below, no ffmpeg may outlive it.
    res.defer(() => pids.forEach((p) => killIfStill(p, 'ffmpeg')));
    expect(pids).toHaveLength(2);
    for (const p of pids) expect(cmdline(p)[0]).toMatch(/ffmpeg$/);
    // Both cameras are really streaming before the kill.
    await waitFor('packets from both cameras', () => sfu.countBySsrc.size === 2, 15_000);

    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await exited;
    // No chance for exit handlers: only the kernel's parent-death signal (setpriv --pdeathsig) can do this.
    await waitFor(`ffmpeg ${pids.join(', ')} to be gone`, () => pids.every(processGone), 5000, 20);
    console.log(`MEASURED orphan_cleanup_ms=${Date.now() - killedAt} (kill -9 of camera-node → both ffmpeg gone)`);
  });
});
