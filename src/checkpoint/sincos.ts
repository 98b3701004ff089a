// The compressor's fixed 2-D sin-cos position table (get_2d_sincos_pos_embed in llavamini_arch.py, from MAE),
// stored in the checkpoint as model.compressor.pos_embed. Computed with f32 rounding at each step like the
// numpy float32 original.

/**
 * [grid*grid, dim] table. With w_k = 10000^(-k/(dim/4)), k < dim/4, token m = i*grid + j (row i, column j) is
 * [sin(j w), cos(j w), sin(i w), cos(i w)].
 */
export function sincos2dPosEmbed(dim: number, grid: number): Float32Array {
  if (!Number.isInteger(dim) || dim <= 0 || dim % 4 !== 0) throw new Error(`sincos2dPosEmbed: dim ${dim} must be a positive multiple of 4`);
  if (!Number.isInteger(grid) || grid <= 0) throw new Error(`sincos2dPosEmbed: grid ${grid} must be a positive integer`);
  const q = dim / 4;
  const f = Math.fround;
  const omega = new Float64Array(q);
  for (let k = 0; k < q; k++) omega[k] = f(1 / f(Math.pow(10000, f(k / q))));
  const out = new Float32Array(grid * grid * dim);
  for (let i = 0; i < grid; i++) {
    for (let j = 0; j < grid; j++) {
      const row = (i * grid + j) * dim;
      for (let k = 0; k < q; k++) {
        const aj = f(j * omega[k]!);
        const ai = f(i * omega[k]!);
        out[row + k] = Math.sin(aj);
        out[row + q + k] = Math.cos(aj);
        out[row + 2 * q + k] = Math.sin(ai);
        out[row + 3 * q + k] = Math.cos(ai);
      }
    }
  }
  return out;
}
