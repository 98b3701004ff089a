// Elementwise kernels (shaders/elementwise.wgsl) on Dawn (SwiftShader without a GPU) against the CPU reference
// (src/reference/ops.ts: erf, gelu, quickGelu, silu, add; f64 math rounded to f32 once).
// Tolerances, and why:
// - erf: |error| <= 1e-6 absolute (the contract for the exact GELU's erf; the approximation itself is within
//   1.4e-7 in f32 arithmetic, the rest is headroom for the GPU's exp, which WGSL allows 3 + 2|x| ulp).
// - GELU, quick_gelu, SiLU: atol 1e-7 + rtol 2e-6: a few f32 ulps of the result plus WGSL's exp error
//   (<= ~45 ulp of exp at |x| = 20, which becomes a relative error of the result). Values span [-20, 20] and a
//   few extremes, so the erf branch switch at |x| = sqrt 2 and the sigmoid saturation are covered.
// - GELU negative tail (x in [-12, -2]): relative 1e-4 with no atol: the kernel computes x/2 * erfc(|x|/sqrt 2)
//   directly, so even gelu(-12) ~ -2e-32 keeps ~5 digits (f32 z^2 rounding and exp error dominate).
// - add, bias add, scale: exact (one f32 operation, same rounding as the reference). SwiGLU: like SiLU.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../node/gpu.ts';
import { add, erf, gelu, quickGelu, silu, siluScalar } from '../../reference/ops.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import { expectClose } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { runSelfTests } from '../selftest-support.ts';
import { ActivationKernel, activationOnGpu, AddKernel, elementwiseShaderSource, SwiGluKernel, swigluOnGpu, type ActivationKind } from './elementwise.ts';
import { ELEMENTWISE_SELF_TEST_CASES } from './elementwise.selftest.ts';

const ERF_TOL: Tolerance = { atol: 1e-6, rtol: 0 };
const ACT_TOL: Tolerance = { atol: 1e-7, rtol: 2e-6 };
const EXACT: Tolerance = { atol: 0, rtol: 0 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());


const REFERENCE: Record<ActivationKind, (x: Float32Array) => Float32Array> = {
  gelu,
  quick_gelu: quickGelu,
  silu,
  erf: (x) => Float32Array.from(x, erf),
};

