// In-app self-test cases for attention (shaders/attention.wgsl): seeded random q/k/v on the GPU vs the f64 CPU
// reference src/reference/attention.ts. Sizes stay small: the page may run on SwiftShader.
import { attention, type AttentionMask } from '../../reference/attention.ts';
import { IMAGE_TOKEN_INDEX, prefusionMaskAndPositions } from '../../reference/prefusion.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import { shaderF16If, timed, withGpuObjects, type SelfTestCase } from '../selftest-support.ts';
import { AttentionKernel, roundToF16 } from './attention.ts';
import { toF16Weights } from './linear.ts';

interface Shape {
  nq: number;
  nk: number;
  nH: number;
  nKV: number;
  hd: number;
  causal: boolean;
  /** Per key, 0 = excluded (pre-fusion). */
  keep?: Uint8Array;
}

function attentionCase(opts: { id: string; name: string; description: string; shape: Shape; kv: 'f32' | 'f16'; seed: number }): SelfTestCase {
  const { nq, nk, nH, nKV, hd, causal, keep } = opts.shape;
  return {
    id: opts.id,
    name: opts.name,
    description: opts.description,
    requires: shaderF16If(opts.kv === 'f16'),
    async run({ device }) {
      const rng = seededRandom(opts.seed);
      const q = randomF32(nq * nH * hd, rng);
      let k = randomF32(nk * nKV * hd, rng);
      let v = randomF32(nk * nKV * hd, rng);
      if (opts.kv === 'f16') {
        k = roundToF16(k);
        v = roundToF16(v);
      }
      const past = nk - nq;
      const mask: AttentionMask | undefined = causal ? (i, j) => j <= past + i && (!keep || keep[j] !== 0) : undefined;
      const expected = attention({ q, k, v, qRows: nq, kRows: nk, numHeads: nH, numKvHeads: nKV, headDim: hd, scale: 1 / Math.sqrt(hd), mask });
      return withGpuObjects(device, async (gpu) => {
        const kernel = gpu.own(await AttentionKernel.create(device, { headDim: hd, kv: opts.kv }));
        const qb = gpu.upload(q, 'selftest q');
        const kb = gpu.upload(opts.kv === 'f16' ? toF16Weights(k) : k, 'selftest k');
        const vb = gpu.upload(opts.kv === 'f16' ? toF16Weights(v) : v, 'selftest v');
        const ob = gpu.alloc(nq * nH * hd * 4, 'selftest out');
        const keepBuf = keep ? gpu.upload(Uint32Array.from(keep), 'selftest keep') : null;
        const [out, gpuMs] = await timed(
          device,
          () => kernel.run(device, qb, kb, vb, ob, { nq, nk, numHeads: nH, numKvHeads: nKV, causal }, { keep: keepBuf }),
          () => readF32(device, ob, nq * nH * hd),
        );
        // f32 scores/softmax/accumulation vs f64: ~1e-7 observed (see attention.test.ts).
        return { comparison: compareArrays(out, expected, { atol: 1e-5, rtol: 1e-5 }), shape: [nq, nH * hd], gpuMs, flops: 4 * nq * nk * nH * hd };
      });
    },
  };
}

const prefusion = (() => {
  const ids = [128000, 128000, 128006, 882, 128007, 271, IMAGE_TOKEN_INDEX, 198, 3923, 374, 420, 30, 128009];
  const layout = prefusionMaskAndPositions(ids, 20);
  return { rows: layout.rows, keep: layout.keep };
})();

export const ATTENTION_SELF_TEST_CASES: SelfTestCase[] = [
  attentionCase({
    id: 'attention-clip',
    name: 'Attention, no mask (CLIP-like)',
    description: 'softmax(q kᵀ/8) v, 77 rows, 4 heads × 64, tiled flash kernel',
    shape: { nq: 77, nk: 77, nH: 4, nKV: 4, hd: 64, causal: false },
    kv: 'f32',
    seed: 41,
  }),
  attentionCase({
    id: 'attention-prefusion',
    name: 'Attention, causal + pre-fusion keep mask',
    description: `${prefusion.rows} rows (20 vision + prompt with an <image> slot), GQA 8:2 × 32, causal, pad key excluded`,
    shape: { nq: prefusion.rows, nk: prefusion.rows, nH: 8, nKV: 2, hd: 32, causal: true, keep: prefusion.keep },
    kv: 'f32',
    seed: 42,
  }),
  attentionCase({
    id: 'attention-decode',
    name: 'Attention decode (1 query, split-K)',
    description: 'one query row over a 300-row KV cache, GQA 32:8 × 128 (the Llama shape), causal',
    shape: { nq: 1, nk: 300, nH: 32, nKV: 8, hd: 128, causal: true },
    kv: 'f32',
    seed: 43,
  }),
  attentionCase({
    id: 'attention-decode-f16kv',
    name: 'Attention decode, f16 KV cache',
    description: 'one query row over a 300-row f16 KV cache, GQA 32:8 × 128, f32 math',
    shape: { nq: 1, nk: 300, nH: 32, nKV: 8, hd: 128, causal: true },
    kv: 'f16',
    seed: 44,
  }),
];
