// Row normalizations on the GPU (shaders/norm.wgsl): LayerNorm (CLIP pre_layrnorm / layer_norm1 / layer_norm2,
// compressor ln_q / ln_kv) and RMSNorm (Llama input/post-attention/final norms), one workgroup per row, f32
// arithmetic. Out of place only: x and y must be different buffers. Weight (and bias) are f32 or, on devices
// with `shader-f16`, f16.
import normWgsl from '../../../shaders/norm.wgsl?raw';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkBinding, foldGrid, LazyPrograms, nonNegativeInt, positiveInt, recordDispatch, requireShaderF16, UniformCache, workgroupLimit, type GpuTarget } from '../dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind } from '../pipeline.ts';
import { toF16Weights } from './linear.ts';
import type { DenseStorage } from '../storage.ts';

/** Shared with the other kernel wrappers (src/gpu/dispatch.ts); re-exported here where they were first defined. */
export { checkBinding, foldGrid, nonNegativeInt, positiveInt, recordCompute } from '../dispatch.ts';

export type NormKind = 'layernorm' | 'rmsnorm';

/** Invocations per workgroup in norm.wgsl (one workgroup per row). */
export const NORM_WORKGROUP = 64;

const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'storage'];

/** The WGSL text for a weight dtype: norm.wgsl as is for f32; for f16, `enable f16;` + `alias WT = f16;`. */
export function normShaderSource(weights: DenseStorage): string {
  return weights === 'f16' ? specializeWgsl(normWgsl, { enable: ['f16'], aliases: { WT: 'f16' } }) : normWgsl;
}

export interface NormKernelOptions {
  /** Storage type of the weight (and bias): 'f32' (default) or 'f16' (needs shader-f16). */
  weights?: DenseStorage;
  /** Lower the dispatch limit (tests use it to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
}

export interface NormRunOptions {
  /** First row of x to read (row r of the op reads x row xRowOffset + r). Default 0. */
  xRowOffset?: number;
  /** First row of y to write. Default 0. */
  yRowOffset?: number;
}

/**
 * LayerNorm or RMSNorm over rows of width D. One instance per kind and weight dtype; run() records into a
 * device (submits at once), an encoder or an open compute pass.
 */
