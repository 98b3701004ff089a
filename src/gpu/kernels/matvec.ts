// Decode matrix-vector product on the GPU (one token, the per-token hot path): y[m, N] = W[N, K] · x[m, K] (+ b)
// for M <= 16 rows of x (a batch: one pass over W for all rows), W in HF layout [out, in] as f32, f16, or MLC int4 (q4f32_1 / q4f16_1; src/quant/q4.ts).
// Kernel shaders/matvec.wgsl: 8 output rows per workgroup, each row's K split over 64 lanes with 16-byte weight
// loads, x reused from registers across 4 rows, a subgroup or workgroup-memory row sum; on a CPU adapter, and for
// rows of fewer than 64 units, 512 rows per workgroup, one lane each, no row sum. f16 weights and f16 scales are
// read as u32 pairs (unpack2x16float): no `shader-f16` needed, every variant runs on every WebGPU device.
// Gated form (`op.up`): y = silu(W x) * (W_up x), a gated MLP's input in one pass (half the rows per workgroup).
//
// Limits: each binding must fit in maxStorageBufferBindingSize. lm_head (128256 x 4096) is 2.1 GB in f32,
// 1.05 GB in f16 and 263 MB in int4: larger than the 128 MiB WebGPU default and often than the device limit. The
// caller then splits W into row blocks W[n0:n1] (separate buffers: weights, scales and bias) and runs each with
// `{ yColOffset: n0, yRowStride: N }`; run() throws a clear Error instead of letting WebGPU fail validation.
// Rows must be 16-byte aligned: K % 4 == 0 (f32), K % 8 == 0 (f16), K % 32 == 0 (int4).
import matvecReduceWgsl from '../../../shaders/matvec-reduce.wgsl?raw';
import matvecWgsl from '../../../shaders/matvec.wgsl?raw';
import { q4Bytes, Q4_GROUP_SIZE, type Q4Weights } from '../../quant/q4.ts';
import { align4, bindBuffers, createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkBindings, foldGrid, LazyPrograms, positiveInt, recordDispatch, rowBlockOutput, UniformCache, workgroupLimit, type BindingSpec, type GpuTarget } from '../dispatch.ts';
import { isCpuDevice } from '../device.ts';
import { computeProgram, specializeWgsl, type BindingKind } from '../pipeline.ts';
import { isQ4, type Storage } from '../storage.ts';
import { firstRows, type WeightRows } from '../tensor.ts';
import { expandWgsl, parseFragments } from '../wgsl-include.ts';
import { linearEpilogue, linearShape, type LinearOperands, type LinearRunOptions } from './linear.ts';
import { q4ScaleData } from './linear-q4.ts';

/** Invocations per workgroup and rows per invocation in matvec.wgsl. */
const WORKGROUP = 128;
const ROWS_PER_INVOCATION = 4;

/** Lanes splitting one row's K (the LANES override of matvec.wgsl). */
export type MatvecLanes = 1 | 64;

/**
 * Lanes per row of rows long enough for them. A GPU: 64 (coalesced 1 KiB per row per step, and N / 8 workgroups:
 * enough to fill a big GPU at N = 4096). A CPU adapter: 1. It runs invocations as a few SIMD fibers, so more lanes
 * buy no parallelism, and their cross-lane sum cost 60 % of a 1 x 4096 -> 4096 int4 matvec on SwiftShader: 8 lanes
 * ran it 2-3x faster than 64, and 1 lane 1.2-1.6x faster than 8 on SwiftShader and lavapipe (docs/PERFORMANCE.md),
 * with pipelines that have no workgroup memory (milliseconds to build). Rows shorter than 64 units take 1 lane
 * everywhere (tiny test models).
 */
export function matvecWideLanes(cpu: boolean): MatvecLanes {
  return cpu ? 1 : 64;
}

