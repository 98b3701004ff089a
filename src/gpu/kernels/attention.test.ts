// The flash-style attention kernel (shaders/attention.wgsl) on Dawn (SwiftShader without a GPU) against the f64
// CPU reference src/reference/attention.ts.
// Tolerance: atol 1e-5 + rtol 1e-5 (f32). Scores are f32 dot products of <= 128 terms (|q|, |k| <= 1, a few
// f32 ulps of error), softmax weights carry the exp() error (a few ulps relative) and the output is a convex
// combination of |v| <= 1: the observed error is ~1e-7..1e-6, well inside. Same tolerance for the f16-KV variant
// against the reference fed the f16-rounded K/V (only the storage is f16; math stays f32).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { attention, type AttentionMask } from '../../reference/attention.ts';
import { IMAGE_TOKEN_INDEX, prefusionMaskAndPositions } from '../../reference/prefusion.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, formatComparison, type Tolerance } from '../compare.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { RecordedPass } from '../dispatch.ts';
import { computeProgram, ShaderError } from '../pipeline.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { AttentionKernel, attentionOnGpu, attentionPath, attentionShaderSource, roundToF16, tiledLanes, type AttentionOnGpuArgs } from './attention.ts';
import { ATTENTION_SELF_TEST_CASES } from './attention.selftest.ts';
import { runSelfTest } from '../selftest-support.ts';

const TOL: Tolerance = { atol: 1e-5, rtol: 1e-5 };
/** Every path runs on every adapter here (the adapter's own choice is only a speed matter). */
const ALL_PATHS = ['tiled', 'splitk', 'direct'] as const;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

interface Case {
  nq: number;
  nk: number;
  nH: number;
  nKV?: number;
  hd: number;
  causal?: boolean;
  /** Multiplies q: larger = peakier softmax. */
  qScale?: number;
  seed?: number;
}

function data(c: Case) {
  const rng = seededRandom(c.seed ?? c.nq * 7919 + c.nk * 31 + c.hd);
  const nKV = c.nKV ?? c.nH;
  return {
    q: randomF32(c.nq * c.nH * c.hd, rng, c.qScale ?? 1),
    k: randomF32(c.nk * nKV * c.hd, rng),
    v: randomF32(c.nk * nKV * c.hd, rng),
  };
}

function expected(c: Case, d: { q: Float32Array; k: Float32Array; v: Float32Array }, mask?: AttentionMask): Float32Array {
  const past = c.nk - c.nq;
  return attention({
    ...d,
    qRows: c.nq,
    kRows: c.nk,
    numHeads: c.nH,
    numKvHeads: c.nKV ?? c.nH,
    headDim: c.hd,
    scale: 1 / Math.sqrt(c.hd),
    mask: mask ?? (c.causal ? (i, j) => j <= past + i : undefined),
  });
}

const expectClose = expectCloseWith(TOL);

async function check(c: Case, extra: Partial<AttentionOnGpuArgs> = {}, name = 'attention') {
  const d = data(c);
  const exp = expected(c, d);
  const out = await attentionOnGpu(ctx.device, { ...d, nq: c.nq, nk: c.nk, numHeads: c.nH, numKvHeads: c.nKV, headDim: c.hd, causal: c.causal, ...extra });
  return expectClose(out, exp, name, [c.nq, c.nH * c.hd]);
}

const label = (c: Case) => `nq=${c.nq} nk=${c.nk} heads ${c.nH}${c.nKV ? `:${c.nKV}` : ''}x${c.hd}${c.causal ? ' causal' : ''}${c.qScale ? ` q*${c.qScale}` : ''}`;

