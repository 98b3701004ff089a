// Baseline for benchmarks only (bench/linear.ts, bench/kernels.ts): one invocation per output, no tiling,
// no shared memory. y[M, N] = x[M, K] · W[N, K]^T + b[N], f32. Same bindings as matmul.wgsl; the dims
// uniform uses M, K, N and, for a folded 2D grid, ldy (= N here) and tiles (unused).

struct Dims {
  M: u32,
  K: u32,
  N: u32,
  tilesN: u32,
  ldy: u32,
  yOff: u32,
  tiles: u32,
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  let r = gid.y;
  if (r >= dims.M || c >= dims.N) {
    return;
  }
  var acc = 0.0;
  for (var k = 0u; k < dims.K; k++) {
    acc += x[r * dims.K + k] * w[c * dims.K + k];
  }
  if (dims.hasBias != 0u) {
    acc += bias[c];
  }
  y[dims.yOff + r * dims.ldy + c] = acc;
}