/** Output rows per workgroup (ROWS_PER_WG in matvec.wgsl): 8 with 64 lanes, 512 with 1; half that gated. */
export function matvecRowsPerWorkgroup(lanes: MatvecLanes, gated = false): number {
  return ((WORKGROUP / lanes) * ROWS_PER_INVOCATION) / (gated ? 2 : 1);
}
/**
 * The M classes a pipeline is built for (the MAX_M const of matvec.wgsl): a run with M rows of x takes the smallest
 * class >= M, so decode (M = 1) carries no dead accumulators and a follow-up question's rows share one pass over W.
 */
const M_CLASSES = [1, 4, 16] as const;
/** Largest M (rows of x) one run accepts. */
export const MATVEC_MAX_M = M_CLASSES[M_CLASSES.length - 1]!;
const mClassOf = (M: number) => M_CLASSES.find((c) => c >= M)!;
const programKey = (maxM: number, lanes: MatvecLanes, gated: boolean) => `${maxM}:${lanes}:${gated ? 'gated' : 'plain'}`;

const WKIND: Record<Storage, number> = { f32: 0, f16: 1, q4f32: 2, q4f16: 3 };
/** Weights per 16-byte unit, which is also the K alignment each kind needs. */
const PER_UNIT: Record<Storage, number> = { f32: 4, f16: 8, q4f32: 32, q4f16: 32 };

const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'read', 'read', 'storage', 'read', 'read'];

/** How the lanes of a row are summed: subgroup operations (devices with `subgroups`) or workgroup memory. */
export type MatvecReduce = 'subgroup' | 'workgroup';

const REDUCE_FRAGMENTS = parseFragments([matvecReduceWgsl]);

/**
 * The matvec WGSL with the row sum of `reduce` spliced in (and `enable subgroups;` for the subgroup form);
 * 'none': the form for one lane per row, without a row sum or workgroup memory.
 */
export function matvecShaderSource(reduce: MatvecReduce | 'none' = 'workgroup'): string {
  const pick = (part: string) => REDUCE_FRAGMENTS.get(`${part}-${reduce}`)!;
  const parts = ['row-sum', 'builtins', 'memory'].map((part) => [`matvec-${part}`, pick(part)] as const);
  const code = expandWgsl(matvecWgsl, new Map(parts));
  return reduce === 'subgroup' ? specializeWgsl(code, { enable: ['subgroups'] }) : code;
}

export interface MatvecKernelOptions {
  /** Weight storage (default 'f32'). */
  weights?: Storage;
  /** Lower the dispatch limit (tests use this to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
  /** Replace the shader (tests, tuning): same bindings, Dims and overrides. */
  shader?: { name: string; code: string };
  /** The row sum (default: 'subgroup' where the device has `subgroups`); tests run both on one device. */
  reduce?: MatvecReduce;
  /** Shape the kernel for a CPU adapter (default: isCpuDevice(device)); tests run both shapes on one device. */
  cpu?: boolean;
}

