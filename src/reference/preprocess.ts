// Image preprocessing, exactly like the reference pipeline (spec section 1):
//   LLaVA's expand2square (only when image_aspect_ratio == "pad") -> HF CLIPImageProcessor:
//   resize shortest edge to S with Pillow BICUBIC on uint8 RGB -> center crop S x S -> rescale 1/255 -> normalize.
// Video frames (spec sections 1 and 7): resized straight to S x S with torch's nearest interpolate (the
// reference's load_video), no crop, same rescale/normalize.
//
// Images here are 8-bit RGB, interleaved, row-major ({width, height, data} with 3 bytes a pixel).
// Inputs are RGBA (4 bytes a pixel, as from canvas getImageData / decoders); alpha is ignored (PIL convert('RGB')
// drops it without compositing).

/** RGB pixels, row-major, 3 bytes a pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

import { CLIP_MEAN, CLIP_STD, PAD_COLOR, RESCALE_FACTOR, type RgbaImage } from '../model/constants.ts';

export function rgbaToRgb(img: RgbaImage): RgbImage {
  const { width, height, data } = img;
  if (data.length !== width * height * 4) throw new Error(`rgbaToRgb: ${data.length} bytes for ${width}x${height} RGBA`);
  const out = new Uint8Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    out[p * 3] = data[p * 4]!;
    out[p * 3 + 1] = data[p * 4 + 1]!;
    out[p * 3 + 2] = data[p * 4 + 2]!;
  }
  return { width, height, data: out };
}

/**
 * LLaVA's expand2square: a square of side max(w, h) filled with `color`, the image pasted at
 * ((side - w) // 2, (side - h) // 2). A square image is returned as is.
 */
export function expandToSquare(img: RgbImage, color: readonly [number, number, number] = PAD_COLOR): RgbImage {
  const { width: w, height: h } = img;
  if (w === h) return img;
  const side = Math.max(w, h);
  const out = new Uint8Array(side * side * 3);
  for (let p = 0; p < side * side; p++) {
    out[p * 3] = color[0];
    out[p * 3 + 1] = color[1];
    out[p * 3 + 2] = color[2];
  }
  const left = Math.floor((side - w) / 2);
  const top = Math.floor((side - h) / 2);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(y * w * 3, (y + 1) * w * 3), ((top + y) * side + left) * 3);
  return { width: side, height: side, data: out };
}

// ---------------------------------------------------------------------------------------------------------
// Pillow's Resample.c (ImagingResample with BICUBIC on 8-bit data), replicated operation by operation.

const PRECISION_BITS = 32 - 8 - 2;