export class NormKernel {
  readonly weights: DenseStorage;
  private readonly programs = new LazyPrograms(() =>
    computeProgram(this.device, {
      name: `norm.wgsl (${this.kind}${this.weights === 'f16' ? ', f16 weights' : ''})`,
      code: normShaderSource(this.weights),
      bindings: BINDINGS,
      constants: { RMS_NORM: this.kind === 'rmsnorm' },
    }),
  );
  private readonly uniforms: UniformCache;
  private dummyBias: GPUBuffer | null = null;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    readonly kind: NormKind,
    opts: NormKernelOptions = {},
  ) {
    this.weights = opts.weights ?? 'f32';
    requireShaderF16(device, this.weights === 'f16', 'NormKernel: f16 weights need', 'f32 weights');
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'norm dims');
  }

  init(): Promise<this> {
    return this.programs.ready(this);
  }

  static create(device: GPUDevice, kind: NormKind, opts?: NormKernelOptions): Promise<NormKernel> {
    return new NormKernel(device, kind, opts).init();
  }

  /** Workgroup grid for `rows` rows (one workgroup per row, folded to 2D). */
  dispatchSize(rows: number): [number, number] {
    return foldGrid(rows, this.maxWg, 'NormKernel');
  }

  /**
   * Records y[r] = norm(x[r]) for r < rows. x, y: f32 [rows, width] (at the row offsets); weight: [width];
   * bias: [width] for LayerNorm, null for RMSNorm. x and y must be different buffers.
   */
  run(
    target: GpuTarget,
    x: GPUBuffer,
    weight: GPUBuffer,
    bias: GPUBuffer | null,
    y: GPUBuffer,
    rows: number,
    width: number,
    eps: number,
    opts: NormRunOptions = {},
  ): void {
    const who = `NormKernel(${this.kind})`;
    const program = this.programs.require('NormKernel', `${who}.run`);
    positiveInt(who, 'rows', rows);
    positiveInt(who, 'width', width);
    if (!(eps >= 0) || !Number.isFinite(eps)) throw new Error(`${who}: eps must be a finite number >= 0, got ${eps}`);
    const xRow = opts.xRowOffset ?? 0;
    const yRow = opts.yRowOffset ?? 0;
    nonNegativeInt(who, 'xRowOffset', xRow);
    nonNegativeInt(who, 'yRowOffset', yRow);
    if (this.kind === 'layernorm' && !bias) throw new Error(`${who}: LayerNorm needs a bias buffer`);
    if (this.kind === 'rmsnorm' && bias) throw new Error(`${who}: RMSNorm takes no bias (pass null)`);
    if (x === y) throw new Error(`${who}: x and y must be different buffers (the kernel is out of place)`);
    const wBytes = this.weights === 'f16' ? 2 : 4;
    const xBytes = (xRow + rows) * width * 4;
    const yBytes = (yRow + rows) * width * 4;
    checkBinding(this.device, who, 'x', x, xBytes, `[${rows}, ${width}] f32 from row ${xRow}`);
    checkBinding(this.device, who, 'y', y, yBytes, `[${rows}, ${width}] f32 from row ${yRow}`);
    checkBinding(this.device, who, 'weight', weight, width * wBytes, `[${width}] ${this.weights}`);
    if (bias) checkBinding(this.device, who, 'bias', bias, width * wBytes, `[${width}] ${this.weights}`);
    const bb: GPUBufferBinding = bias
      ? { buffer: bias, size: align4(width * wBytes) }
      : { buffer: (this.dummyBias ??= createStorageBuffer(this.device, 16, 'norm: no bias')) };

    const bindGroup = bindBuffers(
      this.device,
      program.layout,
      [
        this.uniforms.get([rows, width, eps, xRow * width, yRow * width, 0, 0, 0], [2]),
        { buffer: x, size: align4(xBytes) },
        { buffer: weight, size: align4(width * wBytes) },
        bb,
        { buffer: y, size: align4(yBytes) },
      ],
      'norm',
    );
    recordDispatch(target, this.kind, program, bindGroup, this.dispatchSize(rows));
  }

  destroy(): void {
    this.uniforms.destroy();
    this.dummyBias?.destroy();
    this.dummyBias = null;
  }
}

/**
 * One-shot convenience for tests and self-tests: uploads x [rows, width], weight (and bias) and runs the norm.
 * With `weights: 'f16'` the f32 weight values are rounded to f16 on upload.
 */
export async function normOnGpu(
  device: GPUDevice,
  kind: NormKind,
  x: Float32Array,
  rows: number,
  width: number,
  weight: Float32Array,
  bias: Float32Array | null,
  eps: number,
  opts: NormKernelOptions = {},
): Promise<Float32Array> {
  if (x.length !== rows * width) throw new Error(`normOnGpu: x has ${x.length} values, expected ${rows}x${width}`);
  const kernel = await NormKernel.create(device, kind, opts);
  const f16 = (opts.weights ?? 'f32') === 'f16';
  const up = (a: Float32Array, label: string) => storageBufferFrom(device, f16 ? toF16Weights(a) : a, label);
  const xb = storageBufferFrom(device, x, 'norm x');
  const wb = up(weight, 'norm w');
  const bb = bias ? up(bias, 'norm b') : null;
  const yb = createStorageBuffer(device, rows * width * 4, 'norm y');
  try {
    kernel.run(device, xb, wb, bb, yb, rows, width, eps);
    return await readF32(device, yb, rows * width);
  } finally {
    for (const b of [xb, wb, bb, yb]) b?.destroy();
    kernel.destroy();
  }
}
