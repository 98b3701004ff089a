// Argmax and top-p sampling (shaders/sampling.wgsl) on Dawn (SwiftShader without a GPU) against the f64 CPU
// reference src/reference/sampling.ts.
//
// Token ids must be EQUAL (tolerance 0 on the ids). The GPU computes the softmax weights and running sums in f32,
// the reference in f64, so a draw whose decision is within rounding of a boundary can legitimately differ. Such
// draws are identified from the reference alone, before looking at the GPU result, and skipped (and counted):
//   - pickMargin < 1e-5: u * S lies within 1e-5 * S of a running-sum boundary of the picked token;
//   - thresholdMargin < 1e-5: the kept mass at the threshold is within 1e-5 * Z of topP * Z.
// 1e-5 is ~10x the f32 error of these sums here (exp within a few ulp, sums of <= 16 + 128 + 63 terms in
// sequence: <= ~1.2e-5 worst case, ~1e-6 typical). Each test asserts how many draws it compared.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { argmaxRef, sampleTopPDetails, sampleTopPRef, type TopPOptions } from '../../reference/sampling.ts';
import { mulberry32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readBuffer, storageBufferFrom } from '../buffers.ts';
import { compareArrays, formatComparison } from '../compare.ts';
import type { GpuContext } from '../device.ts';
import { argmaxOnGpu, isGreedy, PARAMS_RING, sampleOnGpu, SamplingKernel, samplingShaderSource, type SampleParams } from './sampling.ts';

const MARGIN = 1e-5;

let ctx: GpuContext;
let kernel: SamplingKernel;
beforeAll(async () => {
  ctx = await createNodeGpu();
  kernel = await SamplingKernel.create(ctx.device);
});
afterAll(() => {
  kernel?.destroy();
  ctx?.device.destroy();
});

/** Uniform logits in [-scale, scale), optionally quantized to multiples of `step` (many exact ties). */
function uniformLogits(V: number, seed: number, scale: number, step = 0): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    const v = (rng() * 2 - 1) * scale;
    out[i] = step > 0 ? Math.round(v / step) * step : v;
  }
  return out;
}

/** LLM-like logits: a broad bell around 0 (std ~2.5) plus `peaks` tokens lifted to 8..14. */
function peakyLogits(V: number, seed: number, peaks: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) out[i] = (rng() + rng() + rng() - 1.5) * 5;
  for (let k = 0; k < peaks; k++) out[Math.floor(rng() * V)] = 8 + rng() * 6;
  return out;
}

interface DrawStats {
  compared: number;
  skipped: number;
}

/** Runs the draws on the GPU and checks the ids against the reference, skipping the ambiguous ones. */
async function checkDraws(name: string, logits: Float32Array, draws: TopPOptions[]): Promise<DrawStats> {
  const got = await sampleOnGpu(ctx.device, logits, draws, { kernel });
  const actual: number[] = [];
  const expected: number[] = [];
  let skipped = 0;
  draws.forEach((d, j) => {
    const ref = sampleTopPDetails(logits, d);
    if (!ref.greedy && (ref.pickMargin < MARGIN || ref.thresholdMargin < MARGIN)) {
      skipped++;
      return;
    }
    actual.push(got[j]!);
    expected.push(ref.token);
  });
  const c = compareArrays(actual, expected, { atol: 0, rtol: 0 });
  if (process.env.SAMPLING_STATS) console.log(`${name}: ${actual.length} compared, ${skipped} skipped`);
  expect(c.ok, `${formatComparison(c, { name, shape: [actual.length] })} (${skipped} ambiguous draws skipped)`).toBe(true);
  return { compared: actual.length, skipped };
}

function drawsFor(seed: number, n: number, temperature: number, topP: number): TopPOptions[] {
  const rng = mulberry32(seed);
  return Array.from({ length: n }, () => ({ temperature, topP, u: rng() }));
}

