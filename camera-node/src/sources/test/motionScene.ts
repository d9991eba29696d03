/**
 * Frames for testing motion detection: a still scene (a grey gradient with fixed shapes, and sensor-like
 * noise that changes every frame) that a box crosses from left to right for `motionS` seconds at the start
 * of every `periodS` seconds of the wall clock. Because the schedule follows the wall clock, whoever
 * watches knows exactly when motion starts and ends: see `motionWindow`.
 */

/** The box's side as a share of the picture's height. */
export const MOTION_BOX_SHARE = 0.3;
const NOISE = 10;

/** The window of motion that contains or follows `ms`: the box is in the picture from `startMs` to `endMs`. */
export function motionWindow(ms: number, periodS: number, motionS: number): { startMs: number; endMs: number } {
  const period = periodS * 1000;
  const startMs = Math.floor(ms / period) * period;
  return { startMs, endMs: startMs + motionS * 1000 };
}

/**
 * Where the box is at `ms` (its left edge in px, and its side), or null when it is not in the picture.
 * It enters at the left edge at the window's start and has just left at the right edge at its end.
 */
export function motionBoxAt(ms: number, width: number, height: number, periodS: number, motionS: number): { x: number; y: number; side: number } | null {
  const w = motionWindow(ms, periodS, motionS);
  if (ms < w.startMs || ms >= w.endMs) return null;
  const side = Math.max(4, Math.round(height * MOTION_BOX_SHARE) & ~1);
  const progress = (ms - w.startMs) / (w.endMs - w.startMs);
  // From just inside the left edge to just past the right one.
  const x = Math.round(-side + 1 + progress * (width + side - 1));
  return { x, y: Math.round((height - side) / 2), side };
}

/** Writes I420 frames of a given size; the same buffer is reused for every frame. */
export class MotionSceneFrames {
  readonly width: number;
  readonly height: number;
  readonly frame: Buffer;
  readonly #scene: Uint8Array;
  #seed = 0x9e3779b9;

  constructor(width: number, height: number, readonly periodS: number, readonly motionS: number) {
    this.width = width;
    this.height = height;
    this.frame = Buffer.alloc((width * height * 3) / 2, 128);
    // The still scene: a soft gradient, two darker blocks and a lighter band, drawn once.
    const s = new Uint8Array(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let v = 70 + Math.round((60 * x) / width + (30 * y) / height);
        if (x > width * 0.1 && x < width * 0.25 && y > height * 0.6 && y < height * 0.9) v -= 35;
        if (x > width * 0.7 && x < width * 0.85 && y > height * 0.1 && y < height * 0.35) v -= 25;
        if (y > height * 0.45 && y < height * 0.5) v += 30;
        s[y * width + x] = v;
      }
    }
    this.#scene = s;
  }

  /** Draws the picture at wall-clock `ms` and returns the buffer (valid until the next call). */
  draw(ms: number): Buffer {
    return this.render(motionBoxAt(ms, this.width, this.height, this.periodS, this.motionS));
  }

  /**
   * Draws the scene with fresh noise, the box where given, and the light changed by `gain` and `offset`
   * (a light switched on, an exposure jump); returns the buffer (valid until the next call).
   */
  render(box: { x: number; y: number; side: number } | null, light: { gain: number; offset: number } = { gain: 1, offset: 0 }): Buffer {
    const { width: w, height: h, frame } = this;
    const scene = this.#scene;
    // xorshift32: cheap noise, new every frame, as a sensor's.
    let r = this.#seed;
    const plain = light.gain === 1 && light.offset === 0;
    for (let i = 0; i < w * h; i++) {
      r ^= r << 13;
      r ^= r >>> 17;
      r ^= r << 5;
      const v = scene[i]! + ((r >>> 24) % (2 * NOISE + 1)) - NOISE;
      frame[i] = plain ? v : Math.max(16, Math.min(235, Math.round(v * light.gain + light.offset)));
    }
    this.#seed = r >>> 0 || 1;
    if (box) {
      const x0 = Math.max(0, box.x);
      const x1 = Math.min(w, box.x + box.side);
      const y0 = Math.max(0, box.y);
      const y1 = Math.min(h, box.y + box.side);
      for (let y = y0; y < y1; y++) if (x1 > x0) frame.fill(230, y * w + x0, y * w + x1);
    }
    return frame;
  }
}
