// Both forms of the int4 linear kernel (tiled: shaders/matmul-q4.wgsl; direct: shaders/matmul-q4-direct.wgsl) on
// this machine's adapter against the f64 CPU reference linear() on the DEQUANTIZED weights: the kernel must
// reproduce x · deq(W)^T; the quantization error itself is not the kernel's and is checked in src/quant/q4.test.ts.
// Tolerance: atol 1e-4 + rtol 1e-4 (the f32 linear kernel's): f32 accumulation over K <= 96 terms of
// |x| <= 1, |deq(w)| <= 1/sqrt(K); the dequantized weights themselves are exact in f32 ((q - 7) * scale is one
// f32 multiplication, the same one the reference data went through).
// Both scale dtypes RUN here: f16 scales are read through unpack2x16float and need no shader-f16.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { dequantizeQ4, quantizeQ4, type Q4ScaleDType } from '../../quant/q4.ts';
import { linear } from '../../reference/linear.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { ShaderError } from '../pipeline.ts';
import { runSelfTest } from '../selftest-support.ts';
import { LINEAR_Q4_SELF_TEST_CASES } from './linear-q4.selftest.ts';
import { LinearQ4Kernel, linearQ4OnGpu, linearQ4ShaderSource, q4ScaleData } from './linear-q4.ts';
import type { LinearForm } from './linear.ts';
import { firstRows } from '../tensor.ts';