describe('attention, no mask (CLIP self-attention, compressor cross-attention)', () => {
  const cases: Case[] = [
    { nq: 1, nk: 1, nH: 2, hd: 32 },
    { nq: 1, nk: 7, nH: 2, hd: 32 },
    { nq: 7, nk: 7, nH: 2, hd: 32 },
    { nq: 7, nk: 577, nH: 2, hd: 32 },
    { nq: 64, nk: 601, nH: 2, hd: 32 },
    { nq: 65, nk: 7, nH: 1, hd: 8 },
    { nq: 7, nk: 601, nH: 1, hd: 32, qScale: 8 },
  ];
  for (const c of cases) {
    it(`${label(c)} (auto path)`, () => check(c));
  }
  it('every path (GPU: tiled, splitk; CPU adapters: direct) and forced key splits agree with the reference (nq=7, nk=601)', async () => {
    const c: Case = { nq: 7, nk: 601, nH: 2, hd: 32 };
    for (const path of ALL_PATHS) {
      for (const splits of [1, 3, 10]) await check(c, { path, splits }, `attention ${path} splits=${splits}`);
    }
  });
  it('head dims 8, 32, 64, 128, every path', async () => {
    for (const hd of [8, 32, 64, 128]) {
      for (const path of ALL_PATHS) {
        await check({ nq: 9, nk: 33, nH: 2, hd }, { path }, `attention hd=${hd} ${path}`);
        await check({ nq: 3, nk: 33, nH: 2, hd, causal: true }, { path }, `attention hd=${hd} ${path} causal`);
      }
    }
  });
  it('compressor cross-attention: 1 x 576 and 4 x 576 queries, 8 heads x 128', async () => {
    await check({ nq: 1, nk: 576, nH: 8, hd: 128 }, {}, 'compressor C=1');
    await check({ nq: 4, nk: 576, nH: 8, hd: 128 }, {}, 'compressor C=2');
    for (const path of ALL_PATHS) await check({ nq: 4, nk: 576, nH: 8, hd: 128 }, { path }, `compressor C=2 ${path}`);
  });
  it('full-size CLIP self-attention: 577 rows, 16 heads x 64', async () => {
    const c: Case = { nq: 577, nk: 577, nH: 16, hd: 64, seed: 577 };
    const d = data(c);
    const exp = expected(c, d);
    const t0 = performance.now();
    const out = await attentionOnGpu(ctx.device, { ...d, nq: 577, nk: 577, numHeads: 16, headDim: 64 });
    const ms = performance.now() - t0;
    const cmp = expectClose(out, exp, 'CLIP attention', [577, 1024]);
    console.log(`CLIP attention 577x16x64 on ${ctx.summary.architecture || 'GPU'}: ${ms.toFixed(0)} ms incl. upload/build; ${formatComparison(cmp)}`);
  }, 120_000);
});

describe('attention, causal with a KV-cache offset (prefill, decode)', () => {
  const cases: Case[] = [
    { nq: 1, nk: 1, nH: 2, hd: 32, causal: true },
    { nq: 7, nk: 7, nH: 2, hd: 32, causal: true },
    { nq: 64, nk: 64, nH: 2, hd: 32, causal: true },
    { nq: 7, nk: 601, nH: 2, hd: 32, causal: true }, // 594 cached rows, then 7 new
    { nq: 1, nk: 601, nH: 2, hd: 32, causal: true }, // decode after a 600-row prefill
    { nq: 64, nk: 577, nH: 2, hd: 32, causal: true },
    { nq: 7, nk: 577, nH: 4, nKV: 2, hd: 32, causal: true }, // GQA 4:2
    { nq: 64, nk: 64, nH: 4, nKV: 2, hd: 32, causal: true },
    { nq: 1, nk: 601, nH: 4, nKV: 2, hd: 32, causal: true },
  ];
  for (const c of cases) {
    it(`${label(c)} (auto path)`, () => check(c));
  }
  it('every path, with and without key splits (nq=7, nk=601, GQA 4:2)', async () => {
    const c: Case = { nq: 7, nk: 601, nH: 4, nKV: 2, hd: 32, causal: true };
    for (const path of ALL_PATHS) {
      for (const splits of [1, 4]) await check(c, { path, splits }, `attention ${path} splits=${splits}`);
    }
    for (const path of ['tiled', 'direct'] as const) await check({ ...c, nq: 64 }, { path, splits: 5 }, `attention 64 rows ${path} splits=5`);
  });
  it('GQA 32:8 at head dim 128 (the Llama shape): decode and a 3-row step', async () => {
    await check({ nq: 1, nk: 300, nH: 32, nKV: 8, hd: 128, causal: true }, {}, 'llama decode');
    await check({ nq: 3, nk: 40, nH: 32, nKV: 8, hd: 128, causal: true }, {}, 'llama 3 rows');
  });
  it('reads only rows 0..nk-1 of a larger cache (rows past nk hold 1e4)', async () => {
    await check({ nq: 1, nk: 70, nH: 4, nKV: 2, hd: 32, causal: true }, { extraKvRows: 50 }, 'splitk, larger cache');
    await check({ nq: 20, nk: 70, nH: 4, nKV: 2, hd: 32, causal: true }, { extraKvRows: 50 }, 'tiled, larger cache');
  });
});

