// The decode matvec kernel (shaders/matvec.wgsl) on Dawn (SwiftShader without a GPU) against the f64 CPU
// reference linear(), for f32, f16, and int4 (f32 / f16 scales) weights. Every kind runs here: f16 weights and
// scales are read through unpack2x16float, no shader-f16 needed.
// References: f32 -> linear(x, W); f16 -> linear(x, f16(W)); int4 -> linear(x, deq(W)) (the quantization error
// is not the kernel's; src/quant/q4.test.ts checks it).
// Tolerance: atol 1e-4 + rtol 1e-4 up to K = 96 (as the tiled kernels), atol 2e-4 + rtol 1e-4 at K = 4096:
// f32 accumulation over 4096 terms of |x| <= 1, |w| <= 1/sqrt(K) (outputs ~0.6), summed as 64 (or 8) lane partials,
// observed max abs ~1e-6.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { dequantizeQ4, q4Bytes, quantizeQ4 } from '../../quant/q4.ts';
import { linear } from '../../reference/linear.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { ShaderError } from '../pipeline.ts';
import { runSelfTest } from '../selftest-support.ts';
import { MATVEC_SELF_TEST_CASES } from './matvec.selftest.ts';
import { roundToF16 } from './linear.ts';
import { q4ScaleData } from './linear-q4.ts';
import { matvecRowsPerWorkgroup, MatvecKernel, matvecOnGpu, matvecShaderSource, toF16Bits, type MatvecKernelOptions, type MatvecWeightData } from './matvec.ts';
import type { Storage } from '../storage.ts';
import { firstRows } from '../tensor.ts';

const TOL: Tolerance = { atol: 1e-4, rtol: 1e-4 };
const TOL_LONG: Tolerance = { atol: 2e-4, rtol: 1e-4 };
const KINDS: readonly Storage[] = ['f32', 'f16', 'q4f32', 'q4f16'];

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

/**
 * The kernel shapes to check on this device: 64 lanes (GPU) and 1 (CPU adapter: no row sum), each with the workgroup row sum
 * and, where the device has `subgroups`, the subgroup one (so a CPU adapter also checks the GPU shapes).
 */
const SHAPES = (): MatvecKernelOptions[] =>
  [false, true].flatMap((cpu) =>
    (ctx.device.features.has('subgroups') ? (['workgroup', 'subgroup'] as const) : (['workgroup'] as const)).map((reduce) => ({ cpu, reduce })),
  );

/** Random problem for a weight kind: the data to upload and the reference output. */
function problem(kind: Storage, M: number, K: number, N: number, withBias: boolean, seed: number) {
  const rng = seededRandom(seed);
  const x = randomF32(M * K, rng, 1);
  const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
  const b = withBias ? randomF32(N, rng, 0.5) : undefined;
  let data: MatvecWeightData;
  let effective: Float32Array;
  if (kind === 'f32') {
    data = w;
    effective = w;
  } else if (kind === 'f16') {
    data = toF16Bits(w);
    effective = roundToF16(w);
  } else {
    const q = quantizeQ4(w, N, K, { scaleDType: kind === 'q4f16' ? 'f16' : 'f32' });
    data = q;
    effective = dequantizeQ4(q.qWeight, q.qScale, N, K);
  }
  return { x, data, b, effective, expected: linear(x, M, K, effective, N, b) };
}

const expectClose = expectCloseWith(TOL);