/** Pillow's bicubic_filter (a = -0.5), support 2. */
export function pillowBicubicFilter(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

export interface ResampleCoeffs {
  /** Per output pixel: first input index. */
  xmin: Int32Array;
  /** Per output pixel: number of input pixels used. */
  count: Int32Array;
  /** Per output pixel: ksize f64 weights (normalized to sum 1), zero beyond count. */
  weights: Float64Array;
  /** Per output pixel: ksize fixed-point weights (PRECISION_BITS). */
  fixed: Int32Array;
  ksize: number;
}

/** Pillow's precompute_coeffs (box = [0, inSize]) followed by normalize_coeffs_8bpc. */
export function pillowBicubicCoeffs(inSize: number, outSize: number): ResampleCoeffs {
  const support0 = 2; // bicubic
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = support0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const xminArr = new Int32Array(outSize);
  const countArr = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const fixed = new Int32Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = 0 + (xx + 0.5) * scale;
    // C casts (int) truncate toward zero.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    const o = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      const w = pillowBicubicFilter((x + xmin - center + 0.5) * ss);
      weights[o + x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) if (ww !== 0) weights[o + x] = weights[o + x]! / ww;
    for (let x = 0; x < ksize; x++) {
      const k = weights[o + x]!;
      fixed[o + x] = k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    xminArr[xx] = xmin;
    countArr[xx] = xmax;
  }
  return { xmin: xminArr, count: countArr, weights, fixed, ksize };
}

/** Pillow's clip8: ss >> PRECISION_BITS clamped to 0..255 (arithmetic shift = floor). */
function clip8(ss: number): number {
  const v = Math.floor(ss / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function resampleHorizontal(img: RgbImage, outW: number): RgbImage {
  const { width: inW, height: h, data } = img;
  const c = pillowBicubicCoeffs(inW, outW);
  const out = new Uint8Array(outW * h * 3);
  for (let y = 0; y < h; y++) {
    for (let xx = 0; xx < outW; xx++) {
      const xmin = c.xmin[xx]!;
      const n = c.count[xx]!;
      const ko = xx * c.ksize;
      for (let ch = 0; ch < 3; ch++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let x = 0; x < n; x++) ss += data[(y * inW + x + xmin) * 3 + ch]! * c.fixed[ko + x]!;
        out[(y * outW + xx) * 3 + ch] = clip8(ss);
      }
    }
  }
  return { width: outW, height: h, data: out };
}

function resampleVertical(img: RgbImage, outH: number): RgbImage {
  const { width: w, height: inH, data } = img;
  const c = pillowBicubicCoeffs(inH, outH);
  const out = new Uint8Array(w * outH * 3);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = c.xmin[yy]!;
    const n = c.count[yy]!;
    const ko = yy * c.ksize;
    for (let x = 0; x < w; x++) {
      for (let ch = 0; ch < 3; ch++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < n; y++) ss += data[((y + ymin) * w + x) * 3 + ch]! * c.fixed[ko + y]!;
        out[(yy * w + x) * 3 + ch] = clip8(ss);
      }
    }
  }
  return { width: w, height: outH, data: out };
}

/**
 * PIL Image.resize((outW, outH), Image.BICUBIC) of an RGB image: horizontal pass first into an 8-bit
 * intermediate, then vertical; a pass whose size is unchanged is skipped (so an identity resize is a copy).
 */
export function resizeBicubicPillow(img: RgbImage, outW: number, outH: number): RgbImage {
  if (img.data.length !== img.width * img.height * 3) throw new Error(`resizeBicubicPillow: ${img.data.length} bytes for ${img.width}x${img.height} RGB`);
  if (!(outW > 0 && outH > 0)) throw new Error(`resizeBicubicPillow: bad output size ${outW}x${outH}`);
  let cur = img;
  if (outW !== cur.width) cur = resampleHorizontal(cur, outW);
  if (outH !== cur.height) cur = resampleVertical(cur, outH);
  return cur === img ? { width: img.width, height: img.height, data: img.data.slice() } : cur;
}

/**
 * torch.nn.functional.interpolate(frames, size=(outH, outW)) in its default mode 'nearest' on uint8 frames, as
 * ATen's upsample_nearest2d computes it: per axis scale = float(in) / out in float32, source index =
 * floorf(dst * scale) in float32, clamped to in - 1. Not Pillow's NEAREST (pixel centres): at a non-integer scale
 * the two pick different pixels. The float32 steps matter too: for 720 -> 336, output 119 reads pixel 254 where
 * the exact 119 * 720 / 336 = 255 would read 255.
 */
export function resizeNearestTorch(img: RgbImage, outW: number, outH: number): RgbImage {
  const { width: inW, height: inH, data } = img;
  if (data.length !== inW * inH * 3) throw new Error(`resizeNearestTorch: ${data.length} bytes for ${inW}x${inH} RGB`);
  if (!(outW > 0 && outH > 0)) throw new Error(`resizeNearestTorch: bad output size ${outW}x${outH}`);
  const f32 = Math.fround;
  const source = (dst: number, inSize: number, outSize: number) => Math.min(Math.floor(f32(dst * f32(inSize / outSize))), inSize - 1);
  const out = new Uint8Array(outW * outH * 3);
  for (let y = 0; y < outH; y++) {
    const yi = source(y, inH, outH);
    for (let x = 0; x < outW; x++) {
      const s = (yi * inW + source(x, inW, outW)) * 3;
      out.set(data.subarray(s, s + 3), (y * outW + x) * 3);
    }
  }
  return { width: outW, height: outH, data: out };
}