describe('attention, causal + key-keep mask (pre-fusion)', () => {
  // [vision rows ; prompt]: the <image> slot (-200) and its row are excluded as keys, positions skip it.
  const ids = [128000, 128000, 128006, 882, 128007, 271, IMAGE_TOKEN_INDEX, 198, 3923, 374, 420, 30, 128009];
  for (const [numVision, nH, nKV, hd] of [
    [10, 4, 2, 32],
    [577, 2, 1, 8], // the real 576 + C^2 vision rows, narrow heads
  ] as const) {
    it(`${numVision} vision rows + ${ids.length} text rows, heads ${nH}:${nKV}x${hd}: whole sequence, and text rows over a cached vision prefix`, async () => {
      const layout = prefusionMaskAndPositions(ids, numVision);
      const n = layout.rows;
      const c: Case = { nq: n, nk: n, nH, nKV, hd, seed: numVision };
      const d = data(c);
      const exp = expected(c, d, layout.allowed);
      const keep = layout.keep;
      for (const path of ['auto', ...ALL_PATHS] as const) {
        const out = await attentionOnGpu(ctx.device, { ...d, nq: n, nk: n, numHeads: nH, numKvHeads: nKV, headDim: hd, causal: true, keep, path });
        expectClose(out, exp, `prefusion full (${path})`, [n, nH * hd]);
      }
      // Only the text rows as queries (the vision rows' K/V cached first): past = numVision.
      const L = ids.length;
      const qText = d.q.slice(numVision * nH * hd);
      const expText = exp.slice(numVision * nH * hd);
      for (const path of ['auto', ...ALL_PATHS] as const) {
        const out = await attentionOnGpu(ctx.device, { ...d, q: qText, nq: L, nk: n, numHeads: nH, numKvHeads: nKV, headDim: hd, causal: true, keep, path });
        expectClose(out, expText, `prefusion text rows (${path})`, [L, nH * hd]);
      }
    });
  }

  it('the mask matters: without keep the pad key changes the text rows', async () => {
    const layout = prefusionMaskAndPositions(ids, 10);
    const n = layout.rows;
    const c: Case = { nq: n, nk: n, nH: 2, hd: 8, seed: 5 };
    const d = data(c);
    const exp = expected(c, d, layout.allowed);
    const out = await attentionOnGpu(ctx.device, { ...d, nq: n, nk: n, numHeads: 2, headDim: 8, causal: true });
    expect(compareArrays(out, exp, TOL).ok).toBe(false);
  });
});

