// Image preprocessing (shaders/preprocess.wgsl) on Dawn (SwiftShader without a GPU) against the CPU reference
// src/reference/preprocess.ts. Tolerance: EXACT (atol 0, rtol 0): the GPU does only integer arithmetic on
// coefficients and a normalization table that the CPU computes with the reference's own functions, so every
// f32 of pixel_values must be identical.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../node/gpu.ts';
import { normalizePixel, pillowBicubicCoeffs, preprocessImage, preprocessVideoFrame, resizeNearestTorch } from '../reference/preprocess.ts';
import type { RgbaImage } from '../model/constants.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import { createStorageBuffer, readBuffer, readF32 } from '../gpu/buffers.ts';
import { compareArrays, formatComparison, type Tolerance } from '../gpu/compare.ts';
import type { GpuContext } from '../gpu/device.ts';
import { preprocessOnGpu, PreprocessKernel, preprocessShaderSource, type PreprocessRunOptions } from './preprocess.ts';
import { checkI32Range, nearestIndices } from './preprocess-plan.ts';
import { uploadRgba, uploadThroughTexture } from './upload.ts';

const EXACT: Tolerance = { atol: 0, rtol: 0 };

let ctx: GpuContext;
let kernel: PreprocessKernel;
beforeAll(async () => {
  ctx = await createNodeGpu();
  kernel = await PreprocessKernel.create(ctx.device);
});
afterAll(() => {
  kernel?.destroy();
  ctx?.device.destroy();
});

/** Random RGBA with smooth structure (gradients + noise) so resampling is not trivially constant. */
function randomRgba(width: number, height: number, seed: number): RgbaImage {
  const rng = mulberry32(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  const fx = 1 + rng() * 6;
  const fy = 1 + rng() * 6;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      const base = 127.5 + 100 * Math.sin((x / width) * fx * Math.PI) * Math.cos((y / height) * fy * Math.PI);
      data[p] = base + (rng() - 0.5) * 80;
      data[p + 1] = 255 - base + (rng() - 0.5) * 80;
      data[p + 2] = rng() < 0.05 ? (rng() < 0.5 ? 0 : 255) : rng() * 256; // hard edges: clip8 at both ends
      data[p + 3] = Math.floor(rng() * 256); // alpha is ignored
    }
  }
  return { width, height, data };
}

function expectExact(actual: Float32Array, expected: Float32Array, name: string, S: number) {
  const c = compareArrays(actual, expected, EXACT);
  expect(c.ok, formatComparison(c, { name, shape: [3, S, S] })).toBe(true);
  expect(c.maxAbs).toBe(0);
}

describe('preprocessRgba (image) vs preprocessImage: bit-exact', () => {
  const cases: [string, number, number, number, string?][] = [
    ['upscale, landscape', 30, 20, 48],
    ['upscale, portrait', 17, 29, 40],
    ['downscale, landscape', 120, 90, 32],
    ['downscale, portrait, odd sizes', 77, 131, 33],
    ['square downscale (both passes)', 101, 101, 24],
    ['width already S (horizontal pass skipped)', 40, 75, 40],
    ['height already S (vertical pass skipped)', 93, 40, 40],
    ['identity (no resize at all)', 36, 36, 36],
    ['strong downscale (wide filter, 9x)', 300, 290, 32],
    ['1x1 image', 1, 1, 24],
    ['1xN strip', 1, 50, 16],
    ['pad: landscape', 60, 35, 32, 'pad'],
    ['pad: portrait, odd difference', 23, 64, 24, 'pad'],
    ['pad: square (no padding)', 50, 50, 24, 'pad'],
    ['pad: 1x3', 1, 3, 16, 'pad'],
  ];
  for (const [name, w, h, S, aspectRatio] of cases) {
    it(`${name}: ${w}x${h} -> ${S}${aspectRatio ? ' (pad)' : ''}`, async () => {
      const img = randomRgba(w, h, w * 1000 + h);
      const opts = { size: S, aspectRatio };
      const got = await preprocessOnGpu(ctx.device, img, { ...opts, kernel });
      expectExact(got, preprocessImage(img, opts), name, S);
    });
  }

  it('a 1000x700 photo-sized image -> 336 (the real S), and with pad', async () => {
    const img = randomRgba(1000, 700, 5);
    for (const aspectRatio of [undefined, 'pad']) {
      const got = await preprocessOnGpu(ctx.device, img, { size: 336, aspectRatio, kernel });
      expectExact(got, preprocessImage(img, { size: 336, aspectRatio }), `1000x700 ${aspectRatio ?? ''}`, 336);
    }
  });

  it('custom mean/std go through the same table', async () => {
    const img = randomRgba(45, 30, 8);
    const opts = { size: 20, mean: [0.5, 0.5, 0.5] as const, std: [0.5, 0.25, 1] as const };
    expectExact(await preprocessOnGpu(ctx.device, img, { ...opts, kernel }), preprocessImage(img, opts), 'mean/std', 20);
  });
});

