// What every GPU self-test case shares: the case and result types, the runner, and the per-case plumbing (timing a
// GPU run, GPU objects destroyed when the case ends). The case lists live next to their kernels
// (src/gpu/kernels/*.selftest.ts) and are gathered in selftest.ts; they import from here, not from selftest.ts,
// so the aggregate can import every one of them without an import cycle. No React, no DOM.
import { formatComparison, type Comparison, type Tolerance } from './compare.ts';
import { createStorageBuffer, storageBufferFrom } from './buffers.ts';

export interface SelfTestContext {
  device: GPUDevice;
}

/** What a case measured. */
export interface SelfTestMeasurement {
  comparison: Comparison;
  /** Shape of the compared output, e.g. [M, N]. */
  shape: number[];
  /** Wall time of the GPU run (submit to completion, pipelines already built), ms. */
  gpuMs: number;
  /** Floating-point operations of that run, for GFLOP/s (optional). */
  flops?: number;
}

export interface SelfTestCase {
  id: string;
  /** Short label, e.g. 'Linear f32 (tiled matmul)'. */
  name: string;
  /** One line: what runs, at which size. */
  description: string;
  /** Device features the case needs; it is reported as skipped without them. */
  requires?: readonly GPUFeatureName[];
  run(ctx: SelfTestContext): Promise<SelfTestMeasurement>;
}

export type SelfTestStatus = 'pass' | 'fail' | 'skipped' | 'error';

export interface SelfTestResult {
  id: string;
  name: string;
  status: SelfTestStatus;
  /** One line for people: the comparison summary, the skip reason or the error. */
  detail: string;
  maxAbs?: number;
  maxRel?: number;
  tolerance?: Tolerance;
  gpuMs?: number;
  gflops?: number;
}

/** Runs one case; never throws (errors become status 'error'). */
export async function runSelfTest(ctx: SelfTestContext, c: SelfTestCase): Promise<SelfTestResult> {
  const missing = (c.requires ?? []).filter((f) => !ctx.device.features.has(f));
  if (missing.length > 0) {
    return { id: c.id, name: c.name, status: 'skipped', detail: `skipped: this GPU has no ${missing.join(', ')}` };
  }
  try {
    const m = await c.run(ctx);
    const cmp = m.comparison;
    return {
      id: c.id,
      name: c.name,
      status: cmp.ok ? 'pass' : 'fail',
      detail: formatComparison(cmp, { name: c.id, shape: m.shape }),
      maxAbs: cmp.maxAbs,
      maxRel: cmp.maxRel,
      tolerance: cmp.tolerance,
      gpuMs: m.gpuMs,
      gflops: m.flops !== undefined && m.gpuMs > 0 ? m.flops / m.gpuMs / 1e6 : undefined,
    };
  } catch (e) {
    return { id: c.id, name: c.name, status: 'error', detail: e instanceof Error ? e.message : String(e) };
  }
}

/** Runs the cases one after another, reporting each result as it arrives. */
export async function runSelfTests(ctx: SelfTestContext, cases: readonly SelfTestCase[], onResult?: (r: SelfTestResult) => void): Promise<SelfTestResult[]> {
  const results: SelfTestResult[] = [];
  for (const c of cases) {
    const r = await runSelfTest(ctx, c);
    results.push(r);
    onResult?.(r);
  }
  return results;
}

// ---- plumbing for the cases ----

/** `requires` of a case that needs shader-f16 only when `f16` holds (an f16 variant of an f32 case). */
export function shaderF16If(f16: boolean): readonly GPUFeatureName[] {
  return f16 ? ['shader-f16'] : [];
}

/**
 * Records the GPU work (`record`), waits for the queue, then reads the result back: [result, ms from record to
 * completion]. The readback is not timed.
 */
export async function timed<T>(device: GPUDevice, record: () => void, read: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  record();
  await device.queue.onSubmittedWorkDone();
  const ms = performance.now() - t0;
  return [await read(), ms];
}

/** Creates GPU objects for a case and destroys them all when the case ends (see withGpuObjects). */
export interface GpuObjects {
  /** A storage buffer holding a copy of `data`. */
  upload(data: ArrayBufferView, label: string): GPUBuffer;
  /** A zero-filled storage buffer of `byteLength` bytes. */
  alloc(byteLength: number, label: string): GPUBuffer;
  /** Anything with destroy() (a kernel, a table) to destroy with the rest; returns it. */
  own<T extends { destroy(): void }>(thing: T): T;
}

/** Runs `body` with a GpuObjects and destroys what it created or was given, whether `body` returns or throws. */
export async function withGpuObjects<T>(device: GPUDevice, body: (gpu: GpuObjects) => Promise<T>): Promise<T> {
  const owned: { destroy(): void }[] = [];
  const own = <U extends { destroy(): void }>(thing: U): U => {
    owned.push(thing);
    return thing;
  };
  try {
    return await body({
      upload: (data, label) => own(storageBufferFrom(device, data, label)),
      alloc: (byteLength, label) => own(createStorageBuffer(device, byteLength, label)),
      own,
    });
  } finally {
    for (const thing of owned.reverse()) thing.destroy();
  }
}