const TOL: Tolerance = { atol: 1e-4, rtol: 1e-4 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

function problem(M: number, K: number, N: number, withBias: boolean, seed: number, scaleDType: Q4ScaleDType = 'f32') {
  const rng = seededRandom(seed);
  const x = randomF32(M * K, rng, 1);
  const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
  const b = withBias ? randomF32(N, rng, 0.5) : undefined;
  const q = quantizeQ4(w, N, K, { scaleDType });
  const deq = dequantizeQ4(q.qWeight, q.qScale, N, K);
  return { x, w, q, b, deq, expected: linear(x, M, K, deq, N, b) };
}

const expectClose = expectCloseWith(TOL);

/** Per form: an edit that reverses the nibble order within each 4-nibble half, and the kernel's name. */
const NIBBLE_REVERSAL: Record<LinearForm, [string, string]> = {
  tiled: ['let sh = vec4<u32>(8u * wh);', 'let sh = vec4<u32>(24u - 8u * wh);'],
  direct: ['const LO = vec4<u32>(0u, 4u, 8u, 12u);', 'const LO = vec4<u32>(12u, 8u, 4u, 0u);'],
};

for (const form of ['tiled', 'direct'] as const) describe(`LinearQ4Kernel (${form}) vs linear(x, deq(W))`, () => {
  let i = 0;
  for (const M of [1, 7, 65]) {
    for (const K of [32, 96]) {
      for (const N of [1, 33, 300]) {
        const withBias = i++ % 2 === 0;
        const scaleDType: Q4ScaleDType = i % 3 === 0 ? 'f16' : 'f32';
        it(`M=${M} K=${K} N=${N} ${withBias ? 'with' : 'without'} bias, ${scaleDType} scales`, async () => {
          const p = problem(M, K, N, withBias, M * 1000 + K * 10 + N, scaleDType);
          const y = await linearQ4OnGpu(ctx.device, p.x, M, K, p.q, N, p.b, { form });
          expectClose(y, p.expected, `linear-q4 ${scaleDType}`, [M, N]);
        });
      }
    }
  }

  it('both scale dtypes, with and without bias, on one odd shape (M=67, K=64, N=70)', async () => {
    for (const scaleDType of ['f32', 'f16'] as const) {
      for (const withBias of [false, true]) {
        const p = problem(67, 64, 70, withBias, 77, scaleDType);
        const y = await linearQ4OnGpu(ctx.device, p.x, 67, 64, p.q, 70, p.b, { form });
        expectClose(y, p.expected, `linear-q4 ${scaleDType} bias=${withBias}`, [67, 70]);
      }
    }
  });

  it('K = 4096 (Llama hidden), M = 1, both scale dtypes (atol 2e-4: 4096-term f32 sums, outputs ~0.6)', async () => {
    for (const scaleDType of ['f32', 'f16'] as const) {
      const p = problem(1, 4096, 33, true, 4096, scaleDType);
      const y = await linearQ4OnGpu(ctx.device, p.x, 1, 4096, p.q, 33, p.b, { form });
      expectClose(y, p.expected, `linear-q4 ${scaleDType} K=4096`, [1, 33], { atol: 2e-4, rtol: 1e-4 });
    }
  });

  it('CLIP-like 600 rows with a longer K (M=600, K=256, N=40)', async () => {
    const p = problem(600, 256, 40, true, 600);
    const y = await linearQ4OnGpu(ctx.device, p.x, 600, 256, p.q, 40, p.b, { form });
    expectClose(y, p.expected, 'linear-q4', [600, 40]);
  });

  it('all-zero groups and extreme codes (0 and 14) dequantize right on the GPU', async () => {
    const [M, K, N] = [3, 96, 5];
    const rng = seededRandom(5);
    const w = randomF32(N * K, rng, 0.3);
    w.fill(0, 32, 64); // row 0, group 1 all zero
    w.fill(0, K * 2, K * 3); // row 2 all zero
    w[K + 5] = 1; // row 1: a lone large weight -> code 14, the rest near 7
    w[K + 40] = -1; // -> code 0
    const q = quantizeQ4(w, N, K);
    const x = randomF32(M * K, rng);
    const expected = linear(x, M, K, dequantizeQ4(q.qWeight, q.qScale, N, K), N);
    const y = await linearQ4OnGpu(ctx.device, x, M, K, q, N, null, { form });
    expectClose(y, expected, 'linear-q4 zero groups', [M, N]);
    for (let m = 0; m < M; m++) expect(y[m * N + 2]).toBe(0);
  });

  it('the comparison does fail when the nibble order is reversed in the shader (the test can fail)', async () => {
    const [from, to] = NIBBLE_REVERSAL[form];
    const broken = linearQ4ShaderSource(form).replace(from, to);
    expect(broken).not.toBe(linearQ4ShaderSource(form));
    const [M, K, N] = [5, 64, 9];
    const p = problem(M, K, N, false, 3);
    const kernel = await LinearQ4Kernel.create(ctx.device, { form, shader: { name: `${form} int4 kernel (reversed nibbles)`, code: broken } });
    const bufs = [storageBufferFrom(ctx.device, p.x), storageBufferFrom(ctx.device, p.q.qWeight), storageBufferFrom(ctx.device, p.q.qScale), createStorageBuffer(ctx.device, M * N * 4)];
    kernel.run(ctx.device, { x: firstRows(bufs[0]!, M, K), w: { name: 'w', buffer: bufs[1]!, scales: bufs[2]!, rows: N, cols: K }, bias: null, y: bufs[3]! });
    const c = compareArrays(await readF32(ctx.device, bufs[3]!, M * N), p.expected, TOL);
    expect(c.ok).toBe(false);
    for (const b of bufs) b.destroy();
    kernel.destroy();
  });

  it('tiles of 16 rows for M <= 16 in the direct form only (M = 1 and 7 above run them there)', async () => {
    const kernel = new LinearQ4Kernel(ctx.device, { form });
    expect([1, 16, 17, 577].map((M) => kernel.tileRows(M))).toEqual(form === 'direct' ? [16, 16, 64, 64] : [64, 64, 64, 64]);
  });

  it('folds a large tile count into a 2D grid (surplus workgroups exit)', async () => {
    const [M, K, N] = [200, 32, 300]; // 4 x 5 = 20 tiles
    const p = problem(M, K, N, true, 7);
    const kernel = await LinearQ4Kernel.create(ctx.device, { maxWorkgroupsPerDimension: 6, form });
    expect(kernel.dispatchSize(M, N)).toEqual([6, 4]);
    const bufs = [p.x, p.q.qWeight, p.q.qScale, p.b!].map((a) => storageBufferFrom(ctx.device, a));
    const yb = createStorageBuffer(ctx.device, M * N * 4);
    kernel.run(ctx.device, { x: firstRows(bufs[0]!, M, K), w: { name: 'w', buffer: bufs[1]!, scales: bufs[2]!, rows: N, cols: K }, bias: bufs[3]!, y: yb });
    expectClose(await readF32(ctx.device, yb, M * N), p.expected, 'linear-q4 (folded grid)', [M, N]);
    for (const b of [...bufs, yb]) b.destroy();
    kernel.destroy();
  });

  it('fills y from weight row blocks with yColOffset / yRowStride, recorded into one pass', async () => {
    const [M, K, N] = [9, 64, 70];
    const split = 40;
    for (const scaleDType of ['f32', 'f16'] as const) {
      const p = problem(M, K, N, true, 11, scaleDType);
      const kernel = await LinearQ4Kernel.create(ctx.device, { scales: scaleDType, form });
      const g = K / 32;
      const sd = q4ScaleData(p.q.qScale, scaleDType);
      const bufs = [
        p.x,
        p.q.qWeight.subarray(0, (split * K) / 8),
        p.q.qWeight.subarray((split * K) / 8),
        sd.subarray(0, split * g),
        sd.subarray(split * g),
        p.b!.subarray(0, split),
        p.b!.subarray(split),
      ].map((a) => storageBufferFrom(ctx.device, a));
      const [xb, w1, w2, s1, s2, b1, b2] = bufs as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
      const yb = createStorageBuffer(ctx.device, M * N * 4);
      const encoder = ctx.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      kernel.run(pass, { x: firstRows(xb, M, K), w: { name: 'w', buffer: w1, scales: s1, rows: split, cols: K }, bias: b1, y: yb }, { yRowStride: N });
      kernel.run(pass, { x: firstRows(xb, M, K), w: { name: 'w', buffer: w2, scales: s2, rows: N - split, cols: K }, bias: b2, y: yb }, { yRowStride: N, yColOffset: split });
      pass.end();
      ctx.device.queue.submit([encoder.finish()]);
      expectClose(await readF32(ctx.device, yb, M * N), p.expected, `linear-q4 ${scaleDType} (2 blocks)`, [M, N]);
      for (const b of [...bufs, yb]) b.destroy();
      kernel.destroy();
    }
  });
});

describe('LinearQ4Kernel argument checks', () => {
  it('refuses oversized bindings, bad K, short buffers and x === y with clear messages', async () => {
    const kernel = await LinearQ4Kernel.create(ctx.device);
    const small = createStorageBuffer(ctx.device, 64);
    const small2 = createStorageBuffer(ctx.device, 64);
    const max = ctx.device.limits.maxStorageBufferBindingSize;
    const K = 4096;
    const N = Math.ceil(max / (K / 2)) + 64; // q_weight just over the limit (the lm_head case on small limits)
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 1, K), w: { name: 'w', buffer: small2, scales: small2, rows: N, cols: K }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(
      /qWeight \(\[\d+, 512\] u32\) is \d+ bytes, more than this device's maxStorageBufferBindingSize.*split the weight into row blocks/,
    );
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 1, 48), w: { name: 'w', buffer: small2, scales: small2, rows: 1, cols: 48 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(/K = 48 is not a multiple/);
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 1, 32), w: { name: 'w', buffer: small2, scales: small2, rows: 1, cols: 32 }, bias: null, y: small })).toThrow(/x and y must be different/);
    const big = createStorageBuffer(ctx.device, 1024);
    expect(() => kernel.run(ctx.device, { x: firstRows(big, 1, 64), w: { name: 'w', buffer: big, scales: createStorageBuffer(ctx.device, 4), rows: 8, cols: 64 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(
      /buffer qScale "" has 4 bytes, needs 64/,
    );
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 0, 32), w: { name: 'w', buffer: small2, scales: small2, rows: 4, cols: 32 }, bias: null, y: small2 })).toThrow(/M must be a positive integer/);
    small.destroy();
    small2.destroy();
    kernel.destroy();
  });

  it('requires init before run', () => {
    const kernel = new LinearQ4Kernel(ctx.device);
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => kernel.run(ctx.device, { x: firstRows(b, 1, 32), w: { name: 'w', buffer: b, scales: b, rows: 1, cols: 32 }, bias: null, y: b })).toThrow(/init\(\)/);
    b.destroy();
  });
});

