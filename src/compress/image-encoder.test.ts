// The GPU vision side (CLIP -> compressor -> projector, one submit) on random tiny weights against the CPU reference,
// on Dawn (SwiftShader without a GPU). Tolerance and metric: image-encoder.testing.ts (max err / max|ref| <= 1e-4;
// observed ~1e-7..1e-6).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../gpu/device.ts';
import { createNodeGpu, createValidationOnlyGpu } from '../node/gpu.ts';
import { createStorageBuffer } from '../gpu/buffers.ts';
import { randomWeights, tinyConfig, type TinyConfigOptions } from '../reference/random-weights.testing.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import { ImageInput } from '../image/image-input.ts';
import { preprocessImage } from '../reference/preprocess.ts';
import { ReferenceLlavaMini } from '../reference/pipeline.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import { encodeImageGpu, ImageEncoderGpu, readImageEncoding } from './image-encoder.ts';
import { checkImageEncoder, expectRelClose, type CheckOptions } from './image-encoder.testing.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

describe('image encoder on random tiny weights', () => {
  const cases: [string, TinyConfigOptions, CheckOptions][] = [
    ['image 28, C=1', { imageSize: 28, compressorSize: 1 }, {}],
    ['image 28, C=1', { imageSize: 28, compressorSize: 1 }, { precision: 'q4' }],
    ['image 56, C=2', { imageSize: 56, compressorSize: 2 }, {}],
    ['image 56, C=2', { imageSize: 56, compressorSize: 2 }, { precision: 'q4' }],
    ['image 56, C=2, gelu CLIP, linear projector', { imageSize: 56, compressorSize: 2, hiddenAct: 'gelu', projectorType: 'linear' }, {}],
    ['image 56, C=1, CLIP width 32 x 4 heads', { imageSize: 56, compressorSize: 1, visionHidden: 32, visionHeads: 4 }, {}],
    // Bindings of at most 16 patch-weight rows: projector.2 [128, 128] f32 is split in 2 row blocks (one linear per
    // block, with bias slices); the patch weight itself must stay whole (ClipEmbeddingKernel takes one buffer).
    ['image 56, C=2, projector weight in row blocks', { imageSize: 56, compressorSize: 2, llmHidden: 128 }, { maxBindingBytes: 16 * 588 * 4 }],
  ];
  for (const [label, cfg, o] of cases) {
    it(`${label}${o.precision ? ` at ${o.precision}` : ''}`, async () => {
      await checkImageEncoder(ctx.device, randomWeights(tinyConfig(cfg), 5), label, o);
    });
  }

  it('an RGBA image through ImageInput and the encoder in one command encoder equals preprocessImage + encodeImage', async () => {
    const source = randomWeights(tinyConfig({ imageSize: 28, compressorSize: 2 }), 8); // imageAspectRatio "pad"
    const rng = mulberry32(2);
    const img = { width: 45, height: 30, data: Uint8ClampedArray.from({ length: 45 * 30 * 4 }, () => Math.floor(rng() * 256)) };
    const weights = new GpuWeights(ctx.device, source, 'f32');
    const input = await ImageInput.create(ctx.device, source.config);
    const enc = await ImageEncoderGpu.load(weights);
    const rgba = input.upload(img);
    const cmd = ctx.device.createCommandEncoder();
    const e = enc.record(cmd, input.record(cmd, rgba));
    ctx.device.queue.submit([cmd.finish()]);
    rgba.buffer.destroy();
    const got = await readImageEncoding(ctx.device, e);
    const ref = (await ReferenceLlavaMini.load(source)).encodeImage(preprocessImage(img, { size: 28, aspectRatio: 'pad' }));
    expectRelClose(got.clip, ref.clip, 'clip', [4, 16]);
    expectRelClose(got.compressedRaw, ref.compressedRaw, 'compressed', [4, 16]);
    expectRelClose(got.Vc, ref.compressed, 'Vc', [4, 32]);
    expectRelClose(got.G, ref.G, 'G', [4, 32]);
    enc.destroy();
    input.destroy();
    weights.destroy();
  });

  it('refuses visionSelectFeature "cls_patch" (5 rows are no square grid for the compressor)', async () => {
    const weights = new GpuWeights(ctx.device, randomWeights(tinyConfig({ selectFeature: 'cls_patch' }), 5), 'f32');
    await expect(ImageEncoderGpu.load(weights)).rejects.toThrow(/5 CLIP rows do not form a square grid/);
    weights.destroy();
  });
});

// SwiftShader has no shader-f16, so the f16 storage the policy picks on real GPUs (CLIP, projector and compressor at
// q4 and f16) is checked here on Dawn's Null backend: it builds every pipeline and validates every command exactly
// like a real device but executes nothing.
describe('f16 weights (Null backend: builds and validates, computes nothing)', () => {
  for (const precision of ['q4', 'f16'] as const) {
    it(`records the whole encoding at ${precision} without validation errors`, async () => {
      const vctx = await createValidationOnlyGpu();
      const device = vctx.device;
      expect(device.features.has('shader-f16')).toBe(true);
      const weights = new GpuWeights(device, randomWeights(tinyConfig({ imageSize: 56, compressorSize: 2 }), 5), precision);
      device.pushErrorScope('validation');
      const enc = await ImageEncoderGpu.load(weights);
      const layer = enc.tower.layers[0]!;
      expect([layer.q.storage, layer.ln1w.storage, weights.plan(layer.qb.name).storage]).toEqual(['f16', 'f16', 'f16']);
      expect(layer.qb.storage).toBe('f32'); // kernels read biases as f32: loadF32Tensor converted it
      const pixels = createStorageBuffer(device, 3 * 56 * 56 * 4);
      encodeImageGpu(enc, pixels);
      await device.queue.onSubmittedWorkDone();
      expect((await device.popErrorScope())?.message ?? null).toBeNull();
      enc.destroy();
      weights.destroy();
      device.destroy();
    });
  }
});
