import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidStateError } from '@cctv/core';
import { CELL_SIZE, buildMotionModel } from '../../model/build.js';
import { DataType, encodeModel, int, ints, type Node, type ValueInfo } from '../../model/onnx.js';
import { DEFAULT_MODEL_PATH, MotionModel, type ModelFrame } from './model.js';

const W = 320;
const H = 180;
const PIXELS = W * H;

/** A textured grey picture (60–150), so that a blur or an offset has something to act on. */
function texture(): Uint8Array {
  const out = new Uint8Array(PIXELS);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = 60 + ((x * 7 + y * 13) % 91);
  return out;
}

function flat(value: number): Uint8Array {
  return new Uint8Array(PIXELS).fill(value);
}

/** A 40×40 white box at x 100–139, y 60–99: exactly the cells of columns 10–13 and rows 6–9. */
const BOX = { x: 100, y: 60, size: 40 };
function withBox(picture: Uint8Array): Uint8Array {
  const out = picture.slice();
  for (let y = BOX.y; y < BOX.y + BOX.size; y++) out.fill(255, y * W + BOX.x, y * W + BOX.x + BOX.size);
  return out;
}

function asBackground(picture: Uint8Array): Float32Array {
  return Float32Array.from(picture, (v) => v / 255);
}

function input(frame: Uint8Array, background: Float32Array, o: Partial<ModelFrame> = {}): ModelFrame {
  return { frame, background, alpha: 0.1, alphaSlow: 0.01, pixelThreshold: 0.05, ...o };
}

const max = (a: Float32Array): number => a.reduce((m, v) => Math.max(m, v), -Infinity);

describe('the shipped motion model', () => {
  let model: MotionModel;
  beforeAll(async () => {
    model = await MotionModel.load(DEFAULT_MODEL_PATH);
  });
  afterAll(() => model.close());

  it('is exactly what recorder/model/build.ts makes', async () => {
    const committed = new Uint8Array(await readFile(DEFAULT_MODEL_PATH));
    expect(Buffer.compare(committed, buildMotionModel())).toBe(0);
    expect(Buffer.compare(buildMotionModel(), buildMotionModel())).toBe(0);
  });

  it('has 10-pixel cells', () => {
    expect(model.cellSize).toBe(CELL_SIZE);
    expect(model.grid(W, H)).toEqual({ cols: 32, rows: 18 });
    expect(model.grid(325, 189)).toEqual({ cols: 32, rows: 18 });
  });

  it('sees no change in a frame that equals its background', async () => {
    const picture = texture();
    const [out] = await model.run([input(picture, asBackground(picture))], W, H);
    expect(out!.cells).toHaveLength(18 * 32);
    expect(max(out!.cells)).toBeLessThan(1e-5);
  });

  it('sees a white box on grey in its cells and nowhere else', async () => {
    const [out] = await model.run([input(withBox(flat(100)), asBackground(flat(100)))], W, H);
    const cells = out!.cells;
    const near = (col: number, row: number): boolean => col >= 9 && col <= 14 && row >= 5 && row <= 10;
    for (let row = 0; row < 18; row++) {
      for (let col = 0; col < 32; col++) {
        const v = cells[row * 32 + col]!;
        if (col >= 10 && col <= 13 && row >= 6 && row <= 9) expect(v, `cell ${col},${row}`).toBeGreaterThanOrEqual(0.3);
        // The blur spills one pixel row into the neighbouring cells.
        else if (near(col, row)) expect(v, `cell ${col},${row}`).toBeLessThan(0.05);
        // Elsewhere only the compensation shows: the box lifts the mean change by its share, 1600/57600 × 155/255 ≈ 0.017.
        else expect(v, `cell ${col},${row}`).toBeLessThan(0.02);
      }
    }
  });

  it('takes a change of brightness over the whole picture for no change', async () => {
    const picture = texture();
    const brighter = picture.map((v) => v + 40); // 100–190: clipped nowhere
    const [out] = await model.run([input(brighter, asBackground(picture))], W, H);
    expect(max(out!.cells)).toBeLessThan(0.02);
  });

  it('moves the background toward the frame at alpha where still and alpha_slow where moved', async () => {
    const background = asBackground(flat(100));
    const frame = withBox(flat(110)); // outside the box a small, compensated change: d ≈ 0.016 < 0.05
    const [out] = await model.run([input(frame, background, { alpha: 0.1, alphaSlow: 0.01, pixelThreshold: 0.05 })], W, H);
    const at = (x: number, y: number): number => out!.background[y * W + x]!;
    expect(at(10, 10)).toBeCloseTo(100 / 255 + 0.1 * (10 / 255), 6);
    expect(at(300, 170)).toBeCloseTo(100 / 255 + 0.1 * (10 / 255), 6);
    expect(at(120, 80)).toBeCloseTo(100 / 255 + 0.01 * (155 / 255), 6);
    expect(out!.background).toHaveLength(PIXELS);
    expect(background[0]).toBeCloseTo(100 / 255, 6); // the input is left as it was
  });

  it('gives for a batch of 3 frames what 3 single runs give', async () => {
    const picture = texture();
    const frames = [
      input(picture, asBackground(picture), { alpha: 0.2 }),
      input(withBox(flat(100)), asBackground(flat(100)), { alphaSlow: 0.03 }),
      input(picture.map((v) => v + 40), asBackground(picture), { pixelThreshold: 0.01 }),
    ];
    const batch = await model.run(frames, W, H);
    expect(batch).toHaveLength(3);
    for (const [i, f] of frames.entries()) {
      const [single] = await model.run([f], W, H);
      expect(Array.from(batch[i]!.cells)).toEqual(Array.from(single!.cells));
      expect(Array.from(batch[i]!.background)).toEqual(Array.from(single!.background));
    }
  });

  it('takes a background that is a view into a batch\'s output, as the detector feeds it back', async () => {
    const picture = texture();
    const batch = await model.run([input(flat(100), asBackground(flat(100))), input(withBox(picture), asBackground(picture))], W, H);
    const view = batch[1]!.background;
    expect(view.byteOffset).toBe(PIXELS * 4);
    const [fromView] = await model.run([input(picture, view)], W, H);
    const [fromCopy] = await model.run([input(picture, view.slice())], W, H);
    expect(Array.from(fromView!.cells)).toEqual(Array.from(fromCopy!.cells));
    expect(Array.from(fromView!.background)).toEqual(Array.from(fromCopy!.background));
  });

  it('refuses frames of the wrong size, naming the argument', async () => {
    const ok = input(flat(0), new Float32Array(PIXELS));
    expect(() => model.run([ok, { ...ok, frame: new Uint8Array(100) }], W, H)).toThrow(/'frames\[1\]\.frame' must be a Uint8Array of 57600 bytes \(320×180\), has a Uint8Array of 100/);
    expect(() => model.run([{ ...ok, background: new Float32Array(10) }], W, H)).toThrow(/'frames\[0\]\.background'/);
    expect(() => model.run([ok], 5, H)).toThrow(/'width' must be an integer ≥ 10/);
    expect(() => model.run([], W, H)).toThrow(/'frames' must be a non-empty array/);
  });
});