/**
 * pixel_values of a video frame by torch's nearest rule stated independently: output (x, y) is source pixel
 * (floor(x * w / S), floor(y * h / S)) in integer arithmetic, clamped to the last pixel, then normalized.
 */
function torchNearestPixelValues(img: RgbaImage, S: number): Float32Array {
  const out = new Float32Array(3 * S * S);
  for (let y = 0; y < S; y++) {
    const sy = Math.min(Math.floor((y * img.height) / S), img.height - 1);
    for (let x = 0; x < S; x++) {
      const sx = Math.min(Math.floor((x * img.width) / S), img.width - 1);
      for (const c of [0, 1, 2] as const) out[c * S * S + y * S + x] = normalizePixel(img.data[(sy * img.width + sx) * 4 + c]!, c);
    }
  }
  return out;
}

describe("video frames: torch's nearest resize, bit-exact", () => {
  // Non-integer scales (64 -> 336 is x5.25) and an integer one (112 -> 336 x3, 168 -> 336 x2); every output
  // pixel is compared, so the last row and column (the clamp) are too.
  for (const [w, h] of [[64, 48], [500, 300], [17, 9], [112, 168]] as const) {
    it(`${w}x${h} -> 336x336 equals the independently stated index rule and the reference`, async () => {
      const img = randomRgba(w, h, w + h * 7);
      const got = await preprocessOnGpu(ctx.device, img, { size: 336, mode: 'video', kernel });
      expectExact(got, torchNearestPixelValues(img, 336), 'video vs floor(dst * in / out)', 336);
      expectExact(got, preprocessVideoFrame(img, { size: 336 }), 'video vs reference', 336);
    });
  }

  it('720x1080 (where float32 steps pick one pixel lower than the exact quotient) and small S', async () => {
    for (const [w, h, S] of [[720, 1080, 336], [1, 1, 8], [333, 100, 32], [50, 50, 50]] as const) {
      const img = randomRgba(w, h, w + h * 7);
      const got = await preprocessOnGpu(ctx.device, img, { size: S, mode: 'video', kernel });
      expectExact(got, preprocessVideoFrame(img, { size: S }), `video ${w}x${h} -> ${S}`, S);
    }
  });

  it('nearestIndices: the same indices as the reference resize; 720 -> 336 in float32 steps', () => {
    for (const [inSize, outSize] of [[7, 3], [3, 7], [64, 336], [640, 336], [720, 336], [1000, 336], [336, 336], [1, 5]] as const) {
      const idx = nearestIndices(inSize, outSize);
      const line = { width: inSize, height: 1, data: Uint8Array.from({ length: inSize * 3 }, (_, k) => [Math.floor(k / 3) & 255, Math.floor(k / 3) >> 8, 0][k % 3]!) };
      const ref = resizeNearestTorch(line, outSize, 1).data;
      expect(Array.from(idx)).toEqual(Array.from({ length: outSize }, (_, o) => ref[o * 3]! + 256 * ref[o * 3 + 1]!));
      expect(Math.max(...idx)).toBeLessThan(inSize);
    }
    // ATen's floorf(119 * ((float)720 / 336)) = 254 (the exact quotient is 255)
    expect(nearestIndices(720, 336)[119]).toBe(254);
  });
});

