// Elementwise ops on f32 activations (shaders/elementwise.wgsl):
//   ActivationKernel  y = f(x), f = exact GELU (erf) | quick_gelu | SiLU | erf; in place when x === y
//   AddKernel         y += x (residual, in place), y[r, :] += b (row-vector bias broadcast, in place), y *= s
//   SwiGluKernel      y[r, c] = silu(gu[r, c]) * gu[r, I + c] from the fused [rows, 2I] gate|up buffer
// Each op has a scalar pipeline and a vec4 one (the same WGSL with `alias V = vec4<f32>;`), picked per call
// when the counts are multiples of 4. All f32; no f16 variant (activations are f32 by contract).
import elementwiseWgsl from '../../../shaders/elementwise.wgsl?raw';
import { bindBuffers, createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkBinding, foldGrid, LazyPrograms, positiveInt, recordDispatch, UniformCache, workgroupLimit, type GpuTarget } from '../dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind, type ComputeProgram } from '../pipeline.ts';

/** Activation functions: 'erf' is the plain error function (exposed to test the GELU's erf). */
export type ActivationKind = 'gelu' | 'quick_gelu' | 'silu' | 'erf';

/** Value of the ACT override in elementwise.wgsl. */
const ACT_CODE: Record<ActivationKind, number> = { gelu: 0, quick_gelu: 1, silu: 2, erf: 3 };

/** Invocations per workgroup in elementwise.wgsl. */
export const ELEMENTWISE_WORKGROUP = 256;

/** The WGSL text: as written (scalar f32) or with `alias V = vec4<f32>;` (4 elements per invocation). */
export function elementwiseShaderSource(vec4: boolean): string {
  return vec4 ? specializeWgsl(elementwiseWgsl, { aliases: { V: 'vec4<f32>' } }) : elementwiseWgsl;
}

export interface ElementwiseKernelOptions {
  /** Lower the dispatch limit (tests use it to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
  /** Never use the vec4 pipeline (tests compare both paths). Default false. */
  scalarOnly?: boolean;
}

interface EntrySpec {
  entry: string;
  bindings: readonly BindingKind[];
  act?: ActivationKind;
}

/** Shared machinery: scalar + vec4 programs for a few entry points, uniforms cached per shape, dispatch. */
abstract class ElementwiseBase {
  private readonly programs = new LazyPrograms(async () => {
    const builds: Promise<[string, ComputeProgram]>[] = [];
    for (const vec4 of this.opts.scalarOnly ? [false] : [false, true]) {
      for (const e of this.entries) {
        const spec = {
          name: `elementwise.wgsl (${e.entry}${e.act ? ` ${e.act}` : ''}${vec4 ? ', vec4' : ''})`,
          code: elementwiseShaderSource(vec4),
          entryPoint: e.entry,
          bindings: e.bindings,
          constants: { ACT: ACT_CODE[e.act ?? 'gelu'] },
        };
        builds.push(computeProgram(this.device, spec).then((p) => [`${e.entry}:${vec4}`, p]));
      }
    }
    return new Map(await Promise.all(builds));
  });
  private readonly uniforms: UniformCache;
  private readonly maxWg: number;
  protected abstract readonly entries: readonly EntrySpec[];
  protected abstract readonly who: string;

