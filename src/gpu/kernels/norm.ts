// Row normalizations on the GPU (shaders/norm.wgsl): LayerNorm (CLIP pre_layrnorm / layer_norm1 / layer_norm2,
// compressor ln_q / ln_kv) and RMSNorm (Llama input/post-attention/final norms), one workgroup per row, f32
// arithmetic. Out of place only: x and y must be different buffers. Weight (and bias) are f32 or, on devices
// with `shader-f16`, f16.
//
// Also home of two small helpers shared by this family's wrappers (elementwise.ts, embedding.ts):
// `recordCompute` (record into a device / encoder / pass) and `foldGrid` (2D workgroup grid).
import normWgsl from '../../../shaders/norm.wgsl?raw';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom, uniformBufferFrom } from '../buffers.ts';
import { computeProgram, specializeWgsl, type BindingKind, type ComputeProgram } from '../pipeline.ts';
import { toF16Weights, type GpuTarget, type WeightDType } from './linear.ts';

export type NormKind = 'layernorm' | 'rmsnorm';

/** Invocations per workgroup in norm.wgsl (one workgroup per row). */
export const NORM_WORKGROUP = 64;

const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'storage'];

/**
 * Records `body` into `target`: directly into an open compute pass, into a new pass of a command encoder,
 * or (given a device) into a new encoder that is submitted at once.
 */
export function recordCompute(target: GpuTarget, label: string, body: (pass: GPUComputePassEncoder) => void): void {
  if ('dispatchWorkgroups' in target) {
    body(target);
  } else if ('beginComputePass' in target) {
    const pass = target.beginComputePass({ label });
    body(pass);
    pass.end();
  } else {
    const encoder = target.createCommandEncoder({ label });
    const pass = encoder.beginComputePass({ label });
    body(pass);
    pass.end();
    target.queue.submit([encoder.finish()]);
  }
}

/** `count` workgroups as a 2D grid [x, y] with x <= maxPerDim (surplus workgroups of the last row must exit). */
export function foldGrid(count: number, maxPerDim: number, who: string): [number, number] {
  if (count < 1) return [0, 0];
  const x = Math.min(count, maxPerDim);
  const y = Math.ceil(count / x);
  if (y > maxPerDim) throw new Error(`${who}: ${count} workgroups exceed ${maxPerDim}^2`);
  return [x, y];
}

/** Throws a clear Error when a binding of `bytes` exceeds the device's maxStorageBufferBindingSize or the buffer. */
export function checkBinding(device: GPUDevice, who: string, label: string, buf: GPUBuffer, bytes: number, what: string, hint = ''): void {
  const max = device.limits.maxStorageBufferBindingSize;
  if (align4(bytes) > max) {
    throw new Error(`${who}: ${label} (${what}) is ${align4(bytes)} bytes, more than this device's maxStorageBufferBindingSize (${max})${hint}`);
  }
  if (buf.size < align4(bytes)) throw new Error(`${who}: buffer ${label} "${buf.label}" has ${buf.size} bytes, needs ${align4(bytes)} (${what})`);
}

export function positiveInt(who: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${who}: ${name} must be a positive integer, got ${v}`);
}

export function nonNegativeInt(who: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${who}: ${name} must be a non-negative integer, got ${v}`);
}

/** The WGSL text for a weight dtype: norm.wgsl as is for f32; for f16, `enable f16;` + `alias WT = f16;`. */
export function normShaderSource(weights: WeightDType): string {
  return weights === 'f16' ? specializeWgsl(normWgsl, { enable: ['f16'], aliases: { WT: 'f16' } }) : normWgsl;
}

export interface NormKernelOptions {
  /** Storage type of the weight (and bias): 'f32' (default) or 'f16' (needs shader-f16). */
  weights?: WeightDType;
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
  readonly weights: WeightDType;
  private program: ComputeProgram | null = null;
  private initPromise: Promise<this> | null = null;
  private readonly uniforms = new Map<string, GPUBuffer>();
  private dummyBias: GPUBuffer | null = null;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    readonly kind: NormKind,
    opts: NormKernelOptions = {},
  ) {
    this.weights = opts.weights ?? 'f32';
    if (this.weights === 'f16' && !device.features.has('shader-f16')) {
      throw new Error('NormKernel: f16 weights need the WebGPU feature "shader-f16", which this device does not have; use f32 weights.');
    }
    this.maxWg = Math.min(opts.maxWorkgroupsPerDimension ?? Infinity, device.limits.maxComputeWorkgroupsPerDimension);
  }

  init(): Promise<this> {
    if (!this.initPromise) {
      const name = `norm.wgsl (${this.kind}${this.weights === 'f16' ? ', f16 weights' : ''})`;
      this.initPromise = computeProgram(this.device, {
        name,
        code: normShaderSource(this.weights),
        bindings: BINDINGS,
        constants: { RMS_NORM: this.kind === 'rmsnorm' },
      }).then(
        (p) => {
          this.program = p;
          return this;
        },
        (e: unknown) => {
          this.initPromise = null;
          throw e;
        },
      );
    }
    return this.initPromise;
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
    if (!this.program) throw new Error(`${who}.run: call \`await kernel.init()\` (or NormKernel.create) first`);
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

    const program = this.program;
    const [gx, gy] = this.dispatchSize(rows);
    const bindGroup = bindBuffers(
      this.device,
      program.layout,
      [
        this.dims(rows, width, eps, xRow * width, yRow * width),
        { buffer: x, size: align4(xBytes) },
        { buffer: weight, size: align4(width * wBytes) },
        bb,
        { buffer: y, size: align4(yBytes) },
      ],
      'norm',
    );
    recordCompute(target, this.kind, (pass) => {
      pass.setPipeline(program.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(gx, gy);
    });
  }

  destroy(): void {
    for (const u of this.uniforms.values()) u.destroy();
    this.uniforms.clear();
    this.dummyBias?.destroy();
    this.dummyBias = null;
  }

  // One immutable uniform buffer per distinct shape (many runs can be recorded before one submit).
  private dims(rows: number, width: number, eps: number, xOff: number, yOff: number): GPUBuffer {
    const key = `${rows},${width},${eps},${xOff},${yOff}`;
    let u = this.uniforms.get(key);
    if (!u) {
      if (this.uniforms.size >= 256) this.uniforms.clear(); // forget, not destroy: a recorded run may still use them
      const data = new Uint32Array(8);
      data.set([rows, width, 0, xOff, yOff]);
      new Float32Array(data.buffer)[2] = eps;
      u = uniformBufferFrom(this.device, data, `norm dims ${key}`);
      this.uniforms.set(key, u);
    }
    return u;
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
