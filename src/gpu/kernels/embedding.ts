// Embeddings on the GPU (shaders/embedding.wgsl):
//   EmbeddingKernel      token rows gathered from a table: f32, f16 (shader-f16), or MLC int4 (q4f32_1 / q4f16_1),
//                        the table split into row blocks when it exceeds one storage binding (128256 x 4096 f16
//                        is 1 GiB); ids < 0 read row 0 (the reference's embed(max(ids, 0))) or give zeros.
// The shader's CLIP entry points (patchify, class + position assembly) are driven by src/vision/clip-embedding.ts.
import embeddingWgsl from '../../../shaders/embedding.wgsl?raw';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkBinding, foldGrid, LazyPrograms, nonNegativeInt, positiveInt, recordCompute, requireShaderF16, UniformCache, workgroupLimit, type GpuTarget } from '../dispatch.ts';
import { computeProgram, specializeWgsl } from '../pipeline.ts';
import { isQ4, rowBytes, STORAGE, type Storage } from '../storage.ts';

/** Invocations per workgroup in embedding.wgsl. */
export const EMBEDDING_WORKGROUP = 256;

const FLAG_NEG_ZERO = 1;
const FLAG_WRITE_INVALID = 2;

/**
 * The WGSL text for a format: embedding.wgsl as is for f32 / q4f32 (and the CLIP kernels); `alias TT = f16;`
 * for an f16 table; `alias ST = f16;` for q4f16 scales (both with `enable f16;`).
 */
export function embeddingShaderSource(format: Storage = 'f32'): string {
  if (format === 'f16') return specializeWgsl(embeddingWgsl, { enable: ['f16'], aliases: { TT: 'f16' } });
  if (format === 'q4f16') return specializeWgsl(embeddingWgsl, { enable: ['f16'], aliases: { ST: 'f16' } });
  return embeddingWgsl;
}

/** One row block of a dense table: rows [start, start + rows) of the whole table, as [rows, H]. */
export interface DenseEmbeddingBlock {
  rows: number;
  table: GPUBuffer;
}

/** One row block of an MLC q4 table: q_weight [rows, H/8] u32, q_scale [rows, H/32] f32 or f16. */
export interface Q4EmbeddingBlock {
  rows: number;
  qWeight: GPUBuffer;
  qScale: GPUBuffer;
}

/** A [vocab, hidden] table on the GPU, as consecutive row blocks (block b starts after blocks 0..b-1). */
export interface EmbeddingTable {
  format: Storage;
  vocab: number;
  hidden: number;
  blocks: (DenseEmbeddingBlock | Q4EmbeddingBlock)[];
}

/** The most table rows one block may hold so that each of its buffers fits in `maxBindingBytes`. */
export function embeddingBlockRows(format: Storage, hidden: number, maxBindingBytes: number): number {
  const { data, scales } = rowBytes(format, hidden);
  // align4 of the binding: an f16 block with an odd rows * hidden rounds up by 2 bytes.
  const rows = Math.floor((maxBindingBytes - 4) / Math.max(data, scales));
  if (rows < 1) throw new Error(`embedding: one ${format} row of ${hidden} values does not fit in ${maxBindingBytes} bytes`);
  return rows;
}

/** Host data of a table: f32 values, f16 bits, or MLC q4 words and scales (f32 values or f16 bits). */
export type EmbeddingTableData = Float32Array | Uint16Array | { qWeight: Uint32Array; qScale: Float32Array | Uint16Array };

function checkTableShape(format: Storage, vocab: number, hidden: number): void {
  positiveInt('EmbeddingTable', 'vocab', vocab);
  positiveInt('EmbeddingTable', 'hidden', hidden);
  if (isQ4(format) && hidden % 32 !== 0) throw new Error(`EmbeddingTable: ${format} needs hidden to be a multiple of 32, got ${hidden}`);
}

/**
 * Uploads a [vocab, hidden] table, split into row blocks that each fit the device's maxStorageBufferBindingSize
 * (or at most `maxBlockRows` rows, to test or to bound single allocations). Free with destroyEmbeddingTable().
 */