describe('tiled with a slot split over lanes (head-dim shares, subgroup sums)', () => {
  it('takes the fewest lanes (1, 2, 4) that leave a lane at most 8 vec4s of q and of output, and 1 without subgroups', () => {
    expect([8, 32, 36, 64, 68, 100, 128].map((hd) => tiledLanes(hd, true))).toEqual([1, 1, 2, 2, 4, 4, 4]);
    expect([8, 64, 128].map((hd) => tiledLanes(hd, false))).toEqual([1, 1, 1]);
    // The lane form enables subgroups and sums the lanes' partial scores; the one-lane form has no subgroup op.
    const lanes = attentionShaderSource('f32', 'gpu', true);
    expect(lanes.startsWith('enable subgroups;\n')).toBe(true);
    expect(lanes).toMatch(/^const RC: u32 = 8u;/m);
    expect(lanes).toMatch(/subgroupShuffleXor/);
    for (const form of ['gpu', 'direct'] as const) expect(attentionShaderSource('f32', form).replace(/\/\/.*$/gm, '')).not.toMatch(/subgroup/);
    expect(() => attentionShaderSource('f32', 'direct', true)).toThrow(/only the gpu form/);
  });

  it('is refused with a clear error when the device lacks subgroups', ({ skip }) => {
    if (ctx.device.features.has('subgroups')) skip('this device has subgroups');
    expect(() => new AttentionKernel(ctx.device, { headDim: 128, splitHeadDim: true })).toThrow(/subgroups/);
  });

  // Head dims of 2 and 4 lanes, including ones that no lane count divides (36: 9 vec4s on 2 lanes, 100: 25 on 4),
  // with GQA, a causal KV-cache offset, the keep mask, key splits and a dead-slot tail (nq * G not a multiple of 64).
  it('matches the reference at head dims 36, 64, 100 and 128, one lane and split, every mask (needs subgroups)', async ({ skip }) => {
    if (!ctx.device.features.has('subgroups')) skip('the adapter has no subgroups');
    for (const hd of [36, 64, 100, 128]) {
      for (const splitHeadDim of [true, false]) {
        const kernel = await AttentionKernel.create(ctx.device, { headDim: hd, paths: ['tiled'], splitHeadDim });
        expect(kernel.lanes).toBe(splitHeadDim ? tiledLanes(hd, true) : 1);
        kernel.destroy();
        const tag = `hd=${hd} lanes=${splitHeadDim ? tiledLanes(hd, true) : 1}`;
        await check({ nq: 70, nk: 70, nH: 4, nKV: 2, hd, seed: hd }, { path: 'tiled', splitHeadDim }, `tiled ${tag}`);
        await check({ nq: 37, nk: 301, nH: 4, nKV: 1, hd, causal: true, qScale: 4 }, { path: 'tiled', splitHeadDim, splits: 3 }, `tiled ${tag} causal GQA 4:1 splits=3`);
        const layout = prefusionMaskAndPositions([128000, 882, IMAGE_TOKEN_INDEX, 198, 3923, 374, 30], 9);
        const c: Case = { nq: layout.rows, nk: layout.rows, nH: 2, hd, seed: 3 };
        const d = data(c);
        const out = await attentionOnGpu(ctx.device, { ...d, nq: c.nq, nk: c.nk, numHeads: 2, headDim: hd, causal: true, keep: layout.keep, path: 'tiled', splitHeadDim });
        expectClose(out, expected(c, d, layout.allowed), `tiled ${tag} keep`, [c.nq, 2 * hd]);
      }
    }
  });
});

