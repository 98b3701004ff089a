// The tiled loop shared by matmul.wgsl (f32 / f16 weights) and matmul-q4.wgsl (int4 weights). Not a shader on
// its own: each `//#fragment NAME` section below replaces the `//#include NAME` line of those files when a
// kernel loads its text (expandWgsl, src/gpu/wgsl-include.ts), so both kernels compile the same tiling, the same
// multiply-add order and the same epilogue. They differ only in how a W slice reaches workgroup memory.
//
// The includer declares: the Dims uniform `dims` (M, K, N, tilesN, ldy, yOff, tiles), the bindings x, bias and
// y, main's builtins wid, nwg and lid, and `withBias` before the epilogue.

//#fragment tile-memory
const BK: u32 = 32u;   // K depth of one staged slice
const TQ: u32 = 16u;   // vec4 quads per tile edge: tile edge = 4 * TQ = 64

// [BK][TQ] vec4: xs[k * TQ + q] holds x rows 4q..4q+3 of the tile at depth k (likewise ws for W rows = y columns).
// 2 x 512 x 16 B = 16 KiB.
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

//#fragment tile-start
  let tile = wid.y * nwg.x + wid.x;
  if (tile >= dims.tiles) {
    return; // surplus workgroup of a folded 2D grid (uniform across the workgroup)
  }
  let M = dims.M;
  let K = dims.K;
  let N = dims.N;
  let m0 = (tile / dims.tilesN) * 64u;
  let n0 = (tile % dims.tilesN) * 64u;

  // Compute role: this invocation owns rows m0 + 4*ty .. +3 and columns n0 + 4*tx .. +3.
  let tx = lid % 16u;
  let ty = lid / 16u;
  // x load role: depth lk of the slice, row quads lq and lq + 8 (consecutive invocations read consecutive k).
  let lk = lid % BK;
  let lq = lid / BK;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

//#fragment tile-accumulate
    workgroupBarrier();

    for (var kk = 0u; kk < BK; kk++) {
      let a = xs[kk * TQ + ty];
      let b = ws[kk * TQ + tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    workgroupBarrier();

//#fragment tile-epilogue
  // y may be a column window of a wider matrix: element (r, c) goes to y[yOff + r * ldy + c].
  let c0 = n0 + 4u * tx;
  var bv = vec4<f32>(0.0);
  if (withBias) {
    for (var j = 0u; j < 4u; j++) {
      if (c0 + j < N) {
        bv[j] = bias[c0 + j];
      }
    }
  }
  let r0 = m0 + 4u * ty;
  var rows = array<vec4<f32>, 4>(acc0 + bv, acc1 + bv, acc2 + bv, acc3 + bv);
  for (var i = 0u; i < 4u; i++) {
    let r = r0 + i;
    if (r < M) {
      let base = dims.yOff + r * dims.ldy + c0;
      for (var j = 0u; j < 4u; j++) {
        if (c0 + j < N) {
          y[base + j] = rows[i][j];
        }
      }
    }
  }
