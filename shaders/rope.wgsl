// Rotary position embedding (Hugging Face Llama convention: rotate-half over the two halves of each head,
// no weight permutation), applied in place to q and k rows, with explicit per-row positions.
//
//   x'[i]        = x[i] * cos_i - x[i + hd/2] * sin_i
//   x'[i + hd/2] = x[i + hd/2] * cos_i + x[i] * sin_i        (i < hd/2, angle_i = pos * inv_freq_i)
//
// cos/sin come from a table built on the CPU (src/gpu/kernels/rope-table.ts): WGSL sin/cos are accurate only
// on [-pi, pi] and angles reach thousands of radians, so nothing trigonometric runs here. table[p * half + i]
// = (cos, sin) of the f32 angle p * inv_freq_i, exactly the values the CPU reference uses (rounded to f32).
// A position outside [0, maxPos) makes its row NaN (a loud failure rather than a silently wrong rotation).
//
// Parallelization: one invocation per (row, head, i < hd/2) pair: it reads the two elements i and i + hd/2
// of one head, so every element is read and written by exactly one invocation (in place is race-free).
// Invocations are numbered i fastest, then head (the q heads, then the k heads), then row, so neighbours
// touch neighbouring addresses. The op is memory-bound (a few flops per 8 bytes); 64 invocations per
// workgroup, the pair count folded into a 2D grid; surplus invocations return.
//
// q: f32, in place, row r at qOff + r * qStride (element offsets: q may be a column window of a wider row).
// k: `KT` at kOff + r * kStride (a KV-cache row: kOff = first cache row * kStride). Two modes (override
// K_FROM_SRC): in place (k read and written, f32 only), or read from a dense f32 kSrc [rows, nKV * hd] and
// written rotated into k (the f16 variant, `alias KT = f16`, stores an f32 projection into an f16 cache with
// one rounding). COPY_V also copies vSrc (dense f32) into v (`KT`) at the same rows: with an f16 cache, the
// projection outputs reach the cache in this one dispatch.

alias KT = f32;

struct Dims {
  rows: u32,
  half: u32,        // head dim / 2
  numHeads: u32,    // q heads (0: no q)
  numKvHeads: u32,  // k heads (0: no k)
  qOff: u32,
  qStride: u32,
  kOff: u32,
  kStride: u32,
  srcStride: u32,   // row stride of kSrc / vSrc (K_FROM_SRC / COPY_V)
  posOff: u32,      // positions of this call start at pos[posOff]
  maxPos: u32,      // rows of the table
  total: u32,       // rows * (numHeads + numKvHeads) * half
}

override K_FROM_SRC: bool = false;
override COPY_V: bool = false;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> table: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> pos: array<i32>;
@group(0) @binding(3) var<storage, read_write> q: array<f32>;
@group(0) @binding(4) var<storage, read> kSrc: array<f32>;
@group(0) @binding(5) var<storage, read_write> k: array<KT>;
@group(0) @binding(6) var<storage, read> vSrc: array<f32>;
@group(0) @binding(7) var<storage, read_write> v: array<KT>;

@compute @workgroup_size(64, 1, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = (wid.y * nwg.x + wid.x) * 64u + lid;
  if (idx >= dims.total) {
    return;
  }
  let half = dims.half;
  let i = idx % half;
  let rest = idx / half;
  let heads = dims.numHeads + dims.numKvHeads;
  let head = rest % heads;
  let r = rest / heads;
  let hd = 2u * half;

  let p = pos[dims.posOff + r];
  var cs: vec2<f32>;
  if (p >= 0 && u32(p) < dims.maxPos) {
    cs = table[u32(p) * half + i];
  } else {
    // NaN: position outside the table (built from a runtime value: a constant NaN is a WGSL error)
    cs = vec2<f32>(bitcast<f32>(0x7fc00000u | dims.total));
  }
  let c = cs.x;
  let s = cs.y;

  if (head < dims.numHeads) {
    let o = dims.qOff + r * dims.qStride + head * hd + i;
    let a = q[o];
    let b = q[o + half];
    q[o] = a * c - b * s;
    q[o + half] = b * c + a * s;
    return;
  }

  let kh = head - dims.numHeads;
  let o = dims.kOff + r * dims.kStride + kh * hd + i;
  let so = r * dims.srcStride + kh * hd + i;
  var a: f32;
  var b: f32;
  if (K_FROM_SRC) {
    a = kSrc[so];
    b = kSrc[so + half];
  } else {
    a = f32(k[o]);
    b = f32(k[o + half]);
  }
  k[o] = KT(a * c - b * s);
  k[o + half] = KT(b * c + a * s);
  if (COPY_V) {
    v[o] = KT(vSrc[so]);
    v[o + half] = KT(vSrc[so + half]);
  }
}
