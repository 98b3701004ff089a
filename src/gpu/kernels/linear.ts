// Dense linear layer on the GPU: y[M, N] = x[M, K] · W[N, K]^T (+ b[N]) with Hugging Face weight layout
// (W rows are outputs). Two forms of the same 64x64-tile computation (LinearForm): 'tiled' stages x and W
// slices in workgroup memory (shaders/matmul.wgsl, for GPUs); 'direct' reads them straight from the buffers
// (shaders/matmul-direct.wgsl, for CPU adapters, where it runs 1.8-2.8x faster and builds in milliseconds
// instead of seconds). An f16-weight variant of each is specialized from the same source and built only on
// devices with `shader-f16`; so is the tiled form's f16 arithmetic (LinearArithmetic), where the tile products are
// f16 (twice the f32 rate on most GPUs) and only a 32-deep slice is summed in f16.
//
// Limits: each binding (x, W, y) must fit in maxStorageBufferBindingSize. A weight matrix larger than that
// must be split by the caller into row blocks W[n0:n1, :] (separate buffers), each run with
// `{ yColOffset: n0, yRowStride: N }` so the parts land side by side in one y. run() throws a clear Error
// instead of letting WebGPU fail validation. Large outputs are dispatched as a 2D grid of 64x64 tiles, folded
// to respect maxComputeWorkgroupsPerDimension.
import matmulWgsl from '../../../shaders/matmul.wgsl?raw';
import matmulDirectWgsl from '../../../shaders/matmul-direct.wgsl?raw';
import matmulDirectLoadsWgsl from '../../../shaders/matmul-direct-loads.wgsl?raw';
import { f16BytesToF32, f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { isCpuDevice } from '../device.ts';
import { checkBindings, foldGrid, LazyPrograms, positiveInt, recordDispatch, requireShaderF16, rowBlockOutput, UniformCache, workgroupLimit, type BindingSpec, type GpuTarget } from '../dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind, type ComputeProgram } from '../pipeline.ts';
import { STORAGE, type DenseStorage, type Storage } from '../storage.ts';
import { firstRows, type GpuRows, type WeightRows } from '../tensor.ts';
import { expandWgsl, parseFragments } from '../wgsl-include.ts';

/** Output tile edge of matmul.wgsl (rows of x and rows of W per workgroup). */
export const LINEAR_TILE = 64;

const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'storage'];

/**
 * How a linear kernel reaches its operands: 'tiled' stages them in workgroup memory (GPUs: shared-memory reuse);
 * 'direct' loads them from the buffers into registers (CPU adapters: their caches give the reuse, and a
 * workgroup barrier or zero-initialized workgroup memory costs more there than it saves).
 */
export type LinearForm = 'tiled' | 'direct';

/** The form a device runs best: 'direct' on a CPU adapter, else 'tiled'. */
export const defaultLinearForm = (device: GPUDevice): LinearForm => (isCpuDevice(device) ? 'direct' : 'tiled');

/**
 * The tiled form's tile arithmetic: 'f32', or 'f16' (needs `shader-f16`): x and W slices staged as f16, each
 * 32-deep slice's products summed in f16 and added to f32 accumulators (matmul-tile.wgsl); double-buffered, one
 * barrier per slice. Which linears take it follows their weights' storage (tiledArithmetic).
 */
export type LinearArithmetic = 'f32' | 'f16';

/**
 * The arithmetic of a tiled linear over weights stored as `storage`: f16 for the f16 formats (f16, q4f16: weights
 * the precision policy stored in f16, whose products gain nothing from f32; MLC computes q4f16_1 in f16 as a whole)
 * on a GPU with shader-f16, where f16 math runs at up to twice the f32 rate and halves the staged bytes; else f32.
 * The f32 formats (the parity precision, devices without shader-f16) stay f32, and so does a CPU adapter's direct
 * form. The tile sums only 32 products in f16 (matmul-tile.wgsl), so the f16 error stays at slice depth, not K.
 */
export function tiledArithmetic(storage: Storage, device: GPUDevice): LinearArithmetic {
  return STORAGE[storage].f16 && device.features.has('shader-f16') && !isCpuDevice(device) ? 'f16' : 'f32';
}

