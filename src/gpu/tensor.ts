// The one view of activation rows on the GPU: which buffer, which rows, how wide. Stages hand these to each other
// (the image encoder's [G ; Vc] to pre-fusion, pre-fusion's fused text to the LLM input) instead of bare buffers
// with row offsets on the side, and every consumer checks the shape it needs with an error naming the tensor.
// Weight tensors (any STORAGE format, split into row blocks) are GpuTensor in src/weights/gpu-weights.ts.
import { readF32 } from './buffers.ts';

/** Rows [rowStart, rowStart + rows) of a row-major f32 buffer whose rows hold `cols` values. */
export interface GpuRows {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
  cols: number;
}

/**
 * A weight matrix for one kernel run: `rows` outputs of `cols` inputs in one buffer, in the kernel's STORAGE
 * format (int4: the codes, with `scales`). A tensor split into row blocks (GpuTensor) gives one per block.
 */
export interface WeightRows {
  /** The tensor's name, for errors. */
  name: string;
  buffer: GPUBuffer;
  rows: number;
  cols: number;
  /** int4 only: the group scales. */
  scales?: GPUBuffer | null;
}

/** The first `rows` rows of an f32 buffer whose rows hold `cols` values. */
export function firstRows(buffer: GPUBuffer, rows: number, cols: number): GpuRows {
  return { buffer, rowStart: 0, rows, cols };
}

/** Every whole row of an f32 buffer `cols` wide. */
export function allRows(buffer: GPUBuffer, cols: number): GpuRows {
  return { buffer, rowStart: 0, rows: Math.floor(buffer.size / (cols * 4)), cols };
}

/** Throws unless `v` is `rows` rows (at least, when `rows` is a minimum) of `cols` f32 values inside its buffer. */
export function checkRows(who: string, name: string, v: GpuRows, shape: { rows: number; cols: number }): void {
  const label = `${who}: ${name} "${v.buffer.label}"`;
  if (v.cols !== shape.cols) throw new Error(`${label} has rows of ${v.cols} values, needs ${shape.cols}`);
  if (v.rows < shape.rows) throw new Error(`${label} has ${v.rows} rows, needs ${shape.rows} of ${shape.cols} f32`);
  const end = (v.rowStart + shape.rows) * v.cols * 4;
  if (v.buffer.size < end) throw new Error(`${label} has ${v.buffer.size} bytes, needs ${v.rowStart} + ${shape.rows} rows of ${shape.cols} f32`);
}

/** The rows' values read back. */
export function readRows(device: GPUDevice, v: GpuRows): Promise<Float32Array> {
  return readF32(device, v.buffer, v.rows * v.cols, v.rowStart * v.cols);
}
