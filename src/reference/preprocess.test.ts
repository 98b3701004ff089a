import { describe, expect, it } from 'vitest';
import {
  centerCrop,
  centerCropOffsets,
  expandToSquare,
  normalizePixel,
  pillowBicubicFilter,
  preprocessImage,
  preprocessImageRgb,
  preprocessVideoFrame,
  rgbaToRgb,
  resizeBicubicPillow,
  resizeNearestTorch,
  shortestEdgeResizeSize,
  toPixelValues,
  type RgbImage,
} from './preprocess.ts';
import { mulberry32 } from '../util/seeded-random.ts';

function rgb(width: number, height: number, data: number[]): RgbImage {
  return { width, height, data: Uint8Array.from(data) };
}

function randomRgb(width: number, height: number, seed: number): RgbImage {
  const r = mulberry32(seed);
  return { width, height, data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(r() * 256)) };
}

/**
 * Independent double-precision bicubic (a = -0.5) written as a convolution over every input pixel:
 * weight(i) = k((i + 0.5 - center) / fs), normalized over the image; horizontal pass rounded to 8 bits, then vertical.
 */
function separableReference(img: RgbImage, outW: number, outH: number): Uint8Array {
  const k = (t: number): number => {
    const x = Math.abs(t);
    if (x < 1) return 1.5 * x ** 3 - 2.5 * x ** 2 + 1;
    if (x < 2) return -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2;
    return 0;
  };
  const pass = (src: number[][], outN: number): number[][] =>
    src.map((line) => {
      const n = line.length;
      const scale = n / outN;
      const fs = Math.max(scale, 1);
      return Array.from({ length: outN }, (_, o) => {
        const center = (o + 0.5) * scale;
        let s = 0;
        let ws = 0;
        for (let i = 0; i < n; i++) {
          const w = k((i + 0.5 - center) / fs);
          s += w * line[i]!;
          ws += w;
        }
        return Math.min(255, Math.max(0, Math.round(s / ws)));
      });
    });
  const out = new Uint8Array(outW * outH * 3);
  for (let c = 0; c < 3; c++) {
    const rows = Array.from({ length: img.height }, (_, y) => Array.from({ length: img.width }, (_, x) => img.data[(y * img.width + x) * 3 + c]!));
    const h = img.width === outW ? rows : pass(rows, outW);
    const cols = Array.from({ length: outW }, (_, x) => h.map((row) => row[x]!));
    const v = img.height === outH ? cols : pass(cols, outH);
    for (let y = 0; y < outH; y++) for (let x = 0; x < outW; x++) out[(y * outW + x) * 3 + c] = v[x]![y]!;
  }
  return out;
}