describe('argmax vs argmaxRef', () => {
  for (const V of [1, 7, 1000, 2048, 2049, 5000]) {
    it(`random logits, V = ${V}`, async () => {
      const logits = uniformLogits(V, V, 10);
      expect(await argmaxOnGpu(ctx.device, logits, { kernel })).toBe(argmaxRef(logits));
    });
  }

  it('V = 128256 (the real vocabulary), max in the last chunk and in the first', async () => {
    const V = 128256;
    const logits = uniformLogits(V, 3, 10);
    logits[V - 1] = 20;
    expect(await argmaxOnGpu(ctx.device, logits, { kernel })).toBe(V - 1);
    logits[5] = 20; // tie: the lower index wins
    expect(await argmaxOnGpu(ctx.device, logits, { kernel })).toBe(5);
  });

  it('ties: the lowest index wins, within a chunk and across chunks', async () => {
    const V = 6000;
    const logits = uniformLogits(V, 9, 1);
    for (const i of [5999, 4100, 2050, 2049, 777]) logits[i] = 3;
    expect(await argmaxOnGpu(ctx.device, logits, { kernel })).toBe(777);
    logits.fill(0.5);
    expect(await argmaxOnGpu(ctx.device, logits, { kernel })).toBe(0);
  });

  it('special values: NaN counts as -inf, -0 equals +0, +inf wins, all -inf -> 0', async () => {
    const cases: number[][] = [
      [NaN, NaN, NaN],
      [NaN, -Infinity, -Infinity],
      [-Infinity, -Infinity],
      [-1, NaN, -0.5],
      [-0, 0, -1],
      [-1, 0, -0],
      [1, Infinity, NaN, Infinity],
      [-3.4e38, -Infinity, NaN],
    ];
    for (const c of cases) {
      const logits = Float32Array.from(c);
      expect(await argmaxOnGpu(ctx.device, logits, { kernel }), JSON.stringify(c)).toBe(argmaxRef(logits));
    }
    expect(argmaxRef([NaN, -Infinity])).toBe(0);
    expect(argmaxRef([-0, 0])).toBe(0);
  });
});