// ---------------------------------------------------------------------------------------------------------
// Hugging Face image_transforms.

/**
 * get_resize_output_image_size(size=S, default_to_square=False): short side -> S, long side -> int(S * long / short).
 * Returns [height, width].
 */
export function shortestEdgeResizeSize(width: number, height: number, size: number): [number, number] {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((size * long) / short);
  return width <= height ? [newLong, size] : [size, newLong];
}

/** HF center_crop offsets: top = (h - ch) // 2, left = (w - cw) // 2 (floor division). */
export function centerCropOffsets(width: number, height: number, cropW: number, cropH: number): { top: number; left: number } {
  return { top: Math.floor((height - cropH) / 2), left: Math.floor((width - cropW) / 2) };
}

/** Center crop to cropW x cropH (the image must be at least that large, as after a shortest-edge resize). */
export function centerCrop(img: RgbImage, cropW: number, cropH: number): RgbImage {
  const { width: w, height: h, data } = img;
  if (cropW > w || cropH > h) throw new Error(`centerCrop: ${w}x${h} smaller than ${cropW}x${cropH} (padding not implemented)`);
  const { top, left } = centerCropOffsets(w, h, cropW, cropH);
  const out = new Uint8Array(cropW * cropH * 3);
  for (let y = 0; y < cropH; y++) out.set(data.subarray(((top + y) * w + left) * 3, ((top + y) * w + left + cropW) * 3), y * cropW * 3);
  return { width: cropW, height: cropH, data: out };
}

/**
 * One channel value through HF rescale + normalize, with numpy's rounding:
 * rescale: (f64(x) * 0.00392156862745098) -> f32; normalize in f32: (x - f32(mean)) / f32(std).
 */
export function normalizePixel(value: number, channel: 0 | 1 | 2, mean = CLIP_MEAN, std = CLIP_STD): number {
  const f = Math.fround;
  const x = f(value * RESCALE_FACTOR);
  return f(f(x - f(mean[channel])) / f(std[channel]));
}

/** RGB image -> pixel_values Float32Array [3, h, w] (channel-major), rescaled and normalized. */
export function toPixelValues(img: RgbImage, mean = CLIP_MEAN, std = CLIP_STD): Float32Array {
  const { width: w, height: h, data } = img;
  const out = new Float32Array(3 * h * w);
  // Per-channel lookup table: the result only depends on the byte value.
  for (const ch of [0, 1, 2] as const) {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = normalizePixel(v, ch, mean, std);
    for (let p = 0; p < w * h; p++) out[ch * w * h + p] = lut[data[p * 3 + ch]!]!;
  }
  return out;
}

export interface PreprocessOptions {
  /** Output side S (config.vision.imageSize, 336). */
  size: number;
  /** config.imageAspectRatio: "pad" pads to a square first; anything else does not. */
  aspectRatio?: string;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
}

/** The RGB image after pad / resize / crop, before rescale + normalize (useful for tests and debugging). */
export function preprocessImageRgb(rgba: RgbaImage, opts: PreprocessOptions): RgbImage {
  let img = rgbaToRgb(rgba);
  if (opts.aspectRatio === 'pad') img = expandToSquare(img, PAD_COLOR);
  const [rh, rw] = shortestEdgeResizeSize(img.width, img.height, opts.size);
  img = resizeBicubicPillow(img, rw, rh);
  return centerCrop(img, opts.size, opts.size);
}

/** An image -> pixel_values [3, S, S] exactly as LLaVA-Mini's process_images + CLIPImageProcessor. */
export function preprocessImage(rgba: RgbaImage, opts: PreprocessOptions): Float32Array {
  return toPixelValues(preprocessImageRgb(rgba, opts), opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD);
}

/** A video frame -> pixel_values [3, S, S]: torch's nearest resize straight to S x S, no crop, same normalization. */
export function preprocessVideoFrame(rgba: RgbaImage, opts: PreprocessOptions): Float32Array {
  const img = resizeNearestTorch(rgbaToRgb(rgba), opts.size, opts.size);
  return toPixelValues(img, opts.mean ?? CLIP_MEAN, opts.std ?? CLIP_STD);
}
