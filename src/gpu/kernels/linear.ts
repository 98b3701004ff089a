// Dense linear layer on the GPU: y[M, N] = x[M, K] · W[N, K]^T (+ b[N]) with Hugging Face weight layout
// (W rows are outputs). Tiled f32 kernel (shaders/matmul.wgsl); an f16-weight variant (f32 accumulation) is
// specialized from the same source and built only on devices with `shader-f16`.
//
// Limits: each binding (x, W, y) must fit in maxStorageBufferBindingSize. A weight matrix larger than that
// must be split by the caller into row blocks W[n0:n1, :] (separate buffers), each run with
// `{ yColOffset: n0, yRowStride: N }` so the parts land side by side in one y. run() throws a clear Error
// instead of letting WebGPU fail validation. Large outputs are dispatched as a 2D grid of 64x64 tiles, folded
// to respect maxComputeWorkgroupsPerDimension.
import matmulWgsl from '../../../shaders/matmul.wgsl?raw';
import { f16BytesToF32, f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom, uniformBufferFrom } from '../buffers.ts';
import { computeProgram, specializeWgsl, type BindingKind, type ComputeProgram } from '../pipeline.ts';

export type WeightDType = 'f32' | 'f16';

/** Output tile edge of matmul.wgsl (rows of x and rows of W per workgroup). */
export const LINEAR_TILE = 64;

const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'storage'];

/** The WGSL text for a weight dtype: matmul.wgsl as is for f32; for f16, `enable f16;` + `alias WT = f16;`. */
export function linearShaderSource(weights: WeightDType): string {
  return weights === 'f16' ? specializeWgsl(matmulWgsl, { enable: ['f16'], aliases: { WT: 'f16' } }) : matmulWgsl;
}

export interface LinearKernelOptions {
  /** Storage type of W: 'f32' (default) or 'f16' (needs the device feature shader-f16). */
  weights?: WeightDType;
  /** Lower the dispatch limit (tests use this to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
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
}

/** What run() accepts to record into: a device (encode + submit now), a command encoder, or an open compute pass. */
export type GpuTarget = GPUDevice | GPUCommandEncoder | GPUComputePassEncoder;

export class LinearKernel {
  readonly weights: WeightDType;
  private programs: { bias: ComputeProgram; noBias: ComputeProgram } | null = null;
  private initPromise: Promise<this> | null = null;
  private readonly uniforms = new Map<string, GPUBuffer>();
  private dummyBias: GPUBuffer | null = null;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    private readonly opts: LinearKernelOptions = {},
  ) {
    this.weights = opts.weights ?? 'f32';
    if (this.weights === 'f16' && !device.features.has('shader-f16')) {
      throw new Error('LinearKernel: f16 weights need the WebGPU feature "shader-f16", which this device does not have; use f32 weights.');
    }
    this.maxWg = Math.min(opts.maxWorkgroupsPerDimension ?? Infinity, device.limits.maxComputeWorkgroupsPerDimension);
  }

