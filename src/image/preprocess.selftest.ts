// In-app self-test cases for image preprocessing (shaders/preprocess.wgsl): a seeded random image through the
// GPU kernel vs the CPU reference (src/reference/preprocess.ts). Tolerance 0: the kernel is bit-exact by design.
import { preprocessImage, preprocessVideoFrame } from '../reference/preprocess.ts';
import type { RgbaImage } from '../model/constants.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import { readF32 } from '../gpu/buffers.ts';
import { compareArrays } from '../gpu/compare.ts';
import { timed, withGpuObjects, type SelfTestCase } from '../gpu/selftest-support.ts';
import { PreprocessKernel, type PreprocessRunOptions } from './preprocess.ts';
import { uploadRgba } from './upload.ts';

function seededImage(width: number, height: number, seed: number): RgbaImage {
  const rng = mulberry32(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const smooth = 128 + 90 * Math.sin(x / 7) * Math.cos(y / 5);
      data[p] = smooth + (rng() - 0.5) * 60;
      data[p + 1] = 255 - smooth + (rng() - 0.5) * 60;
      data[p + 2] = rng() * 256;
      data[p + 3] = 255;
    }
  }
  return { width, height, data };
}

function preprocessCase(opts: { id: string; name: string; width: number; height: number; run: PreprocessRunOptions; seed: number }): SelfTestCase {
  const { width, height, run } = opts;
  const S = run.size;
  const what = run.mode === 'video' ? 'nearest' : `bicubic${run.aspectRatio === 'pad' ? ' + pad' : ''} + center crop`;
  return {
    id: opts.id,
    name: opts.name,
    description: `RGBA ${width}×${height} → pixel_values [3×${S}×${S}] (${what}), must equal the CPU reference bit for bit`,
    async run({ device }) {
      const img = seededImage(width, height, opts.seed);
      const expected = run.mode === 'video' ? preprocessVideoFrame(img, run) : preprocessImage(img, run);
      return withGpuObjects(device, async (gpu) => {
        const kernel = gpu.own(await PreprocessKernel.create(device));
        const src = gpu.own(uploadRgba(device, img, 'selftest image').buffer);
        const out = gpu.alloc(3 * S * S * 4, 'selftest pixel_values');
        const [got, gpuMs] = await timed(
          device,
          () => kernel.preprocessRgba(device, src, width, height, out, run),
          () => readF32(device, out, 3 * S * S),
        );
        return { comparison: compareArrays(got, expected, { atol: 0, rtol: 0 }), shape: [3, S, S], gpuMs };
      });
    },
  };
}

export const PREPROCESS_SELF_TEST_CASES: SelfTestCase[] = [
  preprocessCase({ id: 'preprocess-image', name: 'Preprocess image (bicubic, crop)', width: 131, height: 97, run: { size: 48 }, seed: 1 }),
  preprocessCase({ id: 'preprocess-pad', name: 'Preprocess image (pad to square)', width: 50, height: 83, run: { size: 40, aspectRatio: 'pad' }, seed: 2 }),
  preprocessCase({ id: 'preprocess-video', name: 'Preprocess video frame (nearest)', width: 160, height: 90, run: { size: 48, mode: 'video' }, seed: 3 }),
];
