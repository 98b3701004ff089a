// The tiled linear kernels' f16 arithmetic (LinearArithmetic 'f16': x and W slices staged as f16, each 32-deep
// slice summed in f16, double-buffered), against the f64 CPU reference linear(), on adapters with shader-f16;
// without it, asking for f16 arithmetic must fail with a clear error.
// - Exact: integer x (|x| <= 2) and integer weights (|w| <= 7; int4 groups with scale exactly 1), so every
//   product, slice sum (<= 32 * 14) and f32 total is exact in f16 / f32: the result must equal the reference to
//   1e-6. Any dropped, repeated or misplaced term, a stale double-buffer slice or a wrong edge fails. M, N and K
//   are not multiples of the 64x64 tile; K = 160 is 5 slices (the double buffer's two stages, an odd count);
//   bias, the residual epilogue and a column window of y are on.
// - Rounding: random real data at K = 1024. f16 rounds x and each product and slice sum (unit roundoff
//   u = 2^-11); per output |err| <= (BK + 2) u sum_k |x_k w_k| (BK = 32 terms per f16 sum) bounds it; the
//   root-mean-square error must also stay under 0.2 u * rms(sum_k |x_k w_k|): on lavapipe a correct kernel
//   measures 0.08 u, one that sums the whole K in f16 (no per-slice f32 flush) 0.40 u.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../node/gpu.ts';
import { linear } from '../../reference/linear.ts';
import { mulberry32, randomF32 } from '../../util/seeded-random.ts';
import { readF32, storageBufferFrom } from '../buffers.ts';
import { isCpuDevice, useGpuKernelShapes, type GpuContext } from '../device.ts';
import { decodeRows, encodeRows, type Storage } from '../storage.ts';
import { firstRows } from '../tensor.ts';
import { LinearQ4Kernel } from './linear-q4.ts';
import { LinearKernel, tiledArithmetic, type LinearRunOptions } from './linear.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const U = 2 ** -11;
const BK = 32;

interface Kernel {
  run: LinearKernel['run'];
  destroy(): void;
}

const KERNELS: ReadonlyArray<{ storage: Storage; make: (device: GPUDevice) => Promise<Kernel> }> = [
  { storage: 'f16', make: (device) => LinearKernel.create(device, { form: 'tiled', weights: 'f16', arithmetic: 'f16' }) },
  { storage: 'f32', make: (device) => LinearKernel.create(device, { form: 'tiled', arithmetic: 'f16' }) },
  { storage: 'q4f16', make: (device) => LinearQ4Kernel.create(device, { form: 'tiled', scales: 'f16', arithmetic: 'f16' }) },
  { storage: 'q4f32', make: (device) => LinearQ4Kernel.create(device, { form: 'tiled', scales: 'f32', arithmetic: 'f16' }) },
];

const randomInts = (n: number, rng: () => number, max: number) => Float32Array.from({ length: n }, () => Math.floor(rng() * (2 * max + 1)) - max);

interface Case {
  M: number;
  K: number;
  N: number;
  x: Float32Array;
  w: Float32Array;
  b: Float32Array;
  y0: Float32Array;
  ldy: number;
  yOff: number;
}

/** Runs the kernel with bias and residual into a y window; returns what the GPU wrote and the f64 reference. */
async function runCase(kernel: Kernel, storage: Storage, c: Case): Promise<{ got: Float32Array; expected: Float32Array; absSum: Float64Array }> {
  const { device } = ctx;
  const { M, K, N, ldy, yOff } = c;
  const owned: GPUBuffer[] = [];
  const upload = (data: ArrayBufferView, name: string) => {
    const buf = storageBufferFrom(device, data, name);
    owned.push(buf);
    return buf;
  };
  const enc = encodeRows(storage, c.w, N, K);
  const effective = decodeRows(storage, enc, N, K);
  const y = upload(c.y0, 'y');
  const opts: LinearRunOptions = { yRowStride: ldy, yColOffset: yOff, residual: true };
  try {
    const w = { name: 'w', buffer: upload(enc.data, 'w'), ...(enc.scales ? { scales: upload(enc.scales, 'w scales') } : {}), rows: N, cols: K };
    kernel.run(device, { x: firstRows(upload(c.x, 'x'), M, K), w, bias: upload(c.b, 'b'), y }, opts);
    const got = await readF32(device, y, c.y0.length);
    const product = linear(c.x, M, K, effective, N, c.b);
    const expected = Float32Array.from(c.y0);
    const absSum = new Float64Array(c.y0.length);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const at = yOff + m * ldy + n;
        expected[at] += product[m * N + n]!;
        for (let k = 0; k < K; k++) absSum[at] += Math.abs(c.x[m * K + k]! * effective[n * K + k]!);
      }
    }
    return { got, expected, absSum };
  } finally {
    for (const buf of owned) buf.destroy();
    kernel.destroy();
  }
}