describe('big images: the horizontal pass in row bands', () => {
  it('a binding limit of a few rows splits the pass into bands; the result is unchanged', async () => {
    const img = randomRgba(211, 157, 21);
    const small = await PreprocessKernel.create(ctx.device, { maxSourceBindingBytes: 211 * 4 * 10 + 256 });
    try {
      for (const opts of [{ size: 32 }, { size: 32, aspectRatio: 'pad' }, { size: 24, mode: 'video' as const }]) {
        const bands = small.bandCount(img.width, img.height, opts);
        expect(bands).toBeGreaterThan(10);
        const got = await preprocessOnGpu(ctx.device, img, { ...opts, kernel: small });
        const expected = opts.mode === 'video' ? preprocessVideoFrame(img, opts) : preprocessImage(img, opts);
        expectExact(got, expected, `banded ${JSON.stringify(opts)} (${bands} bands)`, opts.size);
      }
    } finally {
      small.destroy();
    }
  });

  it('a single row wider than the binding limit is refused with the sizes and the limit', async () => {
    const k = await PreprocessKernel.create(ctx.device, { maxSourceBindingBytes: 1024 });
    const buf = createStorageBuffer(ctx.device, 300 * 2 * 4);
    expect(() => k.preprocessRgba(ctx.device, buf, 300, 2, createStorageBuffer(ctx.device, 4 * 3 * 4 * 4), { size: 4 })).toThrow(
      /one row of a 300-pixel-wide image \(1200 bytes\) does not fit in a storage binding of at most 1024 bytes/,
    );
    buf.destroy();
    k.destroy();
  });

  it('the 2D fold of large dispatches (small workgroup limit)', async () => {
    const k = await PreprocessKernel.create(ctx.device, { maxWorkgroupsPerDimension: 3 });
    try {
      const img = randomRgba(70, 50, 3);
      expectExact(await preprocessOnGpu(ctx.device, img, { size: 40, kernel: k }), preprocessImage(img, { size: 40 }), 'folded', 40);
    } finally {
      k.destroy();
    }
  });

  it('i32 accumulators cannot overflow for any input size from 1 to 12000 (S = 336) nor at extreme ratios', () => {
    let worst = 0;
    let worstNeg = 0;
    const sizes = [...Array.from({ length: 700 }, (_, k) => k + 1), 1000, 1001, 2047, 4000, 4001, 8191, 9000, 12000];
    for (const inSize of sizes) {
      for (const outSize of [336, 337, 448, 24]) {
        const c = pillowBicubicCoeffs(inSize, outSize);
        const r = checkI32Range({ min: c.xmin, count: c.count, weights: c.fixed, k: c.ksize }, `${inSize}->${outSize}`);
        worst = Math.max(worst, r.maxPartial);
        worstNeg = Math.min(worstNeg, r.minPartial);
      }
    }
    expect(worst).toBeLessThan(2 ** 31);
    expect(worstNeg).toBeGreaterThan(-(2 ** 31));
    // the headroom is large: at most ~ 255 * 1.3 * 2^22
    expect(worst).toBeLessThan(1.4e9);
  });
});