/** erfc(z) for z >= 1.4 in f64: exp(-z^2)/sqrt(pi) times the continued fraction 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))). */
function erfcLarge(z: number): number {
  let f = z;
  for (let k = 120; k >= 1; k--) f = z + k / 2 / f;
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** n values: a dense sweep of [-lo, lo] (every branch boundary crossed), random points, and a few extremes. */
function inputs(n: number, seed: number, range = 20): Float32Array {
  const x = randomF32(n, seededRandom(seed), range);
  const special = [0, -0, 1e-30, -1e-30, Math.SQRT2, -Math.SQRT2, 1, -1, 0.9999999, -1.0000001, 100, -100, 1e4, -1e4, 6, -6, 9.5, -9.5];
  for (let i = 0; i < Math.min(n, special.length); i++) x[i] = special[i]!;
  const sweep = Math.min(n - special.length, 4000);
  for (let i = 0; i < sweep; i++) x[special.length + i] = -range + (2 * range * i) / Math.max(1, sweep - 1);
  return x;
}

describe('ActivationKernel vs reference', () => {
  it('erf: |error| <= 1e-6 over [-6, 6] (scalar and vec4 paths)', async () => {
    const x = inputs(8000, 1, 6);
    for (const scalarOnly of [true, false]) {
      const y = await activationOnGpu(ctx.device, 'erf', x, { scalarOnly });
      expectClose(y, REFERENCE.erf(x), `erf${scalarOnly ? '' : ' vec4'}`, [x.length], ERF_TOL);
    }
  });

  for (const kind of ['gelu', 'quick_gelu', 'silu'] as const) {
    for (const [n, scalarOnly, inPlace] of [
      [1, false, false],
      [7, false, true],
      [577 * 24, false, false], // vec4 path (multiple of 4)
      [577 * 24, true, true], // same data, scalar path, in place
      [601 * 100 + 3, false, true], // odd count: scalar path, in place
    ] as const) {
      it(`${kind} n=${n}${scalarOnly ? ' scalar' : ''}${inPlace ? ' in place' : ''}`, async () => {
        const x = inputs(n, n + kind.length);
        const y = await activationOnGpu(ctx.device, kind, x, { scalarOnly, inPlace });
        expectClose(y, REFERENCE[kind](x), kind, [n], ACT_TOL);
      });
    }
  }

  it('GELU keeps relative precision in the negative tail (erfc form, no 1 + erf cancellation)', async () => {
    const n = 2000;
    const x = Float32Array.from({ length: n }, (_, i) => -12 + (10 * i) / (n - 1)); // [-12, -2]
    // The oracle: x/2 * erfc(|x|/sqrt 2) in f64 (ops.ts gelu computes 1 + erf, which is exactly 0 below x = -8.5).
    const expected = Float32Array.from(x, (v) => 0.5 * v * erfcLarge(-v * Math.SQRT1_2));
    // Cross-check the two oracles where 1 + erf in f64 is still accurate (x > -5: erfc >= 3e-7).
    for (let i = 0; i < n; i += 37) if (x[i]! > -5) expect(Math.abs(expected[i]! / gelu(x.subarray(i, i + 1))[0]! - 1)).toBeLessThan(2e-7);
    for (const scalarOnly of [true, false]) {
      const y = await activationOnGpu(ctx.device, 'gelu', x, { scalarOnly });
      expectClose(y, expected, `gelu tail${scalarOnly ? '' : ' vec4'}`, [n], { atol: 0, rtol: 1e-4 });
    }
  });

  it('the GELU tolerance is tight enough to tell GELU from its tanh approximation', async () => {
    const x = inputs(1000, 5, 4);
    const y = await activationOnGpu(ctx.device, 'gelu', x);
    const tanhGelu = Float32Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expect(compareArrays(y, tanhGelu, ACT_TOL).ok).toBe(false);
  });
});

describe('AddKernel', () => {
  for (const [rows, cols] of [
    [1, 24],
    [7, 100],
    [577, 24],
    [601, 25], // odd: scalar path
    [1, 4096],
  ] as const) {
    it(`y += x, y += bias and y *= s, [${rows}, ${cols}]`, async () => {
      const rng = seededRandom(rows * 31 + cols);
      const x = randomF32(rows * cols, rng, 3);
      const y0 = randomF32(rows * cols, rng, 3);
      const bias = randomF32(cols, rng, 1);
      const kernel = await AddKernel.create(ctx.device);
      const xb = storageBufferFrom(ctx.device, x);
      const yb = storageBufferFrom(ctx.device, y0);
      const bb = storageBufferFrom(ctx.device, bias);
      kernel.run(ctx.device, xb, yb, rows * cols);
      const sum = add(y0, x);
      expectClose(await readF32(ctx.device, yb, rows * cols), sum, 'y += x', [rows, cols], EXACT);
      kernel.runBias(ctx.device, bb, yb, rows, cols);
      const withBias = Float32Array.from(sum, (v, i) => v + bias[i % cols]!);
      expectClose(await readF32(ctx.device, yb, rows * cols), withBias, 'y += bias', [rows, cols], EXACT);
      kernel.runScale(ctx.device, yb, rows * cols, 1 / 3);
      const scaled = Float32Array.from(withBias, (v) => v * Math.fround(1 / 3));
      expectClose(await readF32(ctx.device, yb, rows * cols), scaled, 'y *= 1/3', [rows, cols], EXACT);
      for (const b of [xb, yb, bb]) b.destroy();
      kernel.destroy();
    });
  }

  it('refuses y += y and a binding past the buffer', async () => {
    const kernel = await AddKernel.create(ctx.device);
    const b = createStorageBuffer(ctx.device, 64);
    const c = createStorageBuffer(ctx.device, 64);
    expect(() => kernel.run(ctx.device, b, b, 16)).toThrow(/different buffers/);
    expect(() => kernel.run(ctx.device, b, c, 17)).toThrow(/has 64 bytes, needs 68/);
    expect(() => kernel.run(ctx.device, b, c, 0)).toThrow(/n must be a positive integer/);
    expect(() => new AddKernel(ctx.device).run(ctx.device, b, c, 4)).toThrow(/init\(\)/);
    b.destroy();
    c.destroy();
    kernel.destroy();
  });
});

describe('SwiGluKernel vs silu(gate) * up', () => {
  function reference(gu: Float32Array, rows: number, I: number): Float32Array {
    const y = new Float32Array(rows * I);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < I; c++) y[r * I + c] = siluScalar(gu[r * 2 * I + c]!) * gu[r * 2 * I + I + c]!;
    }
    return y;
  }
  for (const [rows, I] of [
    [1, 24],
    [7, 100],
    [577, 24],
    [601, 25], // odd I: scalar path
    [7, 1],
    [1, 14336], // Llama FFN width, one decode row
  ] as const) {
    it(`rows=${rows} I=${I}`, async () => {
      const gu = randomF32(rows * 2 * I, seededRandom(rows + I), 8);
      const y = await swigluOnGpu(ctx.device, gu, rows, I);
      expectClose(y, reference(gu, rows, I), 'swiglu', [rows, I], ACT_TOL);
    });
  }

  it('reads gate from the first half and up from the second (not interleaved)', async () => {
    const [rows, I] = [2, 4];
    const gu = new Float32Array(rows * 2 * I);
    for (let r = 0; r < rows; r++) for (let c = 0; c < I; c++) gu[r * 2 * I + I + c] = 1; // up = 1, gate = 0 -> 0
    gu[0] = 10; // gate of (0, 0)
    const y = await swigluOnGpu(ctx.device, gu, rows, I);
    expect(y[0]).toBeCloseTo(siluScalar(10), 5);
    expect(Array.from(y.subarray(1))).toEqual(new Array(rows * I - 1).fill(0));
  });
});

