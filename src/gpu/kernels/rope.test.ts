// The RoPE kernel (shaders/rope.wgsl) on Dawn (SwiftShader without a GPU) against src/reference/rope.ts.
// Tolerance: atol 1e-6 + rtol 1e-6 (f32). The table holds the reference's cos/sin rounded to f32 (checked
// bit-exact below); the GPU then computes a*cos - b*sin in f32 where the reference uses f64 and rounds once:
// a few f32 ulps for |x| <= 1 (observed <= ~2e-7).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { IMAGE_TOKEN_INDEX, prefusionMaskAndPositions } from '../../reference/prefusion.ts';
import { applyRope, ropeCosSin, ropeInvFreq } from '../../reference/rope.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { RecordedPass } from '../dispatch.ts';
import type { Tolerance } from '../compare.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { RopeKernel, ropeOnGpu, ropeShaderSource, readF16, roundToF16 } from './rope.ts';
import { buildRopeTable, RopeTable } from './rope-table.ts';
import { ROPE_SELF_TEST_CASES } from './rope.selftest.ts';
import { runSelfTest } from '../selftest-support.ts';

const TOL: Tolerance = { atol: 1e-6, rtol: 1e-6 };
/** Llama 3.1 (spec section 0). */
const LLAMA3 = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const expectClose = expectCloseWith(TOL);

describe('RoPE table', () => {
  it('holds the reference cos/sin (f32-rounded f64 of the f32 angle), interleaved per (position, frequency)', () => {
    for (const [hd, theta, scaling] of [
      [128, 500000, LLAMA3],
      [32, 10000, null],
    ] as const) {
      const invFreq = ropeInvFreq(hd, theta, scaling);
      const P = 4096;
      const table = buildRopeTable(invFreq, P);
      expect(table.length).toBe(P * hd);
      const positions = [0, 1, 2, 575, 576, 1000, 4095];
      const { cos, sin } = ropeCosSin(invFreq, positions);
      positions.forEach((p, r) => {
        for (let i = 0; i < hd / 2; i++) {
          expect(table[(p * (hd / 2) + i) * 2]).toBe(Math.fround(cos[r * (hd / 2) + i]!));
          expect(table[(p * (hd / 2) + i) * 2 + 1]).toBe(Math.fround(sin[r * (hd / 2) + i]!));
        }
      });
    }
  });
});

interface RopeCase {
  rows: number;
  nH: number;
  nKV: number;
  hd: number;
  theta: number;
  scaling: typeof LLAMA3 | null;
  positions: Int32Array;
  maxPositions: number;
}

async function checkCase(c: RopeCase, name: string) {
  const rng = seededRandom(c.rows * 131 + c.hd);
  const q = randomF32(c.rows * c.nH * c.hd, rng);
  const k = randomF32(c.rows * c.nKV * c.hd, rng);
  const invFreq = ropeInvFreq(c.hd, c.theta, c.scaling);
  const out = await ropeOnGpu(ctx.device, { q, k, rows: c.rows, numHeads: c.nH, numKvHeads: c.nKV, headDim: c.hd, positions: c.positions, invFreq, maxPositions: c.maxPositions });
  expectClose(out.q!, applyRope(q, c.rows, c.nH, c.hd, c.positions, invFreq), `${name} q`, [c.rows, c.nH * c.hd]);
  expectClose(out.k!, applyRope(k, c.rows, c.nKV, c.hd, c.positions, invFreq), `${name} k`, [c.rows, c.nKV * c.hd]);
}

