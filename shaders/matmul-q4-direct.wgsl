// Int4 group-quantized linear layer for CPU adapters, without workgroup memory:
//   y[M, N] = x[M, K] · deq(W)[N, K]^T (+ b[N]), W in MLC's q4f32_1 / q4f16_1 layout (q4-dequant.wgsl).
//
// The 64x64 output tiles, 16x16 invocations and 4x4 register block of matmul-q4.wgsl (the tile start and
// epilogue of matmul-tile.wgsl), but, like matmul-direct.wgsl, every invocation reads its operands straight from
// the buffers: per quantization group, one 16-byte load holds all 32 codes of a W row (4 rows: 4 loads, 4
// scales), each of its 4 words is unpacked once into 8 values and reused for the 4 rows of x (2 vec4 loads
// each), and the group's scales multiply the 4x4 partial sums once. No staging, no barriers, no zero-initialized
// workgroup memory: on SwiftShader and lavapipe that is faster and builds in milliseconds (the reasons are in
// matmul-direct.wgsl). K must be a multiple of 32 (the wrapper checks), so rows of x are whole vec4s. Rows past
// M or N read the last row (clamped) and are never stored. x, b, y are f32; accumulation is f32.
//
// Dispatch and output windows are those of matmul-q4.wgsl: tiles numbered row-major over (tile row, tile column),
// folded into a 2D grid; element (r, c) goes to y[yOff + r * ldy + c].

//#include tile-dims

// false: scales are f32 (q4f32_1); true: f16, two per u32 (q4f16_1).
override SCALE_F16: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> qw: array<vec4<u32>>;    // one vec4 = the 32 codes of one group
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

//#include q4-dequant

// tile-start opens main: the 16x16-invocation entry point, its builtins and this invocation's tile.
//#include tile-start
  let groups = K / 32u;
  // Where this invocation's rows begin: x in vec4s (8 per group), W in groups (= vec4<u32> index = scale index).
  let xs = min(vec4<u32>(m0 + 4u * ty) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(M - 1u)) * (K / 4u);
  let ws = min(vec4<u32>(n0 + 4u * tx) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(N - 1u)) * groups;

  for (var g = 0u; g < groups; g++) {
    let v0 = qw[ws.x + g];
    let v1 = qw[ws.y + g];
    let v2 = qw[ws.z + g];
    let v3 = qw[ws.w + g];
    // p_i[j]: the group's sum for row i of x and row j of W, before the scale.
    var p0 = vec4<f32>(0.0);
    var p1 = vec4<f32>(0.0);
    var p2 = vec4<f32>(0.0);
    var p3 = vec4<f32>(0.0);
    for (var c = 0u; c < 4u; c++) {
      // Word c of each W row (elements 8c .. 8c+7 of the group) as 2 matrices: column j of lo holds W row j's
      // elements 8c .. 8c+3, of hi 8c+4 .. 8c+7; (x row) * lo = 4 dot products.
      let lo = mat4x4<f32>(nib(v0[c], LO), nib(v1[c], LO), nib(v2[c], LO), nib(v3[c], LO));
      let hi = mat4x4<f32>(nib(v0[c], HI), nib(v1[c], HI), nib(v2[c], HI), nib(v3[c], HI));
      let k4 = 8u * g + 2u * c;
      p0 += x[xs.x + k4] * lo + x[xs.x + k4 + 1u] * hi;
      p1 += x[xs.y + k4] * lo + x[xs.y + k4 + 1u] * hi;
      p2 += x[xs.z + k4] * lo + x[xs.z + k4 + 1u] * hi;
      p3 += x[xs.w + k4] * lo + x[xs.w + k4 + 1u] * hi;
    }
    let sc = vec4<f32>(scale_at(ws.x + g), scale_at(ws.y + g), scale_at(ws.z + g), scale_at(ws.w + g));
    acc0 += p0 * sc;
    acc1 += p1 * sc;
    acc2 += p2 * sc;
    acc3 += p3 * sc;
  }

//#include tile-epilogue
}
