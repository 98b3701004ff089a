// LayerNorm / RMSNorm kernels (shaders/norm.wgsl) on Dawn (SwiftShader without a GPU) against the f64-accumulated
// CPU reference (src/reference/ops.ts layerNorm, rmsNorm).
// Tolerance: atol 1e-5 + rtol 1e-5. The kernel sums in f32 (a private strided sum per invocation, then a
// 256-way tree), so mean and variance carry a relative error of a few f32 ulps (~1e-7 .. 1e-6 at D = 4096);
// the outputs are O(1) (unit-ish inputs, weights in [-1.5, 1.5]), so 1e-5 leaves a >10x margin while still
// catching any real bug (a wrong eps, a biased/unbiased variance mix-up, a missed element: all >= 1e-4).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { layerNorm, rmsNorm } from '../../reference/ops.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { runSelfTests } from '../selftest-support.ts';
import { ShaderError } from '../pipeline.ts';
import { roundToF16 } from './linear.ts';
import { NormKernel, normOnGpu, normShaderSource, type NormKind } from './norm.ts';
import { NORM_SELF_TEST_CASES } from './norm.selftest.ts';

const TOL: Tolerance = { atol: 1e-5, rtol: 1e-5 };
const EPS = 1e-5;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const expectClose = expectCloseWith(TOL);

function problem(rows: number, width: number, seed: number, offset = 0, spread = 1) {
  const rng = seededRandom(seed);
  const x = randomF32(rows * width, rng, spread);
  if (offset) for (let i = 0; i < x.length; i++) x[i] = x[i]! + offset;
  const w = randomF32(width, rng, 1.5);
  const b = randomF32(width, rng, 0.5);
  return { x, w, b };
}

function reference(kind: NormKind, p: { x: Float32Array; w: Float32Array; b: Float32Array }, rows: number, width: number) {
  return kind === 'layernorm' ? layerNorm(p.x, rows, width, p.w, p.b, EPS) : rmsNorm(p.x, rows, width, p.w, EPS);
}

const SHAPES: [number, number][] = [
  [1, 24],
  [7, 24],
  [7, 100],
  [577, 24], // CLIP token count, small width
  [601, 100], // a prefill-like row count, width not a multiple of anything
  [1, 1024], // CLIP width
  [1, 4096], // Llama width
  [3, 1], // degenerate width 1: LayerNorm gives b exactly, RMSNorm gives w * x / sqrt(x^2 + eps)
  [2, 300], // width between one and two strides of the workgroup
];

for (const kind of ['layernorm', 'rmsnorm'] as const) {
  describe(`NormKernel ${kind} (f32) vs reference`, () => {
    for (const [rows, width] of SHAPES) {
      it(`rows=${rows} width=${width}`, async () => {
        const p = problem(rows, width, rows * 7919 + width);
        const y = await normOnGpu(ctx.device, kind, p.x, rows, width, p.w, kind === 'layernorm' ? p.b : null, EPS);
        expectClose(y, reference(kind, p, rows, width), kind, [rows, width]);
      });
    }

    it('rows with a large mean and a small spread (two-pass variance)', async () => {
      const [rows, width] = [5, 1024];
      const p = problem(rows, width, 99, 30, 0.5); // mean ~30, std ~0.3: a one-pass E[x^2] - E[x]^2 would lose ~3 digits
      const y = await normOnGpu(ctx.device, kind, p.x, rows, width, p.w, kind === 'layernorm' ? p.b : null, EPS);
      expectClose(y, reference(kind, p, rows, width), `${kind} offset`, [rows, width]);
    });
  });
}