describe('AttentionKernel strides, recording and planning', () => {
  it('q/out as column windows of wider rows, K/V with a wider row stride, recorded into one pass with a 2D-folded grid', async () => {
    const [nq, nk, nH, nKV, hd] = [9, 40, 4, 2, 8];
    const c: Case = { nq, nk, nH, nKV, hd, causal: true };
    const d = data(c);
    const exp = expected(c, d);
    const qW = nH * hd + 8;
    const kvW = nKV * hd + 4;
    const oW = nH * hd + 12;
    const widen = (x: Float32Array, rows: number, w: number, W: number) => {
      const y = new Float32Array(rows * W).fill(NaN);
      for (let r = 0; r < rows; r++) y.set(x.subarray(r * w, (r + 1) * w), r * W);
      return y;
    };
    const kernel = await AttentionKernel.create(ctx.device, { headDim: hd, maxWorkgroupsPerDimension: 8, paths: ALL_PATHS });
    const qb = storageBufferFrom(ctx.device, widen(d.q, nq, nH * hd, qW));
    const kb = storageBufferFrom(ctx.device, widen(d.k, nk, nKV * hd, kvW));
    const vb = storageBufferFrom(ctx.device, widen(d.v, nk, nKV * hd, kvW));
    const ob = storageBufferFrom(ctx.device, new Float32Array(nq * oW).fill(-7));
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const plan = kernel.plan({ nq, nk, numHeads: nH, numKvHeads: nKV }, { path: 'splitk', splits: 5 });
    expect(plan.workgroups).toBe(5 * 2 * 5); // 9 rows x 2 heads per KV head = 18 slots -> 5 blocks of 4, x 2 KV heads x 5 splits
    expect(kernel.dispatchSize(plan.workgroups)).toEqual([8, 7]);
    kernel.run(pass, qb, kb, vb, ob, { nq, nk, numHeads: nH, numKvHeads: nKV, causal: true }, { qRowStride: qW, kvRowStride: kvW, outRowStride: oW, path: 'splitk', splits: 5 });
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    const strided = async (what: string) => {
      const o = await readF32(ctx.device, ob, nq * oW);
      const got = new Float32Array(nq * nH * hd);
      for (let r = 0; r < nq; r++) {
        got.set(o.subarray(r * oW, r * oW + nH * hd), r * nH * hd);
        for (let j = nH * hd; j < oW; j++) expect(o[r * oW + j]).toBe(-7); // padding columns untouched
      }
      expectClose(got, exp, what, [nq, nH * hd]);
    };
    await strided('strided (splitk)');
    for (const path of ['tiled', 'direct'] as const) {
      ctx.device.queue.writeBuffer(ob, 0, new Float32Array(nq * oW).fill(-7));
      kernel.run(ctx.device, qb, kb, vb, ob, { nq, nk, numHeads: nH, numKvHeads: nKV, causal: true }, { qRowStride: qW, kvRowStride: kvW, outRowStride: oW, path, splits: 3 });
      await strided(`strided (${path})`);
    }
    for (const b of [qb, kb, vb, ob]) b.destroy();
    kernel.destroy();
  });

  it('plans splitk for few slots and tiled for many on a GPU, direct for every shape on a CPU adapter, splitting long key ranges', async () => {
    const cpuShaped = new AttentionKernel(ctx.device, { headDim: 128, cpu: true });
    expect([...cpuShaped.paths]).toEqual(['direct']);
    for (const nq of [1, 4, 650]) expect(cpuShaped.plan({ nq, nk: 650, numHeads: 32, numKvHeads: 8 }).path).toBe('direct');
    expect([...new AttentionKernel(ctx.device, { headDim: 128, cpu: true, onlyFor: { nq: 1, numHeads: 32, numKvHeads: 8 } }).paths]).toEqual(['direct']);
    expect([...new AttentionKernel(ctx.device, { headDim: 128, cpu: false, onlyFor: { nq: 1, numHeads: 32, numKvHeads: 8 } }).paths]).toEqual(['splitk']);
    const kernel = await AttentionKernel.create(ctx.device, { headDim: 128, cpu: false });
    const decode = kernel.plan({ nq: 1, nk: 4096, numHeads: 32, numKvHeads: 8 });
    expect(decode.path).toBe('splitk');
    expect(decode.chunk).toBeLessThanOrEqual(256);
    expect(decode.workgroups).toBeGreaterThanOrEqual(128);
    const compressor = kernel.plan({ nq: 4, nk: 576, numHeads: 8 });
    expect(compressor.path).toBe('splitk');
    const prefill = kernel.plan({ nq: 650, nk: 650, numHeads: 32, numKvHeads: 8 });
    expect(prefill.path).toBe('tiled');
    expect(prefill.slotBlocks).toBe(Math.ceil((650 * 4) / 64));
    const clip = kernel.plan({ nq: 577, nk: 577, numHeads: 16 });
    expect(clip.splits).toBe(1);
    kernel.destroy();
  });

  it('builds only the paths asked for: auto takes a built one for any shape, still right; forcing another is refused', async () => {
    expect([attentionPath({ nq: 1, numHeads: 32, numKvHeads: 8 }), attentionPath({ nq: 577, numHeads: 16 }), attentionPath({ nq: 2, numHeads: 2 })]).toEqual(['splitk', 'tiled', 'splitk']);
    const tiledOnly = await AttentionKernel.create(ctx.device, { headDim: 32, paths: ['tiled'] });
    expect(tiledOnly.plan({ nq: 1, nk: 300, numHeads: 4 }).path).toBe('tiled');
    expect(() => tiledOnly.plan({ nq: 1, nk: 300, numHeads: 4 }, { path: 'splitk' })).toThrow(/splitk path was not built/);
    tiledOnly.destroy();
    const splitkOnly = await AttentionKernel.create(ctx.device, { headDim: 32, paths: ['splitk'] });
    expect(splitkOnly.plan({ nq: 65, nk: 65, numHeads: 4 }).path).toBe('splitk');
    splitkOnly.destroy();
    expect(() => new AttentionKernel(ctx.device, { headDim: 32, paths: [] })).toThrow(/paths must be some of tiled, splitk, direct/);
    // A decode-shaped run (1 query, 2 key splits) through tiled + combine, and a 65-row one through splitk alone,
    // against the reference.
    await check({ nq: 1, nk: 601, nH: 4, nKV: 2, hd: 32 }, { paths: ['tiled'], splits: 2 });
    await check({ nq: 65, nk: 70, nH: 2, hd: 32, causal: true }, { paths: ['splitk'] });
  });
});