describe('RopeKernel (in place) vs reference applyRope()', () => {
  it('llama3 scaling, theta 500000, head dim 128: scattered positions up to 4095 (angles of thousands of radians)', async () => {
    const positions = Int32Array.from([0, 1, 2, 577, 1, 3000, 4095]);
    await checkCase({ rows: 7, nH: 4, nKV: 2, hd: 128, theta: 500000, scaling: LLAMA3, positions, maxPositions: 4096 }, 'llama3');
  });

  it('theta 10000, no scaling, head dim 32: 577 consecutive rows', async () => {
    const positions = Int32Array.from({ length: 577 }, (_, i) => i);
    await checkCase({ rows: 577, nH: 2, nKV: 1, hd: 32, theta: 10000, scaling: null, positions, maxPositions: 600 }, 'theta 1e4');
  });

  it('one row, head dim 8; and head dim 64 at position 0 (identity)', async () => {
    await checkCase({ rows: 1, nH: 1, nKV: 1, hd: 8, theta: 10000, scaling: null, positions: Int32Array.from([5]), maxPositions: 6 }, 'hd 8');
    await checkCase({ rows: 3, nH: 3, nKV: 1, hd: 64, theta: 500000, scaling: LLAMA3, positions: Int32Array.from([0, 0, 0]), maxPositions: 1 }, 'pos 0');
  });

  it('pre-fusion positions (pos = 1 at the <image> slot) over [vision ; text] rows', async () => {
    const ids = [128000, 128000, 882, IMAGE_TOKEN_INDEX, 198, 3923, 374, 30];
    const layout = prefusionMaskAndPositions(ids, 577);
    expect(layout.positions[577 + 3]).toBe(1);
    await checkCase({ rows: layout.rows, nH: 2, nKV: 1, hd: 32, theta: 500000, scaling: LLAMA3, positions: layout.positions, maxPositions: 1024 }, 'prefusion');
  });
});