export class MatvecKernel {
  readonly weights: Storage;
  readonly reduce: MatvecReduce;
  /** The lanes per row of rows that are long enough (64 on a GPU, 1 on a CPU adapter; see matvecWideLanes). */
  private readonly wideLanes: MatvecLanes;
  /**
   * Pipelines per M class (M_CLASSES), with the wide lanes per row and with 1 (small K; a CPU's only form), plain
   * and gated.
   */
  private readonly programs = new LazyPrograms(async () => {
    const spec = (maxM: number, lanes: MatvecLanes, gated: boolean) => {
      const reduce = lanes === 1 ? 'none' : this.reduce;
      const code = this.opts.shader?.code ?? matvecShaderSource(reduce);
      return {
        name: `${this.opts.shader?.name ?? `matvec.wgsl (${this.weights}, ${reduce === 'none' ? '1 lane' : `${reduce} sum`}${gated ? ', gated' : ''})`} M <= ${maxM}`,
        code: specializeWgsl(code, { u32Consts: { MAX_M: maxM } }),
        bindings: BINDINGS,
        constants: { WKIND: WKIND[this.weights], LANES: lanes, GLU: gated },
      };
    };
    const laneForms = [...new Set<MatvecLanes>([1, this.wideLanes])];
    const variants = M_CLASSES.flatMap((m) => laneForms.flatMap((lanes) => [false, true].map((gated) => [programKey(m, lanes, gated), spec(m, lanes, gated)] as const)));
    const built = await Promise.all(variants.map(([, s]) => computeProgram(this.device, s)));
    return new Map(variants.map(([key], i) => [key, built[i]!]));
  });
  private readonly uniforms: UniformCache;
  private dummy: GPUBuffer | null = null;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    private readonly opts: MatvecKernelOptions = {},
  ) {
    this.weights = opts.weights ?? 'f32';
    this.wideLanes = matvecWideLanes(opts.cpu ?? isCpuDevice(device));
    this.reduce = opts.reduce ?? (device.features.has('subgroups') ? 'subgroup' : 'workgroup');
    if (this.reduce === 'subgroup' && !device.features.has('subgroups')) throw new Error('MatvecKernel: the subgroup row sum needs a device with the `subgroups` feature');
    if (!(this.weights in WKIND)) throw new Error(`MatvecKernel: unknown weights "${this.weights}" (f32, f16, q4f32 or q4f16)`);
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'matvec dims');
  }

  /** Builds the pipelines. Rejects with a ShaderError if the WGSL does not compile. */
  init(): Promise<this> {
    return this.programs.ready(this);
  }

  static create(device: GPUDevice, opts?: MatvecKernelOptions): Promise<MatvecKernel> {
    return new MatvecKernel(device, opts).init();
  }

  /** Lanes per row for rows of K weights of this kind. */
  lanes(K: number): MatvecLanes {
    return K / PER_UNIT[this.weights] >= this.wideLanes ? this.wideLanes : 1;
  }

  /** Workgroup grid for N output rows of K weights: ceil(N / rows per workgroup) folded into (x <= limit, y). */
  dispatchSize(N: number, K: number, gated = false): [number, number] {
    return foldGrid(Math.ceil(N / matvecRowsPerWorkgroup(this.lanes(K), gated)), this.maxWg, 'MatvecKernel', `N = ${N} needs`);
  }

  /** Bytes of W (and of the scales, 0 for dense weights) for [N, K] in this kernel's storage. */
  weightBytes(N: number, K: number): { w: number; scales: number } {
    switch (this.weights) {
      case 'f32':
        return { w: N * K * 4, scales: 0 };
      case 'f16':
        return { w: N * K * 2, scales: 0 };
      default: {
        const b = q4Bytes(N, K, this.weights === 'q4f16' ? 'f16' : 'f32');
        return { w: b.qWeight, scales: b.qScale };
      }
    }
  }

  /**
   * Records y = W x (+ b) for M <= MATVEC_MAX_M rows of x. x: [M, K] f32 (from any row whose byte offset is storage-aligned); w: [N, K] f32, [N, K] f16 bits, or [N, K/8] u32
   * int4 codes with w.scales [N, K/32] f32 / f16 (int4 kinds only); b: [N] f32 or null; y: f32,
   * element (m, n) at yColOffset + m * yRowStride + n. x and y must be different buffers. With a device, encodes
   * and submits at once; with an encoder or pass, only records (the caller submits).
   * Gated (`op.up`, the up matrix in the same storage and shape as w, the gate; no bias): y = silu(W x) * (Wup x).
   */
  run(target: GpuTarget, op: LinearOperands & { up?: WeightRows }, opts: LinearRunOptions = {}): void {
    const programs = this.programs.require('MatvecKernel');
    const { M, K, N } = linearShape('MatvecKernel.run', op, { xFromAnyRow: true });
    const { x: { buffer: x, rowStart }, w: { buffer: w, scales = null }, bias: b, y } = op;
    // x may start at a later row (the rows past a prefill's last whole tile): bound from there, which WebGPU
    // allows at multiples of minStorageBufferOffsetAlignment.
    const xOffset = rowStart * K * 4;
    const alignment = this.device.limits.minStorageBufferOffsetAlignment;
    if (xOffset % alignment !== 0) {
      throw new Error(`MatvecKernel.run: x "${x.label}" from row ${rowStart} starts at byte ${xOffset}, not a multiple of the device's ${alignment}-byte storage offset alignment`);
    }
    for (const [name, v] of [['M', M], ['K', K], ['N', N]] as const) positiveInt('MatvecKernel.run', name, v);
    if (M > MATVEC_MAX_M) {
      throw new Error(`MatvecKernel.run: M = ${M} rows of x, at most ${MATVEC_MAX_M}; use LinearKernel / LinearQ4Kernel (tiled) for prefill`);
    }
    const perUnit = PER_UNIT[this.weights];
    if (K % perUnit !== 0) {
      throw new Error(
        `MatvecKernel.run: K = ${K} is not a multiple of ${perUnit} (${this.weights} rows are read in 16-byte units` +
          `${isQ4(this.weights) ? `; int4 groups are ${Q4_GROUP_SIZE} wide` : ''}); use LinearKernel for this shape`,
      );
    }
    const quantized = isQ4(this.weights);
    if (quantized && !scales) throw new Error(`MatvecKernel.run: ${this.weights} weights need their scales buffer`);
    if (!quantized && scales) throw new Error(`MatvecKernel.run: ${this.weights} weights take no scales`);
    const { ldy, yOff } = rowBlockOutput('MatvecKernel.run', N, opts);
    if (x === y) throw new Error('MatvecKernel: x and y must be different buffers');
    const up = op.up ?? null;
    if (up) {
      if (up.rows !== N || up.cols !== K) throw new Error(`MatvecKernel.run: the up matrix ${up.name} is [${up.rows}, ${up.cols}], the gate ${op.w.name} [${N}, ${K}]`);
      if (b || opts.residual) throw new Error('MatvecKernel.run: the gated form takes no bias and no residual');
      if (quantized !== Boolean(up.scales)) throw new Error(`MatvecKernel.run: ${this.weights} up weights ${quantized ? 'need' : 'take no'} scales`);
      if (up.buffer === y || up.buffer === x) throw new Error('MatvecKernel: the up matrix must be a different buffer from x and y');
    }

    const wb = this.weightBytes(N, K);
    const wWhat = quantized ? `[${N}, ${K / 8}] u32 int4` : `[${N}, ${K}] ${this.weights}`;
    const bindings: BindingSpec[] = [
      ['x', x, xOffset + M * K * 4, `rows ${rowStart}..${rowStart + M - 1} of ${K} f32`],
      ['w', w, wb.w, wWhat],
      ['y', y, (yOff + (M - 1) * ldy + N) * 4, `[${M}, ${N}] f32, row stride ${ldy}, offset ${yOff}`],
    ];
    const scalesWhat = `[${N}, ${K / Q4_GROUP_SIZE}] ${this.weights === 'q4f16' ? 'f16' : 'f32'}`;
    if (scales) bindings.push(['scales', scales, wb.scales, scalesWhat]);
    if (b) bindings.push(['b', b, N * 4, `[${N}] f32`]);
    if (up) bindings.push(['up', up.buffer, wb.w, wWhat]);
    if (up?.scales) bindings.push(['up scales', up.scales, wb.scales, scalesWhat]);
    checkBindings('MatvecKernel', this.device, bindings);

    const binding = (buf: GPUBuffer, bytes: number, offset = 0): GPUBufferBinding => ({ buffer: buf, offset, size: align4(bytes) });
    this.dummy ??= createStorageBuffer(this.device, 16, 'matvec: unused binding');
    const lanes = this.lanes(K);
    const program = programs.get(programKey(mClassOf(M), lanes, up !== null))!;
    const grid = this.dispatchSize(N, K, up !== null);
    const rowBlocks = Math.ceil(N / matvecRowsPerWorkgroup(lanes, up !== null));
    const bindGroup = bindBuffers(
      this.device,
      program.layout,
      [
        this.uniforms.get([M, K, N, K / perUnit, ldy, yOff, rowBlocks, linearEpilogue(b !== null, opts)]),
        binding(x, M * K * 4, xOffset),
        binding(w, wb.w),
        scales ? binding(scales, wb.scales) : { buffer: this.dummy },
        b ? binding(b, N * 4) : { buffer: this.dummy },
        binding(y, bindings[2]![2]),
        up ? binding(up.buffer, wb.w) : { buffer: this.dummy },
        up?.scales ? binding(up.scales, wb.scales) : { buffer: this.dummy },
      ],
      'matvec',
    );
    recordDispatch(target, 'matvec', program, bindGroup, grid);
  }

  /** Frees the kernel's own small buffers (not the caller's). */
  destroy(): void {
    this.uniforms.destroy();
    this.dummy?.destroy();
    this.dummy = null;
  }
}

