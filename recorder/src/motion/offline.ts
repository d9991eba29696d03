import type { MotionConfig } from '@cctv/core';
import type { DecodedFrame } from './decoder.js';
import type { MotionModel } from './model.js';
import { MotionTracker, type FrameVerdict } from './tracker.js';

export interface OfflineEvent {
  startMs: number;
  /** Null when the frames ended during it. */
  endMs: number | null;
  peakScore: number;
  zones: string[];
}

/**
 * Runs frames (of one camera, in order) through the model and a tracker, as the detector does live, and
 * returns the events they raise. For tests and benchmarks: the same model and rules, with known times.
 */
export async function detectFrames(model: MotionModel, frames: readonly DecodedFrame[], motion: MotionConfig): Promise<{ events: OfflineEvent[]; verdicts: FrameVerdict[]; lightChanges: number }> {
  let tracker: MotionTracker | null = null;
  const events: OfflineEvent[] = [];
  const verdicts: FrameVerdict[] = [];
  for (const f of frames) {
    if (!tracker) {
      const g = model.grid(f.width, f.height);
      tracker = new MotionTracker(motion, { width: f.width, height: f.height, cellSize: model.cellSize, cols: g.cols, rows: g.rows });
    }
    const luma = f.data.subarray(0, f.width * f.height);
    const [out] = await model.run([{ frame: luma, background: tracker.backgroundFor(luma), ...tracker.params }], f.width, f.height);
    const { verdict, transitions } = tracker.observe(luma, f.data, out!.cells, out!.background, f.atMs);
    verdicts.push(verdict);
    for (const t of transitions) {
      if (t.phase === 'start') events.push({ startMs: t.startMs, endMs: null, peakScore: t.peakScore, zones: t.zones });
      else if (t.phase === 'end') Object.assign(events[events.length - 1]!, { endMs: t.endMs, peakScore: t.peakScore, zones: t.zones });
    }
  }
  return { events, verdicts, lightChanges: tracker?.stats.lightChanges ?? 0 };
}
