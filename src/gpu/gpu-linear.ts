// Kernels over GpuWeights tensors, whatever their storage (f32, f16, q4f32, q4f16) and row blocks:
//   recordLinear  y = x W^T (+ b): MatvecKernel for M <= matvecMaxRows rows when W's rows are 16-byte aligned (one pass
//                 over W, where a 64-row tile would idle), else LinearKernel (f32 / f16 tiles) or LinearQ4Kernel (int4).
//                 A W split into row blocks runs one kernel per block into its column window of y. On a GPU with
//                 shader-f16 the tiles over f16-stored weights (f16, q4f16) compute in f16 (tiledArithmetic).
//   recordGated   y = silu(x G^T) * (x U^T), a gated MLP's gate and up in one matvec pass (decode rows).
//   NormKernels   LayerNorm / RMSNorm with the NormKernel variant of the weight's storage.
// Kernel variants are compiled by prepare() (at load), so recording stays synchronous.
// Also: f32 copies of small tensors (every kernel reads biases as f32, whatever the policy stored) and row slices
// of a tensor (the compressor's in_proj_weight holds Wq, Wk and Wv in one tensor).
import { decodeRows, encodeRows, isQ4, rowBytes, type DenseStorage, type Storage } from './storage.ts';
import type { GpuTensor, GpuTensorBlock, GpuWeights } from '../weights/gpu-weights.ts';
import { storageBufferFrom } from './buffers.ts';
import { isCpuDevice } from './device.ts';
import type { GpuTarget } from './dispatch.ts';
import { firstRows, type WeightRows } from './tensor.ts';
import { LINEAR_TILE, LinearKernel, tiledArithmetic, type LinearRunOptions } from './kernels/linear.ts';
import { LinearQ4Kernel } from './kernels/linear-q4.ts';
import { MATVEC_MAX_M, MatvecKernel } from './kernels/matvec.ts';
import { NormKernel, type NormKind, type NormRunOptions } from './kernels/norm.ts';

export type LinearPath = 'matvec' | 'tiled';

/**
 * Most rows the matvec takes: MATVEC_MAX_M (16); on a CPU adapter 4 for int4 (its M <= 4 class), whose direct kernel
 * has 16-row tiles there (SMALL_TILE_M). At 4096 -> 2048, matvec against 16-row tiles: SwiftShader M = 8 175 / 153 ms,
 * M = 16 264 / 157 ms; lavapipe M = 8 30 / 41 ms, M = 12 49 / 42 ms, M = 16 59 / 38 ms (docs/PERFORMANCE.md).
 */
export function matvecMaxRows(storage: Storage, cpu: boolean): number {
  return cpu && isQ4(storage) ? MATVEC_CPU_Q4_MAX_M : MATVEC_MAX_M;
}
const MATVEC_CPU_Q4_MAX_M = 4;

/** The kernel family a linear of M rows over this storage and width uses (cpu: isCpuDevice of the device). */
export function linearPath(storage: Storage, M: number, K: number, cpu = false): LinearPath {
  return M <= matvecMaxRows(storage, cpu) && matvecReads(storage, K) ? 'matvec' : 'tiled';
}

/** MatvecKernel reads W rows in 16-byte units. */
const matvecReads = (storage: Storage, K: number) => rowBytes(storage, K).data % 16 === 0;

/**
 * Rows past a tiled linear's last whole 64-row tile that the batched matvec takes instead (0: none). CLIP's and the
 * vision pre-fusion's 577 rows are 9 whole tiles and 1 row: a 10th tile row would compute 64 rows for it. Only when
 * the matvec can read the tail where it starts (a storage-aligned byte offset).
 */
export function matvecTailRows(storage: Storage, M: number, K: number, offsetAlignment: number): number {
  const tail = M % LINEAR_TILE;
  if (M < LINEAR_TILE || tail === 0 || tail > MATVEC_MAX_M || !matvecReads(storage, K)) return 0;
  return ((M - tail) * K * 4) % offsetAlignment === 0 ? tail : 0;
}

export interface LinearKernelsOptions {
  /** 'by-storage' (default): tiledArithmetic; 'f32': every tile in f32 (benches measure the difference). */
  arithmetic?: 'by-storage' | 'f32';
}

type AnyLinear = LinearKernel | LinearQ4Kernel | MatvecKernel;

/** The linear kernels of one device, one per (path, storage), built on demand by prepare(). */
export class LinearKernels {
  private readonly kernels = new Map<string, AnyLinear>();
  private readonly pending = new Map<string, Promise<AnyLinear>>();
  /** f32 bias slices per row block of a blocked weight, made once per (bias, block). */
  private readonly biasSlices = new Map<GpuTensor, Map<number, GPUBuffer>>();

  private readonly cpu: boolean;