describe('RopeKernel layouts: offsets, strides, KV-cache rows, out-of-place k and the v copy', () => {
  const hd = 16;
  const invFreq = ropeInvFreq(hd, 500000, LLAMA3);

  it('q as a column window of fused QKV rows, k at a row offset of a wider cache, positions from an offset; nothing else touched', async () => {
    const [rows, nH, nKV] = [5, 3, 2];
    const qW = nH * hd;
    const kW = nKV * hd;
    const fusedW = qW + 2 * kW + 4; // [q | k | v | pad]
    const cacheRows = 12;
    const cacheStride = kW + 8;
    const row0 = 6;
    const rng = seededRandom(9);
    const fused = randomF32(rows * fusedW, rng);
    const cache = randomF32(cacheRows * cacheStride, rng);
    const allPos = Int32Array.from([99, 99, 7, 8, 1, 10, 11]);
    const positions = allPos.subarray(2);
    const qIn = new Float32Array(rows * qW);
    const kIn = new Float32Array(rows * kW);
    for (let r = 0; r < rows; r++) {
      qIn.set(fused.subarray(r * fusedW, r * fusedW + qW), r * qW);
      kIn.set(cache.subarray((row0 + r) * cacheStride, (row0 + r) * cacheStride + kW), r * kW);
    }
    const kernel = await RopeKernel.create(ctx.device, { maxWorkgroupsPerDimension: 2 });
    expect(kernel.dispatchSize(rows * (nH + nKV) * (hd / 2))).toEqual([2, 2]); // 200 rotations -> 4 workgroups, folded
    const table = RopeTable.create(ctx.device, invFreq, 16);
    const fb = storageBufferFrom(ctx.device, fused);
    const cb = storageBufferFrom(ctx.device, cache);
    const pb = storageBufferFrom(ctx.device, allPos);
    const encoder = ctx.device.createCommandEncoder();
    kernel.run(encoder, table, pb, { q: fb }, { rows, headDim: hd, numHeads: nH, numKvHeads: 0, qRowStride: fusedW, positionOffset: 2 });
    kernel.run(encoder, table, pb, { k: cb }, { rows, headDim: hd, numHeads: 0, numKvHeads: nKV, kRowOffset: row0, kRowStride: cacheStride, positionOffset: 2 });
    ctx.device.queue.submit([encoder.finish()]);
    const fusedOut = await readF32(ctx.device, fb, rows * fusedW);
    const cacheOut = await readF32(ctx.device, cb, cacheRows * cacheStride);
    const qExp = applyRope(qIn, rows, nH, hd, positions, invFreq);
    const kExp = applyRope(kIn, rows, nKV, hd, positions, invFreq);
    const qGot = new Float32Array(rows * qW);
    const kGot = new Float32Array(rows * kW);
    for (let r = 0; r < rows; r++) {
      qGot.set(fusedOut.subarray(r * fusedW, r * fusedW + qW), r * qW);
      expect(Array.from(fusedOut.subarray(r * fusedW + qW, (r + 1) * fusedW))).toEqual(Array.from(fused.subarray(r * fusedW + qW, (r + 1) * fusedW)));
      kGot.set(cacheOut.subarray((row0 + r) * cacheStride, (row0 + r) * cacheStride + kW), r * kW);
    }
    expectClose(qGot, qExp, 'q window', [rows, qW]);
    expectClose(kGot, kExp, 'k cache rows', [rows, kW]);
    // Cache rows outside row0 .. row0 + rows - 1, and the padding columns, are unchanged.
    for (let r = 0; r < cacheRows; r++) {
      const from = r >= row0 && r < row0 + rows ? kW : 0;
      expect(Array.from(cacheOut.subarray(r * cacheStride + from, (r + 1) * cacheStride))).toEqual(Array.from(cache.subarray(r * cacheStride + from, (r + 1) * cacheStride)));
    }
    for (const b of [fb, cb, pb]) b.destroy();
    table.destroy();
    kernel.destroy();
  });

  it('recorded once for decode steps (recordSteps): a replay at step p writes cache row p at position p, as run() does', async () => {
    const [nH, nKV, steps] = [4, 2, 40];
    const kW = nKV * hd;
    const rng = seededRandom(33);
    const q = randomF32(nH * hd, rng);
    const kSrc = randomF32(kW, rng);
    const vSrc = randomF32(kW, rng);
    const positions = Int32Array.from({ length: steps }, (_, i) => i);
    const kernel = await RopeKernel.create(ctx.device);
    const table = RopeTable.create(ctx.device, invFreq, steps);
    const pb = storageBufferFrom(ctx.device, positions);
    const rec = new RecordedPass(steps);
    const recorded = { q: storageBufferFrom(ctx.device, q), k: createStorageBuffer(ctx.device, steps * kW * 4), v: createStorageBuffer(ctx.device, steps * kW * 4) };
    const direct = { q: storageBufferFrom(ctx.device, q), k: createStorageBuffer(ctx.device, steps * kW * 4), v: createStorageBuffer(ctx.device, steps * kW * 4) };
    const [ksb, vsb] = [kSrc, vSrc].map((a) => storageBufferFrom(ctx.device, a));
    const dimsAt = (p: number) => ({ rows: 1, headDim: hd, numHeads: nH, numKvHeads: nKV, positionOffset: p, kRowOffset: p });
    kernel.recordSteps(rec, table, pb, { q: recorded.q, k: recorded.k, kSrc: ksb, v: recorded.v, vSrc: vsb }, dimsAt);
    for (const p of [3, steps - 1]) {
      const encoder = ctx.device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      rec.replay(pass, p);
      pass.end();
      kernel.run(encoder, table, pb, { q: direct.q, k: direct.k, kSrc: ksb, v: direct.v, vSrc: vsb }, dimsAt(p));
      ctx.device.queue.submit([encoder.finish()]);
    }
    const kOut = await readF32(ctx.device, recorded.k);
    expect(Array.from(kOut)).toEqual(Array.from(await readF32(ctx.device, direct.k)));
    expect(Array.from(await readF32(ctx.device, recorded.v))).toEqual(Array.from(await readF32(ctx.device, direct.v)));
    expect(Array.from(await readF32(ctx.device, recorded.q))).toEqual(Array.from(await readF32(ctx.device, direct.q)));
    expectClose(kOut.slice((steps - 1) * kW, steps * kW), applyRope(kSrc, 1, nKV, hd, Int32Array.of(steps - 1), invFreq), 'k row at the last step', [1, kW]);
    expect(kOut.slice(0, 3 * kW).every((x) => x === 0)).toBe(true);
    for (const b of [pb, ksb!, vsb!, ...Object.values(recorded), ...Object.values(direct)]) b.destroy();
    table.destroy();
    kernel.destroy();
  });

  it('k written rotated from a dense kSrc into cache rows, with v copied alongside, q rotated in the same dispatch', async () => {
    const [rows, nH, nKV] = [3, 4, 2];
    const kW = nKV * hd;
    const cacheRows = 8;
    const row0 = 4;
    const rng = seededRandom(21);
    const q = randomF32(rows * nH * hd, rng);
    const kSrc = randomF32(rows * kW, rng);
    const vSrc = randomF32(rows * kW, rng);
    const positions = Int32Array.from([4, 5, 6]);
    const kernel = await RopeKernel.create(ctx.device);
    const table = RopeTable.create(ctx.device, invFreq, 8);
    const [qb, ksb, vsb, pb] = [q, kSrc, vSrc, positions].map((a) => storageBufferFrom(ctx.device, a));
    const kc = createStorageBuffer(ctx.device, cacheRows * kW * 4);
    const vc = createStorageBuffer(ctx.device, cacheRows * kW * 4);
    kernel.run(ctx.device, table, pb!, { q: qb, k: kc, kSrc: ksb, v: vc, vSrc: vsb }, { rows, headDim: hd, numHeads: nH, numKvHeads: nKV, kRowOffset: row0 });
    const kOut = await readF32(ctx.device, kc, cacheRows * kW);
    const vOut = await readF32(ctx.device, vc, cacheRows * kW);
    expectClose(await readF32(ctx.device, qb!, rows * nH * hd), applyRope(q, rows, nH, hd, positions, invFreq), 'q', [rows, nH * hd]);
    expectClose(kOut.slice(row0 * kW, (row0 + rows) * kW), applyRope(kSrc, rows, nKV, hd, positions, invFreq), 'k from kSrc', [rows, kW]);
    expect(Array.from(vOut.slice(row0 * kW, (row0 + rows) * kW))).toEqual(Array.from(vSrc));
    expect(kOut.slice(0, row0 * kW).every((x) => x === 0)).toBe(true);
    expect(vOut.slice((row0 + rows) * kW).every((x) => x === 0)).toBe(true);
    for (const b of [qb, ksb, vsb, pb, kc, vc]) b!.destroy();
    table.destroy();
    kernel.destroy();
  });

  it('a position outside the table turns its row into NaN; other rows are right', async () => {
    const rng = seededRandom(4);
    const q = randomF32(3 * hd, rng);
    const positions = Int32Array.from([2, 8, -1]);
    const out = await ropeOnGpu(ctx.device, { q, k: null, rows: 3, numHeads: 1, numKvHeads: 0, headDim: hd, positions, invFreq, maxPositions: 8 });
    expectClose(out.q!.slice(0, hd), applyRope(q.slice(0, hd), 1, 1, hd, [2], invFreq), 'row 0', [1, hd]);
    expect(out.q!.slice(hd).every((x) => Number.isNaN(x))).toBe(true);
  });
});