/** Dense f32 weights [N, K], f16 bits, or int4 weights from quantizeQ4 (their scaleDType picks q4f32 / q4f16). */
export type MatvecWeightData = Float32Array | Uint16Array | Q4Weights;

/** The matvec kind for host weight data. */
export function matvecKindOf(w: MatvecWeightData): Storage {
  if (w instanceof Float32Array) return 'f32';
  if (w instanceof Uint16Array) return 'f16';
  return w.scaleDType === 'f16' ? 'q4f16' : 'q4f32';
}

/** f32 values -> f16 bits (round to nearest even), the layout an 'f16' MatvecKernel expects. */
export { toF16Weights as toF16Bits } from './linear.ts';

/**
 * One-shot convenience for tests and self-tests: uploads x [M, K], the weights (see MatvecWeightData) and
 * bias [N], runs, reads back y [M, N]. With `opts.up` (same kind and shape as w, no bias): the gated form,
 * y = silu(w x) * (up x).
 */
export async function matvecOnGpu(
  device: GPUDevice,
  x: Float32Array,
  M: number,
  K: number,
  w: MatvecWeightData,
  N: number,
  bias?: Float32Array | null,
  opts: Omit<MatvecKernelOptions, 'weights'> & { up?: MatvecWeightData } = {},
): Promise<Float32Array> {
  const weights = matvecKindOf(w);
  if (x.length !== M * K) throw new Error(`matvecOnGpu: x has ${x.length} values, expected ${M}x${K}`);
  if (bias && bias.length !== N) throw new Error(`matvecOnGpu: bias has ${bias.length} values, expected ${N}`);
  const kernel = await MatvecKernel.create(device, { ...opts, weights });
  const bufs: GPUBuffer[] = [];
  const up = (data: ArrayBufferView, label: string) => {
    const buf = storageBufferFrom(device, data, label);
    bufs.push(buf);
    return buf;
  };
  const weightRows = (d: MatvecWeightData, name: string): WeightRows => {
    if (d instanceof Float32Array || d instanceof Uint16Array) {
      if (d.length !== N * K) throw new Error(`matvecOnGpu: ${name} has ${d.length} values, expected ${N}x${K}`);
      return { name, buffer: up(d, name), rows: N, cols: K };
    }
    if (d.qWeight.length !== (N * K) / 8) throw new Error(`matvecOnGpu: ${name} qWeight has ${d.qWeight.length} words, expected ${N}x${K / 8}`);
    return { name, buffer: up(d.qWeight, `${name} qWeight`), scales: up(q4ScaleData(d.qScale, d.scaleDType), `${name} qScale`), rows: N, cols: K };
  };
  try {
    const xBuf = up(x, 'x');
    const wRows = weightRows(w, 'w');
    const upRows = opts.up ? weightRows(opts.up, 'up') : undefined;
    const bBuf = bias ? up(bias, 'b') : null;
    const yBuf = createStorageBuffer(device, M * N * 4, 'y');
    bufs.push(yBuf);
    kernel.run(device, { x: firstRows(xBuf, M, K), w: wRows, bias: bBuf, y: yBuf, ...(upRows ? { up: upRows } : {}) });
    return await readF32(device, yBuf, M * N);
  } finally {
    for (const buf of bufs) buf.destroy();
    kernel.destroy();
  }
}
