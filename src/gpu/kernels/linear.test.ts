// Both forms of the linear kernel (tiled: shaders/matmul.wgsl; direct: shaders/matmul-direct.wgsl, with vec4 row
// loads where K % 4 == 0 and scalar ones elsewhere) on this machine's adapter against the f64 CPU reference
// src/reference/linear.ts.
// Tolerance: f32 accumulation over K terms of |x| <= 1, |w| <= 1/sqrt(K): atol 1e-4 + rtol 1e-4 for K <= 1024.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../node/gpu.ts';
import { linear } from '../../reference/linear.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, formatComparison, type Tolerance } from '../compare.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { defaultLinearForm, LinearKernel, linearOnGpu, linearShaderSource, roundToF16, toF16Weights, type LinearForm } from './linear.ts';
import { firstRows } from '../tensor.ts';

const TOL: Tolerance = { atol: 1e-4, rtol: 1e-4 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

function problem(M: number, K: number, N: number, withBias: boolean, seed: number) {
  const rng = seededRandom(seed);
  const x = randomF32(M * K, rng, 1);
  const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
  const b = withBias ? randomF32(N, rng, 0.5) : undefined;
  return { x, w, b, expected: linear(x, M, K, w, N, b) };
}

const expectClose = expectCloseWith(TOL);

const FORMS: readonly LinearForm[] = ['tiled', 'direct'];

for (const form of FORMS) describe(`LinearKernel (f32, ${form}) vs reference linear()`, () => {
  const shapes: [number, number, number, boolean][] = [
    [1, 64, 64, true], // a single row (decode step), exact tile in N and K
    [1, 1, 1, false], // smallest possible
    [7, 33, 50, false], // nothing a multiple of anything
    [7, 33, 50, true],
    [65, 100, 130, true], // one past the tile in M and N, K not a multiple of the 32-deep slice
    [577, 40, 72, true], // CLIP-like 577 rows (cls + 24x24 patches), small K/N to stay fast
    [64, 1024, 64, false], // long reduction: K = 1024 at the stated tolerance
    [130, 31, 3, true], // narrow output (N < one quad)
  ];
  for (const [M, K, N, withBias] of shapes) {
    it(`M=${M} K=${K} N=${N} ${withBias ? 'with' : 'without'} bias`, async () => {
      const p = problem(M, K, N, withBias, M * 1000 + K * 10 + N);
      const y = await linearOnGpu(ctx.device, p.x, M, K, p.w, N, p.b, { form });
      expectClose(y, p.expected, 'linear', [M, N]);
    });
  }

  it('the comparison does fail on a deliberately perturbed output (the test can fail)', async () => {
    const [M, K, N] = [7, 33, 50];
    const p = problem(M, K, N, true, 42);
    const y = await linearOnGpu(ctx.device, p.x, M, K, p.w, N, p.b, { form });
    expectClose(y, p.expected, 'linear', [M, N]);
    y[3 * N + 17] += 1e-2;
    const c = compareArrays(y, p.expected, TOL);
    expect(c.ok).toBe(false);
    expect(c.failures).toBe(1);
    expect(c.worstIndex).toBe(3 * N + 17);
    expect(formatComparison(c, { name: 'linear', shape: [M, N] })).toContain('worst [3, 17]');
  });

  it('folds a large tile count into a 2D grid (surplus workgroups exit)', async () => {
    const [M, K, N] = [200, 24, 300]; // 4 x 5 = 20 tiles
    const p = problem(M, K, N, true, 7);
    const kernel = await LinearKernel.create(ctx.device, { maxWorkgroupsPerDimension: 6, form });
    expect(kernel.dispatchSize(M, N)).toEqual([6, 4]); // 24 workgroups for 20 tiles
    const xb = storageBufferFrom(ctx.device, p.x);
    const wb = storageBufferFrom(ctx.device, p.w);
    const bb = storageBufferFrom(ctx.device, p.b!);
    const yb = createStorageBuffer(ctx.device, M * N * 4);
    kernel.run(ctx.device, { x: firstRows(xb, M, K), w: { name: 'w', buffer: wb, rows: N, cols: K }, bias: bb, y: yb });
    expectClose(await readF32(ctx.device, yb, M * N), p.expected, 'linear (folded grid)', [M, N]);
    // the real limit: 65535 workgroups per dimension
    const real = await LinearKernel.create(ctx.device, { form });
    expect(real.dispatchSize(64 * 65536, 64)).toEqual([65535, 2]);
    for (const b of [xb, wb, bb, yb]) b.destroy();
    kernel.destroy();
  });

  it('fills y from weight row blocks with yColOffset / yRowStride (the split for oversized weights)', async () => {
    const [M, K, N] = [9, 20, 70];
    const split = 40;
    const p = problem(M, K, N, true, 11);
    const kernel = await LinearKernel.create(ctx.device, { form });
    const xb = storageBufferFrom(ctx.device, p.x);
    const w1 = storageBufferFrom(ctx.device, p.w.subarray(0, split * K));
    const w2 = storageBufferFrom(ctx.device, p.w.subarray(split * K));
    const b1 = storageBufferFrom(ctx.device, p.b!.subarray(0, split));
    const b2 = storageBufferFrom(ctx.device, p.b!.subarray(split));
    const yb = createStorageBuffer(ctx.device, M * N * 4);
    const encoder = ctx.device.createCommandEncoder();
    kernel.run(encoder, { x: firstRows(xb, M, K), w: { name: 'w', buffer: w1, rows: split, cols: K }, bias: b1, y: yb }, { yRowStride: N });
    kernel.run(encoder, { x: firstRows(xb, M, K), w: { name: 'w', buffer: w2, rows: N - split, cols: K }, bias: b2, y: yb }, { yRowStride: N, yColOffset: split });
    ctx.device.queue.submit([encoder.finish()]);
    expectClose(await readF32(ctx.device, yb, M * N), p.expected, 'linear (2 blocks)', [M, N]);
    for (const b of [xb, w1, w2, b1, b2, yb]) b.destroy();
    kernel.destroy();
  });

  it('chains two layers recorded into one compute pass, one submit', async () => {
    const [M, K, H, N] = [5, 24, 36, 10];
    const rng = seededRandom(3);
    const x = randomF32(M * K, rng);
    const w1 = randomF32(H * K, rng, 0.2);
    const w2 = randomF32(N * H, rng, 0.2);
    const b2 = randomF32(N, rng);
    const expected = linear(linear(x, M, K, w1, H), M, H, w2, N, b2);
    const kernel = await LinearKernel.create(ctx.device, { form });
    const bufs = [x, w1, w2, b2].map((a) => storageBufferFrom(ctx.device, a));
    const h = createStorageBuffer(ctx.device, M * H * 4);
    const y = createStorageBuffer(ctx.device, M * N * 4);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    kernel.run(pass, { x: firstRows(bufs[0], M, K), w: { name: 'w', buffer: bufs[1], rows: H, cols: K }, bias: null, y: h });
    kernel.run(pass, { x: firstRows(h, M, H), w: { name: 'w', buffer: bufs[2], rows: N, cols: H }, bias: bufs[3], y: y });
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    expectClose(await readF32(ctx.device, y, M * N), expected, 'linear∘linear', [M, N]);
    for (const b of [...bufs, h, y]) b.destroy();
    kernel.destroy();
  });
});

describe('LinearKernel argument checks', () => {
  it('refuses a binding larger than maxStorageBufferBindingSize with a clear message', async () => {
    const kernel = await LinearKernel.create(ctx.device);
    const small = createStorageBuffer(ctx.device, 64);
    const small2 = createStorageBuffer(ctx.device, 64);
    const max = ctx.device.limits.maxStorageBufferBindingSize;
    const K = 4096;
    const N = Math.ceil(max / (K * 4)) + 1; // W would be just over the limit
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 1, K), w: { name: 'w', buffer: small2, rows: N, cols: K }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(
      /w \(\[\d+, 4096\] f32\) is \d+ bytes, more than this device's maxStorageBufferBindingSize.*split the weight/,
    );
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 2, 2), w: { name: 'w', buffer: small2, rows: 2, cols: 2 }, bias: null, y: small })).toThrow(/x and y must be different/);
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 4, 4), w: { name: 'w', buffer: small2, rows: 4, cols: 4 }, bias: null, y: createStorageBuffer(ctx.device, 4) })).toThrow(/has 4 bytes, needs 64/);
    expect(() => kernel.run(ctx.device, { x: firstRows(small, 0, 4), w: { name: 'w', buffer: small2, rows: 4, cols: 4 }, bias: null, y: small2 })).toThrow(/M must be a positive integer/);
    small.destroy();
    small2.destroy();
    kernel.destroy();
  });

  it('names the tensor whose shape does not fit', async () => {
    const kernel = await LinearKernel.create(ctx.device);
    const [x, w, y] = ['x1', 'w1', 'y1'].map((label) => createStorageBuffer(ctx.device, 64, label)) as [GPUBuffer, GPUBuffer, GPUBuffer];
    const op = { x: firstRows(x, 2, 3), w: { name: 'layer.0.fc1.weight', buffer: w, rows: 2, cols: 4 }, bias: null, y };
    expect(() => kernel.run(ctx.device, op)).toThrow('LinearKernel.run: x "x1" has rows of 3 values, but layer.0.fc1.weight [2, 4] needs 4');
    expect(() => kernel.run(ctx.device, { ...op, x: { ...op.x, cols: 4, rowStart: 1 } })).toThrow(/x "x1" starts at row 1/);
    for (const b of [x, w, y]) b.destroy();
    kernel.destroy();
  });

  it('requires init before run', () => {
    const kernel = new LinearKernel(ctx.device);
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => kernel.run(ctx.device, { x: firstRows(b, 1, 1), w: { name: 'w', buffer: b, rows: 1, cols: 1 }, bias: null, y: b })).toThrow(/init\(\)/);
    b.destroy();
  });
});