describe('uploads and recording', () => {
  it('uploadThroughTexture: tiles through an rgba8unorm texture, bytes exact, row stride aligned to 64 pixels', async () => {
    const img = randomRgba(150, 70, 4);
    const packed = uploadThroughTexture(
      ctx.device,
      img.width,
      img.height,
      (texture, x, y, w, h) => {
        const tile = new Uint8Array(w * h * 4);
        for (let r = 0; r < h; r++) tile.set(img.data.subarray(((y + r) * img.width + x) * 4, ((y + r) * img.width + x + w) * 4), r * w * 4);
        ctx.device.queue.writeTexture({ texture }, tile, { bytesPerRow: w * 4 }, [w, h]);
      },
      { maxTile: 64 },
    );
    expect(packed.rowStride).toBe(192);
    const bytes = new Uint8Array(await readBuffer(ctx.device, packed.buffer, packed.buffer.size));
    for (let y = 0; y < img.height; y++) {
      expect(bytes.subarray(y * packed.rowStride * 4, y * packed.rowStride * 4 + img.width * 4)).toEqual(new Uint8Array(img.data.subarray(y * img.width * 4, (y + 1) * img.width * 4)));
    }
    // and preprocess reads the strided rows
    const out = createStorageBuffer(ctx.device, 3 * 32 * 32 * 4);
    kernel.preprocessRgba(ctx.device, packed.buffer, packed.width, packed.height, out, { size: 32, rowStride: packed.rowStride });
    expectExact(await readF32(ctx.device, out, 3 * 32 * 32), preprocessImage(img, { size: 32 }), 'strided', 32);
    packed.buffer.destroy();
    out.destroy();
  });

  it('two frames recorded into one pass land at their outOffset', async () => {
    const S = 16;
    const frames = [randomRgba(40, 30, 1), randomRgba(40, 30, 2)];
    const srcs = frames.map((f) => uploadRgba(ctx.device, f));
    const out = createStorageBuffer(ctx.device, 2 * 3 * S * S * 4);
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    srcs.forEach((s, t) => kernel.preprocessVideoFrame(pass, s.buffer, s.width, s.height, out, { size: S, outOffset: t * 3 * S * S }));
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    const got = await readF32(ctx.device, out, 2 * 3 * S * S);
    frames.forEach((f, t) => expectExact(got.subarray(t * 3 * S * S, (t + 1) * 3 * S * S), preprocessVideoFrame(f, { size: S }), `frame ${t}`, S));
    for (const s of srcs) s.buffer.destroy();
    out.destroy();
  });

  it('argument checks', () => {
    const small = createStorageBuffer(ctx.device, 64);
    const out = createStorageBuffer(ctx.device, 3 * 8 * 8 * 4);
    const opts: PreprocessRunOptions = { size: 8 };
    expect(() => kernel.preprocessRgba(ctx.device, small, 10, 10, out, opts)).toThrow(/has 64 bytes, needs 400 \(10x10 RGBA/);
    expect(() => kernel.preprocessRgba(ctx.device, small, 4, 4, small, opts)).toThrow(/buffer out .* needs 768/);
    expect(() => kernel.preprocessRgba(ctx.device, small, 0, 4, out, opts)).toThrow(/width must be a positive integer/);
    expect(() => kernel.preprocessRgba(ctx.device, small, 4, 2, out, { size: 8, rowStride: 3 })).toThrow(/rowStride 3 is smaller than the width 4/);
    expect(() => new PreprocessKernel(ctx.device).preprocessRgba(ctx.device, small, 4, 4, out, opts)).toThrow(/init\(\)/);
    expect(() => uploadRgba(ctx.device, { width: 3, height: 3, data: new Uint8Array(10) })).toThrow(/10 bytes for a 3x3/);
    small.destroy();
    out.destroy();
  });
});

describe('f16-output variant', () => {
  it('the f32 code never mentions f16; the f16 source enables it and retypes the output', () => {
    expect(preprocessShaderSource('f32').replace(/\/\/.*$/gm, '')).not.toMatch(/f16/);
    const f16 = preprocessShaderSource('f16');
    expect(f16.startsWith('enable f16;\n')).toBe(true);
    expect(f16).toMatch(/^alias OT = f16;$/m);
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new PreprocessKernel(ctx.device, { output: 'f16' })).toThrow(/shader-f16/);
  });

  it('compiles, builds and validates its dispatches on a validating (Null) device', async () => {
    const vctx = await createValidationOnlyGpu();
    try {
      const k = await PreprocessKernel.create(vctx.device, { output: 'f16' });
      const img = randomRgba(30, 20, 1);
      const src = uploadRgba(vctx.device, img);
      const out = createStorageBuffer(vctx.device, 3 * 17 * 17 * 2);
      vctx.device.pushErrorScope('validation');
      k.preprocessRgba(vctx.device, src.buffer, 30, 20, out, { size: 17 });
      k.preprocessVideoFrame(vctx.device, src.buffer, 30, 20, out, { size: 17 });
      expect((await vctx.device.popErrorScope())?.message ?? null).toBeNull();
      k.destroy();
    } finally {
      vctx.device.destroy();
    }
  });

  // Runs only where the adapter has shader-f16 (skipped on SwiftShader): f16(table value), so exact vs the
  // reference rounded to f16.
  it('image and video frame equal the reference rounded to f16 (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    const { roundToF16 } = await import('../gpu/kernels/linear.ts');
    const { f16BytesToF32 } = await import('../checkpoint/dtype.ts');
    const k = await PreprocessKernel.create(ctx.device, { output: 'f16' });
    const img = randomRgba(50, 40, 2);
    const src = uploadRgba(ctx.device, img);
    const S = 24;
    const out = createStorageBuffer(ctx.device, 3 * S * S * 2);
    k.preprocessRgba(ctx.device, src.buffer, img.width, img.height, out, { size: S });
    const got = f16BytesToF32(new Uint8Array(await readBuffer(ctx.device, out, 3 * S * S * 2)));
    expectExact(got, roundToF16(preprocessImage(img, { size: S })), 'f16 output', S);
    k.preprocessVideoFrame(ctx.device, src.buffer, img.width, img.height, out, { size: S });
    const frame = f16BytesToF32(new Uint8Array(await readBuffer(ctx.device, out, 3 * S * S * 2)));
    expectExact(frame, roundToF16(preprocessVideoFrame(img, { size: S })), 'f16 output, video frame', S);
    src.buffer.destroy();
    out.destroy();
    k.destroy();
  });
});
