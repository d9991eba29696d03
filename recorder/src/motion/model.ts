/**
 * The motion model at run time: an ONNX Runtime session (CPU) behind a small typed door.
 *
 * Any model with the contract of recorder/model/README.md can be used (config `detector.model`), so a
 * model is checked when it is loaded, by its declared inputs and outputs and by one probe run, and is
 * refused with a message that names the file and what is wrong; a bad model found later, mid-stream,
 * would be far harder to diagnose.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { InvalidStateError, assertArg, createLogger } from '@cctv/core';

const log = createLogger('recorder:motion');

/** The shipped model. recorder/src/motion/ and recorder/dist/motion/ are both two levels under recorder/. */
export const DEFAULT_MODEL_PATH = fileURLToPath(new URL('../../model/motion.onnx', import.meta.url));

/** One grey frame and its camera's state, as the model takes it. */
export interface ModelFrame {
  /** Grey picture, width×height bytes, row-major (0 black – 255 white). */
  frame: Uint8Array;
  /** The running background, width×height values on a 0–1 scale. */
  background: Float32Array;
  /** Background update rate where the pixel did not move (0–1 per frame). */
  alpha: number;
  /** Background update rate where the pixel moved (0–1 per frame). */
  alphaSlow: number;
  /** A pixel moved if its brightness-compensated difference exceeds this (0–1 scale). */
  pixelThreshold: number;
}

/** What the model gives back for one frame. */
export interface ModelOutput {
  /** Mean change per cell (0–1), rows×cols, row-major; see MotionModel.grid. */
  cells: Float32Array;
  /** The next background, width×height values on a 0–1 scale. */
  background: Float32Array;
}

/** Options of MotionModel.load. */
export interface MotionModelOptions {
  /** Threads one inference may use; default 1 (the detector runs one model per core it is given). */
  threads?: number;
}

/** The contract: names, element types and what the shape must look like (for messages). */
const INPUTS = [
  { name: 'frame', type: 'uint8', shape: '[N,1,H,W]' },
  { name: 'background', type: 'float32', shape: '[N,1,H,W]' },
  { name: 'alpha', type: 'float32', shape: '[N,1,1,1]' },
  { name: 'alpha_slow', type: 'float32', shape: '[N,1,1,1]' },
  { name: 'pixel_threshold', type: 'float32', shape: '[N,1,1,1]' },
] as const;
const OUTPUTS = [
  { name: 'cells', type: 'float32', shape: '[N,1,H/c,W/c]' },
  { name: 'background_out', type: 'float32', shape: '[N,1,H,W]' },
] as const;
const FETCHES = OUTPUTS.map((o) => o.name);

/** The probe run: a typical detector frame size, and a batch of two so that a model stuck at batch 1 is caught. */
const PROBE = { width: 320, height: 180, batch: 2 } as const;
/** Largest side of the square picture used to tell apart cell sizes the first probe cannot (see cellSizeOf). */
const MAX_SECOND_PROBE = 2048;

/** A shape as messages show it; a dimension the model leaves unnamed shows as '?'. */
const shapeText = (dims: ReadonlyArray<number | string>): string => `[${dims.map((d) => (d === '' ? '?' : d)).join(',')}]`;

/** Input buffers for batches, grown to the largest batch seen and reused, so a run does not allocate them. */
class BatchBuffers {
  frame = new Uint8Array(0);
  background = new Float32Array(0);
  scalars = new Float32Array(0);

  /** Views of exactly `pixels` frame bytes, background values and 3×`batch` scalars. */
  take(pixels: number, batch: number): { frame: Uint8Array; background: Float32Array; scalars: Float32Array } {
    if (this.frame.length < pixels) {
      this.frame = new Uint8Array(pixels);
      this.background = new Float32Array(pixels);
    }
    if (this.scalars.length < 3 * batch) this.scalars = new Float32Array(3 * batch);
    return { frame: this.frame.subarray(0, pixels), background: this.background.subarray(0, pixels), scalars: this.scalars.subarray(0, 3 * batch) };
  }
}

export class MotionModel {
  /** The model file, as given to load(). */
  readonly path: string;
  /** Pixels per cell side, found by the probe run (10 for the shipped model). */
  readonly cellSize: number;

