// Runs one conversion step (format/jobs.ts): its output parameters computed from checkpoint tensors, streamed in
// row blocks (a row block of a huge embedding at a time, never a whole tensor or checkpoint shard).
import { f32ToF16Bytes } from '../checkpoint/dtype.ts';
import { jobLabel, type DenseDType, type Job } from '../format/jobs.ts';
import { quantizeQ4, q4ScalesToF16Bits, Q4_GROUP_SIZE } from '../quant/q4.ts';

/** Read access to the checkpoint's tensors (a Checkpoint does this). */
export interface RowReader {
  info(name: string): { shape: number[] };
  readRowsF32(name: string, start: number, count: number): Promise<Float32Array>;
}

/** Values per row block read from the checkpoint (16 MB of f32). */
export const BLOCK_ELEMENTS = 1 << 22;

function bytesOf(a: Uint32Array | Uint16Array | Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const encodeDense = (dtype: DenseDType, v: Float32Array): Uint8Array => (dtype === 'float16' ? f32ToF16Bytes(v) : bytesOf(v));

/** Streams the row-concatenation of `sources` in blocks of `block` rows through `each`; returns the rows seen. */
async function forEachRowBlock(
  src: RowReader,
  sources: readonly string[],
  cols: number,
  block: number,
  signal: AbortSignal | undefined,
  each: (rows: Float32Array, n: number, row: number) => Promise<void>,
): Promise<number> {
  let row = 0;
  for (const name of sources) {
    const [rows, width] = rowsAndWidth(src.info(name).shape);
    if (width !== cols) throw new Error(`tensor "${name}" is ${width} wide, expected ${cols}`);
    for (let r = 0; r < rows; r += block) {
      signal?.throwIfAborted();
      const n = Math.min(block, rows - r);
      await each(await src.readRowsF32(name, r, n), n, row + r);
    }
    row += rows;
  }
  return row;
}

function rowsAndWidth(shape: readonly number[]): [number, number] {
  if (shape.length === 0) return [1, 1];
  return [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
}

/**
 * Runs a job: `emit(i, bytes)` receives output i's bytes front to back, output 0 completely before output 1.
 * The q4 scales (1/8 the size of q_weight as f32) are collected and emitted after q_weight.
 */
export async function runJob(
  job: Job,
  src: RowReader,
  emit: (output: number, bytes: Uint8Array) => Promise<void>,
  opts: { signal?: AbortSignal; blockElements?: number } = {},
): Promise<void> {
  const { signal, blockElements = BLOCK_ELEMENTS } = opts;
  if (job.kind === 'cast') {
    const [rows, width] = rowsAndWidth(src.info(job.source).shape);
    const block = Math.max(1, Math.floor(blockElements / width));
    for (let r = 0; r < rows; r += block) {
      signal?.throwIfAborted();
      const v = await src.readRowsF32(job.source, r, Math.min(block, rows - r));
      await emit(0, encodeDense(job.dtype, v));
    }
    return;
  }
  const block = Math.max(1, Math.floor(blockElements / job.cols));
  if (job.kind === 'dense') {
    const rows = await forEachRowBlock(src, job.sources, job.cols, block, signal, (v) => emit(0, encodeDense(job.dtype, v)));
    if (rows !== job.rows) throw new Error(`${jobLabel(job)}: its sources have ${rows} rows, expected ${job.rows}`);
    return;
  }
  const groups = job.cols / Q4_GROUP_SIZE;
  const scales = job.scaleDType === 'f16' ? new Uint16Array(job.rows * groups) : new Float32Array(job.rows * groups);
  const row = await forEachRowBlock(src, job.sources, job.cols, block, signal, async (v, n, at) => {
    const q = quantizeQ4(v, n, job.cols, { scaleDType: job.scaleDType });
    await emit(0, bytesOf(q.qWeight));
    scales.set(job.scaleDType === 'f16' ? q4ScalesToF16Bits(q.qScale) : q.qScale, at * groups);
  });
  if (row !== job.rows) throw new Error(`${jobLabel(job)}: its sources have ${row} rows, expected ${job.rows}`);
  await emit(1, bytesOf(scales));
}
