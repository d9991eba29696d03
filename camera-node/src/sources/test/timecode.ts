/**
 * Frames whose top row of 16×16 blocks encodes the wall-clock millisecond at which the frame was handed
 * to the encoder, so a viewer can measure glass-to-glass latency by reading pixels back.
 *
 * Layout (luma, 8-bit, limited range): 40 blocks from x = 0, each 16 px wide and 16 px high.
 * Blocks 0–31 carry the low 32 bits of the ms timestamp, most significant first; blocks 32–39 carry
 * the sum of those four bytes modulo 256, as a check. White (235) is 1, black (16) is 0.
 * 16×16 blocks align with H.264/H.265 macroblocks, so the code survives compression.
 */

export const TIMECODE_BLOCK = 16;
export const TIMECODE_BITS = 40;
const WHITE = 235;
const BLACK = 16;

/** Writes I420 frames of a given size; the same buffer is reused for every frame. */
export class TimecodeFrames {
  readonly width: number;
  readonly height: number;
  readonly frame: Buffer;
  #n = 0;

  constructor(width: number, height: number) {
    if (width < TIMECODE_BLOCK * TIMECODE_BITS) throw new RangeError(`the timecode pattern needs a width of at least ${TIMECODE_BLOCK * TIMECODE_BITS} px`);
    if (height < 2 * TIMECODE_BLOCK) throw new RangeError(`the timecode pattern needs a height of at least ${2 * TIMECODE_BLOCK} px`);
    this.width = width;
    this.height = height;
    this.frame = Buffer.alloc((width * height * 3) / 2, 128);
  }

  /** Draws frame number n with timestamp `ms` and returns the buffer (valid until the next call). */
  draw(ms: number): Buffer {
    const { width: w, height: h, frame } = this;
    const n = this.#n++;
    // A grey field with a bar that moves, so the encoder has motion to code as a camera would.
    frame.fill(96, TIMECODE_BLOCK * w, w * h);
    const bar = (n * 8) % w;
    const barEnd = Math.min(w, bar + 48);
    for (let y = TIMECODE_BLOCK; y < h; y++) frame.fill(200, y * w + bar, y * w + barEnd);
    const bits = encodeTimecode(ms);
    for (let y = 0; y < TIMECODE_BLOCK; y++) {
      const row = y * w;
      for (let k = 0; k < TIMECODE_BITS; k++) frame.fill(bits[k] ? WHITE : BLACK, row + k * TIMECODE_BLOCK, row + (k + 1) * TIMECODE_BLOCK);
      frame.fill(BLACK, row + TIMECODE_BITS * TIMECODE_BLOCK, row + w);
    }
    return frame;
  }
}

/** The 40 bits for a timestamp in ms. */
export function encodeTimecode(ms: number): Uint8Array {
  const lo = ms % 2 ** 32;
  const bytes = [Math.floor(lo / 2 ** 24) & 255, (lo >>> 16) & 255, (lo >>> 8) & 255, lo & 255];
  const check = (bytes[0]! + bytes[1]! + bytes[2]! + bytes[3]!) & 255;
  const bits = new Uint8Array(TIMECODE_BITS);
  [...bytes, check].forEach((b, i) => {
    for (let j = 0; j < 8; j++) bits[i * 8 + j] = (b >> (7 - j)) & 1;
  });
  return bits;
}

/**
 * Reads 40 bits back into the full ms timestamp, choosing the 2^32 ms epoch nearest to `nowMs`.
 * Returns null when the check byte does not match.
 */
export function decodeTimecode(bits: ArrayLike<number>, nowMs: number): number | null {
  const bytes = [0, 0, 0, 0, 0];
  for (let i = 0; i < TIMECODE_BITS; i++) bytes[i >> 3] = (bytes[i >> 3]! << 1) | (bits[i] ? 1 : 0);
  if (((bytes[0]! + bytes[1]! + bytes[2]! + bytes[3]!) & 255) !== bytes[4]) return null;
  const lo = bytes[0]! * 2 ** 24 + (bytes[1]! << 16) + (bytes[2]! << 8) + bytes[3]!;
  const base = Math.floor(nowMs / 2 ** 32) * 2 ** 32;
  let ts = base + lo;
  if (ts > nowMs + 2 ** 31) ts -= 2 ** 32;
  else if (ts < nowMs - 2 ** 31) ts += 2 ** 32;
  return ts;
}
