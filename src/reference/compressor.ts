// The compressor (LLaVA-Mini's Resampler, spec section 3): C^2 learned queries cross-attend to the N CLIP rows.
//   pe_q = the stored model.compressor.pos_embed (the fixed 2-D sin-cos table, [C^2, D])
//   pe_k = torch bicubic resize of pe_q from a C x C grid to a sqrt(N) x sqrt(N) grid (get_abs_pos)
//   x = LN_kv(clip); q_in = LN_q(query) + pe_q; k_in = x + pe_k; v_in = x
//   nn.MultiheadAttention (in_proj rows [Wq; Wk; Wv]), softmax over the N keys, no mask, then out_proj.
// Output [C^2, D], before the projector.
import type { WeightSource } from '../checkpoint/types.ts';
import { COMPRESSOR_LN_EPS } from '../model/constants.ts';
import { attention } from './attention.ts';
import { linear } from './linear.ts';
import { add, layerNorm } from './ops.ts';
import { readTensor } from './weights.ts';


/** PyTorch's cubic convolution weights for fractional offset t (A = -0.75), taps at floor-1 .. floor+2. */
export function torchCubicCoeffs(t: number, A = -0.75): [number, number, number, number] {
  const cc1 = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
  const cc2 = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  return [cc2(t + 1), cc1(t), cc1(1 - t), cc2(2 - t)];
}

/** Per output index: the 4 clamped source indices and weights of torch's upsample_bicubic2d (align_corners=False). */
export function torchBicubicTaps(inSize: number, outSize: number): { idx: Int32Array; w: Float64Array } {
  const scale = inSize / outSize;
  const idx = new Int32Array(outSize * 4);
  const w = new Float64Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    const src = scale * (o + 0.5) - 0.5; // not clamped for cubic
    const i0 = Math.floor(src);
    const c = torchCubicCoeffs(src - i0);
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = Math.min(Math.max(i0 - 1 + k, 0), inSize - 1);
      w[o * 4 + k] = c[k]!;
    }
  }
  return { idx, w };
}

/**
 * F.interpolate(grid [dim, src, src], size=(dst, dst), mode='bicubic', align_corners=False) on a row-major
 * [src*src, dim] table, returning [dst*dst, dim]. Same size: returned unchanged (get_abs_pos skips it).
 * Computed in f64, rounded to f32 once.
 */
export function bicubicResizePosEmbed(pe: Float32Array, srcGrid: number, dstGrid: number, dim: number): Float32Array {
  if (pe.length !== srcGrid * srcGrid * dim) throw new Error(`bicubicResizePosEmbed: ${pe.length} values, expected ${srcGrid}^2 x ${dim}`);
  if (srcGrid === dstGrid) return pe.slice();
  const t = torchBicubicTaps(srcGrid, dstGrid);
  const out = new Float32Array(dstGrid * dstGrid * dim);
  const acc = new Float64Array(dim);
  for (let oy = 0; oy < dstGrid; oy++) {
    for (let ox = 0; ox < dstGrid; ox++) {
      acc.fill(0);
      for (let a = 0; a < 4; a++) {
        const iy = t.idx[oy * 4 + a]!;
        const wy = t.w[oy * 4 + a]!;
        for (let b = 0; b < 4; b++) {
          const ix = t.idx[ox * 4 + b]!;
          const wxy = wy * t.w[ox * 4 + b]!;
          const so = (iy * srcGrid + ix) * dim;
          for (let d = 0; d < dim; d++) acc[d] += wxy * pe[so + d]!;
        }
      }
      out.set(acc, (oy * dstGrid + ox) * dim);
    }
  }
  return out;
}

export interface CompressorWeights {
  dim: number;
  grid: number;
  heads: number;
  query: Float32Array;
  posEmbed: Float32Array;
  inProjW: Float32Array;
  inProjB: Float32Array;
  outW: Float32Array;
  outB: Float32Array;
  lnQW: Float32Array;
  lnQB: Float32Array;
  lnKvW: Float32Array;
  lnKvB: Float32Array;
}

export async function loadCompressor(src: WeightSource): Promise<CompressorWeights> {
  const cfg = src.config;
  const D = cfg.mmHiddenSize;
  const C = cfg.compressorSize;
  const p = 'model.compressor.';
  const r = (name: string, shape: number[]): Promise<Float32Array> => readTensor(src, p + name, shape);
  return {
    dim: D,
    grid: C,
    heads: cfg.compressorHeads,
    query: await r('query', [C * C, D]),
    posEmbed: await r('pos_embed', [C * C, D]),
    inProjW: await r('attn.in_proj_weight', [3 * D, D]),
    inProjB: await r('attn.in_proj_bias', [3 * D]),
    outW: await r('attn.out_proj.weight', [D, D]),
    outB: await r('attn.out_proj.bias', [D]),
    lnQW: await r('ln_q.weight', [D]),
    lnQB: await r('ln_q.bias', [D]),
    lnKvW: await r('ln_kv.weight', [D]),
    lnKvB: await r('ln_kv.bias', [D]),
  };
}

/** The compressor on clip [N, D] (N a perfect square) with preloaded weights -> [C^2, D]. */
export function compressWith(w: CompressorWeights, clip: Float32Array): Float32Array {
  const D = w.dim;
  const C2 = w.grid * w.grid;
  const N = clip.length / D;
  const g = Math.round(Math.sqrt(N));
  if (!Number.isInteger(N) || g * g !== N) throw new Error(`compressor: ${clip.length / D} CLIP rows is not a square grid`);
  const headDim = D / w.heads;
  if (!Number.isInteger(headDim)) throw new Error(`compressor: width ${D} not divisible by ${w.heads} heads`);

  const peK = bicubicResizePosEmbed(w.posEmbed, w.grid, g, D);
  const x = layerNorm(clip, N, D, w.lnKvW, w.lnKvB, COMPRESSOR_LN_EPS);
  const qIn = add(layerNorm(w.query, C2, D, w.lnQW, w.lnQB, COMPRESSOR_LN_EPS), w.posEmbed);
  const kIn = add(x, peK);
  const DD = D * D;
  const Q = linear(qIn, C2, D, w.inProjW.subarray(0, DD), D, w.inProjB.subarray(0, D));
  const K = linear(kIn, N, D, w.inProjW.subarray(DD, 2 * DD), D, w.inProjB.subarray(D, 2 * D));
  const V = linear(x, N, D, w.inProjW.subarray(2 * DD, 3 * DD), D, w.inProjB.subarray(2 * D, 3 * D));
  const O = attention({ q: Q, k: K, v: V, qRows: C2, kRows: N, numHeads: w.heads, headDim, scale: 1 / Math.sqrt(headDim) });
  return linear(O, C2, D, w.outW, D, w.outB);
}

/** The compressor on clip [N, D] -> [C^2, D] (before the projector). */
export async function compressor(weights: WeightSource, clip: Float32Array): Promise<Float32Array> {
  return compressWith(await loadCompressor(weights), clip);
}