describe('MatvecKernel vs linear() (M = 1 and batches up to MATVEC_MAX_M rows: every M class)', () => {
  let i = 0;
  for (const kind of KINDS) {
    for (const K of [32, 96, 288]) {
      for (const N of [1, 33, 300]) {
        const withBias = i % 2 === 0;
        const M = [1, 16, 4, 5, 3][i % 5]!; // classes 1, 4 (3, 4) and 16 (5, 16), boundaries included
        i++;
        it(`${kind} M=${M} K=${K} N=${N} ${withBias ? 'with' : 'without'} bias, every lane shape and row sum this device has`, async () => {
          const p = problem(kind, M, K, N, withBias, M * 1000 + K * 10 + N);
          for (const opts of SHAPES()) {
            const y = await matvecOnGpu(ctx.device, p.x, M, K, p.data, N, p.b, opts);
            expectClose(y, p.expected, `matvec ${kind} ${JSON.stringify(opts)}`, [M, N]);
          }
        });
      }
    }
  }

  it('dense kinds accept K that is only a multiple of their 16-byte unit (f32 K=12, f16 K=24)', async () => {
    for (const [kind, K] of [['f32', 12], ['f16', 24]] as const) {
      const p = problem(kind, 2, K, 21, true, K);
      expectClose(await matvecOnGpu(ctx.device, p.x, 2, K, p.data, 21, p.b), p.expected, `matvec ${kind}`, [2, 21]);
    }
  });

  it('K = 4096 (Llama hidden), every kind, M = 1 and 16, every lane shape and row sum this device has', async () => {
    const [K, N] = [4096, 64];
    for (const kind of KINDS) {
      for (const M of [1, 16]) {
        const p = problem(kind, M, K, N, true, 4096 + N + M);
        for (const opts of SHAPES()) {
          const y = await matvecOnGpu(ctx.device, p.x, M, K, p.data, N, p.b, opts);
          expectClose(y, p.expected, `matvec ${kind} K=4096 M=${M} ${JSON.stringify(opts)}`, [M, N], TOL_LONG);
        }
      }
    }
  });

  it('lm_head-shaped, reduced in N: 1 x 4096 by 4096 x 4096 int4 (f16 scales); logs GB/s and GFLOP/s', async () => {
    const [M, K, N] = [1, 4096, 4096];
    const p = problem('q4f16', M, K, N, false, 128256);
    const q = p.data as ReturnType<typeof quantizeQ4>;
    const kernel = await MatvecKernel.create(ctx.device, { weights: 'q4f16' });
    const bufs = [p.x, q.qWeight, q4ScaleData(q.qScale, 'f16')].map((a) => storageBufferFrom(ctx.device, a));
    const [xb, wb, sb] = bufs as [GPUBuffer, GPUBuffer, GPUBuffer];
    const yb = createStorageBuffer(ctx.device, N * 4);
    kernel.run(ctx.device, { x: firstRows(xb, M, K), w: { name: 'w', buffer: wb, scales: sb, rows: N, cols: K }, bias: null, y: yb }); // warm-up
    await ctx.device.queue.onSubmittedWorkDone();
    const runs = 3;
    const t0 = performance.now();
    const encoder = ctx.device.createCommandEncoder();
    for (let r = 0; r < runs; r++) kernel.run(encoder, { x: firstRows(xb, M, K), w: { name: 'w', buffer: wb, scales: sb, rows: N, cols: K }, bias: null, y: yb });
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    const ms = (performance.now() - t0) / runs;
    const y = await readF32(ctx.device, yb, N);
    expectClose(y, p.expected, 'matvec q4f16 4096x4096', [M, N], TOL_LONG);
    const b = q4Bytes(N, K, 'f16');
    const bytes = b.qWeight + b.qScale + K * 4 + N * 4;
    console.log(
      `matvec q4f16 1x${K} by ${K}x${N} on ${ctx.summary.architecture || ctx.summary.vendor || 'this adapter'}: ${ms.toFixed(2)} ms/run, ` +
        `${(bytes / ms / 1e6).toFixed(2)} GB/s, ${((2 * K * N) / ms / 1e6).toFixed(2)} GFLOP/s`,
    );
    for (const buf of [...bufs, yb]) buf.destroy();
    kernel.destroy();
  });

  it('the one-lane form has no row sum: no workgroup memory, no barrier (the other forms have both)', () => {
    expect(matvecShaderSource('none')).not.toMatch(/var<workgroup>|workgroupBarrier/);
    for (const reduce of ['workgroup', 'subgroup'] as const) expect(matvecShaderSource(reduce)).toMatch(/var<workgroup> red[\s\S]*workgroupBarrier/);
  });

  it('the comparison does fail with the wrong zero point in the shader (the test can fail)', async () => {
    const broken = matvecShaderSource().replace('- vec4<f32>(7.0)', '- vec4<f32>(8.0)');
    expect(broken).not.toBe(matvecShaderSource());
    const [M, K, N] = [1, 64, 9];
    const p = problem('q4f32', M, K, N, false, 3);
    const q = p.data as ReturnType<typeof quantizeQ4>;
    const kernel = await MatvecKernel.create(ctx.device, { weights: 'q4f32', shader: { name: 'matvec.wgsl (zero point 8)', code: broken } });
    const bufs = [p.x, q.qWeight, q.qScale].map((a) => storageBufferFrom(ctx.device, a));
    const yb = createStorageBuffer(ctx.device, M * N * 4);
    kernel.run(ctx.device, { x: firstRows(bufs[0]!, M, K), w: { name: 'w', buffer: bufs[1]!, scales: bufs[2]!, rows: N, cols: K }, bias: null, y: yb });
    expect(compareArrays(await readF32(ctx.device, yb, M * N), p.expected, TOL).ok).toBe(false);
    for (const b of [...bufs, yb]) b.destroy();
    kernel.destroy();
  });

  it('folds the row blocks into a 2D grid (surplus workgroups exit)', async () => {
    const [M, K, N] = [1, 32, 19300]; // one int4 unit per row: 1 lane, 512 rows per workgroup, ceil(19300 / 512) = 38 workgroups
    const p = problem('q4f32', M, K, N, true, 17);
    const q = p.data as ReturnType<typeof quantizeQ4>;
    const kernel = await MatvecKernel.create(ctx.device, { weights: 'q4f32', maxWorkgroupsPerDimension: 7 });
    expect(kernel.dispatchSize(N, K)).toEqual([7, 6]); // 42 workgroups for 38 row blocks
    const bufs = [p.x, q.qWeight, q.qScale, p.b!].map((a) => storageBufferFrom(ctx.device, a));
    const yb = createStorageBuffer(ctx.device, M * N * 4);
    kernel.run(ctx.device, { x: firstRows(bufs[0]!, M, K), w: { name: 'w', buffer: bufs[1]!, scales: bufs[2]!, rows: N, cols: K }, bias: bufs[3]!, y: yb });
    expectClose(await readF32(ctx.device, yb, M * N), p.expected, 'matvec (folded grid)', [M, N]);
    // lm_head at the real limit: 128256 rows -> 16032 workgroups fit in x; more than 65535 * 8 rows fold
    const real = await MatvecKernel.create(ctx.device, { weights: 'q4f16', cpu: false });
    expect(real.dispatchSize(128256, 4096)).toEqual([128256 / matvecRowsPerWorkgroup(64), 1]);
    expect(real.dispatchSize(65535 * 8 + 1, 4096)).toEqual([65535, 2]);
    // A CPU adapter's shape: 1 lane, 512 rows per workgroup.
    const cpu = await MatvecKernel.create(ctx.device, { weights: 'q4f16', cpu: true });
    expect(cpu.dispatchSize(128256, 4096)).toEqual([Math.ceil(128256 / 512), 1]);
    // Small K (fewer than 64 units a row on a GPU): 1 lane, 512 rows per workgroup (a tiny model's lm_head: K = 128 f32).
    const small = await MatvecKernel.create(ctx.device, { weights: 'f32', cpu: false });
    expect(small.dispatchSize(128256, 128)).toEqual([Math.ceil(128256 / 512), 1]);
    expect(small.dispatchSize(128256, 256)).toEqual([128256 / 8, 1]);
    expect(cpu.dispatchSize(128256, 224)).toEqual([Math.ceil(128256 / 512), 1]); // 7 int4 units: 1 lane
    for (const b of [...bufs, yb]) b.destroy();
    kernel.destroy();
  });

  it('fills y from weight row blocks (yColOffset / yRowStride, M = 2), one pass, for every kind', async () => {
    const [M, K, N] = [2, 64, 70];
    const split = 43; // not a multiple of the 8 rows of a workgroup
    for (const kind of KINDS) {
      const p = problem(kind, M, K, N, true, 23);
      const kernel = await MatvecKernel.create(ctx.device, { weights: kind });
      const parts: { w: ArrayBufferView; s: ArrayBufferView | null }[] = [];
      for (const [r0, r1] of [[0, split], [split, N]] as const) {
        if (p.data instanceof Float32Array || p.data instanceof Uint16Array) {
          parts.push({ w: p.data.subarray(r0 * K, r1 * K), s: null });
        } else {
          const sd = q4ScaleData(p.data.qScale, p.data.scaleDType);
          parts.push({ w: p.data.qWeight.subarray((r0 * K) / 8, (r1 * K) / 8), s: sd.subarray((r0 * K) / 32, (r1 * K) / 32) });
        }
      }
      const created: GPUBuffer[] = [];
      const up = (a: ArrayBufferView) => {
        const buf = storageBufferFrom(ctx.device, a);
        created.push(buf);
        return buf;
      };
      const xb = up(p.x);
      const yb = createStorageBuffer(ctx.device, M * N * 4);
      created.push(yb);
      const encoder = ctx.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      kernel.run(pass, { x: firstRows(xb, M, K), w: { name: 'w', buffer: up(parts[0]!.w), scales: parts[0]!.s && up(parts[0]!.s), rows: split, cols: K }, bias: up(p.b!.subarray(0, split)), y: yb }, { yRowStride: N });
      kernel.run(pass, { x: firstRows(xb, M, K), w: { name: 'w', buffer: up(parts[1]!.w), scales: parts[1]!.s && up(parts[1]!.s), rows: N - split, cols: K }, bias: up(p.b!.subarray(split)), y: yb }, {
        yRowStride: N,
        yColOffset: split,
      });
      pass.end();
      ctx.device.queue.submit([encoder.finish()]);
      expectClose(await readF32(ctx.device, yb, M * N), p.expected, `matvec ${kind} (2 blocks)`, [M, N]);
      for (const b of created) b.destroy();
      kernel.destroy();
    }
  });
});

