// CPU oracle for every dense layer: y = x W^T + b with Hugging Face weight layout W [out, in].
// Accumulates in f64 so that it is a trustworthy yardstick for the f32 GPU kernels.

/** x: [rows, inDim] row-major; w: [outDim, inDim]; bias: [outDim] or undefined. Returns [rows, outDim]. */
export function linear(
  x: Float32Array,
  rows: number,
  inDim: number,
  w: Float32Array,
  outDim: number,
  bias?: Float32Array,
): Float32Array {
  if (x.length !== rows * inDim) throw new Error(`linear: x has ${x.length} values, expected ${rows}x${inDim}`);
  if (w.length !== outDim * inDim) throw new Error(`linear: w has ${w.length} values, expected ${outDim}x${inDim}`);
  if (bias && bias.length !== outDim) throw new Error(`linear: bias has ${bias.length} values, expected ${outDim}`);
  const y = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    const xo = r * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let acc = 0;
      for (let i = 0; i < inDim; i++) acc += x[xo + i] * w[wo + i];
      y[r * outDim + o] = acc + (bias ? bias[o] : 0);
    }
  }
  return y;
}
