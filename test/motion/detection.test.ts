import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MotionSchema, type MotionConfig } from '@cctv/core';
import { DEFAULT_MODEL_PATH, MotionModel, decodeFile, detectFrames } from '@cctv/recorder';
import { boxShareOfWidth, encodeClip, type Script } from './clip.js';

// Detection on real H.264 (the scene a camera would send, with its noise and compression), decoded as
// the detector decodes it (5 fps, 320 wide), run through the shipped model: events against known times.
let dir: string;
let model: MotionModel;
const FPS = 5;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cctv-motion-'));
  model = await MotionModel.load(DEFAULT_MODEL_PATH);
});

afterAll(async () => {
  await model?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function run(name: string, seconds: number, script: Script, motion: Partial<MotionConfig> = {}) {
  const path = join(dir, `${name}.mp4`);
  await encodeClip(path, { seconds, script });
  const frames = await decodeFile('ffmpeg', path, { fps: FPS, width: 320 });
  expect(frames.length).toBeGreaterThanOrEqual(seconds * FPS - 2);
  return detectFrames(model, frames, MotionSchema.parse({ enabled: true, ...motion }));
}

const side = boxShareOfWidth();
/** A box crossing the whole picture from left to right between `from` and `to` seconds. */
const crossing = (from: number, to: number) => (t: number) => (t >= from && t < to ? { x: -side + ((t - from) / (to - from)) * (1 + side) } : null);

describe('motion detection on a synthetic scene', () => {
  it('starts an event within 0.5 s of the box entering the zone and ends it within 1 s of it leaving', async () => {
    // The zone is the right half; the box crosses from 4 s to 10 s: its right edge reaches the middle
    // at 4 + 6 × (0.5 + side − side… ) — computed below — and it leaves the picture (and the zone) at 10 s.
    const from = 4;
    const to = 10;
    const zone = { name: 'right', points: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]] as Array<[number, number]> };
    const { events } = await run('enter', 14, { box: crossing(from, to) }, { zones: [zone as never] });
    // x(t) = −side + p(1 + side): the right edge x + side reaches 0.5 when p = (0.5) / (1 + side).
    const trueStart = (from + ((to - from) * 0.5) / (1 + side)) * 1000;
    const trueEnd = to * 1000;
    console.log(`MEASURED motion_zone_event start_error_ms=${events[0] ? events[0].startMs - trueStart : 'none'} end_error_ms=${events[0]?.endMs ? events[0].endMs - trueEnd : 'none'} events=${events.length}`);
    expect(events.length).toBe(1);
    const e = events[0]!;
    expect(Math.abs(e.startMs - trueStart)).toBeLessThanOrEqual(500);
    expect(e.endMs).not.toBeNull();
    expect(Math.abs(e.endMs! - trueEnd)).toBeLessThanOrEqual(1000);
    expect(e.zones).toEqual(['right']);
  });

  it('raises nothing for motion outside the zone, or under a mask', async () => {
    // The box goes back and forth in the left third only.
    const left = (t: number) => ({ x: 0.02 + 0.1 * Math.abs(Math.sin(t)) });
    const zoned = await run('outside', 10, { box: left }, { zones: [{ name: 'right', points: [[0.5, 0], [1, 0], [1, 1], [0.5, 1]] } as never] });
    const masked = await run('masked', 10, { box: left }, { zones: [{ name: 'tree', kind: 'mask', points: [[0, 0], [0.45, 0], [0.45, 1], [0, 1]] } as never] });
    console.log(`MEASURED motion_false_events outside_zone=${zoned.events.length} under_mask=${masked.events.length}`);
    expect(zoned.events).toEqual([]);
    expect(masked.events).toEqual([]);
  });

  it('raises nothing for a still, noisy scene, a sudden change of brightness or a light switched on', async () => {
    const still = await run('still', 20, {});
    // +40 grey levels at 5 s, back at 10 s; then ×1.5 (a lamp) at 13 s, back at 17 s.
    const light = (t: number) => (t >= 5 && t < 10 ? { gain: 1, offset: 40 } : t >= 13 && t < 17 ? { gain: 1.5, offset: 0 } : { gain: 1, offset: 0 });
    const lit = await run('light', 20, { light });
    console.log(`MEASURED motion_false_events still_noisy_20s=${still.events.length} light_changes_20s=${lit.events.length} light_changes_seen=${lit.lightChanges}`);
    expect(still.events).toEqual([]);
    expect(lit.events).toEqual([]);
    // The box still raises an event after the light changed (the background followed the light).
    const after = await run('after-light', 14, { light: (t) => (t >= 2 ? { gain: 1.3, offset: 0 } : { gain: 1, offset: 0 }), box: crossing(7, 11) });
    expect(after.events.length).toBe(1);
    expect(Math.abs(after.events[0]!.startMs - 7000)).toBeLessThanOrEqual(500);
  });

  it('lets what stops moving become background: the event ends after settleS, and a thing there at the start leaves no ghost', async () => {
    // The box moves in from 2 s to 4 s, then stands in the middle to the end (14 s).
    const stops = await run('stops', 14, { box: (t) => (t < 2 ? null : { x: -side + Math.min(1, (t - 2) / 2) * (0.5 + side) }) });
    expect(stops.events.length).toBe(1);
    // Ended within settleS (3 s) + endAfterMs (1.5 s) + a second of its last movements after it stopped.
    expect(stops.events[0]!.endMs).not.toBeNull();
    expect(stops.events[0]!.endMs!).toBeLessThanOrEqual(4000 + 3000 + 1500 + 1000);
    // The box is in the picture when detection starts, leaves at 3 s: one event, not one held open by its ghost.
    const ghost = await run('ghost', 14, { box: (t) => (t < 3 ? { x: 0.4 } : null) });
    console.log(`MEASURED motion_settle stopped_box_event_ms=${stops.events[0]!.startMs}-${stops.events[0]!.endMs} ghost_events=${JSON.stringify(ghost.events.map((e) => [e.startMs, e.endMs]))}`);
    expect(ghost.events.length).toBeLessThanOrEqual(1);
    for (const e of ghost.events) expect(e.endMs ?? Infinity).toBeLessThanOrEqual(3000 + 3000 + 1500 + 1000);
  });

  it('refuses bad zones and thresholds with a message naming the field', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ zones: [{ name: 'z', points: [[0, 0], [1, 1]] }] }, /zones\.0\.points.*at least 3/s],
      [{ zones: [{ name: 'z', points: [[0, 0], [1, 1], [1, 0], [0, 1]] }] }, /crosses itself/],
      [{ zones: [{ name: 'z', points: [[0, 0], [0.5, 0.5], [1, 1]] }] }, /no area/],
      [{ zones: [{ name: 'z', points: [[0, 0], [1.5, 0], [1, 1]] }] }, /zones\.0\.points\.1\.0/],
      [{ zones: [{ name: 'z', threshold: 2, points: [[0, 0], [1, 0], [1, 1]] }] }, /threshold must be at most 1/],
      [{ minArea: 0 }, /minArea must be at least/],
      [{ alerts: [{ zones: ['nowhere'] }] }, /no include zone named 'nowhere'/],
    ];
    for (const [input, message] of bad) {
      const r = MotionSchema.safeParse({ enabled: true, ...(input as object) });
      expect(r.success).toBe(false);
      const text = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      expect(text).toMatch(message);
    }
  });

  it('refuses a model with the wrong shape, naming what is wrong', async () => {
    const junk = join(dir, 'junk.onnx');
    writeFileSync(junk, 'not a model');
    await expect(MotionModel.load(junk)).rejects.toThrow(/junk\.onnx/);
  });
});