describe('top-p sampling vs sampleTopPRef (same token id)', () => {
  it('V = 1000: temperature 0.7 / 1.0 x top-p 1.0 / 0.9 / 0.5, 40 draws each', async () => {
    const logits = uniformLogits(1000, 42, 4);
    let total: DrawStats = { compared: 0, skipped: 0 };
    for (const temperature of [0.7, 1.0]) {
      for (const topP of [1.0, 0.9, 0.5]) {
        const s = await checkDraws(`V=1000 T=${temperature} p=${topP}`, logits, drawsFor(temperature * 100 + topP * 10, 40, temperature, topP));
        total = { compared: total.compared + s.compared, skipped: total.skipped + s.skipped };
      }
    }
    expect(total.compared).toBeGreaterThanOrEqual(220); // of 240
  });

  it('top-p 0.0 and temperature 0 are greedy (= argmax)', async () => {
    const logits = uniformLogits(1000, 5, 4);
    const draws: TopPOptions[] = [
      { temperature: 1, topP: 0, u: 0.3 },
      { temperature: 0, topP: 0.9, u: 0.7 },
      { temperature: -1, topP: 0.9, u: 0.1 },
    ];
    for (const d of draws) expect(isGreedy(d)).toBe(true);
    const got = await sampleOnGpu(ctx.device, logits, draws, { kernel });
    expect(got).toEqual(draws.map(() => argmaxRef(logits)));
    expect(draws.map((d) => sampleTopPRef(logits, d))).toEqual(got);
  });

  it('exact ties (logits quantized to 0.25): the whole tied group at the threshold is kept', async () => {
    const logits = uniformLogits(1000, 77, 3, 0.25); // 25 distinct values, ~40 tokens each
    let compared = 0;
    for (const [temperature, topP] of [[1, 0.5], [0.7, 0.9], [1, 0.05]] as const) {
      const s = await checkDraws(`ties T=${temperature} p=${topP}`, logits, drawsFor(topP * 1000, 40, temperature, topP));
      compared += s.compared;
      // the reference keeps whole groups: every kept logit is >= the threshold, every tied token included
      const ref = sampleTopPDetails(logits, { temperature, topP, u: 0.5 });
      expect(ref.kept).toBe(logits.filter((x) => x >= ref.threshold).length);
    }
    expect(compared).toBeGreaterThanOrEqual(110);
  });

  it('a tiny top-p keeps only the tokens tied at the max; u chooses among them in index order', async () => {
    const V = 5000;
    const logits = uniformLogits(V, 8, 2);
    const tied = [10, 2100, 4999];
    for (const i of tied) logits[i] = 6;
    const draws: TopPOptions[] = [0, 0.2, 0.34, 0.5, 0.7, 0.99].map((u) => ({ temperature: 1, topP: 1e-6, u }));
    const got = await sampleOnGpu(ctx.device, logits, draws, { kernel });
    expect(got).toEqual([10, 10, 2100, 2100, 4999, 4999]);
    expect(draws.map((d) => sampleTopPRef(logits, d))).toEqual(got);
  });

  it('several chunks at small V (2049, 4099) and u at the ends of [0, 1)', async () => {
    for (const V of [2049, 4099]) {
      const logits = uniformLogits(V, V, 5);
      const draws = [...drawsFor(V, 30, 1, 0.9), { temperature: 1, topP: 0.9, u: 0 }, { temperature: 0.7, topP: 1, u: 0 }, { temperature: 1, topP: 0.9, u: 0.9999999 }];
      const s = await checkDraws(`V=${V}`, logits, draws);
      expect(s.compared).toBeGreaterThanOrEqual(28);
    }
  });

  it('NaN and -inf logits are never drawn (e = 0); all-NaN falls back to argmax', async () => {
    const V = 3000;
    const logits = uniformLogits(V, 13, 2);
    for (let i = 0; i < V; i += 7) logits[i] = NaN;
    for (let i = 3; i < V; i += 11) logits[i] = -Infinity;
    const draws = drawsFor(13, 32, 1, 1);
    const got = await sampleOnGpu(ctx.device, logits, draws, { kernel });
    for (const t of got) expect(Number.isNaN(logits[t]!) || logits[t] === -Infinity).toBe(false);
    await checkDraws('NaN/-inf', logits, draws);
    const allNan = new Float32Array(10).fill(NaN);
    expect(await sampleOnGpu(ctx.device, allNan, [{ temperature: 1, topP: 0.9, u: 0.5 }], { kernel })).toEqual([0]);
    expect(sampleTopPRef(allNan, { temperature: 1, topP: 0.9, u: 0.5 })).toBe(0);
    const someInf = Float32Array.from([1, Infinity, 3, Infinity]);
    const infDraws = [0.1, 0.6].map((u) => ({ temperature: 1, topP: 0.9, u }));
    expect(await sampleOnGpu(ctx.device, someInf, infDraws, { kernel })).toEqual(infDraws.map((d) => sampleTopPRef(someInf, d)));
  });

  it('V = 128256 (the real vocabulary), LLM-like logits: 6 draws', async () => {
    const V = 128256;
    let compared = 0;
    for (const [seed, temperature, topP] of [[1, 0.7, 0.9], [2, 1.0, 0.5], [3, 1.0, 1.0]] as const) {
      const logits = peakyLogits(V, seed, 30);
      const s = await checkDraws(`V=128256 T=${temperature} p=${topP}`, logits, drawsFor(seed, 2, temperature, topP));
      compared += s.compared;
    }
    expect(compared).toBeGreaterThanOrEqual(5);
  });

  it('is deterministic for a given u; records into an open pass; PARAMS_RING runs per submit', async () => {
    const V = 1000;
    const logits = uniformLogits(V, 21, 4);
    const lb = storageBufferFrom(ctx.device, logits);
    const rb = createStorageBuffer(ctx.device, PARAMS_RING * 4);
    const draws: SampleParams[] = drawsFor(21, PARAMS_RING, 1, 0.9);
    await kernel.initTopP();
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    draws.forEach((d, j) => kernel.sample(pass, lb, rb, V, d, { outIndex: j }));
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    const a = [...new Uint32Array(await readBuffer(ctx.device, rb, PARAMS_RING * 4))];
    const b = await sampleOnGpu(ctx.device, logits, draws, { kernel });
    expect(a).toEqual(b);
    expect(new Set(a).size).toBeGreaterThan(3);
    lb.destroy();
    rb.destroy();
  });
});

