// Plumbing shared by the kernel wrappers in src/gpu/kernels: where a run is recorded (device, encoder or open
// pass), 2D workgroup grids, argument and binding checks with readable errors, per-shape uniform buffers, and the
// build-once pipeline promise behind every kernel's init(). No WGSL and no kernel knowledge here.
import { align4, bindBuffers, uniformBufferFrom } from './buffers.ts';
import type { ComputeProgram } from './pipeline.ts';

/** What a kernel records into: an open compute pass, or a RecordedPass that keeps the commands for replay. */
export type ComputePass = Pick<GPUComputePassEncoder, 'setPipeline' | 'setBindGroup' | 'dispatchWorkgroups'>;

/** What run() accepts to record into: a device (encode + submit now), a command encoder, or a (recorded) compute pass. */
export type GpuTarget = GPUDevice | GPUCommandEncoder | ComputePass;

/**
 * Records `body` into `target`: directly into an open compute pass, into a new pass of a command encoder,
 * or (given a device) into a new encoder that is submitted at once.
 */
export function recordCompute(target: GpuTarget, label: string, body: (pass: ComputePass) => void): void {
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

/** Records one dispatch of `program` with `bindGroup` as group 0 (see recordCompute for `target`). */
export function recordDispatch(target: GpuTarget, label: string, program: ComputeProgram, bindGroup: GPUBindGroup, grid: readonly [number, number]): void {
  recordCompute(target, label, (pass) => {
    pass.setPipeline(program.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(grid[0], grid[1]);
  });
}

/** The workgroups-per-dimension limit a kernel dispatches under: the device's, or lower (tests exercise the 2D fold). */
export function workgroupLimit(device: GPUDevice, lower?: number): number {
  return Math.min(lower ?? Infinity, device.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * `count` workgroups as a 2D grid [x, y] with x <= maxPerDim (surplus workgroups of the last row must exit).
 * Too many: `${who}: ${count} workgroups exceed ${maxPerDim}^2`, or with `needs` (e.g. '77x96 output needs')
 * `${who}: ${needs} ${count} workgroups, more than ${maxPerDim}^2`.
 */
export function foldGrid(count: number, maxPerDim: number, who: string, needs?: string): [number, number] {
  if (count < 1) return [0, 0];
  const x = Math.min(count, maxPerDim);
  const y = Math.ceil(count / x);
  if (y > maxPerDim) {
    throw new Error(needs ? `${who}: ${needs} ${count} workgroups, more than ${maxPerDim}^2` : `${who}: ${count} workgroups exceed ${maxPerDim}^2`);
  }
  return [x, y];
}

// ---- argument checks ----

/**
 * Throws `${what} the WebGPU feature "shader-f16", which this device does not have; use ${instead}.` when `f16`
 * is asked for on a device without shader-f16, e.g. requireShaderF16(device, true, 'NormKernel: f16 weights need', 'f32 weights').
 */
export function requireShaderF16(device: GPUDevice, f16: boolean, what: string, instead: string): void {
  if (f16 && !device.features.has('shader-f16')) {
    throw new Error(`${what} the WebGPU feature "shader-f16", which this device does not have; use ${instead}.`);
  }
}

export function positiveInt(who: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${who}: ${name} must be a positive integer, got ${v}`);
}

export function nonNegativeInt(who: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${who}: ${name} must be a non-negative integer, got ${v}`);
}

export function intAtLeast(who: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new Error(`${who}: ${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * The output placement of a linear-style run (y element (r, c) at yColOffset + r * yRowStride + c), checked:
 * yRowStride (default N) >= N, yColOffset (default 0) a non-negative integer.
 */
export function rowBlockOutput(who: string, N: number, opts: { yRowStride?: number; yColOffset?: number }): { ldy: number; yOff: number } {
  const ldy = opts.yRowStride ?? N;
  const yOff = opts.yColOffset ?? 0;
  if (!Number.isInteger(ldy) || ldy < N) throw new Error(`${who}: yRowStride ${ldy} is smaller than N = ${N}`);
  nonNegativeInt(who, 'yColOffset', yOff);
  return { ldy, yOff };
}

// ---- binding checks ----

/** The hint of the weight-matrix kernels: a weight over the binding limit is split into row blocks by the caller. */
export const SPLIT_WEIGHT_HINT = '; split the weight into row blocks and run each with yColOffset/yRowStride';

/** Throws when a binding of `bytes` (rounded up to 4) exceeds the device's maxStorageBufferBindingSize. */
export function checkBindingLimit(device: GPUDevice, who: string, label: string, bytes: number, what: string, hint = ''): void {
  const max = device.limits.maxStorageBufferBindingSize;
  if (align4(bytes) > max) {
    throw new Error(`${who}: ${label} (${what}) is ${align4(bytes)} bytes, more than this device's maxStorageBufferBindingSize (${max})${hint}`);
  }
}

/** Throws when `buf` is smaller than a binding of `bytes` (rounded up to 4). */
export function checkBufferSize(who: string, label: string, buf: GPUBuffer, bytes: number, what: string): void {
  if (buf.size < align4(bytes)) throw new Error(`${who}: buffer ${label} "${buf.label}" has ${buf.size} bytes, needs ${align4(bytes)} (${what})`);
}

/** Throws a clear Error when a binding of `bytes` exceeds the device's maxStorageBufferBindingSize or the buffer. */
export function checkBinding(device: GPUDevice, who: string, label: string, buf: GPUBuffer, bytes: number, what: string, hint = ''): void {
  checkBindingLimit(device, who, label, bytes, what, hint);
  checkBufferSize(who, label, buf, bytes, what);
}

/** checkBinding, then the binding itself: `bytes` (rounded up to 4) of `buf` from offset 0. */
export function checkedBinding(device: GPUDevice, who: string, label: string, buf: GPUBuffer, bytes: number, what: string, hint = ''): GPUBufferBinding {
  checkBinding(device, who, label, buf, bytes, what, hint);
  return { buffer: buf, offset: 0, size: align4(bytes) };
}

/** [label, buffer, bytes, what] of one binding, for checkBindings. */
export type BindingSpec = readonly [label: string, buffer: GPUBuffer, bytes: number, what: string];

/**
 * Checks a run's bindings: first every size against the device limit (with `hint`, by default how to split a
 * weight), then every buffer against its size; throws Errors naming the binding.
 */
export function checkBindings(who: string, device: GPUDevice, bindings: readonly BindingSpec[], hint = SPLIT_WEIGHT_HINT): void {
  for (const [label, , bytes, what] of bindings) checkBindingLimit(device, who, label, bytes, what, hint);
  for (const [label, buf, bytes, what] of bindings) checkBufferSize(who, label, buf, bytes, what);
}

// ---- kernel state ----

/**
 * Small uniform buffers keyed by their contents: one immutable buffer per distinct shape, so many runs can be
 * recorded before a single submit. Bounded: when full it forgets its buffers (not destroy: a recorded, unsubmitted
 * run may still use them) and lets GC free them.
 */
export class UniformCache {
  private readonly buffers = new Map<string, GPUBuffer>();

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
    private readonly capacity = 256,
  ) {}

  /** The buffer holding `words` as u32, except the indices in `f32At`, which hold f32 values. */
  get(words: readonly number[], f32At: readonly number[] = []): GPUBuffer {
    const key = words.join(',');
    let u = this.buffers.get(key);
    if (!u) {
      if (this.buffers.size >= this.capacity) this.buffers.clear();
      const data = new Uint32Array(words);
      const asF32 = new Float32Array(data.buffer);
      for (const i of f32At) asF32[i] = words[i]!;
      u = uniformBufferFrom(this.device, data, `${this.label} ${key}`);
      this.buffers.set(key, u);
    }
    return u;
  }

  destroy(): void {
    for (const u of this.buffers.values()) u.destroy();
    this.buffers.clear();
  }
}

/**
 * A kernel's pipelines, built on the first load() and shared by later calls; a failed build (a ShaderError) is not
 * kept, so the next load() tries again.
 */
export class LazyPrograms<T> {
  private promise: Promise<T> | null = null;
  private value: T | null = null;

  constructor(private readonly build: () => Promise<T>) {}

  /** Builds (once) and resolves to `owner`: the body of a kernel's init(). */
  async ready<S>(owner: S): Promise<S> {
    await this.load();
    return owner;
  }

  load(): Promise<T> {
    this.promise ??= this.build().then(
      (v) => (this.value = v),
      (e: unknown) => {
        this.promise = null;
        throw e;
      },
    );
    return this.promise;
  }

  /** The built programs; before that, throws `${where}: call \`await kernel.init()\` (or ${kernel}.create) first`. */
  require(kernel: string, where = `${kernel}.run`): T {
    if (!this.value) throw new Error(`${where}: call \`await kernel.init()\` (or ${kernel}.create) first`);
    return this.value;
  }
}

// ---- recorded plans ----

/** A value fixed at recording time, or one computed from the step a replay runs (e.g. a decode position). */
export type PerStep<T> = T | ((step: number) => T);

type RecordedCommand =
  | { pipeline: GPUComputePipeline }
  | { group: GPUBindGroup; offsets: PerStep<readonly number[]> }
  | { grid: PerStep<readonly [number, number]> };

function atStep<T>(v: PerStep<T>, step: number): T {
  return typeof v === 'function' ? (v as (step: number) => T)(step) : v;
}

/**
 * Dispatches recorded once and replayed into a real pass as often as needed: a kernel's run() records into it as
 * into any pass (bind groups and uniform buffers are made once, at recording), and `stepped()` adds commands whose
 * dynamic offsets and grids depend on the step of each replay. A replay issues only setPipeline / setBindGroup /
 * dispatchWorkgroups: no validation, no allocation. The recording holds its buffers through its bind groups, so it
 * is valid as long as they are not destroyed.
 */
export class RecordedPass implements ComputePass {
  private readonly commands: RecordedCommand[] = [];

  /** Steps a replay may run: 0 .. steps-1 (the range the stepped commands' uniform tables cover). */
  constructor(readonly steps = 1) {
    positiveInt('RecordedPass', 'steps', steps);
  }

  get length(): number {
    return this.commands.length;
  }

  setPipeline(pipeline: GPUComputePipeline): undefined {
    this.commands.push({ pipeline });
  }

  setBindGroup(index: number, group: GPUBindGroup | null, offsets?: Iterable<GPUBufferDynamicOffset>): undefined;
  setBindGroup(index: number, group: GPUBindGroup | null, data: Uint32Array, start: number, length: number): undefined;
  setBindGroup(index: number, group: GPUBindGroup | null, offsets?: Iterable<number> | Uint32Array, start?: number, length?: number): undefined {
    if (index !== 0 || !group || start !== undefined || length !== undefined) throw new Error('RecordedPass: only bind group 0 with plain dynamic offsets is recorded');
    this.commands.push({ group, offsets: [...(offsets ?? [])] });
  }

  dispatchWorkgroups(x: number, y = 1): undefined {
    this.commands.push({ grid: [x, y] });
  }

  /** One dispatch per grid, all with `group` at `offsets`; a [0, 0] grid at a step skips that dispatch there. */
  stepped(group: GPUBindGroup, offsets: PerStep<readonly number[]>, dispatches: readonly { program: ComputeProgram; grid: PerStep<readonly [number, number]> }[]): void {
    this.commands.push({ group, offsets });
    for (const d of dispatches) this.commands.push({ pipeline: d.program.pipeline }, { grid: d.grid });
  }

  /** Issues every recorded command into `pass`, the per-step ones at `step`. */
  replay(pass: ComputePass, step = 0): void {
    if (!Number.isInteger(step) || step < 0 || step >= this.steps) throw new Error(`RecordedPass.replay: step ${step} outside 0..${this.steps - 1}`);
    for (const c of this.commands) {
      if ('pipeline' in c) pass.setPipeline(c.pipeline);
      else if ('group' in c) pass.setBindGroup(0, c.group, atStep(c.offsets, step));
      else {
        const [x, y] = atStep(c.grid, step);
        if (x > 0 && y > 0) pass.dispatchWorkgroups(x, y);
      }
    }
  }
}

/**
 * Uniform words for every step 0 .. steps-1 in one buffer, one entry per `stride` bytes (the device's dynamic
 * offset alignment): bound once as a 'uniform-dynamic' binding, the step picks its entry by offset.
 */
export class UniformSteps {
  readonly buffer: GPUBuffer;
  readonly stride: number;
  /** Bytes of one entry (the binding size). */
  readonly entryBytes: number;

  constructor(
    device: GPUDevice,
    label: string,
    readonly steps: number,
    wordsAt: (step: number) => readonly number[],
    f32At: readonly number[] = [],
  ) {
    positiveInt('UniformSteps', 'steps', steps);
    const words = wordsAt(0).length;
    this.entryBytes = Math.max(16, Math.ceil((words * 4) / 16) * 16);
    this.stride = Math.ceil(this.entryBytes / device.limits.minUniformBufferOffsetAlignment) * device.limits.minUniformBufferOffsetAlignment;
    const data = new ArrayBuffer(this.stride * steps);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    for (let s = 0; s < steps; s++) {
      const w = wordsAt(s);
      if (w.length !== words) throw new Error(`UniformSteps ${label}: step ${s} has ${w.length} words, step 0 has ${words}`);
      const base = (s * this.stride) / 4;
      u32.set(w, base);
      for (const i of f32At) f32[base + i] = w[i]!;
    }
    this.buffer = device.createBuffer({ label, size: data.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(this.buffer, 0, data);
  }

  /** The binding: one entry, placed by the dynamic offset. */
  get binding(): GPUBufferBinding {
    return { buffer: this.buffer, offset: 0, size: this.entryBytes };
  }

  /** The dynamic offsets of step `s`. */
  offsets(s: number): readonly number[] {
    return [s * this.stride];
  }

  destroy(): void {
    this.buffer.destroy();
  }
}

/**
 * A checked kernel run before it is bound: one or more dispatches sharing one bind group (binding 0 the uniform
 * words, then `bindings`); a dispatch with a [0, 0] grid is skipped (e.g. a merge pass a shape does not need).
 */
export interface PreparedRun {
  dispatches: readonly { program: ComputeProgram; grid: readonly [number, number] }[];
  bindings: (GPUBuffer | GPUBufferBinding)[];
  words: readonly number[];
  /** Indices of `words` that hold f32 values. */
  f32At?: readonly number[];
}

/** Records a prepared run now, its uniform binding (a 'uniform-dynamic' one) at offset 0 of `uniform`. */
export function recordPrepared(target: GpuTarget, label: string, device: GPUDevice, run: PreparedRun, uniform: GPUBuffer): void {
  const group = bindBuffers(device, run.dispatches[0]!.program.layout, [uniform, ...run.bindings], label);
  recordCompute(target, label, (pass) => {
    pass.setBindGroup(0, group, [0]);
    for (const d of run.dispatches) {
      if (d.grid[0] === 0 || d.grid[1] === 0) continue;
      pass.setPipeline(d.program.pipeline);
      pass.dispatchWorkgroups(d.grid[0], d.grid[1]);
    }
  });
}

/**
 * A kernel's per-step uniform tables, shared by its recordings whose runs have the same words at the first, middle
 * and last step: callers record runs whose words are one function of the step (e.g. the same attention shape in
 * every layer of a decoder, at the layer's own buffers), so that is where they agree. A few shapes per kernel.
 */
export class StepTables {
  private readonly tables = new Map<string, { uniforms: UniformSteps; grids: (readonly [number, number])[][] }>();

  constructor(
    private readonly device: GPUDevice,
    private readonly label: string,
  ) {}

  /**
   * Records into `rec` the run `prepareAt(step)` for each replay's step: the bind group is made from the last
   * step's bindings (the largest extents), the words and grids of every step go into a table built on first use.
   * Throws if a step's programs differ from the last step's.
   */
  record(rec: RecordedPass, prepareAt: (step: number) => PreparedRun): void {
    const steps = rec.steps;
    const first = prepareAt(0);
    const last = prepareAt(steps - 1);
    const key = [steps, first.words, prepareAt(steps >> 1).words, last.words].join('|');
    let t = this.tables.get(key);
    if (!t) {
      const runs = Array.from({ length: steps }, (_, s) => (s === 0 ? first : s === steps - 1 ? last : prepareAt(s)));
      if (runs.some((r) => r.dispatches.some((d, i) => d.program !== last.dispatches[i]?.program))) {
        throw new Error(`${this.label}: the kernel's programs change between steps 0 and ${steps - 1}; record a run that keeps its path`);
      }
      t = { uniforms: new UniformSteps(this.device, this.label, steps, (s) => runs[s]!.words, last.f32At), grids: runs.map((r) => r.dispatches.map((d) => d.grid)) };
      this.tables.set(key, t);
    }
    const { uniforms, grids } = t;
    const group = bindBuffers(this.device, last.dispatches[0]!.program.layout, [uniforms.binding, ...last.bindings], `${this.label} (recorded)`);
    rec.stepped(group, (s) => uniforms.offsets(s), last.dispatches.map((d, i) => ({ program: d.program, grid: (s: number) => grids[s]![i]! })));
  }

  destroy(): void {
    for (const t of this.tables.values()) t.uniforms.destroy();
    this.tables.clear();
  }
}
