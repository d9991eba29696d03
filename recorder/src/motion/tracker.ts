import type { MotionConfig } from '@cctv/core';
import { compileZones, type CompiledZones } from './zones.js';

/** What one frame showed, after the model. */
export interface FrameVerdict {
  atMs: number;
  /** Moving share of each include zone (0–1). */
  scores: Record<string, number>;
  /** Include zones whose moving share reached their minimum area. */
  moving: string[];
  /** The highest zone score among the moving zones (0 when none moves). */
  score: number;
  /** Bounding box of the moving cells in moving zones, as shares of the picture. */
  box: { x: number; y: number; w: number; h: number } | null;
  /** The frame was taken as a change of light: the background started again. */
  lightChange: boolean;
}

/** A change of the camera's event: it started, grew (more zones, a higher peak) or ended. */
export interface TrackerTransition {
  phase: 'start' | 'update' | 'end';
  startMs: number;
  endMs: number | null;
  peakScore: number;
  zones: string[];
  box: { x: number; y: number; w: number; h: number } | null;
  /** The frame to show for it: at the start, the first; at the end, the peak's when the peak came later. */
  peakFrame: Buffer | null;
}

export interface TrackerGrid {
  width: number;
  height: number;
  cellSize: number;
  cols: number;
  rows: number;
}

// Updates of an event in progress go out at most this often.
const UPDATE_EVERY_MS = 1000;

/**
 * One camera's motion state: its background (which the model updates), its zones as cells, and the
 * event rules — motion must last `minDurationMs` (its start is still its first frame), an event ends
 * `endAfterMs` after its last moving frame (its end is that frame), and a change of most of the picture
 * at once is light, not motion.
 */