/** A case with y a window (offset 5, row stride N + 9) of a buffer filled with y0. */
function makeCase(M: number, K: number, N: number, x: Float32Array, w: Float32Array, b: Float32Array, y0: (n: number) => Float32Array): Case {
  const ldy = N + 9;
  const yOff = 5;
  return { M, K, N, x, w, b, y0: y0(yOff + (M - 1) * ldy + N + 3), ldy, yOff };
}

describe('tiled linear kernels, f16 arithmetic', () => {
  it('without shader-f16 the kernels refuse f16 arithmetic with a clear error', async (t) => {
    if (ctx.device.features.has('shader-f16')) return t.skip();
    expect(() => new LinearKernel(ctx.device, { form: 'tiled', arithmetic: 'f16' })).toThrow(/f16 arithmetic needs.*shader-f16/);
    expect(() => new LinearQ4Kernel(ctx.device, { form: 'tiled', arithmetic: 'f16' })).toThrow(/f16 arithmetic needs.*shader-f16/);
  });

  it('the engine takes it for f16-stored weights on a GPU with shader-f16 only (tiledArithmetic)', async () => {
    const storages = ['f32', 'f16', 'q4f32', 'q4f16'] as const;
    const expected = (gpuShapes: boolean) =>
      storages.map((s) => (gpuShapes && ctx.device.features.has('shader-f16') && (s === 'f16' || s === 'q4f16') ? 'f16' : 'f32'));
    expect(storages.map((s) => tiledArithmetic(s, ctx.device))).toEqual(expected(!isCpuDevice(ctx.device)));
    const gpuShaped = await createNodeGpu();
    try {
      useGpuKernelShapes(gpuShaped.device);
      expect(storages.map((s) => tiledArithmetic(s, gpuShaped.device))).toEqual(expected(true));
    } finally {
      gpuShaped.device.destroy();
    }
  });

  it('is a form of the tiled kernel only', () => {
    expect(() => new LinearQ4Kernel(ctx.device, { form: 'direct', arithmetic: 'f16' })).toThrow(/tiled kernel, not of the direct one/);
  });

  for (const { storage, make } of KERNELS) {
    it(`${storage} weights: exact on integer data (M=70, K=160, N=72, bias, residual, y window)`, async (t) => {
      if (!ctx.device.features.has('shader-f16')) return t.skip();
      const M = 70;
      const K = 160;
      const N = 72;
      const rng = mulberry32(11);
      const w = randomInts(N * K, rng, 7);
      for (let g = 0; g < (N * K) / 32; g++) w[g * 32 + (g % 32)] = g % 2 ? 7 : -7; // every int4 group's scale is 1
      const c = makeCase(M, K, N, randomInts(M * K, rng, 2), w, randomInts(N, rng, 9), (n) => randomInts(n, rng, 50));
      const { got, expected } = await runCase(await make(ctx.device), storage, c);
      let worst = 0;
      for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - expected[i]!));
      expect(worst, `${storage}: largest |gpu - reference| over the y buffer`).toBeLessThanOrEqual(1e-6);
    });

    it(`${storage} weights: rounding within the f16 bounds on real data (M=64, K=1024, N=64)`, async (t) => {
      if (!ctx.device.features.has('shader-f16')) return t.skip();
      const M = 64;
      const K = 1024;
      const N = 64;
      const rng = mulberry32(5);
      const c = makeCase(M, K, N, randomF32(M * K, rng, 1), randomF32(N * K, rng, 1 / Math.sqrt(K)), randomF32(N, rng, 0.5), (n) => randomF32(n, rng, 2));
      const { got, expected, absSum } = await runCase(await make(ctx.device), storage, c);
      let sq = 0;
      let sqAbs = 0;
      let outputs = 0;
      for (let i = 0; i < got.length; i++) {
        const err = Math.abs(got[i]! - expected[i]!);
        const bound = (BK + 2) * U * absSum[i]! + 1e-5; // f32 adds of y0 and b: far below 1e-5
        if (!(err <= bound)) throw new Error(`${storage}: element ${i}: |${got[i]} - ${expected[i]}| = ${err} > ${bound}`);
        if (absSum[i]! > 0) {
          sq += err * err;
          sqAbs += absSum[i]! ** 2;
          outputs++;
        }
      }
      expect(outputs).toBe(M * N);
      expect(Math.sqrt(sq / outputs), `${storage}: rms error`).toBeLessThanOrEqual(0.2 * U * Math.sqrt(sqAbs / outputs));
    });
  }
});