  constructor(
    readonly device: GPUDevice,
    private readonly opts: LinearKernelsOptions = {},
  ) {
    this.cpu = isCpuDevice(device);
  }

  /**
   * Builds the kernels that linears over these weights with these row counts use (the path only depends on
   * M <= matvecMaxRows or not: [1, maxRows] covers every M).
   */
  async prepare(weights: readonly GpuTensor[], rowCounts: readonly number[]): Promise<this> {
    const jobs: Promise<AnyLinear>[] = [];
    const alignment = this.device.limits.minStorageBufferOffsetAlignment;
    for (const w of weights) {
      for (const M of rowCounts) {
        jobs.push(this.build(linearPath(w.storage, M, w.cols, this.cpu), w.storage));
        if (matvecTailRows(w.storage, M, w.cols, alignment) > 0) jobs.push(this.build('matvec', w.storage));
      }
    }
    await Promise.all(jobs);
    return this;
  }

  private build(path: LinearPath, storage: Storage): Promise<AnyLinear> {
    const key = `${path}:${storage}`;
    let p = this.pending.get(key);
    if (!p) {
      const arithmetic = this.opts.arithmetic === 'f32' ? 'f32' : tiledArithmetic(storage, this.device);
      const kernel: AnyLinear =
        path === 'matvec'
          ? new MatvecKernel(this.device, { weights: storage })
          : isQ4(storage)
            ? new LinearQ4Kernel(this.device, { scales: storage === 'q4f16' ? 'f16' : 'f32', arithmetic })
            : new LinearKernel(this.device, { weights: storage, arithmetic });
      p = kernel.init().then(
        (k: AnyLinear) => {
          this.kernels.set(key, k);
          return k;
        },
        (e: unknown) => {
          this.pending.delete(key); // a later prepare() may try again
          throw e;
        },
      );
      this.pending.set(key, p);
    }
    return p;
  }

  /**
   * Records y = x W^T (+ b) for x [M, K] f32 and W = w [N, K]; y (f32) element (r, c) at
   * yColOffset + r * yRowStride + c (defaults 0 and N); with `residual`, y += x W^T (+ b). bias: an f32 [1, N]
   * tensor (see loadF32Tensor) or null.
   */
  record(target: GpuTarget, x: GPUBuffer, w: GpuTensor, bias: GpuTensor | null, y: GPUBuffer, M: number, opts: LinearRunOptions = {}): void {
    const N = w.rows;
    const K = w.cols;
    if (bias && (bias.storage !== 'f32' || bias.rows !== 1 || bias.cols !== N || bias.blocks.length !== 1)) {
      throw new Error(`linear ${w.name}: the bias must be one f32 row of ${N} values (loadF32Tensor), got ${bias.name} [${bias.rows}, ${bias.cols}] ${bias.storage}`);
    }
    const ldy = opts.yRowStride ?? N;
    const yOff = opts.yColOffset ?? 0;
    const tail = matvecTailRows(w.storage, M, K, this.device.limits.minStorageBufferOffsetAlignment);
    const head = M - tail;
    const path = linearPath(w.storage, head, K, this.cpu);
    for (const block of w.blocks) {
      const b = bias ? (w.blocks.length === 1 ? bias.blocks[0]!.data : this.biasSlice(bias, block)) : null;
      const rows = weightRowsOf(w, block);
      this.kernel(w, path).run(target, { x: firstRows(x, head, K), w: rows, bias: b, y }, { yRowStride: ldy, yColOffset: yOff + block.rowStart, residual: opts.residual });
      if (tail > 0) {
        const xTail = { buffer: x, rowStart: head, rows: tail, cols: K };
        this.kernel(w, 'matvec').run(target, { x: xTail, w: rows, bias: b, y }, { yRowStride: ldy, yColOffset: yOff + head * ldy + block.rowStart, residual: opts.residual });
      }
    }
  }

  /**
   * Whether recordGated can run y = silu(x G^T) * (x U^T) over M rows in one pass: the matvec path, and gate and up
   * of one storage and shape, split into the same row blocks.
   */
  fusesGated(gate: GpuTensor, up: GpuTensor, M: number): boolean {
    const sameBlocks = gate.blocks.length === up.blocks.length && gate.blocks.every((b, i) => b.rowStart === up.blocks[i]!.rowStart && b.rows === up.blocks[i]!.rows);
    return gate.storage === up.storage && gate.rows === up.rows && gate.cols === up.cols && sameBlocks && linearPath(gate.storage, M, gate.cols, this.cpu) === 'matvec';
  }

