// ONE FULL-SIZE CLIP encoder layer on the GPU (width 1024, 16 heads x 64, MLP 4096, quick_gelu, 577 rows; seeded
// random weights) against clipEncoderLayerWith from src/reference/clip.ts (f64 accumulation), on Dawn (SwiftShader
// without a GPU: ~16 GFLOP, tens of seconds, plus ~20 s for the CPU reference).
// Metric: max |gpu - ref| / max |ref| <= 1e-4 (the "within 1e-4 relative"; observed ~1e-6: f32 sums of
// 1024..4096 terms in a different order).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createNodeGpu } from '../node/gpu.ts';
import { clipEncoderLayerWith, loadClipLayer } from '../reference/clip.ts';
import { randomUniform, randomWeights, tinyConfig } from '../reference/random-weights.testing.ts';
import { compareArrays, formatComparison } from '../gpu/compare.ts';
import { LinearKernels } from '../gpu/gpu-linear.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import { ClipTower, clipLayerOnGpu } from './clip-tower.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = (await createNodeGpu()).device;
});
afterAll(() => device?.destroy());

it('one full-size CLIP layer (577 x 1024, 16 heads, MLP 4096) matches the reference within 1e-4 relative', async () => {
  // Two layers in the config, one used: only layer 0 is loaded. The LLM side is tiny (unused here).
  const source = randomWeights(tinyConfig({ imageSize: 336, visionHidden: 1024, visionHeads: 16, visionLayers: 2, llmHidden: 32 }), 21);
  const v = source.config.vision;
  expect([v.hiddenSize, v.numHeads, v.intermediateSize, v.hiddenAct, source.config.visionLayersUsed]).toEqual([1024, 16, 4096, 'quick_gelu', 1]);
  const weights = new GpuWeights(device, source, 'f32');
  const linear = new LinearKernels(device);
  const tower = await ClipTower.load(weights, linear);
  expect(tower.tokens).toBe(577);
  const x = randomUniform(577 * 1024, 4, -2, 2);

  const t0 = performance.now();
  const got = await clipLayerOnGpu(tower, 0, x);
  const t1 = performance.now();
  const ref = clipEncoderLayerWith(await loadClipLayer(source, 0), v, x, 577);
  const t2 = performance.now();

  const maxRef = ref.reduce((m, r) => Math.max(m, Math.abs(r)), 0);
  const cmp = compareArrays(got, ref, { atol: 1e-4 * maxRef, rtol: 0 });
  console.log(
    `full-size CLIP layer: GPU ${(t1 - t0).toFixed(0)} ms (incl. upload/read back), CPU reference ${(t2 - t1).toFixed(0)} ms; ` +
      `max err / max|ref| = ${(cmp.maxAbs / maxRef).toExponential(2)}`,
  );
  expect(cmp.ok, formatComparison(cmp, { name: 'clip layer', shape: [577, 1024] })).toBe(true);
  tower.destroy();
  linear.destroy();
  weights.destroy();
});