/** The specialization of a tiled kernel's text for its arithmetic (`ST`, `STAGES` of matmul-tile.wgsl). */
export function tileArithmetic(arithmetic: LinearArithmetic): { aliases: Record<string, string>; u32Consts: Record<string, number> } {
  return arithmetic === 'f16' ? { aliases: { ST: 'f16' }, u32Consts: { STAGES: 2 } } : { aliases: {}, u32Consts: {} };
}

/** Checks that a kernel's form and arithmetic go together and that the device can run them. */
export function checkArithmetic(device: GPUDevice, who: string, form: LinearForm, arithmetic: LinearArithmetic): void {
  if (arithmetic === 'f32') return;
  if (form !== 'tiled') throw new Error(`${who}: f16 arithmetic is a form of the tiled kernel, not of the ${form} one`);
  requireShaderF16(device, true, `${who}: f16 arithmetic needs`, 'f32 arithmetic');
}

/** How the direct form reads rows: whole vec4s when every row is (K % 4 == 0), else element by element. */
export type DirectLoads = 'vec4' | 'scalar';
export const directLoads = (K: number): DirectLoads => (K % 4 === 0 ? 'vec4' : 'scalar');

const DIRECT_LOADS = parseFragments([matmulDirectLoadsWgsl]);

/**
 * The WGSL text of a form for a weight dtype: the kernel with its shared fragments spliced in (for 'direct',
 * the row loads `loads`); for f16 weights, `enable f16;` + `alias WT = f16;`; for f16 arithmetic (tiled), that of
 * tileArithmetic.
 */
export function linearShaderSource(weights: DenseStorage, form: LinearForm = 'tiled', loads: DirectLoads = 'vec4', arithmetic: LinearArithmetic = 'f32'): string {
  let code: string;
  if (form === 'tiled') {
    code = expandWgsl(matmulWgsl);
  } else {
    code = expandWgsl(matmulDirectWgsl, new Map([['direct-loads', DIRECT_LOADS.get(`direct-loads-${loads}`)!]]));
  }
  if (weights === 'f32' && arithmetic === 'f32') return code;
  const { aliases, u32Consts } = tileArithmetic(arithmetic);
  return specializeWgsl(code, { enable: ['f16'], aliases: weights === 'f16' ? { ...aliases, WT: 'f16' } : aliases, u32Consts });
}

export interface LinearKernelOptions {
  /** Storage type of W: 'f32' (default) or 'f16' (needs the device feature shader-f16). */
  weights?: DenseStorage;
  /** Lower the dispatch limit (tests use this to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
  /** Kernel form; default defaultLinearForm(device). Tests run both forms on one device. */
  form?: LinearForm;
  /** The tiled form's tile arithmetic (default 'f32'). */
  arithmetic?: LinearArithmetic;
  /**
   * Replace the shader (benchmarks: a naive baseline or a tuning candidate with the same bindings and Dims).
   * `workgroupsFor` defaults to the 64x64-tile grid. Default: matmul.wgsl.
   */
  shader?: { name: string; code: string; workgroupsFor?(M: number, N: number): [number, number] };
}

export interface LinearRunOptions {
  /** Row stride of y in elements (default N). */
  yRowStride?: number;
  /** Element offset of y(0, 0) in y, e.g. the first output column of this weight block (default 0). */
  yColOffset?: number;
  /**
   * Add the product to what y holds: y += x W^T (+ b). A transformer's residual stream is updated in place by the
   * projection that feeds it, without a separate add pass over [M, N] (and its dispatch). Default false.
   */
  residual?: boolean;
}

/** The bits of the linear shaders' `Dims.epilogue` (matmul-tile.wgsl, matvec.wgsl): what is added to x W^T. */
export const LINEAR_EPILOGUE = { bias: 1, residual: 2 } as const;

/** The `Dims.epilogue` word of a run: a bias or not, a residual or not. */
export function linearEpilogue(hasBias: boolean, opts: LinearRunOptions): number {
  return (hasBias ? LINEAR_EPILOGUE.bias : 0) | (opts.residual ? LINEAR_EPILOGUE.residual : 0);
}

/** The operands of a linear layer y = x·Wᵀ (+ b): views that carry their shapes. */
export interface LinearOperands {
  /** x [M, K] f32, from row 0 (kernels bind x from offset 0). */
  x: GpuRows;
  /** W [N, K] in the kernel's storage. */
  w: WeightRows;
  /** b [N] f32, or null. */
  bias: GPUBuffer | null;
  /** y f32: element (r, c) at yColOffset + r * yRowStride + c (LinearRunOptions). */
  y: GPUBuffer;
}

