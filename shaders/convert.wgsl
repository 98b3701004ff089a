// Dtype conversion of f32 activation rows into another framework's tensor (the WebLLM backend feeds our fused
// LLM input rows to WebLLM's prefill this way, src/llm/webllm/embedding-prefill.ts):
//   convert_rows       y[dst_offset + i] = x[src_offset + i]                       for i < n   (f32 copy)
//   convert_rows_f16   y16[dst_offset + j] = pack2x16float(x[s + 2j], x[s + 2j + 1]) for j < n / 2, s = src_offset
// The f16 output is written as u32 words of two halves (lower index in the low half, the little-endian layout of
// a float16 tensor) with pack2x16float, a core builtin: no `enable f16`, so it runs on devices without
// shader-f16 too, and no 16-bit stores. Values are clamped to the finite f16 range first (+-65504), since
// pack2x16float leaves out-of-range values indeterminate; in range the conversion rounds to nearest even on the
// implementations we know (the tests check it against src/checkpoint/dtype.ts; subnormals may flush to zero).
//
// Offsets are in elements of each side (dst: f32 elements or u32 words) and go in the uniform, so the bindings
// start at offsets aligned to minStorageBufferOffsetAlignment wherever the rows start. Parallelization: memory
// bound, element (word) e to invocation e of a flat grid of 256-wide workgroups folded into 2D
// (x <= maxComputeWorkgroupsPerDimension); out-of-range invocations return.

struct Params {
  n: u32,           // convert_rows: elements; convert_rows_f16: u32 words (element pairs)
  src_offset: u32,  // first element of x
  dst_offset: u32,  // first element (word) of y
  _p: u32,
}

const WG: u32 = 256u;
const F16_MAX: f32 = 65504.0;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
// convert_rows_f16's output binding.
@group(0) @binding(2) var<storage, read_write> y16: array<u32>;

fn flat_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}

@compute @workgroup_size(256, 1, 1)
fn convert_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat_index(wid, nwg, lid);
  if (i < params.n) {
    y[params.dst_offset + i] = x[params.src_offset + i];
  }
}

@compute @workgroup_size(256, 1, 1)
fn convert_rows_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let j = flat_index(wid, nwg, lid);
  if (j < params.n) {
    let s = params.src_offset + 2u * j;
    let pair = clamp(vec2<f32>(x[s], x[s + 1u]), vec2<f32>(-F16_MAX), vec2<f32>(F16_MAX));
    y16[params.dst_offset + j] = pack2x16float(pair);
  }
}