describe('LinearQ4Kernel on a validating (Null) device with shader-f16', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  it('both scale variants build and a dispatch validates (with and without bias, folded grid)', async () => {
    for (const [scales, form] of [['f32', 'tiled'], ['f16', 'tiled'], ['f32', 'direct'], ['f16', 'direct']] as const) {
      const kernel = await LinearQ4Kernel.create(vctx.device, { scales, form, maxWorkgroupsPerDimension: 3 });
      const [M, K, N] = [130, 96, 150];
      const x = createStorageBuffer(vctx.device, M * K * 4);
      const w = createStorageBuffer(vctx.device, (N * K) / 2);
      const s = createStorageBuffer(vctx.device, (N * K) / 32 * (scales === 'f16' ? 2 : 4));
      const b = createStorageBuffer(vctx.device, N * 4);
      const y = createStorageBuffer(vctx.device, M * N * 4);
      vctx.device.pushErrorScope('validation');
      kernel.run(vctx.device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, scales: s, rows: N, cols: K }, bias: b, y: y });
      kernel.run(vctx.device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, scales: s, rows: N, cols: K }, bias: null, y: y });
      const error = await vctx.device.popErrorScope();
      expect(error?.message ?? null).toBeNull();
      kernel.destroy();
    }
  });

  it('a broken edit is reported as a ShaderError with its line', async () => {
    const broken = linearQ4ShaderSource().replace('return bitcast<f32>(word);', 'return word;');
    expect(broken).not.toBe(linearQ4ShaderSource());
    const err = await LinearQ4Kernel.create(vctx.device, { shader: { name: 'matmul-q4.wgsl (broken)', code: broken } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    expect((err as Error).message).toMatch(/matmul-q4\.wgsl \(broken\).*\n.*line \d+:\d+: error/);
  });
});

describe('in-app self-test cases (LINEAR_Q4_SELF_TEST_CASES)', () => {
  for (const c of LINEAR_Q4_SELF_TEST_CASES) {
    it(`${c.id}: ${c.name}`, async () => {
      const r = await runSelfTest({ device: ctx.device }, c);
      expect(r.status, r.detail).toBe('pass');
      expect(c.requires ?? []).toEqual([]); // every variant runs without shader-f16
    });
  }
});
