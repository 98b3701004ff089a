// Int4 group-quantized linear layer on the GPU (prefill, many rows): y[M, N] = x[M, K] · deq(W)[N, K]^T (+ b[N]),
// W in the MLC q4f32_1 / q4f16_1 layout (src/quant/q4.ts): qWeight [N, K/8] u32, qScale [N, K/32] f32 or f16.
// Two forms (LinearForm, as LinearKernel): 'tiled', shaders/matmul-q4.wgsl, dequantizes one 32-deep group per K
// slice into workgroup memory (GPUs); 'direct', shaders/matmul-q4-direct.wgsl, unpacks each row's group from one
// 16-byte load into registers (CPU adapters). f32 accumulation in both; the tiled form can compute its tile in f16
// (LinearArithmetic, shader-f16), each group of 32 products summed in f16. The f16-scale variant reads the scales
// as u32 pairs (unpack2x16float), so it needs no `shader-f16` and is built on every device. For a few rows
// (decode) use MatvecKernel (matvec.ts), which is bandwidth-bound where a tile would idle most of its rows.
//
// Limits: each binding (x, qWeight, qScale, y) must fit in maxStorageBufferBindingSize. A weight larger than that
// (lm_head 128256 x 4096 int4 = 263 MB) must be split by the caller into row blocks (separate buffers), each run
// with `{ yColOffset: n0, yRowStride: N }`; run() throws a clear Error instead of letting WebGPU fail validation.
// Large outputs are dispatched as a 2D grid of 64x64 tiles, folded to respect maxComputeWorkgroupsPerDimension.
import matmulQ4Wgsl from '../../../shaders/matmul-q4.wgsl?raw';
import matmulQ4DirectWgsl from '../../../shaders/matmul-q4-direct.wgsl?raw';
import { q4Bytes, q4ScalesToF16Bits, Q4_GROUP_SIZE, type Q4ScaleDType, type Q4Weights } from '../../quant/q4.ts';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkBindings, foldGrid, LazyPrograms, positiveInt, recordDispatch, rowBlockOutput, UniformCache, workgroupLimit, type BindingSpec, type GpuTarget } from '../dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind } from '../pipeline.ts';
import { expandWgsl } from '../wgsl-include.ts';
import { firstRows } from '../tensor.ts';
import { checkArithmetic, defaultLinearForm, linearEpilogue, linearShape, tileArithmetic, type LinearArithmetic, type LinearForm, type LinearOperands, type LinearRunOptions } from './linear.ts';

/** Shared with the other kernel wrappers; re-exported here where they were first defined. */
export { checkBindings, recordCompute } from '../dispatch.ts';

/** Output tile edge of matmul-q4.wgsl (and of the direct form's tiles for M > SMALL_TILE_M). */
export const LINEAR_Q4_TILE = 64;
/**
 * Rows per tile of the direct form for M <= 16 (a follow-up question's few rows on a CPU adapter): 16 x 64 tiles,
 * so 16 rows do not pay for a 64-row tile's clamped rows.
 */
export const SMALL_TILE_M = 16;

const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'read', 'storage'];

/**
 * The WGSL text of a form (one source for both scale dtypes: the SCALE_F16 override picks), its shared fragments
 * spliced in; for f16 arithmetic (tiled), specialized by tileArithmetic.
 */
export function linearQ4ShaderSource(form: LinearForm = 'tiled', arithmetic: LinearArithmetic = 'f32'): string {
  const code = expandWgsl(form === 'tiled' ? matmulQ4Wgsl : matmulQ4DirectWgsl);
  return arithmetic === 'f16' ? specializeWgsl(code, { enable: ['f16'], ...tileArithmetic('f16') }) : code;
}

export interface LinearQ4KernelOptions {
  /** Storage dtype of qScale: 'f32' (q4f32_1, default) or 'f16' (q4f16_1; no shader-f16 needed). */
  scales?: Q4ScaleDType;
  /** Lower the dispatch limit (tests use this to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
  /** Kernel form; default defaultLinearForm(device). Tests run both forms on one device. */
  form?: LinearForm;
  /** The tiled form's tile arithmetic (default 'f32'; 'f16' needs shader-f16, whatever the scales). */
  arithmetic?: LinearArithmetic;
  /** Replace the shader (tests, tuning): same bindings, Dims and overrides. */
  shader?: { name: string; code: string };
}