export function createEmbeddingTable(
  device: GPUDevice,
  format: Storage,
  vocab: number,
  hidden: number,
  data: EmbeddingTableData,
  opts: { maxBlockRows?: number; label?: string } = {},
): EmbeddingTable {
  checkTableShape(format, vocab, hidden);
  const label = opts.label ?? 'embedding';
  const perBlock = Math.min(opts.maxBlockRows ?? Infinity, embeddingBlockRows(format, hidden, device.limits.maxStorageBufferBindingSize));
  const blocks: EmbeddingTable['blocks'] = [];
  if (isQ4(format)) {
    if (data instanceof Float32Array || data instanceof Uint16Array) throw new Error(`createEmbeddingTable: ${format} needs { qWeight, qScale }`);
    const words = hidden / 8;
    const groups = hidden / 32;
    if (data.qWeight.length !== vocab * words) throw new Error(`createEmbeddingTable: qWeight has ${data.qWeight.length} words, expected ${vocab}x${words}`);
    if (data.qScale.length !== vocab * groups) throw new Error(`createEmbeddingTable: qScale has ${data.qScale.length} values, expected ${vocab}x${groups}`);
    const wantScale = format === 'q4f16' ? Uint16Array : Float32Array;
    if (!(data.qScale instanceof wantScale)) throw new Error(`createEmbeddingTable: ${format} scales must be a ${wantScale.name}`);
    for (let r0 = 0; r0 < vocab; r0 += perBlock) {
      const rows = Math.min(perBlock, vocab - r0);
      blocks.push({
        rows,
        qWeight: storageBufferFrom(device, data.qWeight.subarray(r0 * words, (r0 + rows) * words), `${label} q_weight rows ${r0}+${rows}`),
        qScale: storageBufferFrom(device, data.qScale.subarray(r0 * groups, (r0 + rows) * groups), `${label} q_scale rows ${r0}+${rows}`),
      });
    }
  } else {
    const want = format === 'f16' ? Uint16Array : Float32Array;
    if (!(data instanceof want)) throw new Error(`createEmbeddingTable: a ${format} table must be a ${want.name}`);
    if (data.length !== vocab * hidden) throw new Error(`createEmbeddingTable: table has ${data.length} values, expected ${vocab}x${hidden}`);
    for (let r0 = 0; r0 < vocab; r0 += perBlock) {
      const rows = Math.min(perBlock, vocab - r0);
      blocks.push({ rows, table: storageBufferFrom(device, data.subarray(r0 * hidden, (r0 + rows) * hidden), `${label} rows ${r0}+${rows}`) });
    }
  }
  return { format, vocab, hidden, blocks };
}

export function destroyEmbeddingTable(table: EmbeddingTable): void {
  for (const b of table.blocks) {
    if ('table' in b) b.table.destroy();
    else {
      b.qWeight.destroy();
      b.qScale.destroy();
    }
  }
}

export interface EmbeddingKernelOptions {
  /** Lower the dispatch limit (tests use it to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
}

export interface EmbeddingRunOptions {
  /** Element offset of the first id in the ids buffer. Default 0. */
  idsOffset?: number;
  /** First output row to write (e.g. the text rows after the vision rows of a fused sequence). Default 0. */
  outRowOffset?: number;
  /**
   * Ids < 0 (the -200 <image> slot): 'clamp' (default) reads row 0, exactly the reference's
   * embed_tokens(max(ids, 0)); 'zero' writes a zero row. Ids >= vocab always give a zero row.
   */
  negativeIds?: 'clamp' | 'zero';
}