/** M, K and N of a linear layer, or an Error naming the operand whose shape does not fit. */
export function linearShape(who: string, { x, w }: LinearOperands, opts: { xFromAnyRow?: boolean } = {}): { M: number; K: number; N: number } {
  const xName = `x "${x.buffer.label}"`;
  if (x.rowStart !== 0 && !opts.xFromAnyRow) throw new Error(`${who}: ${xName} starts at row ${x.rowStart}; the tiled linear kernels read x from row 0`);
  if (x.cols !== w.cols) throw new Error(`${who}: ${xName} has rows of ${x.cols} values, but ${w.name} [${w.rows}, ${w.cols}] needs ${w.cols}`);
  return { M: x.rows, K: x.cols, N: w.rows };
}

export type { GpuTarget } from '../dispatch.ts';

export class LinearKernel {
  readonly weights: DenseStorage;
  readonly form: LinearForm;
  readonly arithmetic: LinearArithmetic;
  /** By row-load class (the tiled form and a custom shader: one program for every K). */
  private readonly programs = new LazyPrograms(() => this.build());
  private readonly uniforms: UniformCache;
  private dummyBias: GPUBuffer | null = null;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    private readonly opts: LinearKernelOptions = {},
  ) {
    this.weights = opts.weights ?? 'f32';
    this.form = opts.form ?? defaultLinearForm(device);
    this.arithmetic = opts.arithmetic ?? 'f32';
    requireShaderF16(device, this.weights === 'f16', 'LinearKernel: f16 weights need', 'f32 weights');
    checkArithmetic(device, 'LinearKernel', this.form, this.arithmetic);
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'linear dims');
  }

  /**
   * Builds the pipelines (bias or not is a uniform; the direct form has one per row-load class, a few ms each).
   * Rejects with a ShaderError if the WGSL does not compile.
   */
  init(): Promise<this> {
    return this.programs.ready(this);
  }

  private async build(): Promise<Record<DirectLoads, ComputeProgram>> {
    const { shader } = this.opts;
    const suffix = this.weights === 'f16' ? ' (f16 weights)' : '';
    if (shader || this.form === 'tiled') {
      const name = shader?.name ?? `matmul.wgsl${suffix}${this.arithmetic === 'f16' ? ' (f16 arithmetic)' : ''}`;
      const program = await computeProgram(this.device, { name, code: shader?.code ?? linearShaderSource(this.weights, 'tiled', 'vec4', this.arithmetic), bindings: BINDINGS });
      return { vec4: program, scalar: program };
    }
    const [vec4, scalar] = await Promise.all(
      (['vec4', 'scalar'] as const).map((loads) =>
        computeProgram(this.device, { name: `matmul-direct.wgsl (${loads} loads)${suffix}`, code: linearShaderSource(this.weights, 'direct', loads), bindings: BINDINGS }),
      ),
    );
    return { vec4: vec4!, scalar: scalar! };
  }

  /** A ready kernel. */
  static create(device: GPUDevice, opts?: LinearKernelOptions): Promise<LinearKernel> {
    return new LinearKernel(device, opts).init();
  }

  /** Workgroup grid for an M x N output: the tile count folded into (x <= limit, y). */
  dispatchSize(M: number, N: number): [number, number] {
    if (this.opts.shader?.workgroupsFor) return this.opts.shader.workgroupsFor(M, N);
    return foldGrid(Math.ceil(M / LINEAR_TILE) * Math.ceil(N / LINEAR_TILE), this.maxWg, 'LinearKernel', `${M}x${N} output needs`);
  }

  /**
   * Records y = x W^T (+ b). x: [M, K] f32, w: [N, K] f32 or f16 (per the kernel), b: [N] f32 or null,
   * y: f32, written at yColOffset + r * yRowStride + c. x and y must be different buffers.
   * With a device, encodes and submits at once; with an encoder or pass, only records (the caller submits).
   */
  run(target: GpuTarget, op: LinearOperands, opts: LinearRunOptions = {}): void {
    const { M, K, N } = linearShape('LinearKernel.run', op);
    const program = this.programs.require('LinearKernel')[directLoads(K)];
    const { x: { buffer: x }, w: { buffer: w }, bias: b, y } = op;
    for (const [name, v] of [['M', M], ['K', K], ['N', N]] as const) positiveInt('LinearKernel.run', name, v);
    const { ldy, yOff } = rowBlockOutput('LinearKernel.run', N, opts);

    const wBytes = this.weights === 'f16' ? 2 : 4;
    const bindings: BindingSpec[] = [
      ['x', x, M * K * 4, `[${M}, ${K}] f32`],
      ['w', w, N * K * wBytes, `[${N}, ${K}] ${this.weights}`],
      ['y', y, (yOff + (M - 1) * ldy + N) * 4, `[${M}, ${N}] f32, row stride ${ldy}, offset ${yOff}`],
    ];
    if (b) bindings.push(['b', b, N * 4, `[${N}] f32`]);
    checkBindings('LinearKernel', this.device, bindings);
    if (x === y) throw new Error('LinearKernel: x and y must be different buffers');
    const binding = ([, buf, bytes]: BindingSpec): GPUBufferBinding => ({ buffer: buf, offset: 0, size: align4(bytes) });
    let bb: GPUBufferBinding;
    if (b) {
      bb = binding(bindings[3]!);
    } else {
      this.dummyBias ??= createStorageBuffer(this.device, 16, 'linear: no bias');
      bb = { buffer: this.dummyBias };
    }

    const tilesN = Math.ceil(N / LINEAR_TILE);
    const tiles = Math.ceil(M / LINEAR_TILE) * tilesN;
    const dims = this.uniforms.get([M, K, N, tilesN, ldy, yOff, tiles, linearEpilogue(b !== null, opts)]);
    const bindGroup = bindBuffers(this.device, program.layout, [dims, binding(bindings[0]!), binding(bindings[1]!), bb, binding(bindings[2]!)], 'linear');
    recordDispatch(target, 'linear', program, bindGroup, this.dispatchSize(M, N));
  }

  /** Frees the kernel's own small buffers (not the caller's). */
  destroy(): void {
    this.uniforms.destroy();
    this.dummyBias?.destroy();
    this.dummyBias = null;
  }
}

