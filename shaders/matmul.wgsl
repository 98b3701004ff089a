// Dense linear layer, tiled:  y[M, N] = x[M, K] · W[N, K]^T (+ b[N])
//
// Hugging Face layout: W is [out, in] row-major, so both x and W are contiguous along K ("NT" matmul).
// x, b, y are f32; W is `WT`: f32 in this file as written. The f16-weight variant is this same text
// specialized by src/gpu/kernels/linear.ts (`enable f16;` prepended, the `WT` alias switched to f16); it is
// only built when the device has the `shader-f16` feature. The tile products are f32, or f16 in the
// f16-arithmetic variant (matmul-tile.wgsl's `ST`; each 32-deep slice summed in f16, the slices in f32).
//
// Tiling (the shared tile loop of matmul-tile.wgsl, spliced in at the `//#include` lines): one workgroup of 16x16 invocations computes a 64x64 block of y. Each step stages a 64x32 slice
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

//#include tile-dims

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

//#include tile-memory

// tile-start opens main: the 16x16-invocation entry point, its builtins and this invocation's tile.
//#include tile-start
  // x load role: depth lk of the slice, row quads lq and lq + 8 (consecutive invocations read consecutive k).
  let lk = lid % BK;
  let lq = lid / BK;

  for (var k0 = 0u; k0 < K; k0 += BK) {
    let sb = slice_base(k0);
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
      xs[sb + lk * TQ + q] = vec4<ST>(xv);
      ws[sb + lk * TQ + q] = vec4<ST>(wv);
    }
//#include tile-accumulate
  }

//#include tile-epilogue
}
