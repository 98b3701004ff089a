// Dense linear layer, tiled:  y[M, N] = x[M, K] · W[N, K]^T (+ b[N])
//
// Hugging Face layout: W is [out, in] row-major, so both x and W are contiguous along K ("NT" matmul).
// x, b, y are f32; W is `WT`: f32 in this file as written. The f16-weight variant is this same text
// specialized by src/gpu/kernels/linear.ts (`enable f16;` prepended, the `WT` alias switched to f16); it is
// only built when the device has the `shader-f16` feature. Accumulation is always f32.
//
// Tiling: one workgroup of 16x16 invocations computes a 64x64 block of y. Each step stages a 64x32 slice
// of x and a 64x32 slice of W in workgroup memory (16 KiB in all: the WebGPU default limit), stored K-major
// as vec4 (4 consecutive rows or columns), then every invocation accumulates a 4x4 register block of outputs
// with 4 vec4 multiply-adds per k. BK = 32 rather than 16 halves the barriers (1.2-2x faster on SwiftShader).
// M, N and K need not be multiples of the tile: out-of-range loads read 0, out-of-range stores are skipped.
//
// Dispatch: tiles are numbered row-major over (tile row, tile column); the host folds the tile count into a
// 2D grid (x <= maxComputeWorkgroupsPerDimension) and surplus workgroups of the last grid row exit at once.
//
// y may be a column window of a wider matrix: element (r, c) goes to y[yOff + r * ldy + c], so a caller can
// split W by output rows (when one binding would exceed maxStorageBufferBindingSize) and fill y in parts.

alias WT = f32;

struct Dims {
  M: u32,
  K: u32,
  N: u32,
  tilesN: u32,   // ceil(N / 64)
  ldy: u32,      // row stride of y, in elements (N for a dense y)
  yOff: u32,     // element offset of y(0, 0)
  tiles: u32,    // ceil(M / 64) * tilesN
  _pad: u32,
}

// The bias binding is always present in the layout; it is read only when HAS_BIAS is true.
override HAS_BIAS: bool = false;

const BK: u32 = 32u;   // K depth of one staged slice
const TQ: u32 = 16u;   // vec4 quads per tile edge: tile edge = 4 * TQ = 64

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// [BK][TQ] vec4: xs[k * TQ + q] holds x rows 4q..4q+3 of the tile at depth k (likewise ws for W rows = y columns).
// 2 x 512 x 16 B = 16 KiB.
var<workgroup> xs: array<vec4<f32>, 512>;
var<workgroup> ws: array<vec4<f32>, 512>;

@compute @workgroup_size(16, 16, 1)
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
  let m0 = (tile / dims.tilesN) * 64u;
  let n0 = (tile % dims.tilesN) * 64u;

  // Compute role: this invocation owns rows m0 + 4*ty .. +3 and columns n0 + 4*tx .. +3.
  let tx = lid % 16u;
  let ty = lid / 16u;
  // Load role: depth lk of the slice, row/column quads lq and lq + 8 (consecutive invocations read consecutive k).
  let lk = lid % BK;
  let lq = lid / BK;

  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);

  for (var k0 = 0u; k0 < K; k0 += BK) {
    let k = k0 + lk;
    for (var h = 0u; h < 2u; h++) {
      let q = lq + 8u * h;
      var xv = vec4<f32>(0.0);
      var wv = vec4<f32>(0.0);
      if (k < K) {
        let r = m0 + 4u * q;
        let c = n0 + 4u * q;
        for (var i = 0u; i < 4u; i++) {
          if (r + i < M) {
            xv[i] = x[(r + i) * K + k];
          }
          if (c + i < N) {
            wv[i] = f32(w[(c + i) * K + k]);
          }
        }
      }
      xs[lk * TQ + q] = xv;
      ws[lk * TQ + q] = wv;
    }
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
  }

  let c0 = n0 + 4u * tx;
  var bv = vec4<f32>(0.0);
  if (HAS_BIAS) {
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
}
