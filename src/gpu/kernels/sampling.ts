// Next-token selection on the GPU (shaders/sampling.wgsl): argmax (greedy) and temperature + top-p sampling
// over logits [V], with the token id written as a u32 into a small result buffer (the engine reads back 4 bytes
// a token). Definitions: src/reference/sampling.ts (argmaxRef, sampleTopPRef); the GPU computes them in f32.
//
// Cost per token: argmax = 2 dispatches; sampling = 12, or 4 with topP >= 1 (see the WGSL header), V = 128256 -> 63 workgroups.
// Per V the kernel keeps a scratch buffer (~2 KiB per 2048 logits) and its uniforms; nothing is allocated per run.
// The sampling parameters (temperature, topP, u) change every token: they go through a ring of PARAMS_RING small
// uniform buffers written with queue.writeBuffer at record time, so at most PARAMS_RING sample() runs may be
// recorded before the encoder holding them is submitted (a later run would overwrite an earlier run's
// parameters). Logits are f32, or f16 on devices with `shader-f16` (arithmetic stays f32).
import samplingWgsl from '../../../shaders/sampling.wgsl?raw';
import { f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { align4, bindBuffers, createStorageBuffer, readBuffer, storageBufferFrom, uniformBufferFrom } from '../buffers.ts';
import { checkBindingLimit, checkBufferSize, LazyPrograms, nonNegativeInt, positiveInt, recordCompute, requireShaderF16, UniformCache, type GpuTarget } from '../dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind, type ComputeProgram } from '../pipeline.ts';
import type { DenseStorage } from '../storage.ts';


/** Logits per workgroup (128 invocations x 16). */
export const SAMPLING_CHUNK = 2048;
/** sample() runs that may be recorded before a submit (parameter buffers in the ring). */
export const PARAMS_RING = 16;
const RADIX_STEPS = 8;

const BINDINGS: readonly BindingKind[] = ['uniform', 'uniform', 'read', 'storage', 'storage'];
/** argmax's passes (built by init()) and the rest of top-p's (built by initTopP(), when a request first samples). */
const ARGMAX_ENTRY_POINTS = ['reduce_max', 'final_max'] as const;
const TOP_P_ENTRY_POINTS = ['radix', 'pick_partial', 'pick_final'] as const;
type Programs<E extends readonly string[]> = Record<E[number], ComputeProgram>;

/** sampling.wgsl as is for f32 logits; for f16, `enable f16;` + `alias LT = f16;`. */
export function samplingShaderSource(logits: DenseStorage): string {
  return logits === 'f16' ? specializeWgsl(samplingWgsl, { enable: ['f16'], aliases: { LT: 'f16' } }) : samplingWgsl;
}

export interface SamplingKernelOptions {
  /** Storage type of the logits: 'f32' (default) or 'f16' (needs shader-f16). */
  logits?: DenseStorage;
}

export interface SampleParams {
  /** Softmax temperature; <= 0 means greedy. */
  temperature: number;
  /** Nucleus mass; <= 0 means greedy, >= 1 keeps every token. */
  topP: number;
  /** Uniform random number in [0, 1), drawn by the host (e.g. mulberry32 seeded per conversation). */
  u: number;
}

export interface SampleRunOptions {
  /** Element of the result buffer (u32) that receives the token id (default 0). */
  outIndex?: number;
}

/** True when these settings reduce to argmax (the reference's definition). */
export function isGreedy(p: Pick<SampleParams, 'temperature' | 'topP'>): boolean {
  return !(p.temperature > 0) || !(p.topP > 0);
}

/** The largest f32 below 1: u is uploaded as f32 and must stay < 1. */
const BELOW_ONE = 1 - 2 ** -24;

interface Scratch {
  work: GPUBuffer;
  G: number;
  /** dims uniforms [V, G, step, outIndex]: step s = radix step s (the other passes use step 0). */
  dims: UniformCache;
}

export class SamplingKernel {
  readonly logits: DenseStorage;
  // Greedy answers never need the top-p passes, and their pipelines are the slow ones to build on a software
  // adapter (about 2 s of a demo load on SwiftShader): they wait for the first sampled answer.
  private readonly programs = new LazyPrograms(() => this.build(ARGMAX_ENTRY_POINTS));
  private readonly topPPrograms = new LazyPrograms(() => this.build(TOP_P_ENTRY_POINTS));
  private readonly scratch = new Map<number, Scratch>();
  private readonly ring: GPUBuffer[] = [];
  private ringNext = 0;
  private greedyParams: GPUBuffer | null = null;

  constructor(
    readonly device: GPUDevice,
    opts: SamplingKernelOptions = {},
  ) {
    this.logits = opts.logits ?? 'f32';
    requireShaderF16(device, this.logits === 'f16', 'SamplingKernel: f16 logits need', 'f32 logits');
  }

  /** Builds argmax's two pipelines. Rejects with a ShaderError if the WGSL does not compile. */
  init(): Promise<this> {
    return this.programs.ready(this);
  }

  /** Builds the top-p passes' three pipelines as well (once): sample() with non-greedy settings needs them. */
  async initTopP(): Promise<this> {
    await this.init();
    return this.topPPrograms.ready(this);
  }

  static create(device: GPUDevice, opts?: SamplingKernelOptions): Promise<SamplingKernel> {
    return new SamplingKernel(device, opts).init();
  }

  /** Records argmax(logits[0:V]) (lowest index on ties) into result[outIndex] (u32). */
  argmax(target: GpuTarget, logits: GPUBuffer, result: GPUBuffer, V: number, opts: SampleRunOptions = {}): void {
    const programs = this.check(logits, result, V, opts);
    const sc = this.scratchFor(V);
    this.greedyParams ??= uniformBufferFrom(this.device, new Float32Array([1, 1, 0, 0]), 'sampling greedy params');
    const bg = (p: ComputeProgram) => this.bindGroup(p, sc, 0, this.greedyParams!, logits, result, V, opts.outIndex ?? 0);
    recordCompute(target, 'argmax', (pass) => {
      pass.setPipeline(programs.reduce_max.pipeline);
      pass.setBindGroup(0, bg(programs.reduce_max));
      pass.dispatchWorkgroups(sc.G);
      pass.setPipeline(programs.final_max.pipeline);
      pass.setBindGroup(0, bg(programs.final_max));
      pass.dispatchWorkgroups(1);
    });
  }

  /**
   * Records one top-p sample of logits[0:V] at temperature T with the host's uniform u into result[outIndex].
   * Greedy settings (T <= 0 or topP <= 0) record argmax instead. At most PARAMS_RING runs per submit.
   */
  sample(target: GpuTarget, logits: GPUBuffer, result: GPUBuffer, V: number, params: SampleParams, opts: SampleRunOptions = {}): void {
    if (isGreedy(params)) {
      this.argmax(target, logits, result, V, opts);
      return;
    }
    const { temperature, topP } = params;
    if (!(params.u >= 0 && params.u < 1)) throw new Error(`SamplingKernel.sample: u must be in [0, 1), got ${params.u}`);
    if (!Number.isFinite(temperature)) throw new Error(`SamplingKernel.sample: temperature must be finite, got ${temperature}`);
    const programs = this.check(logits, result, V, opts);
    const nucleus = this.topPPrograms.require('SamplingKernel', 'SamplingKernel.sample (top-p; call `await kernel.initTopP()` first)');
    const sc = this.scratchFor(V);
    const keepAll = topP >= 1;
    const u = Math.min(Math.fround(params.u), BELOW_ONE);
    const pbuf = this.nextParams();
    const pdata = new ArrayBuffer(16);
    new Float32Array(pdata, 0, 3).set([temperature, Math.min(topP, 1), u]);
    new Uint32Array(pdata, 12, 1)[0] = keepAll ? 1 : 0;
    this.device.queue.writeBuffer(pbuf, 0, pdata);
    const outIndex = opts.outIndex ?? 0;
    const bg = (p: ComputeProgram, step = 0) => this.bindGroup(p, sc, step, pbuf, logits, result, V, outIndex);
    recordCompute(target, 'sample top-p', (pass) => {
      const run = (p: ComputeProgram, groups: number, step = 0) => {
        pass.setPipeline(p.pipeline);
        pass.setBindGroup(0, bg(p, step));
        pass.dispatchWorkgroups(groups);
      };
      run(programs.reduce_max, sc.G);
      run(programs.final_max, 1);
      if (!keepAll) for (let s = 0; s < RADIX_STEPS; s++) run(nucleus.radix, sc.G, s);
      run(nucleus.pick_partial, sc.G);
      run(nucleus.pick_final, 1);
    });
  }

  private async build<E extends readonly string[]>(entryPoints: E): Promise<Programs<E>> {
    const name = this.logits === 'f16' ? 'sampling.wgsl (f16 logits)' : 'sampling.wgsl';
    const code = samplingShaderSource(this.logits);
    const progs = await Promise.all(entryPoints.map((entryPoint) => computeProgram(this.device, { name, code, entryPoint, bindings: BINDINGS })));
    return Object.fromEntries(entryPoints.map((e, i) => [e, progs[i]!])) as Programs<E>;
  }

  /** Frees the kernel's own buffers (not the caller's). */
  destroy(): void {
    for (const sc of this.scratch.values()) {
      sc.work.destroy();
      sc.dims.destroy();
    }
    this.scratch.clear();
    for (const b of this.ring) b.destroy();
    this.ring.length = 0;
    this.greedyParams?.destroy();
    this.greedyParams = null;
  }

  private check(logits: GPUBuffer, result: GPUBuffer, V: number, opts: SampleRunOptions): Programs<typeof ARGMAX_ENTRY_POINTS> {
    const who = 'SamplingKernel';
    const programs = this.programs.require(who, who);
    positiveInt(who, 'V', V);
    const outIndex = opts.outIndex ?? 0;
    nonNegativeInt(who, 'outIndex', outIndex);
    const lBytes = V * (this.logits === 'f16' ? 2 : 4);
    checkBindingLimit(this.device, who, 'logits', lBytes, `[${V}] ${this.logits}`);
    const G = Math.ceil(V / SAMPLING_CHUNK);
    const maxWg = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (G > maxWg) throw new Error(`${who}: V = ${V} needs ${G} workgroups of ${SAMPLING_CHUNK} logits, more than maxComputeWorkgroupsPerDimension (${maxWg})`);
    checkBufferSize(who, 'logits', logits, lBytes, `[${V}] ${this.logits}`);
    checkBufferSize(who, 'result', result, (outIndex + 1) * 4, `u32 at index ${outIndex}`);
    if (logits === result) throw new Error(`${who}: logits and result must be different buffers`);
    return programs;
  }

  private scratchFor(V: number): Scratch {
    let sc = this.scratch.get(V);
    if (!sc) {
      // Bounded: forget (not destroy: a recorded, unsubmitted run may still use them) and let GC free.
      if (this.scratch.size >= 8) this.scratch.clear();
      const G = Math.ceil(V / SAMPLING_CHUNK);
      const words = 2 * G + 16 + 128 * G + G;
      sc = { work: createStorageBuffer(this.device, words * 4, `sampling work V=${V}`), G, dims: new UniformCache(this.device, `sampling dims V=${V}`) };
      this.scratch.set(V, sc);
    }
    return sc;
  }

  private nextParams(): GPUBuffer {
    if (this.ring.length < PARAMS_RING) {
      const b = this.device.createBuffer({ label: `sampling params ${this.ring.length}`, size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      this.ring.push(b);
      this.ringNext = this.ring.length % PARAMS_RING;
      return b;
    }
    const b = this.ring[this.ringNext]!;
    this.ringNext = (this.ringNext + 1) % PARAMS_RING;
    return b;
  }

  private bindGroup(p: ComputeProgram, sc: Scratch, step: number, params: GPUBuffer, logits: GPUBuffer, result: GPUBuffer, V: number, outIndex: number): GPUBindGroup {
    const lBytes = align4(V * (this.logits === 'f16' ? 2 : 4));
    return bindBuffers(
      this.device,
      p.layout,
      [sc.dims.get([V, sc.G, step, outIndex]), params, { buffer: logits, offset: 0, size: lBytes }, sc.work, { buffer: result, offset: 0, size: (outIndex + 1) * 4 }],
      'sampling',
    );
  }
}

/**
 * Convenience for tests and self-tests: uploads logits once (f32 values; rounded to f16 for an f16 kernel), runs
 * every draw (argmax where the settings are greedy) and reads the token ids back; batches of PARAMS_RING draws
 * share one submit and one readback.
 */
export async function sampleOnGpu(
  device: GPUDevice,
  logits: Float32Array,
  draws: readonly SampleParams[],
  opts: SamplingKernelOptions & { kernel?: SamplingKernel } = {},
): Promise<number[]> {
  const kernel = opts.kernel ?? (await SamplingKernel.create(device, opts));
  if (!draws.every(isGreedy)) await kernel.initTopP();
  const V = logits.length;
  const data = kernel.logits === 'f16' ? f32ToF16Bytes(logits) : logits;
  const lb = storageBufferFrom(device, data, 'logits');
  const rb = createStorageBuffer(device, PARAMS_RING * 4, 'tokens');
  const out: number[] = [];
  try {
    for (let b0 = 0; b0 < draws.length; b0 += PARAMS_RING) {
      const batch = draws.slice(b0, b0 + PARAMS_RING);
      const encoder = device.createCommandEncoder({ label: 'sampling draws' });
      batch.forEach((p, j) => kernel.sample(encoder, lb, rb, V, p, { outIndex: j }));
      device.queue.submit([encoder.finish()]);
      out.push(...new Uint32Array(await readBuffer(device, rb, batch.length * 4)));
    }
    return out;
  } finally {
    lb.destroy();
    rb.destroy();
    if (!opts.kernel) kernel.destroy();
  }
}

/** argmax of `logits` on the GPU (one-shot convenience). */
export async function argmaxOnGpu(device: GPUDevice, logits: Float32Array, opts: SamplingKernelOptions & { kernel?: SamplingKernel } = {}): Promise<number> {
  const [t] = await sampleOnGpu(device, logits, [{ temperature: 0, topP: 1, u: 0 }], opts);
  return t!;
}
