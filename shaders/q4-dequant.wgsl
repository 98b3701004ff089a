// Int4 dequantization shared by the int4 kernels (matvec.wgsl, matmul-q4.wgsl, matmul-q4-direct.wgsl). Not a
// shader on its own: the `//#fragment q4-dequant` section below replaces their `//#include q4-dequant` line
// (expandWgsl, src/gpu/wgsl-include.ts). MLC's q4f32_1 / q4f16_1 layout (src/quant/q4.ts): element k of row n is
// nibble k % 8 of word n * K/8 + k / 8 (lower index, lower nibble); deq = (q - 7) * scale[n, k / 32].
//
// The includer declares the scales binding `scales: array<u32>` and the override `SCALE_F16: bool`: false, f32
// scales (bitcast); true, f16 scales two per word, lower index in the lower half (unpack2x16float: no
// `shader-f16` needed).

//#fragment q4-dequant
// Shifts of the lower 4 and the upper 4 nibbles of a word: nib(word, LO) holds elements 0..3 of its 8, HI 4..7.
const LO = vec4<u32>(0u, 4u, 8u, 12u);
const HI = vec4<u32>(16u, 20u, 24u, 28u);

// The 4 nibbles of `word` selected by `shifts`, minus the zero point 7.
fn nib(word: u32, shifts: vec4<u32>) -> vec4<f32> {
  return vec4<f32>((vec4<u32>(word) >> shifts) & vec4<u32>(15u)) - vec4<f32>(7.0);
}

// Scale of quantization group g (row-major over [N, K/32]) of the `scales` binding.
fn scale_at(g: u32) -> f32 {
  return scale_in(scales[scale_word(g)], g);
}

// The word of a scales array that holds group g's scale, and that scale from the word (for a second scales
// binding, e.g. the up projection's in matvec.wgsl's gated form).
fn scale_word(g: u32) -> u32 {
  return select(g, g >> 1u, SCALE_F16);
}

fn scale_in(word: u32, g: u32) -> f32 {
  if (SCALE_F16) {
    let pair = unpack2x16float(word);
    return select(pair.x, pair.y, (g & 1u) == 1u);
  }
  return bitcast<f32>(word);
}
