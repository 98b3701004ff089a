// Scaled dot-product multi-head attention with grouped-query heads and an optional boolean mask.
// Used by CLIP (no mask), the compressor (no mask) and the Llama layers (causal + key mask).
// Scores, softmax and the weighted sum of values are all in f64; the output is stored as f32.
import { softmax } from './ops.ts';

/**
 * Which keys a query row may attend to. A function (queryRow, keyRow) -> true to attend, or a
 * [qRows * kRows] array (row-major, nonzero = attend). Absent = every key.
 */
export type AttentionMask = ((queryRow: number, keyRow: number) => boolean) | Uint8Array;

/** The KV head read by query head h (GQA): floor(h / (numHeads / numKvHeads)). */
export function kvHeadFor(h: number, numHeads: number, numKvHeads: number): number {
  if (numHeads % numKvHeads !== 0) throw new Error(`kvHeadFor: ${numHeads} heads not a multiple of ${numKvHeads} KV heads`);
  return Math.floor(h / (numHeads / numKvHeads));
}

export interface AttentionArgs {
  /** [qRows, numHeads * headDim] */
  q: Float32Array;
  /** [kRows, numKvHeads * headDim] */
  k: Float32Array;
  /** [kRows, numKvHeads * headDim] */
  v: Float32Array;
  qRows: number;
  kRows: number;
  numHeads: number;
  /** Defaults to numHeads (plain multi-head attention). */
  numKvHeads?: number;
  headDim: number;
  /** Multiplies q.k (e.g. 1/sqrt(headDim)). */
  scale: number;
  mask?: AttentionMask;
}

/** f64 dot product of a[ao .. ao+n) and b[bo .. bo+n), with four partial sums (order-independent at f64 precision). */
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let d = 0;
  for (; d + 3 < n; d += 4) {
    s0 += a[ao + d]! * b[bo + d]!;
    s1 += a[ao + d + 1]! * b[bo + d + 1]!;
    s2 += a[ao + d + 2]! * b[bo + d + 2]!;
    s3 += a[ao + d + 3]! * b[bo + d + 3]!;
  }
  for (; d < n; d++) s0 += a[ao + d]! * b[bo + d]!;
  return s0 + s1 + (s2 + s3);
}

/** softmax(q_h k_h^T * scale, masked) v_h for every head, concatenated: [qRows, numHeads * headDim]. */
export function attention(args: AttentionArgs): Float32Array {
  const { q, k, v, qRows, kRows, numHeads, headDim, scale, mask } = args;
  const numKvHeads = args.numKvHeads ?? numHeads;
  const qWidth = numHeads * headDim;
  const kvWidth = numKvHeads * headDim;
  if (q.length !== qRows * qWidth) throw new Error(`attention: q has ${q.length} values, expected ${qRows}x${qWidth}`);
  if (k.length !== kRows * kvWidth) throw new Error(`attention: k has ${k.length} values, expected ${kRows}x${kvWidth}`);
  if (v.length !== kRows * kvWidth) throw new Error(`attention: v has ${v.length} values, expected ${kRows}x${kvWidth}`);
  if (mask instanceof Uint8Array && mask.length !== qRows * kRows) {
    throw new Error(`attention: mask has ${mask.length} values, expected ${qRows}x${kRows}`);
  }
  const allowed = (i: number, j: number): boolean =>
    mask === undefined ? true : mask instanceof Uint8Array ? mask[i * kRows + j] !== 0 : mask(i, j);

  const out = new Float32Array(qRows * qWidth);
  const scores = new Float64Array(kRows);
  const acc = new Float64Array(headDim);
  for (let h = 0; h < numHeads; h++) {
    const kvh = kvHeadFor(h, numHeads, numKvHeads);
    const qo = h * headDim;
    const ko = kvh * headDim;
    for (let i = 0; i < qRows; i++) {
      const qi = i * qWidth + qo;
      for (let j = 0; j < kRows; j++) {
        if (!allowed(i, j)) {
          scores[j] = -Infinity;
          continue;
        }
        scores[j] = dot(q, qi, k, j * kvWidth + ko, headDim) * scale;
      }
      const p = softmax(scores);
      acc.fill(0);
      for (let j = 0; j < kRows; j++) {
        const pj = p[j]!;
        if (pj === 0) continue;
        const vj = j * kvWidth + ko;
        for (let d = 0; d < headDim; d++) acc[d] += pj * v[vj + d]!;
      }
      const oi = i * qWidth + qo;
      for (let d = 0; d < headDim; d++) out[oi + d] = acc[d]!;
    }
  }
  return out;
}
