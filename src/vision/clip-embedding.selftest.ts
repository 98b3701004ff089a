// In-app self-test of CLIP's patch embedding (vision/clip-embedding.ts) against the reference's clipEmbeddingsWith,
// and the helpers clip-embedding.test.ts shares.
import type { ClipVisionConfig } from '../checkpoint/types.ts';
import { readF32 } from '../gpu/buffers.ts';
import { compareArrays } from '../gpu/compare.ts';
import { timed, withGpuObjects, type SelfTestCase } from '../gpu/selftest-support.ts';
import { clipEmbeddingsWith, type ClipEmbeddingWeights } from '../reference/clip.ts';
import { mulberry32 as seededRandom, randomF32 } from '../util/seeded-random.ts';
import { ClipEmbeddingKernel } from './clip-embedding.ts';

/** A small CLIP vision config (only the embedding fields matter). */
export function smallClipConfig(imageSize: number, patchSize: number, hiddenSize: number): ClipVisionConfig {
  return { hiddenSize, intermediateSize: 4 * hiddenSize, numLayers: 1, numHeads: 1, imageSize, patchSize, numChannels: 3, layerNormEps: 1e-5, hiddenAct: 'quick_gelu' };
}

/** Random CLIP embedding weights (conv weight scaled 1/sqrt(K), like the linear tests). */
export function randomClipEmbeddingWeights(v: ClipVisionConfig, seed: number): ClipEmbeddingWeights {
  const rng = seededRandom(seed);
  const D = v.hiddenSize;
  const K = v.numChannels * v.patchSize * v.patchSize;
  const N = (v.imageSize / v.patchSize) ** 2;
  return {
    patch: randomF32(D * K, rng, 1 / Math.sqrt(K)),
    cls: randomF32(D, rng, 1),
    pos: randomF32((N + 1) * D, rng, 0.5),
    preW: randomF32(D, rng, 1.5),
    preB: randomF32(D, rng, 0.5),
  };
}

/** CLIP hidden_states[0] on the GPU for f32 weights; returns [N+1, D]. */
export async function clipEmbeddingsOnGpu(device: GPUDevice, w: ClipEmbeddingWeights, v: ClipVisionConfig, pixels: Float32Array): Promise<[Float32Array, number]> {
  const N = (v.imageSize / v.patchSize) ** 2;
  const D = v.hiddenSize;
  return withGpuObjects(device, async (gpu) => {
    const kernel = gpu.own(await ClipEmbeddingKernel.create(device));
    const gw = {
      patch: gpu.upload(w.patch, 'clip patch w'),
      cls: gpu.upload(w.cls, 'clip cls'),
      pos: gpu.upload(w.pos, 'clip pos'),
      preW: gpu.upload(w.preW, 'clip pre w'),
      preB: gpu.upload(w.preB, 'clip pre b'),
    };
    const px = gpu.upload(pixels, 'clip pixels');
    const out = gpu.alloc((N + 1) * D * 4, 'clip embeddings');
    return timed(
      device,
      () => kernel.run(device, px, gw, out, v),
      () => readF32(device, out, (N + 1) * D),
    );
  });
}

function clipCase(): SelfTestCase {
  const v = smallClipConfig(56, 14, 64);
  const N = 16;
  return {
    id: 'clip-embedding',
    name: 'CLIP patch embedding',
    description: `patchify 3×56×56 (P = 14) → linear [${N}×588]·[64×588]ᵀ → class + position embeddings → pre_layrnorm`,
    async run({ device }) {
      const w = randomClipEmbeddingWeights(v, 11);
      const pixels = randomF32(3 * 56 * 56, seededRandom(12), 2);
      const expected = clipEmbeddingsWith(w, v, pixels);
      const [y, gpuMs] = await clipEmbeddingsOnGpu(device, w, v, pixels);
      // f32 matmul over K = 588 (atol/rtol 1e-4 like the linear case), then a LayerNorm that rescales by ~1/std.
      return { comparison: compareArrays(y, expected, { atol: 1e-4, rtol: 1e-4 }), shape: [N + 1, 64], gpuMs, flops: 2 * N * 588 * 64 };
    },
  };
}

export const CLIP_EMBEDDING_SELF_TEST_CASES: SelfTestCase[] = [clipCase()];