describe('Pillow bicubic resize', () => {
  it('bicubic filter values (a = -0.5)', () => {
    expect(pillowBicubicFilter(0)).toBe(1);
    expect(pillowBicubicFilter(0.25)).toBe(0.8671875);
    expect(pillowBicubicFilter(-0.75)).toBe(0.2265625);
    expect(pillowBicubicFilter(1.25)).toBe(-0.0703125);
    expect(pillowBicubicFilter(2)).toBe(0);
  });

  it('downscale 4 -> 2 by hand', () => {
    // scale 2, support 4: output 0 has center 1 and taps k((i - 1 + 0.5) / 2) = k(-0.25, 0.25, 0.75, 1.25)
    //   = 0.8671875, 0.8671875, 0.2265625, -0.0703125 (sum 1.890625);
    // output 1 (center 3): k(-1.25, -0.75, -0.25, 0.25).
    // R row [0, 100, 200, 255]: (86.71875 + 45.3125 - 17.9296875) / 1.890625 = 60.35 -> 60
    //                           (22.65625 + 173.4375 + 221.1328125) / 1.890625 = 220.68 -> 221
    const img = rgb(4, 1, [0, 10, 255, 100, 10, 255, 200, 10, 255, 255, 10, 255]);
    const out = resizeBicubicPillow(img, 2, 1);
    expect([...out.data]).toEqual([60, 10, 255, 221, 10, 255]);
  });

  it('matches Pillow 9.4.0 Image.resize(BICUBIC) byte for byte', () => {
    // Fixtures: Image.frombytes('RGB', size, data).resize(out, Image.BICUBIC).tobytes() with Pillow 9.4.0.
    const a = rgb(5, 4, [
      165, 77, 202, 24, 37, 48, 187, 29, 109, 19, 44, 222, 214, 35, 123, 46, 217, 30, 63, 114, 31, 203, 25, 113, 23, 68, 148, 214, 73, 60,
      157, 92, 52, 96, 190, 49, 32, 30, 105, 254, 218, 160, 238, 232, 185, 153, 127, 92, 124, 41, 153, 253, 175, 229, 147, 37, 60, 214, 84, 175,
    ]);
    expect([...resizeBicubicPillow(a, 3, 7).data]).toEqual([
      111, 51, 141, 103, 32, 119, 133, 37, 174, 88, 97, 100, 114, 36, 114, 129, 42, 145, 54, 172, 31, 130, 47, 107, 129, 64, 101, 86, 164, 26,
      105, 78, 100, 195, 161, 138, 130, 129, 51, 94, 108, 107, 251, 224, 178, 139, 102, 99, 165, 113, 154, 210, 119, 143, 141, 88, 126, 209,
      114, 182, 182, 51, 120,
    ]);
    const b = rgb(7, 5, [
      43, 81, 87, 65, 14, 77, 238, 74, 242, 179, 79, 67, 10, 7, 52, 71, 222, 99, 108, 14, 128, 108, 149, 123, 166, 132, 214, 67, 31, 181, 234,
      215, 66, 77, 9, 225, 93, 2, 76, 88, 72, 242, 61, 31, 166, 247, 54, 29, 127, 97, 141, 21, 50, 231, 14, 32, 226, 166, 102, 141, 231, 244,
      126, 132, 103, 229, 70, 213, 62, 200, 226, 161, 37, 123, 219, 37, 108, 155, 62, 79, 187, 73, 129, 70, 239, 112, 48, 203, 249, 83, 114,
      82, 220, 206, 173, 215, 100, 182, 163, 47, 187, 9, 173, 234, 225,
    ]);
    expect([...resizeBicubicPillow(b, 3, 2).data]).toEqual([120, 82, 137, 121, 76, 144, 96, 78, 140, 160, 146, 119, 97, 130, 190, 98, 145, 137]);
  });

  it('upscale and downscale within ±1 of an independent double-precision convolution', () => {
    const img = randomRgb(7, 5, 11);
    for (const [w, h] of [
      [11, 9],
      [3, 2],
      [7, 12],
      [16, 5],
    ] as const) {
      const got = resizeBicubicPillow(img, w, h).data;
      const ref = separableReference(img, w, h);
      let maxDiff = 0;
      for (let i = 0; i < ref.length; i++) maxDiff = Math.max(maxDiff, Math.abs(got[i]! - ref[i]!));
      expect(maxDiff).toBeLessThanOrEqual(1);
    }
  });

  it('a constant image stays constant; the identity size is a copy', () => {
    const c = rgb(5, 7, Array.from({ length: 35 }, () => [37, 200, 255]).flat());
    for (const [w, h] of [
      [13, 3],
      [2, 11],
      [1, 1],
    ] as const) {
      const out = resizeBicubicPillow(c, w, h);
      for (let p = 0; p < w * h; p++) expect([out.data[p * 3], out.data[p * 3 + 1], out.data[p * 3 + 2]]).toEqual([37, 200, 255]);
    }
    const img = randomRgb(6, 4, 3);
    const same = resizeBicubicPillow(img, 6, 4);
    expect([...same.data]).toEqual([...img.data]);
    expect(same.data).not.toBe(img.data);
  });
});

