// How matmul-direct.wgsl reads a row of x or W: one of the two fragments below replaces its
// `//#include direct-loads` line (src/gpu/kernels/linear.ts picks by K). Both declare the x and W bindings,
// row_start(row) (where a row begins, in elements of the binding) and load_x / load_w(start, k4): elements
// 4*k4 .. 4*k4 + 3 of the row as f32.

//#fragment direct-loads-vec4
// K % 4 == 0: every row is whole vec4s, so each step is one 16-byte (f32) or 8-byte (f16) load per row.
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<WT>>;

fn row_start(row: u32) -> u32 {
  return row * (dims.K / 4u);
}

fn load_x(start: u32, k4: u32) -> vec4<f32> {
  return x[start + k4];
}

fn load_w(start: u32, k4: u32) -> vec4<f32> {
  return vec4<f32>(w[start + k4]);
}

//#fragment direct-loads-scalar
// Any K: element by element; the elements of the last quad past K read as 0.
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<WT>;

fn row_start(row: u32) -> u32 {
  return row * dims.K;
}

fn load_x(start: u32, k4: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * k4 + j < dims.K) {
      v[j] = x[start + 4u * k4 + j];
    }
  }
  return v;
}

fn load_w(start: u32, k4: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (4u * k4 + j < dims.K) {
      v[j] = f32(w[start + 4u * k4 + j]);
    }
  }
  return v;
}
