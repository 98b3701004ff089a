// The 64x64 output tile shared by the linear kernels: the tiled matmul.wgsl (f32 / f16 weights) and
// matmul-q4.wgsl (int4) use every fragment; the direct matmul-direct.wgsl and matmul-q4-direct.wgsl (CPU
// adapters, no workgroup memory) use tile-dims, tile-start and tile-epilogue. Not a shader on its own: each
// `//#fragment NAME` section below replaces the `//#include NAME` line of those files when a kernel loads its text
// (expandWgsl, src/gpu/wgsl-include.ts), so all four compile the same tile numbering, register block and
// epilogue. The tiled two share the staged loop and differ only in how a W slice reaches workgroup memory.
//
// The includer declares the uniform `dims: Dims` and the bindings x, bias and y; tile-start opens the entry point
// main (workgroup 16x16, builtins wid, nwg, lid), the includer closes main after tile-epilogue.

//#fragment tile-dims
// Rows of x per output tile: 64, or 16 for the direct kernels' small-M pipelines (a workgroup of 16 x TILE_M / 4
// invocations; the tiled kernels' staging needs the full 16 x 16, so they never set it).
override TILE_M: u32 = 64u;

const EPILOGUE_BIAS: u32 = 1u;
const EPILOGUE_RESIDUAL: u32 = 2u;

struct Dims {
  M: u32,
  K: u32,        // a multiple of 32 for the int4 kernels (one quantization group per 32)
  N: u32,
  tilesN: u32,   // ceil(N / 64)
  ldy: u32,      // row stride of y, in elements (N for a dense y)
  yOff: u32,     // element offset of y(0, 0)
  tiles: u32,    // ceil(M / TILE_M) * tilesN
  epilogue: u32, // EPILOGUE_BIAS: add bias[c] (the bias binding is always present, read only then); EPILOGUE_RESIDUAL:
                 // add the product to what y holds (y += x W^T: a residual stream updated in place, no add pass).
                 // A uniform, not an override: one pipeline serves all four (the branches are once per output,
                 // after the K loop)
}

//#fragment tile-memory
const BK: u32 = 32u;   // K depth of one staged slice
const TQ: u32 = 16u;   // vec4 quads per tile edge: tile edge = 4 * TQ = 64
const SLICE: u32 = BK * TQ; // vec4s of one staged slice of x (likewise of W)

// The staged operands' type, and the tile products' arithmetic: f32, or f16 in the f16-arithmetic variant
// (specializeWgsl switches the alias and STAGES; `shader-f16` only). In f16 a slice's 32 products are summed in
// f16 (packed half math: twice the rate of f32 on most GPUs) and each slice's sum is added to the f32
// accumulators, so f16 rounding never runs over more than 32 terms.
alias ST = f32;
// Slices in workgroup memory: 1 (f32: 16 KiB, the default limit) or 2 (f16: 2 x 8 KiB), a double buffer that
// needs one barrier per slice instead of two: slice t + 1 is staged while slower invocations still read slice t.
const STAGES: u32 = 1u;

// [BK][TQ] vec4 per stage: xs[sb + k * TQ + q] holds x rows 4q..4q+3 of the tile at depth k of the slice staged at
// sb (likewise ws for W rows = y columns).
var<workgroup> xs: array<vec4<ST>, SLICE * STAGES>;
var<workgroup> ws: array<vec4<ST>, SLICE * STAGES>;

// Where the slice starting at depth k0 is staged.
fn slice_base(k0: u32) -> u32 {
  return ((k0 / BK) % STAGES) * SLICE;
}

//#fragment tile-start
@compute @workgroup_size(16, TILE_M / 4u, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tile = wid.y * nwg.x + wid.x;
  if (tile >= dims.tiles) {
    return; // surplus workgroup of a folded 2D grid (uniform across the workgroup)
  }
  let M = dims.M;
  let K = dims.K;
  let N = dims.N;
  let m0 = (tile / dims.tilesN) * TILE_M;
  let n0 = (tile % dims.tilesN) * 64u;

  // Compute role: this invocation owns rows m0 + 4*ty .. +3 and columns n0 + 4*tx .. +3.
  let tx = lid % 16u;
  let ty = lid / 16u;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

//#fragment tile-accumulate
    workgroupBarrier();

    var p0 = vec4<ST>(0.0);
    var p1 = vec4<ST>(0.0);
    var p2 = vec4<ST>(0.0);
    var p3 = vec4<ST>(0.0);
    for (var kk = 0u; kk < BK; kk++) {
      let a = xs[sb + kk * TQ + ty];
      let b = ws[sb + kk * TQ + tx];
      p0 += a.x * b;
      p1 += a.y * b;
      p2 += a.z * b;
      p3 += a.w * b;
    }
    acc0 += vec4<f32>(p0);
    acc1 += vec4<f32>(p1);
    acc2 += vec4<f32>(p2);
    acc3 += vec4<f32>(p3);
    if (STAGES == 1u) {
      workgroupBarrier(); // one buffer: the next slice overwrites this one
    }

//#fragment tile-epilogue
  // y may be a column window of a wider matrix: element (r, c) goes to y[yOff + r * ldy + c].
  let c0 = n0 + 4u * tx;
  var bv = vec4<f32>(0.0);
  if ((dims.epilogue & EPILOGUE_BIAS) != 0u) {
    for (var j = 0u; j < 4u; j++) {
      if (c0 + j < N) {
        bv[j] = bias[c0 + j];
      }
    }
  }
  let r0 = m0 + 4u * ty;
  var rows = array<vec4<f32>, 4>(acc0 + bv, acc1 + bv, acc2 + bv, acc3 + bv);
  let residual = (dims.epilogue & EPILOGUE_RESIDUAL) != 0u;
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r < M) {
      let base = dims.yOff + r * dims.ldy + c0;
      for (var j = 0u; j < 4u; j++) {
        if (c0 + j < N) {
          var v = rows[i][j];
          if (residual) {
            v += y[base + j]; // this invocation's own element: read and written by it alone
          }
          y[base + j] = v;
        }
      }
    }
  }