export class LinearQ4Kernel {
  readonly scales: Q4ScaleDType;
  readonly form: LinearForm;
  readonly arithmetic: LinearArithmetic;
  /** By rows per tile (bias on/off is a uniform flag); the tiled form has only 64-row tiles. */
  private readonly programs = new LazyPrograms(async () => {
    const build = (tileM: number) =>
      computeProgram(this.device, {
        name: `${this.opts.shader?.name ?? `${this.form === 'tiled' ? 'matmul-q4.wgsl' : 'matmul-q4-direct.wgsl'} (${this.scales} scales${this.arithmetic === 'f16' ? ', f16 arithmetic' : ''})`}${tileM === LINEAR_Q4_TILE ? '' : `, ${tileM}-row tiles`}`,
        code: this.opts.shader?.code ?? linearQ4ShaderSource(this.form, this.arithmetic),
        bindings: BINDINGS,
        constants: { SCALE_F16: this.scales === 'f16', ...(tileM === LINEAR_Q4_TILE ? {} : { TILE_M: tileM }) },
      });
    const [full, small] = await Promise.all([build(LINEAR_Q4_TILE), this.form === 'direct' ? build(SMALL_TILE_M) : null]);
    return (tileM: number) => (tileM === LINEAR_Q4_TILE ? full : small!);
  });
  private readonly uniforms: UniformCache;
  private dummyBias: GPUBuffer | null = null;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    private readonly opts: LinearQ4KernelOptions = {},
  ) {
    this.scales = opts.scales ?? 'f32';
    this.form = opts.form ?? defaultLinearForm(device);
    this.arithmetic = opts.arithmetic ?? 'f32';
    checkArithmetic(device, 'LinearQ4Kernel', this.form, this.arithmetic);
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'linear-q4 dims');
  }

  /** Builds the pipeline. Rejects with a ShaderError if the WGSL does not compile. */
  init(): Promise<this> {
    return this.programs.ready(this);
  }

  /** A ready kernel. */
  static create(device: GPUDevice, opts?: LinearQ4KernelOptions): Promise<LinearQ4Kernel> {
    return new LinearQ4Kernel(device, opts).init();
  }

  /** Workgroup grid for an M x N output: the tile count folded into (x <= limit, y). */
  dispatchSize(M: number, N: number): [number, number] {
    return foldGrid(Math.ceil(M / this.tileRows(M)) * Math.ceil(N / LINEAR_Q4_TILE), this.maxWg, 'LinearQ4Kernel', `${M}x${N} output needs`);
  }

  /** Rows of x per output tile for M rows: SMALL_TILE_M for a small M in the direct form, else 64. */
  tileRows(M: number): number {
    return this.form === 'direct' && M <= SMALL_TILE_M ? SMALL_TILE_M : LINEAR_Q4_TILE;
  }

  /**
   * Records y = x deq(W)^T (+ b). x: [M, K] f32; qWeight: [N, K/8] u32; qScale: [N, K/32] f32 or f16 (per the
   * kernel); b: [N] f32 or null; y: f32, written at yColOffset + r * yRowStride + c. K % 32 == 0. x and y must be
   * different buffers. With a device, encodes and submits at once; with an encoder or pass, only records.
   */
  run(target: GpuTarget, op: LinearOperands, opts: LinearRunOptions = {}): void {
    const { M, K, N } = linearShape('LinearQ4Kernel.run', op);
    const tileM = this.tileRows(M);
    const program = this.programs.require('LinearQ4Kernel')(tileM);
    const { x: { buffer: x }, w: { buffer: qWeight, scales: qScale }, bias: b, y } = op;
    if (!qScale) throw new Error(`LinearQ4Kernel.run: ${op.w.name} is int4 and needs its scales`);
    for (const [name, v] of [['M', M], ['K', K], ['N', N]] as const) positiveInt('LinearQ4Kernel.run', name, v);
    if (K % Q4_GROUP_SIZE !== 0) throw new Error(`LinearQ4Kernel.run: K = ${K} is not a multiple of the int4 group size ${Q4_GROUP_SIZE}`);
    const { ldy, yOff } = rowBlockOutput('LinearQ4Kernel.run', N, opts);
    if (x === y) throw new Error('LinearQ4Kernel: x and y must be different buffers');

    const qb = q4Bytes(N, K, this.scales);
    const bindings: BindingSpec[] = [
      ['x', x, M * K * 4, `[${M}, ${K}] f32`],
      ['qWeight', qWeight, qb.qWeight, `[${N}, ${K / 8}] u32`],
      ['qScale', qScale, qb.qScale, `[${N}, ${K / Q4_GROUP_SIZE}] ${this.scales}`],
      ['y', y, (yOff + (M - 1) * ldy + N) * 4, `[${M}, ${N}] f32, row stride ${ldy}, offset ${yOff}`],
    ];
    if (b) bindings.push(['b', b, N * 4, `[${N}] f32`]);
    checkBindings('LinearQ4Kernel', this.device, bindings);

    const binding = ([, buf, bytes]: BindingSpec): GPUBufferBinding => ({ buffer: buf, offset: 0, size: align4(bytes) });
    let bb: GPUBufferBinding;
    if (b) {
      bb = binding(bindings[4]!);
    } else {
      this.dummyBias ??= createStorageBuffer(this.device, 16, 'linear-q4: no bias');
      bb = { buffer: this.dummyBias };
    }
    const grid = this.dispatchSize(M, N);
    const tilesN = Math.ceil(N / LINEAR_Q4_TILE);
    const tiles = Math.ceil(M / tileM) * tilesN;
    const dims = this.uniforms.get([M, K, N, tilesN, ldy, yOff, tiles, linearEpilogue(b !== null, opts)]);
    const bindGroup = bindBuffers(
      this.device,
      program.layout,
      [dims, binding(bindings[0]!), binding(bindings[1]!), binding(bindings[2]!), bb, binding(bindings[3]!)],
      'linear-q4',
    );
    recordDispatch(target, 'linear-q4', program, bindGroup, grid);
  }

  /** Frees the kernel's own small buffers (not the caller's). */
  destroy(): void {
    this.uniforms.destroy();
    this.dummyBias?.destroy();
    this.dummyBias = null;
  }
}

