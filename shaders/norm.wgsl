// Row normalization, out of place: y[r, :] = norm(x[r, :]) for rows of width D.
//   LayerNorm (RMS_NORM = false): (x - mean) / sqrt(var + eps) * w + b   (biased variance, like torch)
//   RMSNorm   (RMS_NORM = true):  w * (x / sqrt(mean(x^2) + eps))        (HF Llama, computed in f32; b unused)
//
// x and y are f32 and must be different buffers (WebGPU forbids binding one buffer read-only and writable in
// the same dispatch). w and b are `WT`: f32 in this file as written; the f16 variant is this text specialized
// by src/gpu/kernels/norm.ts (`enable f16;` + `alias WT = f16;`), built only with `shader-f16`. All arithmetic
// is f32.
//
// Parallelization: one workgroup of 64 invocations per row. Each invocation walks the row with stride 64
// (consecutive invocations touch consecutive elements: coalesced loads) and accumulates a private f32 partial;
// a shared-memory tree reduction (6 steps, 256 B of workgroup memory) combines the 64 partials. Rows are
// independent, so the 577 CLIP rows or a prefill fill the GPU; a single decode row (D = 4096) is 64 loads per
// invocation on one workgroup, negligible next to the matmuls around it. 64 rather than 256 invocations: the
// GPU is still full at these shapes (not measured on a GPU yet), and it is 3-4x faster on SwiftShader (CPU
// WebGPU), where every barrier switches all invocations of the workgroup.
// The variance is two-pass (sum of (x - mean)^2 once the mean is known) on values shifted by the row's first
// element, which stays accurate for rows whose mean is large next to their spread. x is simply re-read from
// global memory for each pass (a 4096-wide row is 16 KiB and stays in cache), so any width works: 1, 24, 100,
// 1024 (CLIP), 4096 (Llama), ... The row count is folded into a 2D grid (x <= maxComputeWorkgroupsPerDimension);
// surplus workgroups exit at once.
//
// Row windows: row r is read at x[xOff + r * D ..] and written at y[yOff + r * D ..] (element offsets), so a
// caller can normalize some rows of a larger buffer (e.g. only the last one before lm_head) into another.

alias WT = f32;

struct Dims {
  rows: u32,
  width: u32,
  eps: f32,
  xOff: u32,   // element offset of x(0, 0)
  yOff: u32,   // element offset of y(0, 0)
  _p0: u32,
  _p1: u32,
  _p2: u32,
}

override RMS_NORM: bool = false;

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;
// Always in the layout; read only for LayerNorm (RMSNorm gets a small dummy buffer).
@group(0) @binding(3) var<storage, read> b: array<WT>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every invocation gets the total. Must be called in uniform control flow.
fn workgroup_sum(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      partial[lid] = partial[lid] + partial[lid + s];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // everyone has read partial[0] before the next reduction overwrites it
  return total;
}

@compute @workgroup_size(64, 1, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= dims.rows) {
    return; // surplus workgroup of a folded 2D grid (uniform across the workgroup)
  }
  let D = dims.width;
  let xo = dims.xOff + row * D;
  let yo = dims.yOff + row * D;
  let invD = 1.0 / f32(D);

  if (RMS_NORM) {
    var ss = 0.0;
    for (var i = lid; i < D; i += WG) {
      let v = x[xo + i];
      ss += v * v;
    }
    let inv = 1.0 / sqrt(workgroup_sum(ss, lid) * invD + dims.eps);
    for (var i = lid; i < D; i += WG) {
      y[yo + i] = f32(w[i]) * (x[xo + i] * inv);
    }
  } else {
    // Statistics of x - x0, x0 = the row's first element: for a row whose mean is large next to its spread,
    // x - x0 is exact and small, so the sums and (x - x0) - mean0 keep full precision (plain f32 x - mean
    // would lose ~log2(|mean| / std) bits).
    let x0 = x[xo];
    var s = 0.0;
    for (var i = lid; i < D; i += WG) {
      s += x[xo + i] - x0;
    }
    let mean0 = workgroup_sum(s, lid) * invD; // mean - x0
    var sd = 0.0;
    for (var i = lid; i < D; i += WG) {
      let d = (x[xo + i] - x0) - mean0;
      sd += d * d;
    }
    let inv = 1.0 / sqrt(workgroup_sum(sd, lid) * invD + dims.eps);
    for (var i = lid; i < D; i += WG) {
      y[yo + i] = ((x[xo + i] - x0) - mean0) * inv * f32(w[i]) + f32(b[i]);
    }
  }
}