describe('SamplingKernel argument checks', () => {
  it('refuses bad sizes, u outside [0, 1), a small result buffer, and use before init', async () => {
    const lb = createStorageBuffer(ctx.device, 400);
    const rb = createStorageBuffer(ctx.device, 4);
    expect(() => kernel.argmax(ctx.device, lb, rb, 101)).toThrow(/has 400 bytes, needs 404/);
    expect(() => kernel.argmax(ctx.device, lb, rb, 0)).toThrow(/V must be a positive integer/);
    expect(() => kernel.argmax(ctx.device, lb, rb, 100, { outIndex: 1 })).toThrow(/result .* needs 8/);
    expect(() => kernel.sample(ctx.device, lb, rb, 100, { temperature: 1, topP: 0.9, u: 1 })).toThrow(/u must be in \[0, 1\)/);
    expect(() => kernel.argmax(ctx.device, lb, lb, 100)).toThrow(/different buffers/);
    expect(() => new SamplingKernel(ctx.device).argmax(ctx.device, lb, rb, 100)).toThrow(/init\(\)/);
    // create() builds argmax only: top-p's passes wait for initTopP() (greedy answers never build them).
    const greedyOnly = await SamplingKernel.create(ctx.device);
    greedyOnly.argmax(ctx.device, lb, rb, 100);
    expect(() => greedyOnly.sample(ctx.device, lb, rb, 100, { temperature: 1, topP: 0.9, u: 0.5 })).toThrow(/initTopP/);
    expect(() => greedyOnly.sample(ctx.device, lb, rb, 100, { temperature: 0, topP: 0.9, u: 0.5 })).not.toThrow();
    greedyOnly.destroy();
    const max = ctx.device.limits.maxStorageBufferBindingSize;
    expect(() => kernel.argmax(ctx.device, lb, rb, max / 4 + 1)).toThrow(/maxStorageBufferBindingSize/);
    lb.destroy();
    rb.destroy();
  });

  it('the reference rejects u outside [0, 1)', () => {
    expect(() => sampleTopPRef([1, 2], { temperature: 1, topP: 0.5, u: 1 })).toThrow(/u must be in/);
  });
});

describe('f16-logits variant', () => {
  it('the f32 code never mentions f16; the f16 source enables it and retypes the logits', () => {
    const f32 = samplingShaderSource('f32').replace(/\/\/.*$/gm, '');
    const f16 = samplingShaderSource('f16');
    expect(f32).not.toMatch(/f16/);
    expect(f16.startsWith('enable f16;\n')).toBe(true);
    expect(f16).toMatch(/^alias LT = f16;$/m);
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new SamplingKernel(ctx.device, { logits: 'f16' })).toThrow(/shader-f16/);
  });

  it('compiles, builds its pipelines and validates its dispatches on a validating (Null) device', async () => {
    const vctx = await createValidationOnlyGpu();
    try {
      expect(vctx.device.features.has('shader-f16')).toBe(true);
      const k = await new SamplingKernel(vctx.device, { logits: 'f16' }).initTopP();
      const V = 4099; // odd: the f16 buffer is padded to 4 bytes
      const lb = createStorageBuffer(vctx.device, V * 2);
      const rb = createStorageBuffer(vctx.device, 8);
      vctx.device.pushErrorScope('validation');
      k.argmax(vctx.device, lb, rb, V);
      k.sample(vctx.device, lb, rb, V, { temperature: 0.7, topP: 0.9, u: 0.5 }, { outIndex: 1 });
      k.sample(vctx.device, lb, rb, V, { temperature: 0.7, topP: 1, u: 0.5 });
      expect((await vctx.device.popErrorScope())?.message ?? null).toBeNull();
      k.destroy();
    } finally {
      vctx.device.destroy();
    }
  });

  // Runs only where the adapter has shader-f16 (skipped on SwiftShader).
  it('matches the reference on f16-rounded logits (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    const k = await SamplingKernel.create(ctx.device, { logits: 'f16' });
    const { roundToF16 } = await import('./linear.ts');
    const logits = roundToF16(uniformLogits(3000, 4, 4, 0));
    const draws = drawsFor(4, 32, 0.8, 0.9);
    const got = await sampleOnGpu(ctx.device, logits, draws, { kernel: k });
    const ok = draws.filter((d, j) => {
      const r = sampleTopPDetails(logits, d);
      return r.pickMargin < MARGIN || r.thresholdMargin < MARGIN || r.token === got[j];
    });
    expect(ok.length).toBe(draws.length);
    k.destroy();
  });
});