/** The scale buffer contents for a scale dtype: f32 values as is, or their f16 bits ('f16'). */
export function q4ScaleData(qScale: Float32Array, scales: Q4ScaleDType): Float32Array | Uint16Array {
  return scales === 'f16' ? q4ScalesToF16Bits(qScale) : qScale;
}

/**
 * One-shot convenience for tests and self-tests: uploads x [M, K], the quantized W (from quantizeQ4; its
 * scaleDType picks the kernel variant) and bias [N], runs, reads back y [M, N].
 */
export async function linearQ4OnGpu(
  device: GPUDevice,
  x: Float32Array,
  M: number,
  K: number,
  q: Q4Weights,
  N: number,
  bias?: Float32Array | null,
  opts: Omit<LinearQ4KernelOptions, 'scales'> = {},
): Promise<Float32Array> {
  if (x.length !== M * K) throw new Error(`linearQ4OnGpu: x has ${x.length} values, expected ${M}x${K}`);
  if (q.qWeight.length !== (N * K) / 8) throw new Error(`linearQ4OnGpu: qWeight has ${q.qWeight.length} words, expected ${N}x${K / 8}`);
  if (bias && bias.length !== N) throw new Error(`linearQ4OnGpu: bias has ${bias.length} values, expected ${N}`);
  const kernel = await LinearQ4Kernel.create(device, { ...opts, scales: q.scaleDType });
  const xBuf = storageBufferFrom(device, x, 'x');
  const wBuf = storageBufferFrom(device, q.qWeight, 'qWeight');
  const sBuf = storageBufferFrom(device, q4ScaleData(q.qScale, q.scaleDType), 'qScale');
  const bBuf = bias ? storageBufferFrom(device, bias, 'b') : null;
  const yBuf = createStorageBuffer(device, M * N * 4, 'y');
  try {
    kernel.run(device, { x: firstRows(xBuf, M, K), w: { name: 'w', buffer: wBuf, scales: sBuf, rows: N, cols: K }, bias: bBuf, y: yBuf });
    return await readF32(device, yBuf, M * N);
  } finally {
    for (const buf of [xBuf, wBuf, sBuf, bBuf, yBuf]) buf?.destroy();
    kernel.destroy();
  }
}
