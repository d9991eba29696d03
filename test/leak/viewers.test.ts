import v8 from 'node:v8';
import vm from 'node:vm';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestCamera, type TestCamera } from '../../sfu/src/testing/camera.js';
import { TestReceiver, h264Codec } from '../../sfu/src/testing/receiver.js';
import { waitFor } from '../../sfu/src/testing/wait.js';

// Open and close 1,000 viewers against one room: every viewer's peer connection, sockets, timers and
// history must go with it. Heap and handles after must be where they were before.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const VIEWERS = Number(process.env.LEAK_VIEWERS ?? 1000);
const BATCH = 25;
const WARM_UP = 100;

/** Handles by type, timers apart (a timer in flight is not a leak); e.g. { UDPWRAP: 4 }. */
function handles(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) if (r !== 'Timeout' && r !== 'Immediate') out[r] = (out[r] ?? 0) + 1;
  return out;
}

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(50);
  }
  return process.memoryUsage().heapUsed;
}

let cam: TestCamera;
beforeAll(async () => {
  // A close_notify lost on the way leaves a viewer to the idle timeout; keep that short here.
  cam = await openTestCamera({ cameraId: 'leak', viewerIdleTimeoutMs: 3000, source: { codec: 'H264', gop: 30 } });
});
afterAll(() => cam?.close());

describe('viewer leak', () => {
  it(`opens and closes ${VIEWERS} viewers and returns to the same heap and handles`, async () => {
    let received = 0;
    let heapBefore = 0;
    let handlesBefore: Record<string, number> = {};
    for (let done = 0; done < VIEWERS + WARM_UP; done += BATCH) {
      // The first viewers warm up what is made once (modules, compiled code, pools, caches); the
      // baseline is taken after them, so what grows afterwards grows with the number of viewers.
      if (done === WARM_UP) {
        heapBefore = await settledHeap();
        handlesBefore = handles();
      }
      const batch = Array.from({ length: BATCH }, () => new TestReceiver({ codecs: [h264Codec(102)] }));
      await Promise.all(batch.map((r) => r.watch(cam.sfu, 'leak')));
      await Promise.all(batch.map((r) => r.waitForPackets(5, 15_000)));
      received += batch.reduce((n, r) => n + r.packets.length, 0);
      await Promise.all(batch.map((r) => r.closeLikeBrowser()));
      await waitFor(() => cam.room.viewerCount === 0, 10_000, () => `${cam.room.viewerCount} viewers left after ${done + BATCH}`);
    }
    expect(received).toBeGreaterThanOrEqual((VIEWERS + WARM_UP) * 5);
    expect(cam.room.totals.packetsSent).toBeGreaterThanOrEqual((VIEWERS + WARM_UP) * 5);

    await sleep(500);
    const heapAfter = await settledHeap();
    console.log(`MEASURED leak_viewers=${VIEWERS} heap_before_mib=${(heapBefore / 2 ** 20).toFixed(1)} heap_after_mib=${(heapAfter / 2 ** 20).toFixed(1)}`);
    expect(handles()).toEqual(handlesBefore);
    // A leak of 4 kB per viewer would show as 4 MB over 1,000; below that is the allocator's noise.
    expect(heapAfter - heapBefore).toBeLessThan(4 * 2 ** 20);
  }, 600_000);
});
