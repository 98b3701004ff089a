// In-app self-test cases for the dense linear layer in the form and arithmetic this device runs (tiled
// shaders/matmul.wgsl on a GPU, in f16 for f16 weights with shader-f16; direct matmul-direct.wgsl on a CPU adapter):
// random x [M, K], W [N, K] (f32 or f16
// storage), bias [N]; reference: linear() on the weights the GPU holds. Small sizes: the page may run on SwiftShader.
// Also the harness the other weight-matrix cases (linear-q4, matvec) share: the random problem and its measurement.
import { linear } from '../../reference/linear.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import { shaderF16If, timed, withGpuObjects, type SelfTestCase, type SelfTestMeasurement } from '../selftest-support.ts';
import { LinearKernel, roundToF16, tiledArithmetic, toF16Weights, type LinearArithmetic } from './linear.ts';
import type { DenseStorage } from '../storage.ts';
import { firstRows } from '../tensor.ts';

/** A seeded problem y = x·Wᵀ + b: x [M, K] in [-1, 1), W [N, K] in ±1/sqrt(K), b [N] in ±0.5. */
export function randomLinearProblem(M: number, K: number, N: number, seed: number): { x: Float32Array; w: Float32Array; b: Float32Array } {
  const rng = seededRandom(seed);
  const x = randomF32(M * K, rng);
  const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
  const b = randomF32(N, rng, 0.5);
  return { x, w, b };
}

/**
 * A residual case's starting y [M, N] (a stream in ±2, seeded after the problem) and its expected result: that
 * stream plus the product.
 */
export function residualStream(product: Float32Array, seed: number): { y0: Float32Array; expected: Float32Array } {
  const y0 = randomF32(product.length, seededRandom(seed), 2);
  return { y0, expected: y0.map((v, i) => v + product[i]!) };
}

/** The GPU buffers of a weight-matrix case: `scales` only for int4 weights. */
export interface LinearCaseBuffers {
  x: GPUBuffer;
  w: GPUBuffer;
  scales: GPUBuffer | null;
  b: GPUBuffer;
  y: GPUBuffer;
  /** `data.extra`, uploaded in order (e.g. a second weight matrix and its scales). */
  extra: GPUBuffer[];
}

/**
 * The tolerance of a case by the kernel's arithmetic. f32: atol = rtol = 1e-4 (the weights' values are exact in
 * f32, so only the f32 accumulation differs from the f64 reference). f16 (tiled, 32 products per f16 sum): x and each
 * product and slice sum round to f16 (u = 2^-11); with these problems (sum |x w| about 3 over K = 160) a correct
 * kernel is off by about 1e-4 rms and 6e-4 at most, a dropped or misplaced term by up to |x w| ~ 0.08.
 */
export function arithmeticTolerance(arithmetic: LinearArithmetic): { atol: number; rtol: number } {
  return arithmetic === 'f16' ? { atol: 4e-3, rtol: 4e-3 } : { atol: 1e-4, rtol: 1e-4 };
}

/**
 * Uploads x, the weights as stored (`w`: f32 values, f16 bits or int4 words; `scales` for int4) and b, records
 * `record` (which writes y [M, N]) on the kernel once it is built, and compares y with `expected` within `tol`
 * (default: f32 arithmetic's). `y0`: what y holds before the run (a residual case adds into it), else zeros.
 */
export async function measureLinearCase<Kernel extends { destroy(): void }>(
  device: GPUDevice,
  kernel: Promise<Kernel>,
  data: { x: Float32Array; w: ArrayBufferView; scales?: ArrayBufferView | null; b: Float32Array; extra?: readonly ArrayBufferView[]; y0?: Float32Array },
  [M, K, N]: readonly [number, number, number],
  expected: Float32Array,
  record: (kernel: Kernel, bufs: LinearCaseBuffers) => void,
  tol = arithmeticTolerance('f32'),
): Promise<SelfTestMeasurement> {
  return withGpuObjects(device, async (gpu) => {
    const k = gpu.own(await kernel);
    const bufs: LinearCaseBuffers = {
      x: gpu.upload(data.x, 'selftest x'),
      w: gpu.upload(data.w, 'selftest w'),
      scales: data.scales ? gpu.upload(data.scales, 'selftest scales') : null,
      b: gpu.upload(data.b, 'selftest b'),
      y: data.y0 ? gpu.upload(data.y0, 'selftest y') : gpu.alloc(M * N * 4, 'selftest y'),
      extra: (data.extra ?? []).map((d, i) => gpu.upload(d, `selftest extra ${i}`)),
    };
    const [y, gpuMs] = await timed(
      device,
      () => record(k, bufs),
      () => readF32(device, bufs.y, M * N),
    );
    return { comparison: compareArrays(y, expected, tol), shape: [M, N], gpuMs, flops: 2 * M * K * N };
  });
}

/** How the f16-stored cases compute: as the engine runs them (tiledArithmetic). */
export const F16_MATH = 'f16 products in 32-deep slices summed in f32 on a GPU with shader-f16, else f32 accumulation';

function linearCase(opts: { id: string; name: string; weights: DenseStorage; M: number; K: number; N: number; seed: number }): SelfTestCase {
  const { M, K, N, weights } = opts;
  return {
    id: opts.id,
    name: opts.name,
    description: `y = x·Wᵀ + b, x [${M}×${K}], W [${N}×${K}] ${weights}, ${weights === 'f16' ? F16_MATH : 'f32 accumulation'}`,
    requires: shaderF16If(weights === 'f16'),
    async run({ device }) {
      const { x, w, b } = randomLinearProblem(M, K, N, opts.seed);
      const expected = linear(x, M, K, weights === 'f16' ? roundToF16(w) : w, N, b);
      const data = { x, w: weights === 'f16' ? toF16Weights(w) : w, b };
      const arithmetic = tiledArithmetic(weights, device);
      return measureLinearCase(
        device,
        LinearKernel.create(device, { weights, arithmetic }),
        data,
        [M, K, N],
        expected,
        (kernel, g) => kernel.run(device, { x: firstRows(g.x, M, K), w: { name: 'w', buffer: g.w, rows: N, cols: K }, bias: g.b, y: g.y }),
        arithmeticTolerance(arithmetic),
      );
    },
  };
}

export const LINEAR_SELF_TEST_CASES: SelfTestCase[] = [
  linearCase({ id: 'linear-f32', name: 'Linear f32 (tiled matmul)', weights: 'f32', M: 77, K: 160, N: 96, seed: 1 }),
  linearCase({ id: 'linear-f16w', name: 'Linear f16 weights (tiled matmul)', weights: 'f16', M: 77, K: 160, N: 96, seed: 2 }),
];
