// Elementwise ops on f32 activations, one invocation per element (or per vec4 of elements):
//   act_main         y[i] = f(x[i])                          out of place (x, y different buffers)
//   act_inplace      y[i] = f(y[i])                          in place
//   add_inplace      y[i] += x[i]                            residual add, in place into y
//   add_bias_inplace y[i] += x[i % cols]                     row-vector (bias) broadcast over rows, in place
//   scale_inplace    y[i] *= scale                           (the mean of several images' fused text rows)
//   swiglu           y[r, c] = silu(x[r, c]) * x[r, I + c]   x: [rows, 2I] fused gate|up (MLC gate_up_proj), y: [rows, I]
// with f = ACT: 0 exact GELU (erf), 1 quick_gelu x * sigmoid(1.702 x), 2 SiLU x * sigmoid(x), 3 erf itself (tests).
//
// `V` is f32 in this file as written; src/gpu/kernels/elementwise.ts also builds it with `alias V = vec4<f32>;`
// (every function below is written to work on both: componentwise math and select(), no branches on values),
// used when the element counts (and I, cols) are multiples of 4: a quarter of the invocations and 16-byte
// loads. There is no f16 variant: activations are f32 by contract.
//
// Parallelization: these ops are memory bound (a few flops per 4-8 bytes), so the only goals are coalesced
// accesses and enough invocations: element e goes to invocation e of a flat grid of 256-wide workgroups
// (consecutive invocations, consecutive addresses). The workgroup count is folded into a 2D grid (x <=
// maxComputeWorkgroupsPerDimension); out-of-range invocations return. Counts n and cols are in units of V.
//
// Entry points declare their own bindings (the resource interface of a WGSL shader is per entry point, so
// bindings may repeat across entry points); each pipeline uses one entry point and its own layout.

alias V = f32;

struct Params {
  n: u32,      // elements of y, in units of V
  cols: u32,   // add_bias_inplace: bias length; swiglu: I (both in units of V)
  scale: f32,  // scale_inplace
  _p1: u32,
}

override ACT: u32 = 0u;

const WG: u32 = 256u;
const SQRT1_2: f32 = 0.70710678118654752;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read_write> y: array<V>;
// act_inplace's only data binding.
@group(0) @binding(1) var<storage, read_write> y_inplace: array<V>;

// Coefficients (highest power first) of two f32-rounded weighted least-squares fits (Lawson iteration, relative
// error), made for this file with mpmath as the oracle:
//   erf(z) = z * P(z^2) for |z| < 1, relative error 1.2e-9 (the f32 result is within 1.4e-7 absolute);
//   erfc(z) = exp(-z^2) * t * Q(t), t = 1 / (1 + z / 2), for z >= 1, relative error 2.3e-9 (before the
//   rounding of z^2 in f32, which adds ~z^2 * 6e-8 relative in the far tail where erfc < 1e-20).
// Checked in f32 arithmetic over |z| <= 6 against mpmath: |erf error| <= 1.4e-7.
fn erf_small(z: V) -> V {
  let s = z * z;
  var p = V(7.853855640860274e-05);
  p = p * s - 0.0008010191959328949;
  p = p * s + 0.00518832728266716;
  p = p * s - 0.026853810995817184;
  p = p * s + 0.1128358542919159;
  p = p * s - 0.3761262595653534;
  p = p * s + 1.1283791065216064;
  return z * p;
}

// erfc(a) for a >= 1 (no cancellation: full relative precision, down to f32 underflow near a = 9.2).
fn erfc_large(a: V) -> V {
  let t = 1.0 / (1.0 + 0.5 * a);
  var q = V(-0.03929181024432182);
  q = q * t + 0.22345231473445892;
  q = q * t - 0.40936264395713806;
  q = q * t + 0.22567176818847656;
  q = q * t - 0.006865227594971657;
  q = q * t + 0.19869548082351685;
  q = q * t + 0.24343641102313995;
  q = q * t + 0.2823839485645294;
  q = q * t + 0.28208422660827637;
  return exp(-(a * a)) * (t * q);
}

fn erf_v(z: V) -> V {
  let a = abs(z);
  let big = sign(z) * (1.0 - erfc_large(max(a, V(1.0))));
  return select(big, erf_small(z), a < V(1.0));
}

// x/2 * (1 + erf(x / sqrt 2)). For x <= -sqrt 2 it is computed as x/2 * erfc(|x| / sqrt 2), which keeps full
// relative precision in the negative tail (plain 1 + erf would cancel).
fn gelu_v(x: V) -> V {
  let z = x * SQRT1_2;
  let a = abs(z);
  let small = 0.5 * x * (1.0 + erf_small(z));
  let h = 0.5 * x * erfc_large(max(a, V(1.0)));
  let big = select(h, x - h, x > V(0.0));
  return select(big, small, a < V(1.0));
}

// x * sigmoid(k x) = x / (1 + exp(-k x)): exp overflows to +inf for very negative k x, giving -0 (no NaN).
fn x_sigmoid(x: V, k: f32) -> V {
  return x / (1.0 + exp(-k * x));
}

fn act(v: V) -> V {
  switch ACT {
    case 1u: {
      return x_sigmoid(v, 1.702);
    }
    case 2u: {
      return x_sigmoid(v, 1.0);
    }
    case 3u: {
      return erf_v(v);
    }
    default: {
      return gelu_v(v);
    }
  }
}

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

@compute @workgroup_size(256, 1, 1)
fn act_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    y[i] = act(x[i]);
  }
}

@compute @workgroup_size(256, 1, 1)
fn act_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    y_inplace[i] = act(y_inplace[i]);
  }
}

@compute @workgroup_size(256, 1, 1)
fn add_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    y[i] = y[i] + x[i];
  }
}

@compute @workgroup_size(256, 1, 1)
fn add_bias_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    y[i] = y[i] + x[i % params.cols];
  }
}

@compute @workgroup_size(256, 1, 1)
fn scale_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    y_inplace[i] = y_inplace[i] * params.scale;
  }
}

@compute @workgroup_size(256, 1, 1)
fn swiglu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    let I = params.cols;
    let r = i / I;
    let c = i - r * I;
    let g = x[2u * I * r + c];
    let u = x[2u * I * r + I + c];
    y[i] = x_sigmoid(g, 1.0) * u;
  }
}
