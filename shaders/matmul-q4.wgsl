// Int4 group-quantized linear layer, tiled (prefill: many rows):  y[M, N] = x[M, K] · deq(W)[N, K]^T (+ b[N])
//
// W in the MLC q4f32_1 / q4f16_1 layout ("NK", group size 32 along K; see src/quant/q4.ts):
//   qw [N, K/8] u32: element k of row n is nibble (k % 8) of word n * K/8 + k / 8 (lower index, lower nibble);
//   scales [N, K/32]: f32 (SCALE_F16 = false, q4f32_1) or f16 (SCALE_F16 = true, q4f16_1);
//   deq = (q - 7) * scale.
// The scales binding is always array<u32>: f32 scales are bitcast, f16 scales are read two per word with
// unpack2x16float, so the q4f16_1 variant needs no `shader-f16` feature (same bytes, same bandwidth) and runs on
// every WebGPU device. x, b, y are f32; the tile products are f32, or f16 in the f16-arithmetic variant
// (matmul-tile.wgsl's `ST`: dequantized into f16, each group's 32 products summed in f16, the groups in f32; needs
// `shader-f16`). K must be a multiple of 32 (the wrapper checks).
//
// Tiling (the shared tile loop of matmul-tile.wgsl, as in matmul.wgsl; K slice = one quantization group): one workgroup of 16x16 invocations computes a 64x64 block of y. Each
// step stages a 64x32 slice of x and the matching 64x32 slice of W — exactly one quantization group per row —
// dequantized into workgroup memory (f32, 16 KiB; or f16, double-buffered, 16 KiB), stored K-major as vec4 (4 consecutive rows), then
// every invocation accumulates a 4x4 register block with 4 vec4 multiply-adds per k. Dequantizing once per slice
// into shared memory amortizes the unpacking over the 64 rows of x of the tile. The W slice is 64 rows x 4 words;
// each invocation takes one row quad (4 rows), one word j and one nibble pair h: it loads the 4 rows' word j
// (the 4 invocations differing only in h are adjacent and load the same addresses: one broadcast load) and the 4
// scales, and writes 2 whole vec4s (4 rows at depths 8j + 2h and 8j + 2h + 1), unpacking the 4 rows at once with
// vector shifts. Whole-vec4 stores matter: a store to one component of a workgroup vec4 with a dynamic index is
// lowered by some backends (Tint's HLSL writer) to a read-modify-write of the whole vector, which would race
// with the invocations writing the other components.
//
// Dispatch: tiles are numbered row-major over (tile row, tile column); the host folds the tile count into a 2D
// grid (x <= maxComputeWorkgroupsPerDimension) and surplus workgroups of the last grid row exit at once.
// y may be a column window of a wider matrix: element (r, c) goes to y[yOff + r * ldy + c], so a caller can
// split W by output rows (when one binding would exceed maxStorageBufferBindingSize) and fill y in parts.

//#include tile-dims

// false: scales are f32 (q4f32_1); true: scales are f16, two per u32, lower index in the lower half (q4f16_1).
override SCALE_F16: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

//#include tile-memory

//#include q4-dequant

// tile-start opens main: the 16x16-invocation entry point, its builtins and this invocation's tile.
//#include tile-start
  // x load role: depth lk of the slice, row quads lq and lq + 8 (consecutive invocations read consecutive k).
  let lk = lid % BK;
  let lq = lid / BK;
  let wordsPerRow = K / 8u;
  let groupsPerRow = K / BK;
  // W load role: rows 4*wq .. 4*wq+3 of the tile, word wj (depths 8*wj .. 8*wj+7), nibble pair wh of that word.
  let wh = lid % 4u;
  let wq = (lid / 4u) % TQ;
  let wj = lid / 64u;
  let wn0 = n0 + 4u * wq;

  for (var k0 = 0u; k0 < K; k0 += BK) {
    let sb = slice_base(k0);
    // x slice: K is a multiple of 32, so k < K always.
    let k = k0 + lk;
    for (var h = 0u; h < 2u; h++) {
      let q = lq + 8u * h;
      var xv = vec4<f32>(0.0);
      let r = m0 + 4u * q;
      for (var i = 0u; i < 4u; i++) {
        if (r + i < M) {
          xv[i] = x[(r + i) * K + k];
        }
      }
      xs[sb + lk * TQ + q] = vec4<ST>(xv);
    }

    // W slice: word wj of 4 rows (one per component) and their scales; rows >= N stay 0.
    let g = k0 / BK;
    var words = vec4<u32>(0u);
    var sc = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i++) {
      let n = wn0 + i;
      if (n < N) {
        words[i] = qw[n * wordsPerRow + g * 4u + wj];
        sc[i] = scale_at(n * groupsPerRow + g);
      }
    }
    let sh = vec4<u32>(8u * wh);
    let kw = 8u * wj + 2u * wh;
    ws[sb + kw * TQ + wq] = vec4<ST>((vec4<f32>((words >> sh) & vec4<u32>(15u)) - vec4<f32>(7.0)) * sc);
    ws[sb + (kw + 1u) * TQ + wq] = vec4<ST>((vec4<f32>((words >> (sh + vec4<u32>(4u))) & vec4<u32>(15u)) - vec4<f32>(7.0)) * sc);
//#include tile-accumulate
  }

//#include tile-epilogue
}