describe('RopeKernel argument checks', () => {
  it('refuses inconsistent buffers and shapes with clear messages', async () => {
    const kernel = await RopeKernel.create(ctx.device);
    const table = RopeTable.create(ctx.device, ropeInvFreq(16, 10000, null), 4);
    const b = () => createStorageBuffer(ctx.device, 256);
    const [q, k, p, v] = [b(), b(), b(), b()];
    const dims = { rows: 2, headDim: 16, numHeads: 1, numKvHeads: 1 };
    expect(() => kernel.run(ctx.device, table, p, {}, dims)).toThrow(/neither q nor k/);
    expect(() => kernel.run(ctx.device, table, p, { q }, { ...dims, headDim: 8 })).toThrow(/table is for head dim 16/);
    expect(() => kernel.run(ctx.device, table, p, { q, k: q }, dims)).toThrow(/different buffers/);
    expect(() => kernel.run(ctx.device, table, p, { q, v, vSrc: k }, dims)).toThrow(/v copy runs with k/);
    expect(() => kernel.run(ctx.device, table, p, { q }, { ...dims, rows: 5 })).toThrow(/buffer q .* has 256 bytes, needs 320/);
    expect(() => kernel.run(ctx.device, table, p, { k }, { ...dims, numKvHeads: 0 })).toThrow(/numKvHeads must be an integer >= 1/);
    expect(() => new RopeKernel(ctx.device).run(ctx.device, table, p, { q }, dims)).toThrow(/init\(\)/);
    for (const x of [q, k, p, v]) x.destroy();
    table.destroy();
    kernel.destroy();
  });
});