  /** Records y [M, N] = silu(x G^T) * (x U^T) (the gated MLP input) with the matvec's gated form, block by block. */
  recordGated(target: GpuTarget, x: GPUBuffer, gate: GpuTensor, up: GpuTensor, y: GPUBuffer, M: number): void {
    if (!this.fusesGated(gate, up, M)) throw new Error(`linear ${gate.name} | ${up.name}: the gated form needs the matvec path (M = ${M}) and two tensors of one storage, shape and row blocks`);
    const kernel = this.kernel(gate, 'matvec') as MatvecKernel;
    gate.blocks.forEach((block, i) => {
      const op = { x: firstRows(x, M, gate.cols), w: weightRowsOf(gate, block), up: weightRowsOf(up, up.blocks[i]!), bias: null, y };
      kernel.run(target, op, { yRowStride: gate.rows, yColOffset: block.rowStart });
    });
  }

  private kernel(w: GpuTensor, path: LinearPath): AnyLinear {
    const kernel = this.kernels.get(`${path}:${w.storage}`);
    if (!kernel) throw new Error(`linear ${w.name}: no ${path} kernel for ${w.storage} weights was prepared (call LinearKernels.prepare at load)`);
    return kernel;
  }

  /** bias[rowStart, rowStart + rows) of a weight block in its own f32 buffer (kernels bind a bias from offset 0). */
  private biasSlice(bias: GpuTensor, block: GpuTensorBlock): GPUBuffer {
    let slices = this.biasSlices.get(bias);
    if (!slices) this.biasSlices.set(bias, (slices = new Map()));
    let buf = slices.get(block.rowStart);
    if (!buf) {
      // Copied on the queue now: it runs before any command buffer the caller submits later.
      buf = copyByteRange(this.device, bias.blocks[0]!.data, block.rowStart * 4, block.rows * 4, `${bias.name} [${block.rowStart}, +${block.rows})`);
      slices.set(block.rowStart, buf);
    }
    return buf;
  }

  destroy(): void {
    for (const k of this.kernels.values()) k.destroy();
    this.kernels.clear();
    this.pending.clear();
    for (const slices of this.biasSlices.values()) for (const b of slices.values()) b.destroy();
    this.biasSlices.clear();
  }
}

/** One row block of a stored tensor as a kernel's weight operand (int4 with its scales). */
function weightRowsOf(w: GpuTensor, block: GpuTensorBlock): WeightRows {
  return { name: w.name, buffer: block.data, rows: block.rows, cols: w.cols, ...(isQ4(w.storage) ? { scales: scalesOf(w, block) } : {}) };
}

function scalesOf(w: GpuTensor, block: GpuTensorBlock): GPUBuffer {
  if (!block.scales) throw new Error(`linear ${w.name}: ${w.storage} block at row ${block.rowStart} has no scales buffer`);
  return block.scales;
}

/** The free-function form of LinearKernels.record. */
export function recordLinear(
  target: GpuTarget,
  kernels: LinearKernels,
  x: GPUBuffer,
  w: GpuTensor,
  bias: GpuTensor | null,
  y: GPUBuffer,
  M: number,
  opts: LinearRunOptions = {},
): void {
  kernels.record(target, x, w, bias, y, M, opts);
}

/** NormKernels per (kind, weight storage); built by prepare(). */
export class NormKernels {
  private readonly kernels = new Map<string, NormKernel>();

  constructor(readonly device: GPUDevice) {}

  async prepare(kind: NormKind, weights: readonly GpuTensor[]): Promise<this> {
    await Promise.all(
      weights.map((w) => {
        const key = `${kind}:${denseStorage(w)}`;
        let k = this.kernels.get(key);
        if (!k) this.kernels.set(key, (k = new NormKernel(this.device, kind, { weights: denseStorage(w) })));
        return k.init();
      }),
    );
    return this;
  }

  /** Records y[r] = norm(x[r]) with weight w (and bias b for LayerNorm), both one-block tensors of the same storage. */
  record(target: GpuTarget, kind: NormKind, x: GPUBuffer, w: GpuTensor, b: GpuTensor | null, y: GPUBuffer, rows: number, eps: number, opts: NormRunOptions = {}): void {
    const storage = denseStorage(w);
    if (b && b.storage !== w.storage) throw new Error(`norm ${w.name}: weight is ${w.storage}, bias ${b.name} is ${b.storage}`);
    const kernel = this.kernels.get(`${kind}:${storage}`);
    if (!kernel) throw new Error(`norm ${w.name}: no ${kind} kernel for ${storage} weights was prepared (call NormKernels.prepare at load)`);
    kernel.run(target, x, oneBlock(w), b ? oneBlock(b) : null, y, rows, w.cols, eps, opts);
  }

  destroy(): void {
    for (const k of this.kernels.values()) k.destroy();
    this.kernels.clear();
  }
}

