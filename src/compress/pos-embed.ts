// The compressor's key position embedding (get_abs_pos, spec section 3): torch's bicubic interpolate
// (A = -0.75, align_corners=False, clamped taps) of the stored C x C table to the sqrt(N) x sqrt(N) CLIP grid,
// computed once at load. Separable here (columns, then rows, in f64); src/reference/compressor.ts sums the 2-D
// taps directly, so the two stay independent.

/** Taps of one output index: 4 clamped source indices and their cubic-convolution weights. */
function cubicTaps(inSize: number, outSize: number, o: number): { idx: number[]; w: number[] } {
  const A = -0.75;
  const near = (x: number): number => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| <= 1
  const far = (x: number): number => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2
  const src = (inSize / outSize) * (o + 0.5) - 0.5;
  const i0 = Math.floor(src);
  const t = src - i0;
  const clamp = (i: number): number => Math.min(Math.max(i, 0), inSize - 1);
  return { idx: [clamp(i0 - 1), clamp(i0), clamp(i0 + 1), clamp(i0 + 2)], w: [far(t + 1), near(t), near(1 - t), far(2 - t)] };
}

/** [src^2, dim] row-major grid -> [dst^2, dim], rounded to f32 once; the same size is returned as a copy. */
export function resizePosEmbed(pe: Float32Array, srcGrid: number, dstGrid: number, dim: number): Float32Array {
  if (pe.length !== srcGrid * srcGrid * dim) throw new Error(`resizePosEmbed: ${pe.length} values, expected ${srcGrid}^2 x ${dim}`);
  if (srcGrid === dstGrid) return pe.slice();
  const taps = Array.from({ length: dstGrid }, (_, o) => cubicTaps(srcGrid, dstGrid, o));
  // Along x: [src rows, dst cols, dim] in f64.
  const cols = new Float64Array(srcGrid * dstGrid * dim);
  for (let y = 0; y < srcGrid; y++) {
    for (let ox = 0; ox < dstGrid; ox++) {
      const out = (y * dstGrid + ox) * dim;
      taps[ox]!.idx.forEach((ix, k) => {
        const w = taps[ox]!.w[k]!;
        const src = (y * srcGrid + ix) * dim;
        for (let d = 0; d < dim; d++) cols[out + d] += w * pe[src + d]!;
      });
    }
  }
  // Along y.
  const out = new Float32Array(dstGrid * dstGrid * dim);
  const acc = new Float64Array(dim);
  for (let oy = 0; oy < dstGrid; oy++) {
    for (let ox = 0; ox < dstGrid; ox++) {
      acc.fill(0);
      taps[oy]!.idx.forEach((iy, k) => {
        const w = taps[oy]!.w[k]!;
        const src = (iy * dstGrid + ox) * dim;
        for (let d = 0; d < dim; d++) acc[d] += w * cols[src + d]!;
      });
      out.set(acc, (oy * dstGrid + ox) * dim);
    }
  }
  return out;
}