  constructor(
    readonly device: GPUDevice,
    protected readonly opts: ElementwiseKernelOptions = {},
  ) {
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'elementwise params');
  }

  init(): Promise<this> {
    return this.programs.ready(this);
  }

  /** Workgroup grid for `n` invocations (n in units of the chosen vector width). */
  dispatchSize(n: number): [number, number] {
    return foldGrid(Math.ceil(n / ELEMENTWISE_WORKGROUP), this.maxWg, this.who);
  }

  /** Whether a call with these element counts (all must be multiples of 4) takes the vec4 pipeline. */
  protected useVec4(...counts: number[]): boolean {
    return !this.opts.scalarOnly && counts.every((c) => c % 4 === 0);
  }

  protected dispatch(target: GpuTarget, entry: string, vec4: boolean, n: number, cols: number, data: GPUBufferBinding[], scale = 0): void {
    const program = this.programs.require(this.who).get(`${entry}:${vec4}`);
    if (!program) throw new Error(`${this.who}: no pipeline for ${entry}`);
    const w = vec4 ? 4 : 1;
    const bindGroup = bindBuffers(this.device, program.layout, [this.uniforms.get([n / w, cols / w, scale, 0], [2]), ...data], entry);
    recordDispatch(target, entry, program, bindGroup, this.dispatchSize(n / w));
  }

  protected binding(label: string, buf: GPUBuffer, count: number, what: string): GPUBufferBinding {
    checkBinding(this.device, this.who, label, buf, count * 4, what);
    return { buffer: buf, size: count * 4 };
  }

  destroy(): void {
    this.uniforms.destroy();
  }
}

/** y = f(x) elementwise over n f32 values; in place when x and y are the same buffer. */
export class ActivationKernel extends ElementwiseBase {
  protected readonly who: string;
  protected readonly entries: readonly EntrySpec[];

  constructor(
    device: GPUDevice,
    readonly kind: ActivationKind,
    opts?: ElementwiseKernelOptions,
  ) {
    super(device, opts);
    if (!(kind in ACT_CODE)) throw new Error(`ActivationKernel: unknown activation "${kind}"`);
    this.who = `ActivationKernel(${kind})`;
    this.entries = [
      { entry: 'act_main', bindings: ['uniform', 'read', 'storage'], act: kind },
      { entry: 'act_inplace', bindings: ['uniform', 'storage'], act: kind },
    ];
  }

  static create(device: GPUDevice, kind: ActivationKind, opts?: ElementwiseKernelOptions): Promise<ActivationKernel> {
    return new ActivationKernel(device, kind, opts).init();
  }

  /** Records y[i] = f(x[i]) for i < n (x === y: in place). */
  run(target: GpuTarget, x: GPUBuffer, y: GPUBuffer, n: number): void {
    positiveInt(this.who, 'n', n);
    const v = this.useVec4(n);
    if (x === y) {
      this.dispatch(target, 'act_inplace', v, n, 0, [this.binding('y', y, n, `[${n}] f32`)]);
    } else {
      this.dispatch(target, 'act_main', v, n, 0, [this.binding('x', x, n, `[${n}] f32`), this.binding('y', y, n, `[${n}] f32`)]);
    }
  }
}

/** In-place additions: residual y += x, a [cols] bias broadcast over the rows of y; and y *= s (sum -> mean). */
export class AddKernel extends ElementwiseBase {
  protected readonly who = 'AddKernel';
  protected readonly entries: readonly EntrySpec[] = [
    { entry: 'add_inplace', bindings: ['uniform', 'read', 'storage'] },
    { entry: 'add_bias_inplace', bindings: ['uniform', 'read', 'storage'] },
    { entry: 'scale_inplace', bindings: ['uniform', 'storage'] },
  ];

  static create(device: GPUDevice, opts?: ElementwiseKernelOptions): Promise<AddKernel> {
    return new AddKernel(device, opts).init();
  }

  /** Records y[i] += x[i] for i < n. x and y must be different buffers. */
  run(target: GpuTarget, x: GPUBuffer, y: GPUBuffer, n: number): void {
    positiveInt(this.who, 'n', n);
    if (x === y) throw new Error('AddKernel: x and y must be different buffers (y += x is in place into y)');
    this.dispatch(target, 'add_inplace', this.useVec4(n), n, 0, [this.binding('x', x, n, `[${n}] f32`), this.binding('y', y, n, `[${n}] f32`)]);
  }