describe('AttentionKernel recorded for decode steps (recordSteps, replayed per position)', () => {
  // A decode plan binds everything once; the step p picks nk = p + 1 from a uniform table. Each replay must give
  // the reference's output at that nk, and exactly what run() gives for the same shape.
  async function replayAt(rec: RecordedPass, out: GPUBuffer, p: number): Promise<Float32Array> {
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    rec.replay(pass, p);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    return readF32(ctx.device, out);
  }

  it('GQA 32:8 over 4096 cached rows (GPU and CPU-adapter shapes): steps where the key splits change, and one with more splits than the last step', async () => {
    for (const cpu of [false, true]) await recordedDecode(cpu);
  });

  async function recordedDecode(cpu: boolean): Promise<void> {
    const [nH, nKV, hd, steps] = [32, 8, 8, 4096];
    const kernel = await AttentionKernel.create(ctx.device, { headDim: hd, cpu });
    const shapeAt = (p: number) => ({ nq: 1, nk: p + 1, numHeads: nH, numKvHeads: nKV, causal: true });
    expect(kernel.plan(shapeAt(0)).path).toBe(cpu ? 'direct' : 'splitk');
    // splitk, 8 KV heads -> 8 base workgroups: at nk = 1025 the plan takes 17 splits of 64 keys, at 4096 only 16 of 256.
    if (!cpu) expect(kernel.plan(shapeAt(1024)).splits).toBeGreaterThan(kernel.plan(shapeAt(steps - 1)).splits);
    const rng = seededRandom(404);
    const d = { q: randomF32(nH * hd, rng), k: randomF32(steps * nKV * hd, rng), v: randomF32(steps * nKV * hd, rng) };
    const [qb, kb, vb] = [d.q, d.k, d.v].map((a) => storageBufferFrom(ctx.device, a));
    const out = createStorageBuffer(ctx.device, nH * hd * 4);
    const direct = createStorageBuffer(ctx.device, nH * hd * 4);
    const rec = new RecordedPass(steps);
    kernel.recordSteps(rec, qb!, kb!, vb!, out, shapeAt);
    for (const p of [0, 63, 64, 65, 1024, steps - 1]) {
      const got = await replayAt(rec, out, p);
      const c: Case = { nq: 1, nk: p + 1, nH, nKV, hd, causal: true };
      expectClose(got, expected(c, { q: d.q, k: d.k.subarray(0, (p + 1) * nKV * hd), v: d.v.subarray(0, (p + 1) * nKV * hd) }), `replay at step ${p}`, [1, nH * hd]);
      kernel.run(ctx.device, qb!, kb!, vb!, direct, shapeAt(p));
      expect(Array.from(got)).toEqual(Array.from(await readF32(ctx.device, direct)));
    }
    expect(() => rec.replay({} as GPUComputePassEncoder, steps)).toThrow(/step 4096 outside 0\.\.4095/);
    for (const b of [qb, kb, vb, out, direct]) b!.destroy();
    kernel.destroy();
  }

  it('refuses a recording whose path would change between steps', async () => {
    const kernel = await AttentionKernel.create(ctx.device, { headDim: 8, cpu: false });
    const b = createStorageBuffer(ctx.device, 64 * 64 * 4);
    const out = createStorageBuffer(ctx.device, 64 * 64 * 4);
    // 1 query row up to 4 slots is splitk, 40 rows is tiled.
    const shapeAt = (p: number) => ({ nq: p === 0 ? 1 : 40, nk: 40, numHeads: 1, causal: true });
    expect(() => kernel.recordSteps(new RecordedPass(2), b, b, b, out, shapeAt)).toThrow(/programs change between steps 0 and 1/);
    b.destroy();
    out.destroy();
    kernel.destroy();
  });
});

