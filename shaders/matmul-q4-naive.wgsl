// Baseline for benchmarks only (bench/kernels.ts): one invocation per output, no tiling, no shared memory.
// y[M, N] = x[M, K] · deq(W)[N, K]^T with W in the q4f32_1 layout (qw [N, K/8] u32, qs [N, K/32] f32 scales,
// deq = (nibble - 7) * scale), f32 accumulation.

struct Dims {
  M: u32,
  K: u32,
  N: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> qw: array<u32>;
@group(0) @binding(3) var<storage, read> qs: array<f32>;
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
    let word = qw[c * (dims.K / 8u) + k / 8u];
    let q = f32((word >> ((k % 8u) * 4u)) & 15u) - 7.0;
    acc += x[r * dims.K + k] * q * qs[c * (dims.K / 32u) + k / 32u];
  }
  y[r * dims.N + c] = acc;
}