describe('HF CLIPImageProcessor geometry and normalization', () => {
  it('shortest edge -> S, long edge int(S * long / short)', () => {
    expect(shortestEdgeResizeSize(640, 480, 336)).toEqual([336, 448]); // [h, w]
    expect(shortestEdgeResizeSize(500, 333, 336)).toEqual([336, 504]); // 504.50 -> 504
    expect(shortestEdgeResizeSize(333, 500, 336)).toEqual([504, 336]);
    expect(shortestEdgeResizeSize(100, 101, 28)).toEqual([28, 28]); // 28.28 -> 28
    expect(shortestEdgeResizeSize(50, 50, 336)).toEqual([336, 336]);
  });

  it('center crop offsets use floor((orig - crop) / 2)', () => {
    expect(centerCropOffsets(5, 4, 2, 2)).toEqual({ top: 1, left: 1 }); // (5-2)//2 = 1, (4-2)//2 = 1
    expect(centerCropOffsets(337, 336, 336, 336)).toEqual({ top: 0, left: 0 });
    expect(centerCropOffsets(339, 338, 336, 336)).toEqual({ top: 1, left: 1 });
    const img = rgb(4, 1, [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    expect([...centerCrop(img, 1, 1).data]).toEqual([2, 2, 2]); // left = (4-1)//2 = 1
  });

  it('expand2square pastes at ((side - w) // 2, (side - h) // 2) on (122, 116, 104)', () => {
    const wide = expandToSquare(rgb(3, 2, Array.from({ length: 6 }, () => [1, 2, 3]).flat()));
    expect(wide.width).toBe(3);
    expect(wide.height).toBe(3);
    // top = (3 - 2) // 2 = 0: rows 0-1 are the image, row 2 the background
    expect([...wide.data.subarray(0, 3)]).toEqual([1, 2, 3]);
    expect([...wide.data.subarray(6 * 3, 6 * 3 + 3)]).toEqual([122, 116, 104]);
    const tall = expandToSquare(rgb(2, 5, Array.from({ length: 10 }, () => [9, 9, 9]).flat()));
    // left = (5 - 2) // 2 = 1: columns 1-2 hold the image
    const px = (x: number, y: number): number[] => [...tall.data.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3)];
    expect(px(0, 0)).toEqual([122, 116, 104]);
    expect(px(1, 0)).toEqual([9, 9, 9]);
    expect(px(2, 4)).toEqual([9, 9, 9]);
    expect(px(3, 2)).toEqual([122, 116, 104]);
  });

  it('normalization: f32(f64(x) / 255), then f32 (x - mean) / std (numpy float32 values)', () => {
    expect(normalizePixel(0, 0)).toBe(-1.7922625541687012);
    expect(normalizePixel(255, 0)).toBe(1.9303361177444458);
    expect(normalizePixel(128, 1)).toBe(0.16889731585979462);
    expect(normalizePixel(0, 2)).toBe(-1.480219841003418);
    expect(normalizePixel(77, 2)).toBe(-0.38527464866638184);
    const pv = toPixelValues(rgb(2, 1, [0, 128, 0, 255, 0, 77]));
    expect([...pv]).toEqual([normalizePixel(0, 0), normalizePixel(255, 0), normalizePixel(128, 1), normalizePixel(0, 1), normalizePixel(0, 2), normalizePixel(77, 2)]);
  });

  it('preprocessImage = pad (when "pad") -> resize -> crop -> normalize, channel-major', () => {
    const r = mulberry32(5);
    const rgba = { width: 20, height: 13, data: Uint8ClampedArray.from({ length: 20 * 13 * 4 }, () => Math.floor(r() * 256)) };
    const noPad = preprocessImageRgb(rgba, { size: 14 });
    expect([noPad.width, noPad.height]).toEqual([14, 14]);
    const pv = preprocessImage(rgba, { size: 14 });
    expect(pv.length).toBe(3 * 14 * 14);
    expect([...pv]).toEqual([...toPixelValues(noPad)]);
    const padded = preprocessImageRgb(rgba, { size: 14, aspectRatio: 'pad' });
    // 20x20 after padding (the image starts at row 3): the first output pixel is background (the far tap
    // reaching row 3 has weight ~ -0.001)
    expect([...padded.data.subarray(0, 3)]).toEqual([122, 116, 104]);
    // alpha is ignored
    const opaque = { ...rgba, data: Uint8ClampedArray.from(rgba.data, (v, i) => (i % 4 === 3 ? 255 : v)) };
    expect([...preprocessImage(opaque, { size: 14 })]).toEqual([...pv]);
    // video frame: torch's nearest straight to S x S, no crop
    const vf = preprocessVideoFrame(rgba, { size: 10 });
    expect(vf.length).toBe(300);
    // output (1, 1) samples source (floor(1 * 2), floor(1 * 1.3)) = (2, 1)
    expect(vf[10 + 1]).toBe(normalizePixel(rgba.data[(20 + 2) * 4]!, 0));
    expect([...vf]).toEqual([...toPixelValues(resizeNearestTorch(rgbaToRgb(rgba), 10, 10))]);
  });
});

/**
 * torch.nn.functional.interpolate(size=...) 'nearest', stated independently: output pixel (x, y) copies source
 * pixel (floor(x * inW / outW), floor(y * inH / outH)) in exact integer arithmetic, clamped to the last pixel.
 * ATen computes the same in float32, which agrees with this statement for every size below.
 */
function torchNearestByIntegers(img: RgbImage, outW: number, outH: number): Uint8Array {
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const sx = Math.min(Math.floor((x * img.width) / outW), img.width - 1);
      const sy = Math.min(Math.floor((y * img.height) / outH), img.height - 1);
      for (let c = 0; c < 3; c++) out[(y * outW + x) * 3 + c] = img.data[(sy * img.width + sx) * 3 + c]!;
    }
  }
  return out;
}