describe('MotionModel.load', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'motion-model-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  interface Variant {
    /** Input names in place of the contract's. */
    rename?: Record<string, string>;
    frameType?: DataType;
    /** Cells of rank 3 ([N,rows,cols]). */
    cellsRank3?: boolean;
    withoutBackgroundOut?: boolean;
    /** Cell side, or [height, width] for cells that are not square; default 10. */
    cell?: number | [number, number];
    /** Fixed batch size in the input shapes. */
    batch?: number;
  }

  /** A small model with the contract's inputs and outputs (cells: a plain average per cell), bent as asked. */
  async function writeModel(file: string, v: Variant = {}): Promise<string> {
    const name = (n: string): string => v.rename?.[n] ?? n;
    const [cellH, cellW] = typeof v.cell === 'object' ? v.cell : [v.cell ?? 10, v.cell ?? 10];
    const batch = v.batch ?? 'N';
    const scalar = (n: string): ValueInfo => ({ name: name(n), elemType: DataType.FLOAT, shape: [batch, 1, 1, 1] });
    const nodes: Node[] = [
      { opType: 'Cast', inputs: [name('frame')], outputs: ['f'], attributes: { to: int(DataType.FLOAT) } },
      { opType: 'AveragePool', inputs: ['f'], outputs: [v.cellsRank3 ? 'cells4' : 'cells'], attributes: { kernel_shape: ints([cellH, cellW]), strides: ints([cellH, cellW]) } },
      { opType: 'Identity', inputs: [name('background')], outputs: ['background_out'] },
    ];
    if (v.cellsRank3) nodes.push({ opType: 'Squeeze', inputs: ['cells4', 'axis1'], outputs: ['cells'] });
    const outputs: ValueInfo[] = [
      { name: 'cells', elemType: DataType.FLOAT, shape: v.cellsRank3 ? [batch, 'rows', 'cols'] : [batch, 1, 'rows', 'cols'] },
    ];
    if (!v.withoutBackgroundOut) outputs.push({ name: 'background_out', elemType: DataType.FLOAT, shape: [batch, 1, 'H', 'W'] });
    const bytes = encodeModel({
      irVersion: 8,
      producerName: 'test',
      producerVersion: '1',
      opsets: [{ domain: '', version: 17 }],
      graph: {
        name: 'bent',
        nodes,
        initializers: v.cellsRank3 ? [{ name: 'axis1', dataType: DataType.INT64, dims: [1], int64s: [1] }] : [],
        inputs: [
          { name: name('frame'), elemType: v.frameType ?? DataType.UINT8, shape: [batch, 1, 'H', 'W'] },
          { name: name('background'), elemType: DataType.FLOAT, shape: [batch, 1, 'H', 'W'] },
          scalar('alpha'),
          scalar('alpha_slow'),
          scalar('pixel_threshold'),
        ],
        outputs,
      },
    });
    const path = join(dir, file);
    await writeFile(path, bytes);
    return path;
  }

  it('loads a model of the same contract with another cell size', async () => {
    for (const cell of [16, 20, 7]) {
      const model = await MotionModel.load(await writeModel(`cell${cell}.onnx`, { cell }));
      expect(model.cellSize).toBe(cell);
      const [out] = await model.run([input(flat(255), new Float32Array(PIXELS))], W, H);
      expect(out!.cells).toHaveLength(Math.floor(W / cell) * Math.floor(H / cell));
      await model.close();
    }
  });

  it('refuses a model whose input has another name', async () => {
    const path = await writeModel('renamed.onnx', { rename: { background: 'bg' } });
    await expect(MotionModel.load(path)).rejects.toThrow(`motion model ${path}: has no input 'background' (it has 'frame', 'bg', 'alpha', 'alpha_slow', 'pixel_threshold')`);
  });

  it('refuses a model that takes the frame as float32', async () => {
    const path = await writeModel('float-frame.onnx', { frameType: DataType.FLOAT });
    await expect(MotionModel.load(path)).rejects.toThrow(`motion model ${path}: input 'frame' must be uint8, is float32`);
  });

  it('refuses a model whose cells are of rank 3', async () => {
    const path = await writeModel('cells3.onnx', { cellsRank3: true });
    await expect(MotionModel.load(path)).rejects.toThrow(`motion model ${path}: output 'cells' has shape [N,rows,cols]; expected [N,1,H/c,W/c]`);
  });

  it('refuses a model whose cells are not square, found by the probe run', async () => {
    const path = await writeModel('cells10x20.onnx', { cell: [10, 20] });
    await expect(MotionModel.load(path)).rejects.toThrow(
      `motion model ${path}: output 'cells' has shape [2,1,18,16]; expected [N,1,H/c,W/c] (probe at 320×180: no cell size c gives 18×16)`,
    );
  });

  it('refuses a model without background_out', async () => {
    const path = await writeModel('no-background-out.onnx', { withoutBackgroundOut: true });
    await expect(MotionModel.load(path)).rejects.toThrow(`motion model ${path}: has no output 'background_out' (it has 'cells')`);
  });

  it('refuses a model that runs only one frame at a time', async () => {
    const path = await writeModel('batch1.onnx', { batch: 1 });
    await expect(MotionModel.load(path)).rejects.toThrow(`motion model ${path}: probe run at 320×180 (batch 2) failed`);
  });

  it('refuses a file that is not ONNX, and one that is not there', async () => {
    const path = join(dir, 'notes.onnx');
    await writeFile(path, 'these are not the weights you are looking for\n');
    await expect(MotionModel.load(path)).rejects.toThrow(`motion model ${path}: is not a usable ONNX model`);
    const missing = join(dir, 'missing.onnx');
    await expect(MotionModel.load(missing)).rejects.toThrow(`motion model ${missing}: cannot be read`);
  });

  it('finishes runs already asked for on close, then refuses', async () => {
    const model = await MotionModel.load(DEFAULT_MODEL_PATH);
    const running = model.run([input(flat(100), asBackground(flat(100)))], W, H);
    const closed = model.close();
    expect(model.close()).toBe(closed);
    await expect(running).resolves.toHaveLength(1);
    await closed;
    expect(() => model.run([input(flat(100), asBackground(flat(100)))], W, H)).toThrow(InvalidStateError);
    expect(() => model.grid(W, H)).toThrow(InvalidStateError);
  });
});