describe('MatvecKernel gated form: silu(W_gate x) * (W_up x) in one pass (the MLP of a decode step)', () => {
  /** The gate problem of `problem` plus an up matrix of the same kind; the reference applies SiLU in f64. */
  function gated(kind: Storage, M: number, K: number, N: number, seed: number) {
    const g = problem(kind, M, K, N, false, seed);
    const u = problem(kind, M, K, N, false, seed + 1);
    const upExpected = linear(g.x, M, K, u.effective, N);
    const expected = g.expected.map((v, i) => (v / (1 + Math.exp(-v))) * upExpected[i]!);
    return { ...g, up: u.data, expected };
  }

  let i = 0;
  for (const kind of KINDS) {
    for (const [K, N] of [[96, 33], [288, 300], [64, 1]] as const) {
      const M = [1, 3, 16][i++ % 3]!;
      it(`${kind} M=${M} K=${K} N=${N}, every lane shape and row sum this device has`, async () => {
        const p = gated(kind, M, K, N, 700 + i);
        for (const opts of SHAPES()) {
          const y = await matvecOnGpu(ctx.device, p.x, M, K, p.data, N, null, { ...opts, up: p.up });
          expectClose(y, p.expected, `gated matvec ${kind} ${JSON.stringify(opts)}`, [M, N]);
        }
      });
    }
  }

  it('K = 4096, N = 70, int4 with f16 scales and f16 weights, M = 1', async () => {
    for (const kind of ['q4f16', 'f16'] as const) {
      const p = gated(kind, 1, 4096, 70, 4242);
      for (const opts of SHAPES()) {
        expectClose(await matvecOnGpu(ctx.device, p.x, 1, 4096, p.data, 70, null, { ...opts, up: p.up }), p.expected, `gated ${kind} K=4096 ${JSON.stringify(opts)}`, [1, 70], TOL_LONG);
      }
    }
  });

  it('half the rows per workgroup, and clear refusals: a bias, a mismatched or scale-less up matrix', async () => {
    expect(matvecRowsPerWorkgroup(64, true)).toBe(matvecRowsPerWorkgroup(64) / 2);
    expect(matvecRowsPerWorkgroup(1, true)).toBe(256);
    const kernel = await MatvecKernel.create(ctx.device, { weights: 'q4f32' });
    const b = createStorageBuffer(ctx.device, 4096);
    const y = createStorageBuffer(ctx.device, 4096);
    const w = { name: 'gate', buffer: b, scales: b, rows: 8, cols: 32 };
    const x = firstRows(b, 1, 32);
    expect(() => kernel.run(ctx.device, { x, w, bias: b, y, up: { ...w, name: 'up' } })).toThrow(/gated form takes no bias/);
    expect(() => kernel.run(ctx.device, { x, w, bias: null, y, up: { ...w, name: 'up', rows: 9 } })).toThrow(/up matrix up is \[9, 32\], the gate gate \[8, 32\]/);
    expect(() => kernel.run(ctx.device, { x, w, bias: null, y, up: { name: 'up', buffer: b, rows: 8, cols: 32 } })).toThrow(/q4f32 up weights need scales/);
    b.destroy();
    y.destroy();
    kernel.destroy();
  });
});

