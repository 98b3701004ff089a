// The image stage on Dawn (SwiftShader without a GPU) against the CPU reference src/reference/preprocess.ts.
// Tolerance: EXACT (every f32 of pixel_values identical): PreprocessKernel is bit-exact by construction.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { preprocessImage, preprocessVideoFrame } from '../reference/preprocess.ts';
import type { RgbaImage } from '../model/constants.ts';
import { tinyConfig } from '../reference/random-weights.testing.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import { ImageInput, ImageInputError } from './image-input.ts';

let device: GPUDevice;
beforeAll(async () => {
  device = (await createNodeGpu()).device;
});
afterAll(() => device?.destroy());

function randomRgba(width: number, height: number, seed: number): RgbaImage {
  const rng = mulberry32(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(rng() * 256);
  return { width, height, data };
}

function config(imageSize: number, imageAspectRatio: string): LlavaMiniConfig {
  return { ...tinyConfig({ imageSize }), imageAspectRatio };
}

describe('ImageInput', () => {
  it('image mode with and without "pad", and video-frame mode, equal the reference exactly', async () => {
    const img = randomRgba(61, 37, 3);
    for (const aspect of ['pad', 'square']) {
      const input = await ImageInput.create(device, config(28, aspect));
      expect(await input.preprocess(img)).toEqual(preprocessImage(img, { size: 28, aspectRatio: aspect }));
      expect(await input.preprocess(img, 'video')).toEqual(preprocessVideoFrame(img, { size: 28 }));
      input.destroy();
    }
  });

  it('rejects empty, malformed and oversized images with ImageInputError', async () => {
    const input = await ImageInput.create(device, config(28, 'pad'));
    const reject = (img: RgbaImage, message: RegExp) => {
      expect(() => input.upload(img)).toThrow(ImageInputError);
      expect(() => input.upload(img)).toThrow(message);
    };
    reject({ width: 0, height: 10, data: new Uint8Array(0) }, /the image is empty \(0x10 pixels\)/);
    reject({ width: 4, height: 4, data: new Uint8Array(60) }, /60 bytes of pixels, a 4x4 RGBA image has 64/);
    reject({ width: 100_000, height: 100_000, data: new Uint8Array(0) }, /larger than this GPU's maxBufferSize/);
    input.destroy();
  });
});