describe('NormKernel options', () => {
  it('reads and writes row windows (xRowOffset / yRowOffset) and leaves the other rows alone', async () => {
    const [total, width] = [9, 40];
    const p = problem(total, width, 5);
    const kernel = await NormKernel.create(ctx.device, 'rmsnorm');
    const xb = storageBufferFrom(ctx.device, p.x);
    const wb = storageBufferFrom(ctx.device, p.w);
    const sentinel = new Float32Array(total * width).fill(-7);
    const yb = storageBufferFrom(ctx.device, sentinel);
    // rows 6..8 of x -> rows 2..4 of y
    kernel.run(ctx.device, xb, wb, null, yb, 3, width, EPS, { xRowOffset: 6, yRowOffset: 2 });
    const y = await readF32(ctx.device, yb, total * width);
    const expected = sentinel.slice();
    expected.set(rmsNorm(p.x.subarray(6 * width), 3, width, p.w, EPS), 2 * width);
    expectClose(y, expected, 'rmsnorm rows 6..8 -> 2..4', [total, width]);
    for (const b of [xb, wb, yb]) b.destroy();
    kernel.destroy();
  });

  it('folds the row count into a 2D grid (surplus workgroups exit) and records into one pass', async () => {
    const [rows, width] = [23, 24];
    const p = problem(rows, width, 17);
    const ln = await NormKernel.create(ctx.device, 'layernorm', { maxWorkgroupsPerDimension: 5 });
    const rms = await NormKernel.create(ctx.device, 'rmsnorm', { maxWorkgroupsPerDimension: 5 });
    expect(ln.dispatchSize(rows)).toEqual([5, 5]); // 25 workgroups for 23 rows
    const [xb, wb, bb] = [p.x, p.w, p.b].map((a) => storageBufferFrom(ctx.device, a));
    const h = createStorageBuffer(ctx.device, rows * width * 4);
    const y = createStorageBuffer(ctx.device, rows * width * 4);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    ln.run(pass, xb!, wb!, bb!, h, rows, width, EPS);
    rms.run(pass, h, wb!, null, y, rows, width, 1e-6);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    const expected = rmsNorm(layerNorm(p.x, rows, width, p.w, p.b, EPS), rows, width, p.w, 1e-6);
    expectClose(await readF32(ctx.device, y, rows * width), expected, 'rmsnorm(layernorm(x)) folded', [rows, width]);
    for (const b of [xb, wb, bb, h, y]) b!.destroy();
    ln.destroy();
    rms.destroy();
  });

  it('the comparison fails when eps is wrong (the tolerance is tight enough to see it)', async () => {
    const [rows, width] = [4, 24];
    const p = problem(rows, width, 3, 0, 0.01); // tiny spread: eps matters
    const y = await normOnGpu(ctx.device, 'layernorm', p.x, rows, width, p.w, p.b, EPS);
    const wrong = layerNorm(p.x, rows, width, p.w, p.b, 1e-6);
    expect(compareArrays(y, wrong, TOL).ok).toBe(false);
    expectClose(y, layerNorm(p.x, rows, width, p.w, p.b, EPS), 'layernorm small spread', [rows, width]);
  });

  it('argument checks', async () => {
    const ln = await NormKernel.create(ctx.device, 'layernorm');
    const rms = await NormKernel.create(ctx.device, 'rmsnorm');
    const a = createStorageBuffer(ctx.device, 4 * 64);
    const b = createStorageBuffer(ctx.device, 4 * 64);
    const w = createStorageBuffer(ctx.device, 4 * 8);
    expect(() => ln.run(ctx.device, a, w, null, b, 2, 8, EPS)).toThrow(/needs a bias/);
    expect(() => rms.run(ctx.device, a, w, w, b, 2, 8, EPS)).toThrow(/takes no bias/);
    expect(() => rms.run(ctx.device, a, w, null, a, 2, 8, EPS)).toThrow(/different buffers/);
    expect(() => rms.run(ctx.device, a, w, null, b, 9, 8, EPS)).toThrow(/has 256 bytes, needs 288/);
    expect(() => rms.run(ctx.device, a, w, null, b, 0, 8, EPS)).toThrow(/rows must be a positive integer/);
    expect(() => rms.run(ctx.device, a, w, null, b, 1, 16, EPS)).toThrow(/weight.*needs 64/);
    const max = ctx.device.limits.maxStorageBufferBindingSize;
    expect(() => rms.run(ctx.device, a, w, null, b, Math.ceil(max / 4096) + 1, 1024, EPS)).toThrow(/maxStorageBufferBindingSize/);
    expect(() => new NormKernel(ctx.device, 'rmsnorm').run(ctx.device, a, w, null, b, 1, 8, EPS)).toThrow(/init\(\)/);
    for (const buf of [a, b, w]) buf.destroy();
    ln.destroy();
    rms.destroy();
  });
});