describe('f16-weight variant', () => {
  it('the f32 code never mentions f16; the f16 source enables it and retypes the weights', () => {
    for (const [form, loads, wDecl] of [['tiled', 'vec4', 'array<WT>'], ['direct', 'vec4', 'array<vec4<WT>>'], ['direct', 'scalar', 'array<WT>']] as const) {
      const f32 = linearShaderSource('f32', form, loads).replace(/\/\/.*$/gm, ''); // code only, comments stripped
      const f16 = linearShaderSource('f16', form, loads);
      expect(f32).not.toMatch(/f16/);
      expect(f16.startsWith('enable f16;\n')).toBe(true);
      expect(f16).toMatch(/^alias WT = f16;$/m);
      expect(f16).toContain(`var<storage, read> w: ${wDecl};`);
    }
  });

  it('the direct form is the default exactly on CPU adapters', async () => {
    const kernel = new LinearKernel(ctx.device);
    expect(kernel.form).toBe(defaultLinearForm(ctx.device));
    const info = (ctx.device as { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    if (/swiftshader|llvmpipe|lavapipe/i.test(`${info?.architecture} ${info?.description}`)) expect(kernel.form).toBe('direct');
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new LinearKernel(ctx.device, { weights: 'f16' })).toThrow(/shader-f16/);
  });

  // Runs only where the adapter has shader-f16 (skipped on SwiftShader, which lacks it).
  it('matches the reference on f16-rounded weights (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    for (const form of FORMS) {
      for (const [M, K, N] of [[7, 33, 51], [65, 128, 130]] as const) {
        const p = problem(M, K, N, true, 5);
        const expected = linear(p.x, M, K, roundToF16(p.w), N, p.b);
        const y = await linearOnGpu(ctx.device, p.x, M, K, toF16Weights(p.w), N, p.b, { form });
        expectClose(y, expected, `linear f16w (${form})`, [M, N]);
      }
    }
  });
});