describe('AttentionKernel argument checks', () => {
  it('refuses bad shapes and buffers with clear messages', async () => {
    expect(() => new AttentionKernel(ctx.device, { headDim: 6 })).toThrow(/multiple of 4/);
    expect(() => new AttentionKernel(ctx.device, { headDim: 256 })).toThrow(/\[4, 128\]/);
    const kernel = await AttentionKernel.create(ctx.device, { headDim: 8 });
    const b = () => createStorageBuffer(ctx.device, 1024);
    const [q, k, v, o] = [b(), b(), b(), b()];
    expect(() => kernel.run(ctx.device, q, k, v, q, { nq: 1, nk: 1, numHeads: 1 })).toThrow(/different buffer/);
    expect(() => kernel.run(ctx.device, q, k, v, o, { nq: 4, nk: 2, numHeads: 1, causal: true })).toThrow(/nk >= nq/);
    expect(() => kernel.run(ctx.device, q, k, v, o, { nq: 1, nk: 1, numHeads: 3, numKvHeads: 2 })).toThrow(/not a multiple/);
    expect(() => kernel.run(ctx.device, q, k, v, o, { nq: 1, nk: 100, numHeads: 1 })).toThrow(/buffer k .* needs 3200/);
    expect(() => kernel.run(ctx.device, q, k, v, o, { nq: 0, nk: 1, numHeads: 1 })).toThrow(/nq must be a positive integer/);
    expect(() => new AttentionKernel(ctx.device, { headDim: 8 }).run(ctx.device, q, k, v, o, { nq: 1, nk: 1, numHeads: 1 })).toThrow(/init\(\)/);
    for (const x of [q, k, v, o]) x.destroy();
    kernel.destroy();
  });
});

describe('f16 KV cache', () => {
  it('the f32 code never mentions f16; the f16 source enables it and retypes K/V (both forms)', () => {
    for (const form of ['gpu', 'direct'] as const) {
      const f32 = attentionShaderSource('f32', form).replace(/\/\/.*$/gm, '');
      const f16 = attentionShaderSource('f16', form);
      expect(f32).not.toMatch(/f16/);
      expect(f16.startsWith('enable f16;\n')).toBe(true);
      expect(f16).toMatch(/^alias KV4 = vec4<f16>;$/m);
    }
    // The direct form has no workgroup memory and no barrier (it builds in milliseconds on SwiftShader).
    expect(attentionShaderSource('f32', 'direct')).not.toMatch(/var<workgroup>|workgroupBarrier/);
    expect(attentionShaderSource('f32', 'gpu')).toMatch(/var<workgroup>/);
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new AttentionKernel(ctx.device, { headDim: 8, kv: 'f16' })).toThrow(/shader-f16/);
  });

  // Runs only where the adapter has shader-f16 (skipped on SwiftShader).
  it('matches the reference on f16-rounded K/V (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    for (const c of [
      { nq: 1, nk: 601, nH: 4, nKV: 2, hd: 32, causal: true },
      { nq: 64, nk: 601, nH: 4, nKV: 2, hd: 32, causal: true },
      { nq: 4, nk: 576, nH: 8, hd: 128 },
    ] as Case[]) {
      const d = data(c);
      const exp = expected(c, { q: d.q, k: roundToF16(d.k), v: roundToF16(d.v) });
      for (const path of ALL_PATHS) {
        const out = await attentionOnGpu(ctx.device, { ...d, nq: c.nq, nk: c.nk, numHeads: c.nH, numKvHeads: c.nKV, headDim: c.hd, causal: c.causal, kv: 'f16', path });
        expectClose(out, exp, `attention f16 KV ${label(c)} ${path}`, [c.nq, c.nH * c.hd]);
      }
    }
  });
});