export class MotionTracker {
  readonly grid: TrackerGrid;
  readonly zones: CompiledZones;
  readonly #m: MotionConfig;
  readonly #frameMs: number;
  background: Float32Array | null = null;
  #candidateStart: number | null = null;
  #event: {
    startMs: number; lastMovingMs: number; peak: number; zones: Set<string>; box: FrameVerdict['box'];
    sentAt: number; sentPeak: number; sentZones: number;
    /** The peak's frame, once the peak is past the start's. */
    peakFrame: Buffer | null;
  } | null = null;
  readonly stats = { frames: 0, lightChanges: 0, events: 0, settled: 0 };

  constructor(motion: MotionConfig, grid: TrackerGrid) {
    this.#m = motion;
    this.grid = grid;
    this.#frameMs = 1000 / motion.fps;
    this.zones = compileZones(motion, grid.cols, grid.rows, (grid.cols * grid.cellSize) / grid.width, (grid.rows * grid.cellSize) / grid.height);
  }

  /**
   * The model's rates for this camera: the background follows still pixels over `adaptS`, and pixels that
   * differ from it only very slowly (over ten times `settleS`: a moving thing must not smear into it);
   * what stops moving is taken in whole after `settleS` by the tracker (see #settle).
   */
  get params(): { alpha: number; alphaSlow: number; pixelThreshold: number } {
    const fps = this.#m.fps;
    return {
      alpha: 1 - Math.exp(-1 / (fps * this.#m.adaptS)),
      alphaSlow: 1 - Math.exp(-1 / (fps * this.#m.settleS * 10)),
      // A pixel changed by less than most of a zone's threshold is still: it may join the background.
      pixelThreshold: this.zones.minThreshold * 0.75,
    };
  }

  get inEvent(): boolean {
    return this.#event !== null;
  }

  /** The background for the next frame; the first frame becomes the background as it is. */
  backgroundFor(luma: Uint8Array): Float32Array {
    if (!this.background || this.background.length !== luma.length) {
      const b = new Float32Array(luma.length);
      for (let i = 0; i < luma.length; i++) b[i] = luma[i]! / 255;
      this.background = b;
    }
    return this.background;
  }

  /**
   * Takes the model's output for a frame: the cells' change and the next background. Returns what the
   * frame showed, and the event's transitions it caused.
   */
  observe(luma: Uint8Array, frame: Buffer, cells: Float32Array, nextBackground: Float32Array, atMs: number): { verdict: FrameVerdict; transitions: TrackerTransition[] } {
    this.stats.frames++;
    const { cols, rows } = this.zones;
    const z = this.zones;
    // A change of light: most of the open picture moved at once, or the picture as a whole got brighter
    // or darker (the median cell changed: a lamp, an exposure step; something moving covers less than half
    // the picture). The background starts again from this frame.
    let changed = 0;
    for (let i = 0; i < cells.length; i++) if (!z.masked[i] && cells[i]! > z.minThreshold) changed++;
    const bg = this.background;
    if (bg) this.#cellMeans(luma, bg);
    if ((z.open > 0 && changed / z.open >= this.#m.lightChange) || (bg && this.#globalLightStep())) {
      this.stats.lightChanges++;
      const b = this.background ?? new Float32Array(luma.length);
      for (let i = 0; i < luma.length; i++) b[i] = luma[i]! / 255;
      this.background = b;
      this.#candidateStart = null;
      const verdict: FrameVerdict = { atMs, scores: {}, moving: [], score: 0, box: null, lightChange: true };
      return { verdict, transitions: this.#quiet(atMs) };
    }
    this.background = nextBackground;
    if (bg) this.#settle(luma, cells, nextBackground);

    const scores: Record<string, number> = {};
    const moving: string[] = [];
    let score = 0;
    let c0 = cols;
    let c1 = -1;
    let r0 = rows;
    let r1 = -1;
    for (const zone of z.include) {
      let n = 0;
      for (const i of zone.cells) if (cells[i]! > zone.threshold) n++;
      const s = zone.cells.length > 0 ? n / zone.cells.length : 0;
      scores[zone.name] = s;
      if (s >= zone.minArea && n > 0) {
        moving.push(zone.name);
        score = Math.max(score, s);
        for (const i of zone.cells) {
          if (cells[i]! <= zone.threshold) continue;
          const c = i % cols;
          const r = (i - c) / cols;
          if (c < c0) c0 = c;
          if (c > c1) c1 = c;
          if (r < r0) r0 = r;
          if (r > r1) r1 = r;
        }
      }
    }
    const { cellSize, width, height } = this.grid;
    const box = c1 >= 0 ? { x: (c0 * cellSize) / width, y: (r0 * cellSize) / height, w: ((c1 - c0 + 1) * cellSize) / width, h: ((r1 - r0 + 1) * cellSize) / height } : null;
    const verdict: FrameVerdict = { atMs, scores, moving, score, box, lightChange: false };
    if (moving.length === 0) return { verdict, transitions: this.#quiet(atMs) };

    const transitions: TrackerTransition[] = [];
    const ev = this.#event;
    if (!ev) {
      this.#candidateStart ??= atMs;
      if (atMs - this.#candidateStart + 1e-6 >= this.#m.minDurationMs) {
        this.stats.events++;
        this.#event = { startMs: this.#candidateStart, lastMovingMs: atMs, peak: score, zones: new Set(moving), box, sentAt: atMs, sentPeak: score, sentZones: moving.length, peakFrame: null };
        this.#candidateStart = null;
        transitions.push({ phase: 'start', startMs: this.#event.startMs, endMs: null, peakScore: score, zones: [...moving], box, peakFrame: Buffer.from(frame) });
      }
      return { verdict, transitions };
    }
    ev.lastMovingMs = atMs;
    if (score > ev.peak) {
      ev.peak = score;
      ev.box = box;
      if (ev.peakFrame && ev.peakFrame.length === frame.length) frame.copy(ev.peakFrame);
      else ev.peakFrame = Buffer.from(frame);
    }
    for (const m of moving) ev.zones.add(m);
    const grew = ev.zones.size > ev.sentZones || ev.peak > ev.sentPeak * 1.2;
    if (grew && atMs - ev.sentAt >= UPDATE_EVERY_MS) {
      ev.sentAt = atMs;
      ev.sentPeak = ev.peak;
      ev.sentZones = ev.zones.size;
      transitions.push({ phase: 'update', startMs: ev.startMs, endMs: null, peakScore: ev.peak, zones: [...ev.zones], box: ev.box, peakFrame: null });
    }
    return { verdict, transitions };
  }

  /** The mean brightness of each cell in the frame (0–255 sums) and in the background (0–1 sums), and in the frame before. */
  #cellF = new Float64Array(0);
  #cellB = new Float64Array(0);
  #cellPrev = new Float64Array(0);
  #diffs = new Float64Array(0);
  #ratios = new Float64Array(0);
  /** Frames each cell has differed from the background without changing itself. */
  #still = new Uint16Array(0);

  #cellMeans(luma: Uint8Array, background: Float32Array): void {
    const { width, cellSize } = this.grid;
    const { cols, rows } = this.zones;
    const n = cols * rows;
    if (this.#cellF.length !== n) {
      this.#cellF = new Float64Array(n);
      this.#cellB = new Float64Array(n);
      this.#cellPrev = new Float64Array(n).fill(-1);
      this.#still = new Uint16Array(n);
    } else {
      this.#cellPrev.set(this.#cellF);
    }
    const f = this.#cellF;
    const b = this.#cellB;
    f.fill(0);
    b.fill(0);
    // Row by row, cell by cell: no division per pixel (this runs for every frame).
    for (let r = 0; r < rows; r++) {
      for (let y = r * cellSize; y < (r + 1) * cellSize; y++) {
        let o = y * width;
        for (let c = r * cols; c < (r + 1) * cols; c++) {
          let sf = 0;
          let sb = 0;
          for (const end = o + cellSize; o < end; o++) {
            sf += luma[o]!;
            sb += background[o]!;
          }
          f[c] = f[c]! + sf;
          b[c] = b[c]! + sb;
        }
      }
    }
  }

  /**
   * Whether the picture's light changed as a whole against the background: the median of the cells'
   * brightness ratios is off by more than 12 %, or the median of their differences by more than 5 % of
   * the grey scale.
   */
  #globalLightStep(): boolean {
    const area = this.grid.cellSize * this.grid.cellSize;
    const n = this.#cellF.length;
    if (this.#diffs.length !== n) {
      this.#diffs = new Float64Array(n);
      this.#ratios = new Float64Array(n);
    }
    let k = 0;
    for (let i = 0; i < n; i++) {
      const fm = this.#cellF[i]! / area / 255;
      const bm = this.#cellB[i]! / area;
      this.#diffs[i] = fm - bm;
      if (bm > 0.02) this.#ratios[k++] = fm / bm;
    }
    const median = (v: Float64Array) => v.sort()[v.length >> 1] ?? 0;
    return Math.abs(median(this.#diffs)) > 0.05 || (k > 0 && Math.abs(median(this.#ratios.subarray(0, k)) - 1) > 0.12);
  }

  /**
   * What stopped moving becomes background: a cell that has differed from the background for `settleS`
   * while staying the same itself (a parked car, or the place a thing stood when detection began) is
   * copied into the background, so it raises no event and does not hold one open.
   */
  #settle(luma: Uint8Array, cells: Float32Array, background: Float32Array): void {
    const { width, cellSize } = this.grid;
    const { cols } = this.zones;
    const area = cellSize * cellSize;
    const limit = Math.max(1, Math.round(this.#m.settleS * this.#m.fps));
    const threshold = this.zones.minThreshold;
    for (let i = 0; i < cells.length; i++) {
      const prev = this.#cellPrev[i]!;
      const still = prev >= 0 && Math.abs(this.#cellF[i]! - prev) / area < 2.5;
      if (cells[i]! <= threshold || !still) {
        this.#still[i] = 0;
        continue;
      }
      if (++this.#still[i]! < limit) continue;
      this.#still[i] = 0;
      this.stats.settled++;
      const c = i % cols;
      const r = (i - c) / cols;
      for (let y = r * cellSize; y < (r + 1) * cellSize; y++) {
        for (let x = c * cellSize; x < (c + 1) * cellSize; x++) background[y * width + x] = luma[y * width + x]! / 255;
      }
    }
  }

  /** A frame without motion: a candidate is dropped; an event ends once quiet for `endAfterMs`. */
  #quiet(atMs: number): TrackerTransition[] {
    this.#candidateStart = null;
    const ev = this.#event;
    if (!ev || atMs - ev.lastMovingMs < this.#m.endAfterMs) return [];
    return [this.#end()];
  }

  #end(): TrackerTransition {
    const ev = this.#event!;
    this.#event = null;
    return { phase: 'end', startMs: ev.startMs, endMs: Math.round(ev.lastMovingMs + this.#frameMs), peakScore: ev.peak, zones: [...ev.zones], box: ev.box, peakFrame: ev.peakFrame };
  }

  /** Ends the event in progress now (the camera stopped, the detector closes). */
  flush(): TrackerTransition[] {
    return this.#event ? [this.#end()] : [];
  }
}