describe('f16-weight variant', () => {
  it('the f32 code never mentions f16; the f16 source enables it and retypes w and b', () => {
    const f32 = normShaderSource('f32').replace(/\/\/.*$/gm, '');
    const f16 = normShaderSource('f16');
    expect(f32).not.toMatch(/f16/);
    expect(f16.startsWith('enable f16;\n')).toBe(true);
    expect(f16).toMatch(/^alias WT = f16;$/m);
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new NormKernel(ctx.device, 'layernorm', { weights: 'f16' })).toThrow(/shader-f16/);
  });

  it('matches the reference on f16-rounded weights (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    for (const kind of ['layernorm', 'rmsnorm'] as const) {
      const [rows, width] = [7, 100];
      const p = problem(rows, width, 8);
      const p16 = { x: p.x, w: roundToF16(p.w), b: roundToF16(p.b) };
      const y = await normOnGpu(ctx.device, kind, p.x, rows, width, p.w, kind === 'layernorm' ? p.b : null, EPS, { weights: 'f16' });
      expectClose(y, reference(kind, p16, rows, width), `${kind} f16w`, [rows, width]);
    }
  });
});

// SwiftShader has no shader-f16; Dawn's Null backend has it and validates WGSL and dispatches like a real device.
describe('f16-weight variant on a validating (Null) device', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  it('both kinds build with f16 weights and a dispatch validates (odd width: padded f16 buffers)', async () => {
    const d = vctx.device;
    expect(d.features.has('shader-f16')).toBe(true);
    const [rows, width] = [3, 101];
    const x = createStorageBuffer(d, rows * width * 4);
    const y = createStorageBuffer(d, rows * width * 4);
    const w = createStorageBuffer(d, width * 2);
    const b = createStorageBuffer(d, width * 2);
    for (const kind of ['layernorm', 'rmsnorm'] as const) {
      const kernel = await NormKernel.create(d, kind, { weights: 'f16' });
      d.pushErrorScope('validation');
      kernel.run(d, x, w, kind === 'layernorm' ? b : null, y, rows, width, EPS);
      expect((await d.popErrorScope())?.message ?? null).toBeNull();
      kernel.destroy();
    }
    for (const buf of [x, y, w, b]) buf.destroy();
  });

  it('a broken f16 edit is caught as a ShaderError with its line', async () => {
    const { computeProgram } = await import('../pipeline.ts');
    const broken = normShaderSource('f16').replace('f32(w[i]) * (x[xo + i] * inv)', 'w[i] * (x[xo + i] * inv)');
    const err = await computeProgram(vctx.device, {
      name: 'norm.wgsl (f16, broken)',
      code: broken,
      bindings: ['uniform', 'read', 'read', 'read', 'storage'],
      constants: { RMS_NORM: true },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    expect((err as Error).message).toMatch(/norm\.wgsl \(f16, broken\).*\n.*line \d+:\d+: error/);
  });
});

describe('in-app self-test cases (NORM_SELF_TEST_CASES)', () => {
  it('each passes here, or is skipped for a missing feature', async () => {
    const results = await runSelfTests({ device: ctx.device }, NORM_SELF_TEST_CASES);
    expect(new Set(results.map((r) => r.id)).size).toBe(NORM_SELF_TEST_CASES.length);
    for (const [i, r] of results.entries()) {
      const runnable = (NORM_SELF_TEST_CASES[i]!.requires ?? []).every((f) => ctx.device.features.has(f));
      expect(r.status, r.detail).toBe(runnable ? 'pass' : 'skipped');
      if (process.env.SHOW_CMP) console.log(r.detail, r.gpuMs?.toFixed(1), 'ms');
    }
  });
});