  /** Builds the pipelines (with and without bias). Rejects with a ShaderError if the WGSL does not compile. */
  init(): Promise<this> {
    if (!this.initPromise) {
      const name = this.opts.shader?.name ?? (this.weights === 'f16' ? 'matmul.wgsl (f16 weights)' : 'matmul.wgsl');
      const code = this.opts.shader?.code ?? linearShaderSource(this.weights);
      const spec = (hasBias: boolean) => ({ name, code, bindings: BINDINGS, constants: { HAS_BIAS: hasBias } });
      this.initPromise = Promise.all([computeProgram(this.device, spec(true)), computeProgram(this.device, spec(false))]).then(
        ([bias, noBias]) => {
          this.programs = { bias, noBias };
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

  /** A ready kernel. */
  static create(device: GPUDevice, opts?: LinearKernelOptions): Promise<LinearKernel> {
    return new LinearKernel(device, opts).init();
  }

  /** Workgroup grid for an M x N output: the tile count folded into (x <= limit, y). */
  dispatchSize(M: number, N: number): [number, number] {
    if (this.opts.shader?.workgroupsFor) return this.opts.shader.workgroupsFor(M, N);
    const tiles = Math.ceil(M / LINEAR_TILE) * Math.ceil(N / LINEAR_TILE);
    const x = Math.min(tiles, this.maxWg);
    const y = Math.ceil(tiles / x);
    if (y > this.maxWg) throw new Error(`LinearKernel: ${M}x${N} output needs ${tiles} workgroups, more than ${this.maxWg}^2`);
    return [x, y];
  }

  /**
   * Records y = x W^T (+ b). x: [M, K] f32, w: [N, K] f32 or f16 (per the kernel), b: [N] f32 or null,
   * y: f32, written at yColOffset + r * yRowStride + c. x and y must be different buffers.
   * With a device, encodes and submits at once; with an encoder or pass, only records (the caller submits).
   */
  run(target: GpuTarget, x: GPUBuffer, w: GPUBuffer, b: GPUBuffer | null, y: GPUBuffer, M: number, K: number, N: number, opts: LinearRunOptions = {}): void {
    if (!this.programs) throw new Error('LinearKernel.run: call `await kernel.init()` (or LinearKernel.create) first');
    for (const [name, v] of [['M', M], ['K', K], ['N', N]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`LinearKernel.run: ${name} must be a positive integer, got ${v}`);
    }
    const ldy = opts.yRowStride ?? N;
    const yOff = opts.yColOffset ?? 0;
    if (!Number.isInteger(ldy) || ldy < N) throw new Error(`LinearKernel.run: yRowStride ${ldy} is smaller than N = ${N}`);
    if (!Number.isInteger(yOff) || yOff < 0) throw new Error(`LinearKernel.run: yColOffset must be a non-negative integer, got ${yOff}`);

    const wBytes = this.weights === 'f16' ? 2 : 4;
    const maxBinding = this.device.limits.maxStorageBufferBindingSize;
    const bindings: [string, GPUBuffer, number, string][] = [
      ['x', x, M * K * 4, `[${M}, ${K}] f32`],
      ['w', w, N * K * wBytes, `[${N}, ${K}] ${this.weights}`],
      ['y', y, (yOff + (M - 1) * ldy + N) * 4, `[${M}, ${N}] f32, row stride ${ldy}, offset ${yOff}`],
    ];
    if (b) bindings.push(['b', b, N * 4, `[${N}] f32`]);
    for (const [label, , bytes, what] of bindings) {
      if (align4(bytes) > maxBinding) {
        throw new Error(
          `LinearKernel: ${label} (${what}) is ${align4(bytes)} bytes, more than this device's maxStorageBufferBindingSize ` +
            `(${maxBinding}); split the weight into row blocks and run each with yColOffset/yRowStride`,
        );
      }
    }
    for (const [label, buf, bytes, what] of bindings) {
      if (buf.size < align4(bytes)) throw new Error(`LinearKernel: buffer ${label} "${buf.label}" has ${buf.size} bytes, needs ${align4(bytes)} (${what})`);
    }
    if (x === y) throw new Error('LinearKernel: x and y must be different buffers');
    const binding = (buf: GPUBuffer, bytes: number): GPUBufferBinding => ({ buffer: buf, offset: 0, size: align4(bytes) });
    const xb = binding(x, bindings[0][2]);
    const wb = binding(w, bindings[1][2]);
    const yb = binding(y, bindings[2][2]);
    let bb: GPUBufferBinding;
    if (b) {
      bb = binding(b, N * 4);
    } else {
      this.dummyBias ??= createStorageBuffer(this.device, 16, 'linear: no bias');
      bb = { buffer: this.dummyBias };
    }

    const program = b ? this.programs.bias : this.programs.noBias;
    const [gx, gy] = this.dispatchSize(M, N);
    const tilesN = Math.ceil(N / LINEAR_TILE);
    const tiles = Math.ceil(M / LINEAR_TILE) * tilesN;
    const bindGroup = bindBuffers(this.device, program.layout, [this.dims(M, K, N, tilesN, ldy, yOff, tiles), xb, wb, bb, yb], 'linear');

    const record = (pass: GPUComputePassEncoder) => {
      pass.setPipeline(program.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(gx, gy);
    };
    if ('dispatchWorkgroups' in target) {
      record(target);
    } else if ('beginComputePass' in target) {
      const pass = target.beginComputePass({ label: 'linear' });
      record(pass);
      pass.end();
    } else {
      const encoder = target.createCommandEncoder({ label: 'linear' });
      const pass = encoder.beginComputePass({ label: 'linear' });
      record(pass);
      pass.end();
      target.queue.submit([encoder.finish()]);
    }
  }

  /** Frees the kernel's own small buffers (not the caller's). */
  destroy(): void {
    for (const u of this.uniforms.values()) u.destroy();
    this.uniforms.clear();
    this.dummyBias?.destroy();
    this.dummyBias = null;
  }

  // One immutable uniform buffer per distinct shape, so many runs can be recorded before a single submit.
  private dims(M: number, K: number, N: number, tilesN: number, ldy: number, yOff: number, tiles: number): GPUBuffer {
    const key = `${M},${K},${N},${ldy},${yOff}`;
    let u = this.uniforms.get(key);
    if (!u) {
      // Bounded: when full, forget (not destroy: a recorded, unsubmitted run may still use them) and let GC free.
      if (this.uniforms.size >= 256) this.uniforms.clear();
      u = uniformBufferFrom(this.device, new Uint32Array([M, K, N, tilesN, ldy, yOff, tiles, 0]), `linear dims ${key}`);
      this.uniforms.set(key, u);
    }
    return u;
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
    kernel.run(device, xBuf, wBuf, bBuf, yBuf, M, K, N);
    return await readF32(device, yBuf, M * N);
  } finally {
    for (const buf of [xBuf, wBuf, bBuf, yBuf]) buf?.destroy();
    kernel.destroy();
  }
}
