// Peak FMA rate probe (bench:e2e's device limits): every invocation runs 8 independent vec4 fma chains for ITERS
// steps, so a GPU can keep its ALUs full; the sum is stored so nothing is optimized away. alias T = f32 (or f16 with
// `enable f16;`, specialized by the bench). FLOPs per invocation = ITERS * 8 chains * 4 lanes * 2.
alias T = f32;

override ITERS: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * 256u + gid.x;
  let s = T(f32(i & 7u) * 0.001);
  var a0 = vec4<T>(s); var a1 = a0 + T(0.1); var a2 = a0 + T(0.2); var a3 = a0 + T(0.3);
  var a4 = a0 + T(0.4); var a5 = a0 + T(0.5); var a6 = a0 + T(0.6); var a7 = a0 + T(0.7);
  let m = vec4<T>(T(0.999));
  let c = vec4<T>(T(0.0001));
  for (var k = 0u; k < ITERS; k++) {
    a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    a4 = fma(a4, m, c); a5 = fma(a5, m, c); a6 = fma(a6, m, c); a7 = fma(a7, m, c);
  }
  let v = (a0 + a1 + a2 + a3) + (a4 + a5 + a6 + a7);
  out[i] = f32(v.x + v.y + v.z + v.w);
}
