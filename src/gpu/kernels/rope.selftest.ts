// In-app self-test cases for RoPE (shaders/rope.wgsl): seeded random q/k rotated on the GPU vs the CPU reference
// src/reference/rope.ts. Sizes stay small: the page may run on SwiftShader.
import { applyRope, ropeInvFreq } from '../../reference/rope.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import { shaderF16If, timed, withGpuObjects, type SelfTestCase } from '../selftest-support.ts';
import { readF16, roundToF16, RopeKernel } from './rope.ts';
import { RopeTable } from './rope-table.ts';

const LLAMA3 = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const y = new Float32Array(a.length + b.length);
  y.set(a);
  y.set(b, a.length);
  return y;
}

/** q [rows, nH*hd] in place and k [rows, nKV*hd] (f32 in place, or f16 cache rows written from kSrc with a v copy). */
function ropeCase(opts: { id: string; name: string; kv: 'f32' | 'f16'; seed: number }): SelfTestCase {
  const [rows, nH, nKV, hd, maxPositions] = [9, 4, 2, 128, 4096];
  return {
    id: opts.id,
    name: opts.name,
    description: `llama3 RoPE (theta 500000), q [${rows}×${nH}×${hd}] + k [${rows}×${nKV}×${hd}]${opts.kv === 'f16' ? ' into an f16 KV cache (+ v copy)' : ' in place'}, positions up to ${maxPositions - 1}`,
    requires: shaderF16If(opts.kv === 'f16'),
    async run({ device }) {
      const rng = seededRandom(opts.seed);
      const q = randomF32(rows * nH * hd, rng);
      const k = randomF32(rows * nKV * hd, rng);
      const v = randomF32(rows * nKV * hd, rng);
      const positions = Int32Array.from([0, 1, 2, 1, 576, 577, 1000, 3071, 4095]);
      const invFreq = ropeInvFreq(hd, 500000, LLAMA3);
      const qExp = applyRope(q, rows, nH, hd, positions, invFreq);
      const kExp = applyRope(k, rows, nKV, hd, positions, invFreq);
      const f16 = opts.kv === 'f16';
      return withGpuObjects(device, async (gpu) => {
        const kernel = gpu.own(await RopeKernel.create(device, { kv: opts.kv }));
        const table = gpu.own(RopeTable.create(device, invFreq, maxPositions, 'selftest rope table'));
        const pos = gpu.upload(positions, 'selftest positions');
        const qb = gpu.upload(q, 'selftest q');
        // f32: k rotated in place. f16: k and v cache rows written from f32 sources (k rotated, v copied).
        const kb = f16 ? gpu.alloc(rows * nKV * hd * 2, 'selftest k cache') : gpu.upload(k, 'selftest k');
        const kSrc = f16 ? gpu.upload(k, 'selftest k src') : null;
        const vb = f16 ? gpu.alloc(rows * nKV * hd * 2, 'selftest v cache') : null;
        const vSrc = f16 ? gpu.upload(v, 'selftest v src') : null;
        const [qGot, gpuMs] = await timed(
          device,
          () => kernel.run(device, table, pos, { q: qb, k: kb, kSrc, v: vb, vSrc }, { rows, headDim: hd, numHeads: nH, numKvHeads: nKV }),
          () => readF32(device, qb, rows * nH * hd),
        );
        if (!f16) {
          const kGot = await readF32(device, kb, rows * nKV * hd);
          // f32: a few ulps of |x| <= 1 (see rope.test.ts).
          return { comparison: compareArrays(concat(qGot, kGot), concat(qExp, kExp), { atol: 1e-6, rtol: 1e-6 }), shape: [rows, (nH + nKV) * hd], gpuMs };
        }
        const kGot = await readF16(device, kb, rows * nKV * hd);
        const vGot = await readF16(device, vb!, rows * nKV * hd);
        // f16 cache: one rounding, at most one f16 ulp (2^-10 relative) from the rounded reference.
        const got = concat(concat(qGot, kGot), vGot);
        const exp = concat(concat(qExp, roundToF16(kExp)), roundToF16(v));
        return { comparison: compareArrays(got, exp, { atol: 1e-6, rtol: 1e-3 }), shape: [got.length], gpuMs };
      });
    },
  };
}

export const ROPE_SELF_TEST_CASES: SelfTestCase[] = [
  ropeCase({ id: 'rope-f32', name: 'RoPE llama3 (q, k in place)', kv: 'f32', seed: 31 }),
  ropeCase({ id: 'rope-f16-cache', name: 'RoPE llama3 into an f16 KV cache', kv: 'f16', seed: 32 }),
];