  readonly #session: ort.InferenceSession;
  readonly #buffers = new BatchBuffers();
  /** Runs go one after another: they share the input buffers, and one session runs one thing at a time anyway. */
  #queue: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | null = null;

  private constructor(path: string, session: ort.InferenceSession, cellSize: number) {
    this.path = path;
    this.#session = session;
    this.cellSize = cellSize;
  }

  /**
   * Loads and checks a model: input/output names, element types and ranks, then a probe run at 320×180
   * (batch 2) checking the output shapes. Throws an Error whose message names the file and exactly what
   * is wrong (e.g. "motion model x.onnx: output 'cells' has shape [1,18,32]; expected [N,1,H/c,W/c]").
   */
  static async load(path: string, o: MotionModelOptions = {}): Promise<MotionModel> {
    assertArg(typeof path === 'string' && path.length > 0, 'path', 'a non-empty string');
    const threads = o.threads ?? 1;
    assertArg(Number.isInteger(threads) && threads >= 1, 'threads', 'an integer ≥ 1');
    const fail = (what: string, cause?: unknown): Error => new Error(`motion model ${path}: ${what}`, cause === undefined ? undefined : { cause });

    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw fail(`cannot be read: ${(err as Error).message}`, err);
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(bytes, {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
      });
    } catch (err) {
      throw fail(`is not a usable ONNX model: ${(err as Error).message}`, err);
    }
    try {
      checkSignature(session, fail);
      const cellSize = await probeCellSize(session, fail);
      log.debug({ path, cellSize, threads }, 'motion model loaded');
      return new MotionModel(path, session, cellSize);
    } catch (err) {
      await session.release().catch(() => undefined);
      throw err;
    }
  }

  /** The cell grid the model gives for frames of this size (cells that do not fit whole are left out). */
  grid(width: number, height: number): { cols: number; rows: number } {
    this.#assertOpen();
    return this.#grid(width, height);
  }

  /**
   * Runs several frames of the SAME size in one inference (one batch); returns per frame its cells (rows×cols,
   * row-major) and its next background. A single frame's arrays are handed to the runtime as they are, not
   * copied, so they must not change until the promise settles. Runs queue behind each other.
   */
  run(frames: ModelFrame[], width: number, height: number): Promise<ModelOutput[]> {
    this.#assertOpen();
    assertArg(Array.isArray(frames) && frames.length > 0, 'frames', 'a non-empty array');
    assertArg(Number.isInteger(width) && width >= this.cellSize, 'width', `an integer ≥ ${this.cellSize} (the model's cell size)`);
    assertArg(Number.isInteger(height) && height >= this.cellSize, 'height', `an integer ≥ ${this.cellSize} (the model's cell size)`);
    const pixels = width * height;
    frames.forEach((f, i) => {
      if (!(f.frame instanceof Uint8Array) || f.frame.length !== pixels) {
        throw new TypeError(`argument 'frames[${i}].frame' must be a Uint8Array of ${pixels} bytes (${width}×${height}), has ${describe(f.frame)}`);
      }
      if (!(f.background instanceof Float32Array) || f.background.length !== pixels) {
        throw new TypeError(`argument 'frames[${i}].background' must be a Float32Array of ${pixels} values (${width}×${height}), has ${describe(f.background)}`);
      }
      for (const key of ['alpha', 'alphaSlow', 'pixelThreshold'] as const) {
        assertArg(Number.isFinite(f[key]), `frames[${i}].${key}`, 'a finite number');
      }
    });
    const job = this.#queue.then(() => this.#infer(frames, width, height));
    this.#queue = job.catch(() => undefined);
    return job;
  }

  /** Releases the session once the runs already asked for have finished; idempotent. Afterwards every method throws InvalidStateError. */
  close(): Promise<void> {
    this.#closing ??= this.#queue.then(() => this.#session.release());
    return this.#closing;
  }

  async #infer(frames: ModelFrame[], width: number, height: number): Promise<ModelOutput[]> {
    const n = frames.length;
    const pixels = width * height;
    const { frame, background, scalars } = this.#gather(frames, pixels);
    const image = [n, 1, height, width];
    const perFrame = [n, 1, 1, 1];
    const result = await this.#session.run(
      {
        frame: new ort.Tensor('uint8', frame, image),
        background: new ort.Tensor('float32', background, image),
        alpha: new ort.Tensor('float32', scalars.subarray(0, n), perFrame),
        alpha_slow: new ort.Tensor('float32', scalars.subarray(n, 2 * n), perFrame),
        pixel_threshold: new ort.Tensor('float32', scalars.subarray(2 * n, 3 * n), perFrame),
      },
      FETCHES,
    );
    const { cols, rows } = this.#grid(width, height); // not grid(): runs queued before close() still finish
    const cells = outputData(result, 'cells', [n, 1, rows, cols], (what) => new Error(`motion model ${this.path}: ${what} for ${n} frame(s) of ${width}×${height}`));
    const next = outputData(result, 'background_out', image, (what) => new Error(`motion model ${this.path}: ${what} for ${n} frame(s) of ${width}×${height}`));
    const perCells = rows * cols;
    return frames.map((_, i) => ({
      cells: cells.subarray(i * perCells, (i + 1) * perCells),
      background: next.subarray(i * pixels, (i + 1) * pixels),
    }));
  }

  /** The inputs as contiguous tensors' data: one frame's own arrays as they are, several copied once into the reused buffers. */
  #gather(frames: ModelFrame[], pixels: number): { frame: Uint8Array; background: Float32Array; scalars: Float32Array } {
    const n = frames.length;
    const first = frames[0]!;
    if (n === 1) {
      return { frame: first.frame, background: first.background, scalars: Float32Array.of(first.alpha, first.alphaSlow, first.pixelThreshold) };
    }
    const out = this.#buffers.take(n * pixels, n);
    frames.forEach((f, i) => {
      out.frame.set(f.frame, i * pixels);
      out.background.set(f.background, i * pixels);
      out.scalars[i] = f.alpha;
      out.scalars[n + i] = f.alphaSlow;
      out.scalars[2 * n + i] = f.pixelThreshold;
    });
    return out;
  }

  #grid(width: number, height: number): { cols: number; rows: number } {
    return { cols: Math.floor(width / this.cellSize), rows: Math.floor(height / this.cellSize) };
  }

  #assertOpen(): void {
    if (this.#closing) throw new InvalidStateError(`motion model ${this.path} is closed`);
  }
}