/** out[r, :] = table[id(r), :] as f32, for one table format. */
export class EmbeddingKernel {
  private readonly programs = new LazyPrograms(() => {
    const q4 = isQ4(this.format);
    return computeProgram(this.device, {
      name: `embedding.wgsl (${this.format} gather)`,
      code: embeddingShaderSource(this.format),
      entryPoint: q4 ? 'gather_q4' : 'gather',
      bindings: q4 ? ['uniform', 'read', 'read', 'read', 'storage'] : ['uniform', 'read', 'read', 'storage'],
    });
  });
  private readonly uniforms: UniformCache;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    readonly format: Storage,
    opts: EmbeddingKernelOptions = {},
  ) {
    requireShaderF16(device, STORAGE[format].f16, `EmbeddingKernel: the ${format} format needs`, isQ4(format) ? 'q4f32' : 'f32');
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'embedding dims');
  }

  init(): Promise<this> {
    return this.programs.ready(this);
  }

  static create(device: GPUDevice, format: Storage, opts?: EmbeddingKernelOptions): Promise<EmbeddingKernel> {
    return new EmbeddingKernel(device, format, opts).init();
  }

  dispatchSize(rows: number): [number, number] {
    return foldGrid(rows, this.maxWg, 'EmbeddingKernel');
  }

  /**
   * Records out[outRowOffset + r, :] = table[id, :] for r < rows, id = ids[idsOffset + r] (i32). One dispatch
   * per table block; every output row is written exactly once (zeros for invalid ids).
   */
  run(target: GpuTarget, ids: GPUBuffer, table: EmbeddingTable, out: GPUBuffer, rows: number, opts: EmbeddingRunOptions = {}): void {
    const who = `EmbeddingKernel(${this.format})`;
    const program = this.programs.require('EmbeddingKernel', `${who}.run`);
    if (table.format !== this.format) throw new Error(`${who}: the table is ${table.format}`);
    checkTableShape(table.format, table.vocab, table.hidden);
    positiveInt(who, 'rows', rows);
    const idsOff = opts.idsOffset ?? 0;
    const outRow = opts.outRowOffset ?? 0;
    nonNegativeInt(who, 'idsOffset', idsOff);
    nonNegativeInt(who, 'outRowOffset', outRow);
    const H = table.hidden;
    const total = table.blocks.reduce((s, b) => s + b.rows, 0);
    if (total !== table.vocab) throw new Error(`${who}: the table's blocks hold ${total} rows, vocab is ${table.vocab}`);
    const { data: main, scales: scale } = rowBytes(this.format, H);
    const hint = '; split the table into more row blocks (embeddingBlockRows)';
    checkBinding(this.device, who, 'ids', ids, (idsOff + rows) * 4, `${rows} i32 from ${idsOff}`);
    checkBinding(this.device, who, 'out', out, (outRow + rows) * H * 4, `[${rows}, ${H}] f32 from row ${outRow}`);
    const resources: GPUBufferBinding[][] = table.blocks.map((b, i) => {
      if (!(b.rows >= 1 && Number.isInteger(b.rows))) throw new Error(`${who}: block ${i} has ${b.rows} rows`);
      if ('table' in b) {
        if (isQ4(this.format)) throw new Error(`${who}: block ${i} is dense, the table is ${this.format}`);
        checkBinding(this.device, who, `block ${i}`, b.table, b.rows * main, `[${b.rows}, ${H}] ${this.format}`, hint);
        return [{ buffer: b.table, size: align4(b.rows * main) }];
      }
      if (!isQ4(this.format)) throw new Error(`${who}: block ${i} is q4, the table is ${this.format}`);
      checkBinding(this.device, who, `block ${i} q_weight`, b.qWeight, b.rows * main, `[${b.rows}, ${H / 8}] u32`, hint);
      checkBinding(this.device, who, `block ${i} q_scale`, b.qScale, b.rows * scale, `[${b.rows}, ${H / 32}] ${this.format === 'q4f16' ? 'f16' : 'f32'}`, hint);
      return [
        { buffer: b.qWeight, size: b.rows * main },
        { buffer: b.qScale, size: align4(b.rows * scale) },
      ];
    });
    const [gx, gy] = this.dispatchSize(rows);
    const negZero = opts.negativeIds === 'zero' ? FLAG_NEG_ZERO : 0;
    const idsBinding: GPUBufferBinding = { buffer: ids, size: (idsOff + rows) * 4 };
    const outBinding: GPUBufferBinding = { buffer: out, size: (outRow + rows) * H * 4 };
    let start = 0;
    const groups = table.blocks.map((b, i) => {
      const flags = negZero | (i === 0 ? FLAG_WRITE_INVALID : 0);
      const dims = this.uniforms.get([rows, H, start, b.rows, table.vocab, idsOff, outRow * H, flags]);
      start += b.rows;
      return bindBuffers(this.device, program.layout, [dims, idsBinding, ...resources[i]!, outBinding], `embedding block ${i}`);
    });
    recordCompute(target, 'embedding', (pass) => {
      pass.setPipeline(program.pipeline);
      for (const g of groups) {
        pass.setBindGroup(0, g);
        pass.dispatchWorkgroups(gx, gy);
      }
    });
  }

  destroy(): void {
    this.uniforms.destroy();
  }
}

/**
 * One-shot helper for tests and self-tests: uploads ids and the table (split into blocks of at most
 * `maxBlockRows` rows), gathers, reads back [ids.length, hidden].
 */
export async function embedOnGpu(
  device: GPUDevice,
  format: Storage,
  data: EmbeddingTableData,
  vocab: number,
  hidden: number,
  ids: Int32Array,
  opts: EmbeddingRunOptions & { maxBlockRows?: number } = {},
): Promise<Float32Array> {
  const kernel = await EmbeddingKernel.create(device, format);
  const table = createEmbeddingTable(device, format, vocab, hidden, data, { maxBlockRows: opts.maxBlockRows });
  const idsBuf = storageBufferFrom(device, ids, 'ids');
  const out = createStorageBuffer(device, ids.length * hidden * 4, 'embedding out');
  try {
    kernel.run(device, idsBuf, table, out, ids.length, opts);
    return await readF32(device, out, ids.length * hidden);
  } finally {
    destroyEmbeddingTable(table);
    idsBuf.destroy();
    out.destroy();
    kernel.destroy();
  }
}