  /** Records y[i] *= scale for i < n. */
  runScale(target: GpuTarget, y: GPUBuffer, n: number, scale: number): void {
    positiveInt(this.who, 'n', n);
    if (!Number.isFinite(scale)) throw new Error(`AddKernel: scale must be finite, got ${scale}`);
    this.dispatch(target, 'scale_inplace', this.useVec4(n), n, 0, [this.binding('y', y, n, `[${n}] f32`)], scale);
  }

  /** Records y[r, c] += bias[c] for y: [rows, cols]. */
  runBias(target: GpuTarget, bias: GPUBuffer, y: GPUBuffer, rows: number, cols: number): void {
    positiveInt(this.who, 'rows', rows);
    positiveInt(this.who, 'cols', cols);
    if (bias === y) throw new Error('AddKernel: bias and y must be different buffers');
    const n = rows * cols;
    this.dispatch(target, 'add_bias_inplace', this.useVec4(cols), n, cols, [
      this.binding('bias', bias, cols, `[${cols}] f32`),
      this.binding('y', y, n, `[${rows}, ${cols}] f32`),
    ]);
  }
}

/** SwiGLU of the fused MLC gate_up_proj output: gu [rows, 2I] (gate = columns 0..I-1, up = I..2I-1) -> y [rows, I]. */
export class SwiGluKernel extends ElementwiseBase {
  protected readonly who = 'SwiGluKernel';
  protected readonly entries: readonly EntrySpec[] = [{ entry: 'swiglu', bindings: ['uniform', 'read', 'storage'] }];

  static create(device: GPUDevice, opts?: ElementwiseKernelOptions): Promise<SwiGluKernel> {
    return new SwiGluKernel(device, opts).init();
  }

  /** Records y[r, c] = silu(gu[r, c]) * gu[r, I + c]. gu and y must be different buffers. */
  run(target: GpuTarget, gateUp: GPUBuffer, y: GPUBuffer, rows: number, I: number): void {
    positiveInt(this.who, 'rows', rows);
    positiveInt(this.who, 'I', I);
    if (gateUp === y) throw new Error('SwiGluKernel: gateUp and y must be different buffers');
    this.dispatch(target, 'swiglu', this.useVec4(I), rows * I, I, [
      this.binding('gateUp', gateUp, rows * 2 * I, `[${rows}, ${2 * I}] f32`),
      this.binding('y', y, rows * I, `[${rows}, ${I}] f32`),
    ]);
  }
}

/** One-shot helper for tests and self-tests: f(x) on the GPU (out of place, or in place with `inPlace`). */
export async function activationOnGpu(
  device: GPUDevice,
  kind: ActivationKind,
  x: Float32Array,
  opts: ElementwiseKernelOptions & { inPlace?: boolean } = {},
): Promise<Float32Array> {
  const kernel = await ActivationKernel.create(device, kind, opts);
  const xb = storageBufferFrom(device, x, 'act x');
  const yb = opts.inPlace ? xb : createStorageBuffer(device, x.length * 4, 'act y');
  try {
    kernel.run(device, xb, yb, x.length);
    return await readF32(device, yb, x.length);
  } finally {
    xb.destroy();
    yb.destroy();
    kernel.destroy();
  }
}

/** One-shot helper: silu(gate) * up from a fused [rows, 2I] buffer. */
export async function swigluOnGpu(device: GPUDevice, gateUp: Float32Array, rows: number, I: number, opts: ElementwiseKernelOptions = {}): Promise<Float32Array> {
  if (gateUp.length !== rows * 2 * I) throw new Error(`swigluOnGpu: gateUp has ${gateUp.length} values, expected ${rows}x${2 * I}`);
  const kernel = await SwiGluKernel.create(device, opts);
  const gb = storageBufferFrom(device, gateUp, 'swiglu gu');
  const yb = createStorageBuffer(device, rows * I * 4, 'swiglu y');
  try {
    kernel.run(device, gb, yb, rows, I);
    return await readF32(device, yb, rows * I);
  } finally {
    gb.destroy();
    yb.destroy();
    kernel.destroy();
  }
}