describe('dispatch and recording', () => {
  it('folds large counts into a 2D grid and chains ops in one pass (add, then GELU in place, then SwiGLU)', async () => {
    const [rows, I] = [9, 100]; // 1800 f32 values through GELU: 8 scalar workgroups
    const rng = seededRandom(77);
    const res = randomF32(rows * 2 * I, rng, 2);
    const delta = randomF32(rows * 2 * I, rng, 2);
    const opts = { maxWorkgroupsPerDimension: 3, scalarOnly: true };
    const addK = await AddKernel.create(ctx.device, opts);
    const geluK = await ActivationKernel.create(ctx.device, 'gelu', opts);
    const swiK = await SwiGluKernel.create(ctx.device, opts);
    expect(geluK.dispatchSize(rows * 2 * I)).toEqual([3, 3]); // 9 workgroups (one surplus) for 1800 values
    const rb = storageBufferFrom(ctx.device, res);
    const db = storageBufferFrom(ctx.device, delta);
    const yb = createStorageBuffer(ctx.device, rows * I * 4);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    addK.run(pass, db, rb, rows * 2 * I);
    geluK.run(pass, rb, rb, rows * 2 * I);
    swiK.run(pass, rb, yb, rows, I);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    const h = gelu(add(res, delta));
    const expected = new Float32Array(rows * I);
    for (let r = 0; r < rows; r++) for (let c = 0; c < I; c++) expected[r * I + c] = siluScalar(h[r * 2 * I + c]!) * h[r * 2 * I + I + c]!;
    expectClose(await readF32(ctx.device, yb, rows * I), expected, 'swiglu(gelu(res + delta))', [rows, I], ACT_TOL);
    for (const b of [rb, db, yb]) b.destroy();
    for (const k of [addK, geluK, swiK]) k.destroy();
  });

  it('the vec4 source only retypes V; the scalar source is the file as written', () => {
    expect(elementwiseShaderSource(false)).toMatch(/^alias V = f32;$/m);
    expect(elementwiseShaderSource(true)).toMatch(/^alias V = vec4<f32>;$/m);
    expect(elementwiseShaderSource(true).replace(/^alias V = vec4<f32>;$/m, 'alias V = f32;')).toBe(elementwiseShaderSource(false));
  });
});

describe('in-app self-test cases (ELEMENTWISE_SELF_TEST_CASES)', () => {
  it('each passes here, or is skipped for a missing feature', async () => {
    const results = await runSelfTests({ device: ctx.device }, ELEMENTWISE_SELF_TEST_CASES);
    expect(new Set(results.map((r) => r.id)).size).toBe(ELEMENTWISE_SELF_TEST_CASES.length);
    for (const [i, r] of results.entries()) {
      const runnable = (ELEMENTWISE_SELF_TEST_CASES[i]!.requires ?? []).every((f) => ctx.device.features.has(f));
      expect(r.status, r.detail).toBe(runnable ? 'pass' : 'skipped');
      if (process.env.SHOW_CMP) console.log(r.detail, r.gpuMs?.toFixed(1), 'ms');
    }
  });
});