describe("torch's nearest resize of video frames", () => {
  // Non-integer scales (64 -> 336 is x5.25) and an integer one (112 -> 336 is x3, 168 -> 336 x2).
  for (const [w, h] of [[64, 48], [500, 300], [17, 9], [112, 168]] as const) {
    it(`${w}x${h} -> 336x336 equals floor(dst * in / out), last row and column included`, () => {
      const img = randomRgb(w, h, w * 31 + h);
      const got = resizeNearestTorch(img, 336, 336);
      expect([got.width, got.height]).toEqual([336, 336]);
      expect(Buffer.from(got.data).equals(Buffer.from(torchNearestByIntegers(img, 336, 336)))).toBe(true);
      // the last output pixel reads the source pixel floor(335 * in / 336), never past the edge
      const last = (335 * 336 + 335) * 3;
      const src = (Math.floor((335 * h) / 336) * w + Math.floor((335 * w) / 336)) * 3;
      expect([...got.data.subarray(last, last + 3)]).toEqual([...img.data.subarray(src, src + 3)]);
    });
  }

  it('differs from Pillow NEAREST (pixel centres) at a non-integer scale: 64 -> 336 starts column 5 at output 26', () => {
    // torch: floor(26 * 64 / 336) = floor(4.95) = 4, floor(27 * 64 / 336) = 5; Pillow: floor((26 + 0.5) * 64 / 336) = 5.
    const line = rgb(64, 1, Array.from({ length: 64 }, (_, i) => [i, i, i]).flat());
    const got = resizeNearestTorch(line, 336, 1);
    expect([got.data[26 * 3], got.data[27 * 3]]).toEqual([4, 5]);
  });

  it('float32 arithmetic as ATen: 720 -> 336 and 1080 -> 336 pick one pixel lower where the exact quotient is whole', () => {
    // Fixtures: ATen's nearest_neighbor_compute_source_index (float scale = (float)in / out, floorf(dst * scale))
    // compiled with gcc: 720: outputs 119, 231, 238 -> 254, 494, 509; 1080: 154, 308 -> 494, 989.
    const column = (inSize: number, dst: number) => {
      const line = rgb(inSize, 1, Array.from({ length: inSize }, (_, i) => [i & 255, i >> 8, 0]).flat());
      const px = resizeNearestTorch(line, 336, 1).data.subarray(dst * 3, dst * 3 + 2);
      return px[0]! + 256 * px[1]!;
    };
    expect([column(720, 119), column(720, 231), column(720, 238), column(720, 118), column(720, 335)]).toEqual([254, 494, 509, 252, 717]);
    expect([column(1080, 154), column(1080, 308), column(1080, 335)]).toEqual([494, 989, 1076]);
  });
});
