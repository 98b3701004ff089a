// The CPU side of image preprocessing (spec section 1): for one input shape, the integer filter tables the GPU's
// preprocess kernel applies. Image: [expand2square] -> Pillow BICUBIC shortest edge -> S (8-bit fixed point,
// horizontal then vertical, a same-size pass skipped) -> center crop. Video frame: torch's nearest to S x S.
// The engine's own arithmetic, written from Pillow's Resample.c and HF's image_transforms; src/reference/preprocess.ts
// has an independent one, and the bit-exact parity tests compare them.
import { CLIP_MEAN, CLIP_STD, PAD_COLOR, RESCALE_FACTOR } from '../model/constants.ts';

/** Pillow's fixed-point precision for 8-bit images (32 - 8 - 2 bits). */
export const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

/** Taps per output of Pillow's bicubic filter (support 2, widened by the downscale factor). */
function pillowKernelSize(inSize: number, outSize: number): number {
  return Math.ceil(2 * Math.max(inSize / outSize, 1)) * 2 + 1;
}

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for one output index: the first input index and the
 * fixed-point weights (a = -0.5 cubic, normalized in f64, rounded half away from zero).
 */
function pillowTaps(inSize: number, outSize: number, o: number): { first: number; fixed: Int32Array } {
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  const support = 2 * stretch;
  const shrink = 1 / stretch; // Pillow multiplies by the reciprocal: dividing would round differently
  const center = (o + 0.5) * scale;
  const first = Math.max(Math.trunc(center - support + 0.5), 0);
  const end = Math.min(Math.trunc(center + support + 0.5), inSize);
  const cubic = (x: number): number => {
    const t = Math.abs(x);
    if (t < 1) return (1.5 * t - 2.5) * t * t + 1;
    return t < 2 ? (((t - 5) * t + 8) * t - 4) * -0.5 : 0;
  };
  const raw = Array.from({ length: end - first }, (_, j) => cubic((first + j - center + 0.5) * shrink));
  const total = raw.reduce((a, b) => a + b, 0);
  const fixed = Int32Array.from(raw, (w) => {
    const k = total === 0 ? w : w / total;
    return Math.trunc(k * ONE + (k < 0 ? -0.5 : 0.5));
  });
  return { first, fixed };
}

/** HF rescale + normalize per channel and byte value, as f32 (numpy's rounding): LUT [3 * 256]. */
export function normalizeTable(mean: readonly number[] = CLIP_MEAN, std: readonly number[] = CLIP_STD): Float32Array {
  const f = Math.fround;
  return Float32Array.from({ length: 768 }, (_, i) => {
    const c = Math.floor(i / 256);
    return f(f(f((i % 256) * RESCALE_FACTOR) - f(mean[c]!)) / f(std[c]!));
  });
}

export interface AxisFilter {
  /** Per output: first input index, tap count; weights [out * k + t] (fixed point). */
  min: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  k: number;
}

/** A pass Pillow skips (same size) or a nearest lookup: one tap of weight 2^22 at `index[o]`. */
function oneTap(index: ArrayLike<number>): AxisFilter {
  const n = index.length;
  return { min: Int32Array.from(index), count: new Int32Array(n).fill(1), weights: new Int32Array(n).fill(ONE), k: 1 };
}

/** Pillow BICUBIC from inSize to outSize, restricted to outputs [o0, o0 + n); identity when the size is unchanged. */
function bicubicAxis(inSize: number, outSize: number, o0: number, n: number): AxisFilter {
  if (inSize === outSize) return oneTap(Array.from({ length: n }, (_, i) => o0 + i));
  const k = pillowKernelSize(inSize, outSize);
  const f: AxisFilter = { min: new Int32Array(n), count: new Int32Array(n), weights: new Int32Array(n * k), k };
  for (let i = 0; i < n; i++) {
    const taps = pillowTaps(inSize, outSize, o0 + i);
    f.min[i] = taps.first;
    f.count[i] = taps.fixed.length;
    f.weights.set(taps.fixed, i * k);
  }
  return f;
}