function describe(value: unknown): string {
  if (ArrayBuffer.isView(value)) return `a ${value.constructor.name} of ${(value as Uint8Array).length}`;
  return value === null ? 'null' : typeof value;
}

/** Checks the declared inputs and outputs against the contract: names, element types, and rank where it is declared. */
function checkSignature(session: ort.InferenceSession, fail: (what: string) => Error): void {
  const check = (kind: 'input' | 'output', spec: { name: string; type: string; shape: string }, list: readonly ort.InferenceSession.ValueMetadata[]): void => {
    const meta = list.find((m) => m.name === spec.name);
    if (!meta) throw fail(`has no ${kind} '${spec.name}' (it has ${list.map((m) => `'${m.name}'`).join(', ') || 'none'})`);
    if (!meta.isTensor) throw fail(`${kind} '${spec.name}' must be a tensor ${spec.type} ${spec.shape}`);
    if (meta.type !== spec.type) throw fail(`${kind} '${spec.name}' must be ${spec.type}, is ${meta.type}`);
    // An empty shape means the model does not declare one: the probe run settles it.
    if (meta.shape.length !== 0 && meta.shape.length !== 4) {
      throw fail(`${kind} '${spec.name}' has shape ${shapeText(meta.shape)}; expected ${spec.shape}`);
    }
  };
  for (const spec of INPUTS) check('input', spec, session.inputMetadata);
  // Every input must be fed, so one the contract does not know makes the model unusable.
  const known = INPUTS.map((i) => i.name).join(', ');
  for (const meta of session.inputMetadata) {
    if (!INPUTS.some((i) => i.name === meta.name)) throw fail(`has an unexpected input '${meta.name}'; its inputs must be ${known}`);
  }
  for (const spec of OUTPUTS) check('output', spec, session.outputMetadata);
}

