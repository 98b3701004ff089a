// Plumbing shared by the kernel wrappers in src/gpu/kernels: where a run is recorded (device, encoder or open
// pass), 2D workgroup grids, argument and binding checks with readable errors, per-shape uniform buffers, and the
// build-once pipeline promise behind every kernel's init(). No WGSL and no kernel knowledge here.
import { align4, uniformBufferFrom } from './buffers.ts';
import type { ComputeProgram } from './pipeline.ts';

/** What run() accepts to record into: a device (encode + submit now), a command encoder, or an open compute pass. */
export type GpuTarget = GPUDevice | GPUCommandEncoder | GPUComputePassEncoder;

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