/** f32 weights -> f16 bits (round to nearest even), the layout an f16 LinearKernel expects. */
export function toF16Weights(w: Float32Array): Uint16Array {
  const bytes = f32ToF16Bytes(w);
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
}

/** The f32 values an f16 weight upload actually holds (for the CPU reference of an f16 run). */
export function roundToF16(w: Float32Array): Float32Array {
  return f16BytesToF32(f32ToF16Bytes(w));
}

/**
 * One-shot convenience for tests and self-tests: uploads x [M, K], w [N, K] (f32 values; rounded to f16 when
 * `weights: 'f16'`, or given directly as f16 bits in a Uint16Array) and bias [N], runs, reads back y [M, N].
 */
export async function linearOnGpu(
  device: GPUDevice,
  x: Float32Array,
  M: number,
  K: number,
  w: Float32Array | Uint16Array,
  N: number,
  bias?: Float32Array | null,
  opts: LinearKernelOptions = {},
): Promise<Float32Array> {
  const weights = opts.weights ?? (w instanceof Uint16Array ? 'f16' : 'f32');
  if (x.length !== M * K) throw new Error(`linearOnGpu: x has ${x.length} values, expected ${M}x${K}`);
  if (w.length !== N * K) throw new Error(`linearOnGpu: w has ${w.length} values, expected ${N}x${K}`);
  if (bias && bias.length !== N) throw new Error(`linearOnGpu: bias has ${bias.length} values, expected ${N}`);
  if (weights === 'f32' && w instanceof Uint16Array) throw new Error('linearOnGpu: f16 bits given for an f32 kernel');
  const kernel = await LinearKernel.create(device, { ...opts, weights });
  const wData = weights === 'f16' && w instanceof Float32Array ? toF16Weights(w) : w;
  const xBuf = storageBufferFrom(device, x, 'x');
  const wBuf = storageBufferFrom(device, wData, 'w');
  const bBuf = bias ? storageBufferFrom(device, bias, 'b') : null;
  const yBuf = createStorageBuffer(device, M * N * 4, 'y');
  try {
    kernel.run(device, { x: firstRows(xBuf, M, K), w: { name: 'w', buffer: wBuf, rows: N, cols: K }, bias: bBuf, y: yBuf });
    return await readF32(device, yBuf, M * N);
  } finally {
    for (const buf of [xBuf, wBuf, bBuf, yBuf]) buf?.destroy();
    kernel.destroy();
  }
}
