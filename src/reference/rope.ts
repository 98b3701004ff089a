// Rotary position embedding, Hugging Face Llama convention (rotate-half over the two halves of each head,
// no weight permutation), with Llama-3 frequency scaling (spec section 4).
//
// Precision: the inverse frequencies are computed in f64 from the formulas and then rounded to f32 (PyTorch keeps
// inv_freq as an f32 buffer); the angle pos * inv_freq is rounded to f32 like PyTorch's f32 product (and a WGSL
// f32 product); cos/sin of that f32 angle are evaluated in f64.
import type { Llama3RopeScaling, LlamaConfig } from '../checkpoint/types.ts';

/**
 * inv_freq_i for i < headDim/2: theta^(-2i/headDim), then (when scaling is given) Llama-3 scaling:
 * wavelen = 2 pi / inv_freq; wavelen < orig/high -> keep; wavelen > orig/low -> inv_freq / factor;
 * otherwise smooth = (orig/wavelen - low) / (high - low), inv_freq = (1 - smooth) inv_freq / factor + smooth inv_freq.
 * Returned as f32 values.
 */
export function ropeInvFreq(headDim: number, theta: number, scaling: Llama3RopeScaling | null): Float32Array {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) throw new Error(`ropeInvFreq: bad head dim ${headDim}`);
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    let f = 1 / Math.pow(theta, (2 * i) / headDim);
    if (scaling) {
      const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: orig } = scaling;
      const lowFreqWavelen = orig / lowFreqFactor;
      const highFreqWavelen = orig / highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highFreqWavelen) {
        // high frequency: unchanged
      } else if (wavelen > lowFreqWavelen) {
        f = f / factor;
      } else {
        const smooth = (orig / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        f = ((1 - smooth) * f) / factor + smooth * f;
      }
    }
    out[i] = f;
  }
  return out;
}

export function ropeInvFreqFromConfig(cfg: LlamaConfig): Float32Array {
  return ropeInvFreq(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
}

/** cos and sin tables [positions.length, headDim/2] for the given positions (angle rounded to f32 first). */
export function ropeCosSin(invFreq: Float32Array, positions: ArrayLike<number>): { cos: Float64Array; sin: Float64Array } {
  const half = invFreq.length;
  const cos = new Float64Array(positions.length * half);
  const sin = new Float64Array(positions.length * half);
  for (let r = 0; r < positions.length; r++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(positions[r]! * invFreq[i]!);
      cos[r * half + i] = Math.cos(a);
      sin[r * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** rotate_half over one head: [a, b] -> [-b, a] (a, b the two halves). */
export function rotateHalf(x: ArrayLike<number>): Float64Array {
  const d = x.length;
  const h = d / 2;
  const y = new Float64Array(d);
  for (let i = 0; i < h; i++) {
    y[i] = -x[i + h]!;
    y[i + h] = x[i]!;
  }
  return y;
}

/**
 * Apply RoPE to x: [rows, numHeads * headDim] where row r is at position positions[r]:
 * x' = x * cos + rotate_half(x) * sin, with cos/sin of angle_i (i < headDim/2) repeated over both halves.
 */
export function applyRope(
  x: Float32Array,
  rows: number,
  numHeads: number,
  headDim: number,
  positions: ArrayLike<number>,
  invFreq: Float32Array,
): Float32Array {
  if (x.length !== rows * numHeads * headDim) throw new Error(`applyRope: x has ${x.length} values, expected ${rows}x${numHeads}x${headDim}`);
  if (positions.length !== rows) throw new Error(`applyRope: ${positions.length} positions for ${rows} rows`);
  if (invFreq.length * 2 !== headDim) throw new Error(`applyRope: ${invFreq.length} frequencies for head dim ${headDim}`);
  const half = headDim / 2;
  const { cos, sin } = ropeCosSin(invFreq, positions);
  const y = new Float32Array(x.length);
  const width = numHeads * headDim;
  for (let r = 0; r < rows; r++) {
    for (let h = 0; h < numHeads; h++) {
      const o = r * width + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[r * half + i]!;
        const s = sin[r * half + i]!;
        const a = x[o + i]!;
        const b = x[o + i + half]!;
        y[o + i] = a * c - b * s; // a*cos + (-b)*sin
        y[o + i + half] = b * c + a * s; // b*cos + a*sin
      }
    }
  }
  return y;
}