/** The storage of a tensor that must be dense (f32 or f16), e.g. for a norm or the CLIP patch embedding. */
export function denseStorage(t: GpuTensor): DenseStorage {
  if (t.storage !== 'f32' && t.storage !== 'f16') throw new Error(`${t.name}: ${t.storage} storage where f32 or f16 is needed`);
  return t.storage;
}

/** The buffer of a tensor held in a single block. */
export function oneBlock(t: GpuTensor): GPUBuffer {
  if (t.blocks.length !== 1) throw new Error(`${t.name}: expected one block, the tensor is split into ${t.blocks.length}`);
  return t.blocks[0]!.data;
}

/** The values a tensor holds on the GPU under the weights' policy (rounded to f16 / int4 and decoded), as f32. */
export async function storedValues(weights: GpuWeights, name: string): Promise<Float32Array> {
  const { storage, rows, cols } = weights.plan(name);
  const values = await weights.source.readF32(name);
  return storage === 'f32' ? values : decodeRows(storage, encodeRows(storage, values, rows, cols), rows, cols);
}

/**
 * A small tensor (bias, embedding table) as one f32 block, values exactly as the policy stores them (so the CPU
 * reference on dequantizedSource sees the same numbers): the GpuWeights tensor itself when it is stored f32, else
 * a new buffer added to `owned` (the caller frees it). `cols` [start, start + count) of a 1-row tensor selects a
 * slice (the compressor's in_proj_bias holds bq, bk, bv).
 */
export async function loadF32Tensor(weights: GpuWeights, name: string, owned: GPUBuffer[], cols?: { start: number; count: number }): Promise<GpuTensor> {
  const plan = weights.plan(name);
  if (plan.storage === 'f32' && !cols) {
    const t = await weights.load(name);
    if (t.blocks.length === 1) return t;
  }
  let values = await storedValues(weights, name);
  let rows = plan.rows;
  let width = plan.cols;
  if (cols) {
    if (plan.rows !== 1 || cols.start < 0 || cols.count < 1 || cols.start + cols.count > plan.cols) {
      throw new Error(`${name}: cannot take columns [${cols.start}, +${cols.count}) of a [${plan.rows}, ${plan.cols}] tensor`);
    }
    values = values.subarray(cols.start, cols.start + cols.count);
    rows = 1;
    width = cols.count;
  }
  const data = storageBufferFrom(weights.device, values, `${name} f32${cols ? ` [${cols.start}, +${cols.count})` : ''}`);
  owned.push(data);
  return { name, rows, cols: width, storage: 'f32', part: plan.tensor.part, blocks: [{ rowStart: 0, rows, data }], bytes: data.size };
}

/** A new buffer with bytes [offset, offset + size) of `src` (both multiples of 4), copied on the queue now. */
function copyByteRange(device: GPUDevice, src: GPUBuffer, offset: number, size: number, label: string): GPUBuffer {
  if (offset % 4 !== 0 || size % 4 !== 0) throw new Error(`${label}: byte range [${offset}, +${size}) is not 4-byte aligned`);
  const dst = device.createBuffer({ label, size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const encoder = device.createCommandEncoder({ label: `copy ${label}` });
  encoder.copyBufferToBuffer(src, offset, dst, 0, size);
  device.queue.submit([encoder.finish()]);
  return dst;
}

/**
 * Rows [start, start + count) of a matrix tensor as a new tensor (same storage, one block per source block it
 * touches), copied on the GPU now; its buffers are added to `owned`. Row byte ranges must be 4-byte aligned.
 */
export function sliceRows(device: GPUDevice, t: GpuTensor, start: number, count: number, owned: GPUBuffer[]): GpuTensor {
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > t.rows) {
    throw new Error(`${t.name}: cannot take rows [${start}, +${count}) of ${t.rows}`);
  }
  const per = rowBytes(t.storage, t.cols);
  const blocks: GpuTensorBlock[] = [];
  let bytes = 0;
  for (const b of t.blocks) {
    const r0 = Math.max(start, b.rowStart);
    const r1 = Math.min(start + count, b.rowStart + b.rows);
    if (r0 >= r1) continue;
    const label = `${t.name} rows [${r0}, ${r1})`;
    const data = copyByteRange(device, b.data, (r0 - b.rowStart) * per.data, (r1 - r0) * per.data, label);
    owned.push(data);
    const block: GpuTensorBlock = { rowStart: r0 - start, rows: r1 - r0, data };
    if (b.scales) {
      block.scales = copyByteRange(device, b.scales, (r0 - b.rowStart) * per.scales, (r1 - r0) * per.scales, `${label} scales`);
      owned.push(block.scales);
    }
    bytes += data.size + (block.scales?.size ?? 0);
    blocks.push(block);
  }
  return { ...t, name: `${t.name}[${start}:${start + count}]`, rows: count, blocks, bytes };
}
