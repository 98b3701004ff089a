// Attention on CPU adapters (SwiftShader, lavapipe): the math, layouts, masks and partials of attention.wgsl,
// with no workgroup memory and no barrier. `direct`: one slot (query row x head of a KV head) per invocation, 64
// per workgroup, walking its own key range 4 keys at a time with K and V read straight from their buffers. A CPU
// runs a workgroup as a few SIMD fibers over cached memory, so the staged K/V blocks of `tiled` buy nothing there,
// while their zero-initialized workgroup memory made each pipeline take 0.7-0.9 s to build (SwiftShader writes it
// store by store); this module builds in milliseconds. Each invocation also stops at its own causal limit.
// Key splits and `combine` are as in attention.wgsl.

//#include attention-decls

// direct reads the K/V buffers.
fn key_vec(e: u32) -> vec4<f32> {
  return vec4<f32>(k[e]);
}

fn val_vec(e: u32) -> vec4<f32> {
  return vec4<f32>(v[e]);
}

//#include lane-sum
//#include attention-update4

@compute @workgroup_size(64, 1, 1)
fn direct(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let wg = wid.y * nwg.x + wid.x;
  if (wg >= dims.workgroups) {
    return; // surplus workgroup of a folded grid
  }
  let task = workgroup_task(wg);
  let split = task.x;
  let g = task.y;
  let slot = task.z * WG + lid;
  let G = dims.group;
  if (slot >= dims.nq * G) {
    return; // no barriers here: dead slots leave at once
  }
  let i = slot / G;
  let h = g * G + slot % G;
  let lim = dims.past + i;

  let k0 = split * dims.chunk;
  var k1 = min(dims.nk, k0 + dims.chunk);
  if ((dims.flags & CAUSAL) != 0u) {
    k1 = min(k1, lim + 1u);
  }

  var qr: array<vec4<f32>, RC>;
  var acc: array<vec4<f32>, RC>;
  load_slot(&qr, &acc, i, h, 0u);
  var ml = vec2<f32>(NEG, 0.0); // running max and sum

  let kvHead = g * HD4;
  for (var j = k0; j < k1; j += 4u) {
    // Keys past k1 are masked, and read from row k1 - 1 (inside the bound K/V).
    var base: vec4<u32>;
    var masked: vec4<bool>;
    for (var t = 0u; t < 4u; t++) {
      let key = j + t;
      base[t] = min(key, k1 - 1u) * dims.kvStride4 + kvHead;
      masked[t] = key >= k1 || !visible(key, lim);
    }
    update4(&qr, &acc, &ml, base, masked, 0u);
  }

  store_slot(&acc, ml, i, h, split, 0u);
}

//#include attention-combine