/** Runs the model on blank frames and returns its output data after checking the output shapes. */
async function probe(session: ort.InferenceSession, width: number, height: number, batch: number, fail: (what: string, cause?: unknown) => Error): Promise<ort.Tensor> {
  const image = [batch, 1, height, width];
  const perFrame = [batch, 1, 1, 1];
  let result: ort.InferenceSession.ReturnType;
  try {
    result = await session.run(
      {
        frame: new ort.Tensor('uint8', new Uint8Array(batch * width * height), image),
        background: new ort.Tensor('float32', new Float32Array(batch * width * height), image),
        alpha: new ort.Tensor('float32', new Float32Array(batch).fill(0.05), perFrame),
        alpha_slow: new ort.Tensor('float32', new Float32Array(batch).fill(0.001), perFrame),
        pixel_threshold: new ort.Tensor('float32', new Float32Array(batch).fill(0.05), perFrame),
      },
      FETCHES,
    );
  } catch (err) {
    throw fail(`probe run at ${width}×${height} (batch ${batch}) failed: ${(err as Error).message}`, err);
  }
  outputData(result, 'background_out', image, (what) => fail(`${what} (probe at ${width}×${height}, batch ${batch})`));
  const cells = result.cells as ort.Tensor;
  const d = cells.dims;
  if (d.length !== 4 || d[0] !== batch || d[1] !== 1) {
    throw fail(`output 'cells' has shape ${shapeText(d)}; expected [N,1,H/c,W/c] (probe at ${width}×${height}, batch ${batch})`);
  }
  return cells;
}

/**
 * Finds the cell size c from probe runs: the cells output of a W×H frame is floor(H/c)×floor(W/c).
 * Large cells can make several sizes fit one probe (19 and 20 both give 9×16 at 320×180); a second
 * probe on a square picture of side c·(c+1), where neighbouring sizes give different counts, tells them apart.
 */
async function probeCellSize(session: ort.InferenceSession, fail: (what: string, cause?: unknown) => Error): Promise<number> {
  const cells = await probe(session, PROBE.width, PROBE.height, PROBE.batch, fail);
  const [, , rows = 0, cols = 0] = cells.dims;
  const fits = cellSizesFitting(rows, cols, PROBE.width, PROBE.height);
  if (fits.length === 0) {
    throw fail(`output 'cells' has shape ${shapeText(cells.dims)}; expected [N,1,H/c,W/c] (probe at ${PROBE.width}×${PROBE.height}: no cell size c gives ${rows}×${cols})`);
  }
  if (fits.length === 1) return fits[0]!;
  const largest = fits[fits.length - 1]!;
  const side = largest * (largest + 1);
  if (side > MAX_SECOND_PROBE) {
    throw fail(`cell size cannot be told from the probe: any of ${fits[0]}..${largest} px gives ${rows}×${cols} cells at ${PROBE.width}×${PROBE.height}`);
  }
  const second = await probe(session, side, side, 1, fail);
  const [, , rows2 = 0, cols2 = 0] = second.dims;
  const found = fits.filter((c) => cellSizesFitting(rows2, cols2, side, side).includes(c));
  if (found.length !== 1) {
    throw fail(`output 'cells' has shape ${shapeText(second.dims)} at ${side}×${side} but ${shapeText(cells.dims)} at ${PROBE.width}×${PROBE.height}; expected [N,1,H/c,W/c] with one cell size c`);
  }
  return found[0]!;
}

/** Every cell size c (up to the picture's shorter side) for which a W×H frame gives rows×cols cells. */
function cellSizesFitting(rows: number, cols: number, width: number, height: number): number[] {
  const out: number[] = [];
  for (let c = 1; c <= Math.min(width, height); c++) {
    if (Math.floor(height / c) === rows && Math.floor(width / c) === cols) out.push(c);
  }
  return out;
}

/** The float32 data of one output after checking its shape; `fail` turns a description into the Error to throw. */
function outputData(result: ort.InferenceSession.ReturnType, name: string, dims: readonly number[], fail: (what: string) => Error): Float32Array {
  const t = result[name] as ort.Tensor | undefined;
  if (!t) throw fail(`gave no output '${name}'`);
  if (t.type !== 'float32') throw fail(`output '${name}' must be float32, is ${t.type}`);
  if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) {
    const spec = OUTPUTS.find((o) => o.name === name)?.shape ?? '';
    throw fail(`output '${name}' has shape ${shapeText(t.dims)}; expected ${spec} = ${shapeText(dims)}`);
  }
  return t.data as Float32Array;
}