// SwiftShader has no shader-f16; Dawn's Null backend has it and validates WGSL, pipelines and dispatches like a
// real device (it executes nothing), so the f16-KV variant is at least built and recorded here.
describe('f16 KV variant on a validating (Null) device', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  it('builds for head dims 8 and 128, and every path (tiled in both forms, splitk, direct, combine) records without validation errors', async () => {
    expect(vctx.device.features.has('shader-f16')).toBe(true);
    // Both tiled forms where the Null device has subgroups (head dim 128: 4 lanes a slot).
    const forms = vctx.device.features.has('subgroups') ? [false, true] : [false];
    for (const [hd, splitHeadDim] of [8, 128].flatMap((hd) => forms.map((f) => [hd, f] as const))) {
      const kernel = await AttentionKernel.create(vctx.device, { headDim: hd, kv: 'f16', paths: ALL_PATHS, splitHeadDim });
      const [nq, nk, nH, nKV] = [5, 301, 4, 2];
      const q = createStorageBuffer(vctx.device, nq * nH * hd * 4);
      const k = createStorageBuffer(vctx.device, nk * nKV * hd * 2);
      const v = createStorageBuffer(vctx.device, nk * nKV * hd * 2);
      const keep = createStorageBuffer(vctx.device, nk * 4);
      const o = createStorageBuffer(vctx.device, nq * nH * hd * 4);
      vctx.device.pushErrorScope('validation');
      const encoder = vctx.device.createCommandEncoder();
      for (const path of ALL_PATHS) {
        for (const splits of [1, 3]) kernel.run(encoder, q, k, v, o, { nq, nk, numHeads: nH, numKvHeads: nKV, causal: true }, { keep, path, splits });
      }
      vctx.device.queue.submit([encoder.finish()]);
      const error = await vctx.device.popErrorScope();
      expect(error?.message ?? null).toBeNull();
      for (const b of [q, k, v, keep, o]) b.destroy();
      kernel.destroy();
    }
  });

  it('a broken f16 edit is caught with its line', async () => {
    const broken = attentionShaderSource('f16').replace('ks[e] = vec4<f32>(k[src]);', 'ks[e] = k[src];');
    expect(broken).not.toBe(attentionShaderSource('f16'));
    const err = await computeProgram(vctx.device, { name: 'attention.wgsl (f16, broken)', code: broken, entryPoint: 'tiled', bindings: ['uniform', 'read', 'read', 'read', 'read', 'storage', 'storage'], constants: { HD4: 8 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    expect((err as Error).message).toMatch(/attention\.wgsl \(f16, broken\).*\n.*line \d+:\d+: error/);
  });
});

describe('ATTENTION_SELF_TEST_CASES', () => {
  it('pass on this device (f16 cases skip without shader-f16)', async () => {
    for (const c of ATTENTION_SELF_TEST_CASES) {
      const r = await runSelfTest({ device: ctx.device }, c);
      const f16Missing = (c.requires ?? []).some((f) => !ctx.device.features.has(f));
      expect(r.status, `${c.id}: ${r.detail}`).toBe(f16Missing ? 'skipped' : 'pass');
    }
  }, 60_000);
});
