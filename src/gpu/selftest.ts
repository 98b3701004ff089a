// GPU self-test: each case runs one kernel on the current device with seeded random data and compares it
// with the CPU reference. Data-driven: a later kernel adds an entry to SELF_TEST_CASES (the UI and tests list
// whatever is there). No React, no DOM: usable from the app, the CLI and tests.
import { linear } from '../reference/linear.ts';
import { compareArrays, formatComparison, type Comparison, type Tolerance } from './compare.ts';
import { LinearKernel, roundToF16, toF16Weights } from './kernels/linear.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from './buffers.ts';
import { mulberry32 as seededRandom, randomF32 } from '../util/seeded-random.ts';

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

async function timed<T>(device: GPUDevice, f: () => void, read: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  f();
  await device.queue.onSubmittedWorkDone();
  const ms = performance.now() - t0;
  return [await read(), ms];
}

/** Linear layer case: random x [M, K], W [N, K] (f32 or f16 storage), bias [N]; reference: linear(). */
function linearCase(opts: { id: string; name: string; weights: 'f32' | 'f16'; M: number; K: number; N: number; seed: number }): SelfTestCase {
  const { M, K, N, weights } = opts;
  return {
    id: opts.id,
    name: opts.name,
    description: `y = x·Wᵀ + b, x [${M}×${K}], W [${N}×${K}] ${weights}, f32 accumulation`,
    requires: weights === 'f16' ? ['shader-f16'] : [],
    async run({ device }) {
      const rng = seededRandom(opts.seed);
      const x = randomF32(M * K, rng);
      const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
      const b = randomF32(N, rng, 0.5);
      const expected = linear(x, M, K, weights === 'f16' ? roundToF16(w) : w, N, b);
      const kernel = await LinearKernel.create(device, { weights });
      const bufs = [
        storageBufferFrom(device, x, 'selftest x'),
        storageBufferFrom(device, weights === 'f16' ? toF16Weights(w) : w, 'selftest w'),
        storageBufferFrom(device, b, 'selftest b'),
        createStorageBuffer(device, M * N * 4, 'selftest y'),
      ];
      const [xb, wb, bb, yb] = bufs;
      try {
        const [y, gpuMs] = await timed(
          device,
          () => kernel.run(device, xb, wb, bb, yb, M, K, N),
          () => readF32(device, yb, M * N),
        );
        return { comparison: compareArrays(y, expected, { atol: 1e-4, rtol: 1e-4 }), shape: [M, N], gpuMs, flops: 2 * M * K * N };
      } finally {
        for (const buf of bufs) buf.destroy();
        kernel.destroy();
      }
    },
  };
}

/** Every self-test, in display order. Sizes stay small: the page may run on a CPU WebGPU (SwiftShader). */
export const SELF_TEST_CASES: readonly SelfTestCase[] = [
  linearCase({ id: 'linear-f32', name: 'Linear f32 (tiled matmul)', weights: 'f32', M: 77, K: 160, N: 96, seed: 1 }),
  linearCase({ id: 'linear-f16w', name: 'Linear f16 weights (tiled matmul)', weights: 'f16', M: 77, K: 160, N: 96, seed: 2 }),
];

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
export async function runSelfTests(
  ctx: SelfTestContext,
  cases: readonly SelfTestCase[] = SELF_TEST_CASES,
  onResult?: (r: SelfTestResult) => void,
): Promise<SelfTestResult[]> {
  const results: SelfTestResult[] = [];
  for (const c of cases) {
    const r = await runSelfTest(ctx, c);
    results.push(r);
    onResult?.(r);
  }
  return results;
}