/**
 * torch's nearest source indices (interpolate(size=...) default mode, ATen's upsample_nearest2d), for video
 * frames: index[o] = floorf(o * scale) with scale = (float)in / out, both in float32, clamped to in - 1.
 */
export function nearestIndices(inSize: number, outSize: number): Int32Array {
  const scale = new Float32Array([inSize / outSize]);
  const product = new Float32Array(1);
  return Int32Array.from({ length: outSize }, (_, o) => {
    product[0] = o * scale[0]!;
    return Math.min(Math.floor(product[0]!), inSize - 1);
  });
}

/**
 * Throws if an 8-bit accumulation with these weights could leave i32: every partial sum lies between
 * 2^21 + 255 * (sum of negative weights) and 2^21 + 255 * (sum of positive weights).
 */
export function checkI32Range(f: AxisFilter, what: string): { maxPartial: number; minPartial: number } {
  let maxPartial = 0;
  let minPartial = 0;
  for (let o = 0; o < f.min.length; o++) {
    let pos = 0;
    let neg = 0;
    for (let t = 0; t < f.count[o]!; t++) {
      const w = f.weights[o * f.k + t]!;
      if (w > 0) pos += w;
      else neg += w;
    }
    maxPartial = Math.max(maxPartial, (1 << 21) + 255 * pos);
    minPartial = Math.min(minPartial, (1 << 21) + 255 * neg);
  }
  if (maxPartial > 2 ** 31 - 1 || minPartial < -(2 ** 31)) {
    throw new Error(`PreprocessKernel: ${what} filter could overflow i32 (partial sums up to ${maxPartial}, down to ${minPartial})`);
  }
  return { maxPartial, minPartial };
}

export interface PlanGeometry {
  h: AxisFilter;
  v: AxisFilter; // min relative to mid rows
  rowSrc: Int32Array; // mid row j -> row in padded coordinates
  padLeft: number;
  padTop: number;
  padColor: number;
}

/** The filter tables of one preprocessing: image (bicubic, optional pad, crop) or video frame (nearest). */
export function planGeometry(width: number, height: number, opts: { size: number; aspectRatio?: string; mode?: 'image' | 'video' }): PlanGeometry {
  const S = opts.size;
  const packedPad = PAD_COLOR[0] | (PAD_COLOR[1] << 8) | (PAD_COLOR[2] << 16);
  if (opts.mode === 'video') {
    const yin = nearestIndices(height, S);
    return { h: oneTap(nearestIndices(width, S)), v: oneTap(Array.from({ length: S }, (_, y) => y)), rowSrc: yin, padLeft: 0, padTop: 0, padColor: packedPad };
  }
  const pad = opts.aspectRatio === 'pad' && width !== height;
  const cw = pad ? Math.max(width, height) : width;
  const ch = pad ? Math.max(width, height) : height;
  const padLeft = pad ? Math.floor((cw - width) / 2) : 0;
  const padTop = pad ? Math.floor((ch - height) / 2) : 0;
  // HF shortest-edge resize (long side int(S * long / short)), then its center crop ((size - S) // 2).
  const shortSide = Math.min(cw, ch);
  const rw = cw === shortSide ? S : Math.trunc((S * cw) / shortSide);
  const rh = cw === shortSide ? Math.trunc((S * ch) / shortSide) : S;
  const left = Math.floor((rw - S) / 2);
  const top = Math.floor((rh - S) / 2);
  const h = bicubicAxis(cw, rw, left, S);
  const vAbs = bicubicAxis(ch, rh, top, S);
  let r0 = Infinity;
  let r1 = -Infinity;
  for (let y = 0; y < S; y++) {
    r0 = Math.min(r0, vAbs.min[y]!);
    r1 = Math.max(r1, vAbs.min[y]! + vAbs.count[y]!);
  }
  const rowSrc = Int32Array.from({ length: r1 - r0 }, (_, j) => r0 + j);
  const v: AxisFilter = { ...vAbs, min: vAbs.min.map((m) => m - r0) };
  return { h, v, rowSrc, padLeft, padTop, padColor: packedPad };
}