describe('f16 KV cache variant', () => {
  it('the f32 code never mentions f16; the f16 source enables it and retypes the cache', () => {
    const f32 = ropeShaderSource('f32').replace(/\/\/.*$/gm, '');
    const f16 = ropeShaderSource('f16');
    expect(f32).not.toMatch(/f16/);
    expect(f16.startsWith('enable f16;\n')).toBe(true);
    expect(f16).toMatch(/^alias KT = f16;$/m);
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new RopeKernel(ctx.device, { kv: 'f16' })).toThrow(/shader-f16/);
  });

  // Runs only where the adapter has shader-f16 (skipped on SwiftShader).
  it('writes f16 cache rows: k rotated in f32 then rounded once, v rounded (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    const [rows, nKV, hd] = [5, 2, 32];
    const kW = nKV * hd;
    const invFreq = ropeInvFreq(hd, 500000, LLAMA3);
    const rng = seededRandom(33);
    const kSrc = randomF32(rows * kW, rng);
    const vSrc = randomF32(rows * kW, rng);
    const positions = Int32Array.from([0, 3, 1, 700, 701]);
    const kernel = await RopeKernel.create(ctx.device, { kv: 'f16' });
    const table = RopeTable.create(ctx.device, invFreq, 1024);
    const [ksb, vsb, pb] = [kSrc, vSrc, positions].map((a) => storageBufferFrom(ctx.device, a));
    const kc = createStorageBuffer(ctx.device, (rows + 2) * kW * 2);
    const vc = createStorageBuffer(ctx.device, (rows + 2) * kW * 2);
    kernel.run(ctx.device, table, pb!, { k: kc, kSrc: ksb, v: vc, vSrc: vsb }, { rows, headDim: hd, numHeads: 0, numKvHeads: nKV, kRowOffset: 2 });
    const kOut = await readF16(ctx.device, kc, rows * kW, 2 * kW);
    const vOut = await readF16(ctx.device, vc, rows * kW, 2 * kW);
    // One f16 rounding of the f32 result: equal to the rounded reference, or one f16 ulp away (<= 2^-10
    // relative) where the f32 results straddle a rounding boundary.
    const f16Tol: Tolerance = { atol: 1e-6, rtol: 1e-3 };
    expectClose(kOut, roundToF16(applyRope(kSrc, rows, nKV, hd, positions, invFreq)), 'k f16', [rows, kW], f16Tol);
    expect(Array.from(vOut)).toEqual(Array.from(roundToF16(vSrc)));
    for (const b of [ksb, vsb, pb, kc, vc]) b!.destroy();
    table.destroy();
    kernel.destroy();
  });
});

// SwiftShader has no shader-f16; Dawn's Null backend has it and validates WGSL, pipelines and dispatches like a
// real device (it executes nothing), so the f16-cache variant is at least built and recorded here.
describe('f16 cache variant on a validating (Null) device', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  it('builds; q + k-from-kSrc + v copy into f16 cache rows records without validation errors; in-place f16 k is refused', async () => {
    expect(vctx.device.features.has('shader-f16')).toBe(true);
    const kernel = await RopeKernel.create(vctx.device, { kv: 'f16' });
    const [rows, nH, nKV, hd] = [7, 4, 2, 128];
    const table = RopeTable.create(vctx.device, ropeInvFreq(hd, 500000, LLAMA3), 64);
    const pos = createStorageBuffer(vctx.device, rows * 4);
    const q = createStorageBuffer(vctx.device, rows * nH * hd * 4);
    const kSrc = createStorageBuffer(vctx.device, rows * nKV * hd * 4);
    const vSrc = createStorageBuffer(vctx.device, rows * nKV * hd * 4);
    const kc = createStorageBuffer(vctx.device, 32 * nKV * hd * 2);
    const vc = createStorageBuffer(vctx.device, 32 * nKV * hd * 2);
    vctx.device.pushErrorScope('validation');
    const dims = { rows, headDim: hd, numHeads: nH, numKvHeads: nKV, kRowOffset: 9 };
    kernel.run(vctx.device, table, pos, { q, k: kc, kSrc, v: vc, vSrc }, dims);
    kernel.run(vctx.device, table, pos, { k: kc, kSrc }, { ...dims, numHeads: 0 });
    kernel.run(vctx.device, table, pos, { q }, { ...dims, numKvHeads: 0 });
    const error = await vctx.device.popErrorScope();
    expect(error?.message ?? null).toBeNull();
    expect(() => kernel.run(vctx.device, table, pos, { q, k: kc }, dims)).toThrow(/written from an f32 kSrc/);
    for (const b of [pos, q, kSrc, vSrc, kc, vc]) b.destroy();
    table.destroy();
    kernel.destroy();
  });
});

describe('ROPE_SELF_TEST_CASES', () => {
  it('pass on this device (f16 cases skip without shader-f16)', async () => {
    for (const c of ROPE_SELF_TEST_CASES) {
      const r = await runSelfTest({ device: ctx.device }, c);
      const f16Missing = (c.requires ?? []).some((f) => !ctx.device.features.has(f));
      expect(r.status, `${c.id}: ${r.detail}`).toBe(f16Missing ? 'skipped' : 'pass');
    }
  });
});
