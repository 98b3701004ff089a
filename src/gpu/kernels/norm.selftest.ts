// In-app self-tests of the norm family: LayerNorm (CLIP width) and RMSNorm (Llama width), f32 and f16 weights.
import { layerNorm, rmsNorm } from '../../reference/ops.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import { shaderF16If, timed, withGpuObjects, type SelfTestCase } from '../selftest-support.ts';
import { roundToF16, toF16Weights } from './linear.ts';
import type { DenseStorage } from '../storage.ts';
import { NormKernel, type NormKind } from './norm.ts';

function normCase(opts: { id: string; name: string; kind: NormKind; weights: DenseStorage; rows: number; width: number; seed: number }): SelfTestCase {
  const { kind, weights, rows, width } = opts;
  const eps = 1e-5;
  return {
    id: opts.id,
    name: opts.name,
    description: `${kind === 'layernorm' ? 'LayerNorm' : 'RMSNorm'} over ${rows} rows of ${width}, ${weights} weights, eps ${eps}, one workgroup per row`,
    requires: shaderF16If(weights === 'f16'),
    async run({ device }) {
      const rng = seededRandom(opts.seed);
      const x = randomF32(rows * width, rng, 2);
      const w = randomF32(width, rng, 1.5);
      const b = randomF32(width, rng, 0.5);
      const [wr, br] = weights === 'f16' ? [roundToF16(w), roundToF16(b)] : [w, b];
      const expected = kind === 'layernorm' ? layerNorm(x, rows, width, wr, br, eps) : rmsNorm(x, rows, width, wr, eps);
      return withGpuObjects(device, async (gpu) => {
        const kernel = gpu.own(await NormKernel.create(device, kind, { weights }));
        const up = (a: Float32Array, label: string) => gpu.upload(weights === 'f16' ? toF16Weights(a) : a, label);
        const xb = gpu.upload(x, 'selftest x');
        const wb = up(w, 'selftest w');
        const bb = kind === 'layernorm' ? up(b, 'selftest b') : null;
        const yb = gpu.alloc(rows * width * 4, 'selftest y');
        const [y, gpuMs] = await timed(
          device,
          () => kernel.run(device, xb, wb, bb, yb, rows, width, eps),
          () => readF32(device, yb, rows * width),
        );
        // f32 sums over the row: a few ulps of relative error in mean / variance (see norm.test.ts).
        return { comparison: compareArrays(y, expected, { atol: 1e-5, rtol: 1e-5 }), shape: [rows, width], gpuMs };
      });
    },
  };
}

export const NORM_SELF_TEST_CASES: SelfTestCase[] = [
  normCase({ id: 'layernorm-f32', name: 'LayerNorm f32 (CLIP width)', kind: 'layernorm', weights: 'f32', rows: 37, width: 1024, seed: 31 }),
  normCase({ id: 'rmsnorm-f32', name: 'RMSNorm f32 (Llama width)', kind: 'rmsnorm', weights: 'f32', rows: 5, width: 4096, seed: 32 }),
  normCase({ id: 'layernorm-f16w', name: 'LayerNorm f16 weights', kind: 'layernorm', weights: 'f16', rows: 37, width: 1024, seed: 33 }),
  normCase({ id: 'rmsnorm-f16w', name: 'RMSNorm f16 weights', kind: 'rmsnorm', weights: 'f16', rows: 5, width: 4096, seed: 34 }),
];
