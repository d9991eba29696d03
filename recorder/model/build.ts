/**
 * Builds the shipped motion model, recorder/model/motion.onnx.
 *
 *   node --import tsx recorder/model/build.ts
 *
 * The model is a fixed chain of standard ONNX operators (no trained weights), written here so that
 * what runs on the detector can be read and reviewed; a test checks the committed file is exactly
 * what this script makes. See README.md in this folder for the contract.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DataType, encodeModel, int, ints, type Node, type ValueInfo } from './onnx.js';

/** Pixels per side of the square cells the model reports mean change for. */
export const CELL_SIZE = 10;

/** Where the built model is written: next to this script. */
export const MODEL_FILE = fileURLToPath(new URL('./motion.onnx', import.meta.url));

/** Symbolic dimensions: batch, picture height and width, and the cell grid they give. */
const N = 'N';
const H = 'H';
const W = 'W';

const perFrame = (name: string): ValueInfo => ({ name, elemType: DataType.FLOAT, shape: [N, 1, 1, 1] });

const DOC = [
  'Motion model: background subtraction with brightness compensation.',
  `Outputs the mean absolute change per ${CELL_SIZE}x${CELL_SIZE} pixel cell (cell size ${CELL_SIZE}) and the updated background.`,
  'Inputs: frame uint8 [N,1,H,W] (grey), background float32 [N,1,H,W] (0..1), alpha, alpha_slow, pixel_threshold float32 [N,1,1,1].',
  `Outputs: cells float32 [N,1,floor(H/${CELL_SIZE}),floor(W/${CELL_SIZE})], background_out float32 [N,1,H,W].`,
].join('\n');

/**
 * The graph. It computes, per frame:
 *   f  = frame / 255
 *   fb = blur3x3(f), bb = blur3x3(background)       (against sensor noise)
 *   d  = |(fb − mean(fb)) − (bb − mean(bb))|         (a global brightness offset gives d ≈ 0)
 *   cells = mean of d over each 10×10 cell
 *   background_out = background + rate·(f − background), rate = alpha where d < pixel_threshold else alpha_slow
 *
 * Blur and mean are linear, so fb − bb = blur3x3(f − background) and mean(fb) − mean(bb) = mean(fb − bb):
 * the graph blurs and averages the difference once instead of both pictures, which is the same value
 * for half the work, and it needs f − background for the update anyway.
 */
function nodes(): Node[] {
  const blur = { kernel_shape: ints([3, 3]), strides: ints([1, 1]), pads: ints([1, 1, 1, 1]), count_include_pad: int(0) };
  return [
    { opType: 'Cast', inputs: ['frame'], outputs: ['frame_f'], name: 'to_float', attributes: { to: int(DataType.FLOAT) } },
    { opType: 'Mul', inputs: ['frame_f', 'inv_255'], outputs: ['f'], name: 'scale' },
    { opType: 'Sub', inputs: ['f', 'background'], outputs: ['diff'], name: 'diff' },
    { opType: 'AveragePool', inputs: ['diff'], outputs: ['diff_blur'], name: 'blur', attributes: blur },
    { opType: 'ReduceMean', inputs: ['diff_blur'], outputs: ['diff_mean'], name: 'brightness', attributes: { axes: ints([2, 3]), keepdims: int(1) } },
    { opType: 'Sub', inputs: ['diff_blur', 'diff_mean'], outputs: ['diff_comp'], name: 'compensate' },
    { opType: 'Abs', inputs: ['diff_comp'], outputs: ['d'], name: 'change' },
    {
      opType: 'AveragePool', inputs: ['d'], outputs: ['cells'], name: 'cells',
      attributes: { kernel_shape: ints([CELL_SIZE, CELL_SIZE]), strides: ints([CELL_SIZE, CELL_SIZE]) },
    },
    { opType: 'Less', inputs: ['d', 'pixel_threshold'], outputs: ['still'], name: 'still' },
    { opType: 'Where', inputs: ['still', 'alpha', 'alpha_slow'], outputs: ['rate'], name: 'rate' },
    { opType: 'Mul', inputs: ['rate', 'diff'], outputs: ['step'], name: 'step' },
    { opType: 'Add', inputs: ['background', 'step'], outputs: ['background_out'], name: 'update' },
  ];
}

/** Returns the bytes of the shipped motion model (ONNX IR 8, opset 17); the same bytes on every call. */
export function buildMotionModel(): Uint8Array {
  return encodeModel({
    irVersion: 8,
    producerName: 'cctv-recorder',
    producerVersion: '1',
    opsets: [{ domain: '', version: 17 }],
    docString: DOC,
    graph: {
      name: 'motion',
      docString: DOC,
      nodes: nodes(),
      initializers: [{ name: 'inv_255', dataType: DataType.FLOAT, dims: [], floats: [1 / 255] }],
      inputs: [
        { name: 'frame', elemType: DataType.UINT8, shape: [N, 1, H, W] },
        { name: 'background', elemType: DataType.FLOAT, shape: [N, 1, H, W] },
        perFrame('alpha'),
        perFrame('alpha_slow'),
        perFrame('pixel_threshold'),
      ],
      outputs: [
        { name: 'cells', elemType: DataType.FLOAT, shape: [N, 1, 'rows', 'cols'] },
        { name: 'background_out', elemType: DataType.FLOAT, shape: [N, 1, H, W] },
      ],
    },
  });
}

// Run as a script (not when a test imports it): write the file.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const bytes = buildMotionModel();
  writeFileSync(MODEL_FILE, bytes);
  process.stdout.write(`wrote ${MODEL_FILE} (${bytes.length} bytes, cell size ${CELL_SIZE})\n`);
}