describe('MatvecKernel argument checks', () => {
  it('refuses oversized bindings, M > MATVEC_MAX_M, misaligned K, missing scales and x === y with clear messages', async () => {
    const q4 = await MatvecKernel.create(ctx.device, { weights: 'q4f16' });
    const dense = await MatvecKernel.create(ctx.device, { weights: 'f32' });
    const big = createStorageBuffer(ctx.device, 4096);
    const max = ctx.device.limits.maxStorageBufferBindingSize;
    const K = 4096;
    const N = Math.ceil(max / (K / 2)) + 8; // int4 weights just over the limit (lm_head on a small limit)
    expect(() => q4.run(ctx.device, { x: firstRows(big, 1, K), w: { name: 'w', buffer: big, scales: big, rows: N, cols: K }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(
      /MatvecKernel: w \(\[\d+, 512\] u32 int4\) is \d+ bytes, more than this device's maxStorageBufferBindingSize.*split the weight into row blocks/,
    );
    const Nf = Math.ceil(max / (K * 4)) + 1;
    expect(() => dense.run(ctx.device, { x: firstRows(big, 1, K), w: { name: 'w', buffer: big, scales: null, rows: Nf, cols: K }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(/w \(\[\d+, 4096\] f32\) is \d+ bytes/);
    expect(() => q4.run(ctx.device, { x: firstRows(big, 17, 32), w: { name: 'w', buffer: big, scales: big, rows: 1, cols: 32 }, bias: null, y: createStorageBuffer(ctx.device, 17 * 4) })).toThrow(/M = 17 rows of x, at most 16; use LinearKernel/);
    expect(() => q4.run(ctx.device, { x: firstRows(big, 1, 48), w: { name: 'w', buffer: big, scales: big, rows: 1, cols: 48 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(/K = 48 is not a multiple of 32/);
    expect(() => dense.run(ctx.device, { x: firstRows(big, 1, 10), w: { name: 'w', buffer: big, scales: null, rows: 1, cols: 10 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(/K = 10 is not a multiple of 4/);
    expect(() => q4.run(ctx.device, { x: firstRows(big, 1, 32), w: { name: 'w', buffer: big, scales: null, rows: 1, cols: 32 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(/need their scales/);
    expect(() => dense.run(ctx.device, { x: firstRows(big, 1, 32), w: { name: 'w', buffer: big, scales: big, rows: 1, cols: 32 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(/take no scales/);
    expect(() => q4.run(ctx.device, { x: firstRows(big, 1, 32), w: { name: 'w', buffer: big, scales: big, rows: 1, cols: 32 }, bias: null, y: big })).toThrow(/x and y must be different/);
    expect(() => q4.run(ctx.device, { x: firstRows(big, 1, 64), w: { name: 'w', buffer: big, scales: createStorageBuffer(ctx.device, 4), rows: 8, cols: 64 }, bias: null, y: createStorageBuffer(ctx.device, 64) })).toThrow(
      /buffer scales "" has 4 bytes, needs 32/,
    );
    expect(() => q4.run(ctx.device, { x: firstRows(big, 1, 32), w: { name: 'w', buffer: big, scales: big, rows: 8, cols: 32 }, bias: null, y: createStorageBuffer(ctx.device, 64) }, { yRowStride: 4 })).toThrow(/yRowStride 4 is smaller than N = 8/);
    big.destroy();
    q4.destroy();
    dense.destroy();
  });

  it('requires init before run', () => {
    const kernel = new MatvecKernel(ctx.device, { weights: 'f16' });
    const b = createStorageBuffer(ctx.device, 16);
    expect(() => kernel.run(ctx.device, { x: firstRows(b, 1, 8), w: { name: 'w', buffer: b, scales: null, rows: 1, cols: 8 }, bias: null, y: b })).toThrow(/init\(\)/);
    b.destroy();
  });
});

describe('MatvecKernel on a validating (Null) device with shader-f16', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  it('every kind builds (the M = 1, M <= 4 and M <= 16 pipelines, 64 lanes and 1) and a dispatch validates, folded grid included', async () => {
    for (const kind of KINDS) {
      const kernel = await MatvecKernel.create(vctx.device, { weights: kind, maxWorkgroupsPerDimension: 5 });
      const [K, N] = [kind.startsWith('q4') ? 2048 : 256, 150]; // 64 units a row: the 64-lane pipelines (19 workgroups, folded)
      for (const k of [K, 96]) {
        const wb = kernel.weightBytes(N, k);
        const x = createStorageBuffer(vctx.device, 16 * k * 4);
        const w = createStorageBuffer(vctx.device, wb.w);
        const s = wb.scales ? createStorageBuffer(vctx.device, wb.scales) : null;
        const b = createStorageBuffer(vctx.device, N * 4);
        const y = createStorageBuffer(vctx.device, 16 * N * 4);
        vctx.device.pushErrorScope('validation');
        kernel.run(vctx.device, { x: firstRows(x, 1, k), w: { name: 'w', buffer: w, scales: s, rows: N, cols: k }, bias: b, y: y });
        kernel.run(vctx.device, { x: firstRows(x, 4, k), w: { name: 'w', buffer: w, scales: s, rows: N, cols: k }, bias: null, y: y });
        kernel.run(vctx.device, { x: firstRows(x, 16, k), w: { name: 'w', buffer: w, scales: s, rows: N, cols: k }, bias: b, y: y });
        const error = await vctx.device.popErrorScope();
        expect(error?.message ?? null).toBeNull();
      }
      kernel.destroy();
    }
  });

  it('a broken edit is reported as a ShaderError with its line', async () => {
    const broken = matvecShaderSource().replace('return bitcast<f32>(word);', 'return word;');
    const err = await MatvecKernel.create(vctx.device, { weights: 'q4f32', shader: { name: 'matvec.wgsl (broken)', code: broken } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    expect((err as Error).message).toMatch(/matvec\.wgsl \(broken\).*\n.*line \d+:\d+: error/);
  });
});

describe('in-app self-test cases (MATVEC_SELF_TEST_CASES)', () => {
  for (const c of MATVEC_SELF_TEST_CASES) {
    it(`${c.id}: ${c.name}`, async () => {
      const r = await runSelfTest({ device: ctx.device }, c);
      expect(r.status, r.detail).toBe('pass');
      expect(c.requires ?? []).toEqual([]); // every variant runs without shader-f16
    });
  }
});
