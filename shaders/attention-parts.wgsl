// Parts of the attention kernels shared by shaders/attention.wgsl (the GPU paths: tiled, splitk) and
// shaders/attention-direct.wgsl (the CPU-adapter path): not a shader on its own. Each `//#fragment NAME`
// section replaces an `//#include NAME` line (expandWgsl, src/gpu/wgsl-include.ts). See attention.wgsl's header
// for the math, layouts, masks and the partials that `combine` merges.

//#fragment attention-decls
alias KV4 = vec4<f32>;

struct Dims {
  nq: u32,
  nk: u32,
  numHeads: u32,
  numKvHeads: u32,
  group: u32,        // numHeads / numKvHeads
  qStride4: u32,     // row strides, in vec4
  kvStride4: u32,
  oStride4: u32,
  past: u32,         // CAUSAL: query i sees keys <= past + i
  flags: u32,        // 1: CAUSAL, 2: KEEP
  splits: u32,       // key chunks per (slot block, KV head)
  chunk: u32,        // keys per chunk
  slotBlocks: u32,   // slot blocks per KV head
  mlOff: u32,        // vec4 index of the (m, l) records in `part`
  scale: f32,
  workgroups: u32,   // slotBlocks * numKvHeads * splits
}

override HD4: u32 = 16u; // head dim / 4, 1..32
// Invocations per slot in `tiled`'s lane form (1, 2 or 4): lane ln owns the head-dim vec4s c = ln, ln + LANES, ...
// of its slot's q and output, and the lanes' partial scores are summed with subgroup shuffles. 1 elsewhere.
override LANES: u32 = 1u;
override LANE4: u32 = (HD4 + LANES - 1u) / LANES; // head-dim vec4s per lane

const WG: u32 = 64u;
const MAXC: u32 = 32u;    // max HD4
const RC: u32 = 32u;      // register vec4s per lane for q and the output (MAXC; 8 in the lane form)
const NEG: f32 = -1e30;   // "no key yet" max; masked score marker
const CAUSAL: u32 = 1u;
const KEEP: u32 = 2u;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k: array<KV4>;
@group(0) @binding(3) var<storage, read> v: array<KV4>;
@group(0) @binding(4) var<storage, read> keep: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> part: array<vec4<f32>>;

fn visible(key: u32, lim: u32) -> bool {
  var ok = true;
  if ((dims.flags & CAUSAL) != 0u) {
    ok = key <= lim;
  }
  if (ok && (dims.flags & KEEP) != 0u) {
    ok = keep[key] != 0u;
  }
  return ok;
}

// Stores one slot's result: normalized into `out` (single split) or as a partial into `part`.
fn store_head_vec(i: u32, h: u32, split: u32, c: u32, a: vec4<f32>, l: f32) {
  if (dims.splits == 1u) {
    var o = vec4<f32>(0.0);
    if (l > 0.0) {
      o = a / l;
    }
    out[i * dims.oStride4 + h * HD4 + c] = o;
  } else {
    part[((split * dims.nq + i) * dims.numHeads + h) * HD4 + c] = a;
  }
}

fn store_ml(i: u32, h: u32, split: u32, m: f32, l: f32) {
  if (dims.splits > 1u) {
    part[dims.mlOff + (split * dims.nq + i) * dims.numHeads + h] = vec4<f32>(m, l, 0.0, 0.0);
  }
}

// Workgroup number wg (split fastest, then KV head, then slot block) -> (split, KV head, slot block).
fn workgroup_task(wg: u32) -> vec3<u32> {
  let rest = wg / dims.splits;
  return vec3<u32>(wg % dims.splits, rest % dims.numKvHeads, rest / dims.numKvHeads);
}

// Lane ln's share of the scaled q of query row i, head h, into qr (0 past the head dim, so that a lane's surplus
// vec4 adds nothing to a score), and a zero accumulator (the slot-per-invocation paths; ln = 0, LANES = 1 but in
// `tiled`'s lane form).
fn load_slot(qr: ptr<function, array<vec4<f32>, RC>>, acc: ptr<function, array<vec4<f32>, RC>>, i: u32, h: u32, ln: u32) {
  let qBase = i * dims.qStride4 + h * HD4;
  for (var cc = 0u; cc < LANE4; cc++) {
    let c = cc * LANES + ln;
    (*qr)[cc] = select(vec4<f32>(0.0), q[qBase + min(c, HD4 - 1u)] * dims.scale, c < HD4);
    (*acc)[cc] = vec4<f32>(0.0);
  }
}

// A slot's result (ml: running max, sum), lane ln's share: normalized into `out`, or its partial and (m, l) into
// `part` (lane 0 writes (m, l)).
fn store_slot(acc: ptr<function, array<vec4<f32>, RC>>, ml: vec2<f32>, i: u32, h: u32, split: u32, ln: u32) {
  for (var cc = 0u; cc < LANE4; cc++) {
    let c = cc * LANES + ln;
    if (c < HD4) {
      store_head_vec(i, h, split, c, (*acc)[cc], ml.y);
    }
  }
  if (ln == 0u) {
    store_ml(i, h, split, ml.x, ml.y);
  }
}

//#fragment attention-update4
// One online-softmax step of a slot over 4 keys, lane ln's share: scores q·k (q already scaled, in qr; the lanes'
// partial dots summed by lane_sum), NEG where `masked`, the running max and sum in ml (x: m, y: l) updated, acc
// rescaled and p·V added. Key t's K and V vec4 c are key_vec(base[t] + c) and val_vec(base[t] + c), which the
// including shader defines (a staged block in workgroup memory, or the K/V buffers themselves). A lane's vec4s
// past the head dim (LANE4 * LANES > HD4) read the next key's (q is 0 there; their output is never stored).
fn update4(qr: ptr<function, array<vec4<f32>, RC>>, acc: ptr<function, array<vec4<f32>, RC>>, ml: ptr<function, vec2<f32>>, base: vec4<u32>, masked: vec4<bool>, ln: u32) {
  var d0 = vec4<f32>(0.0);
  var d1 = vec4<f32>(0.0);
  var d2 = vec4<f32>(0.0);
  var d3 = vec4<f32>(0.0);
  for (var cc = 0u; cc < LANE4; cc++) {
    let c = cc * LANES + ln;
    let qc = (*qr)[cc];
    d0 += qc * key_vec(base.x + c);
    d1 += qc * key_vec(base.y + c);
    d2 += qc * key_vec(base.z + c);
    d3 += qc * key_vec(base.w + c);
  }
  let one = vec4<f32>(1.0);
  let sc = select(lane_sum(vec4<f32>(dot(d0, one), dot(d1, one), dot(d2, one), dot(d3, one))), vec4<f32>(NEG), masked);
  let m = (*ml).x;
  let mNew = max(m, max(max(sc.x, sc.y), max(sc.z, sc.w)));
  let corr = exp(m - mNew);
  let p = select(exp(sc - mNew), vec4<f32>(0.0), sc == vec4<f32>(NEG));
  *ml = vec2<f32>(mNew, (*ml).y * corr + ((p.x + p.y) + (p.z + p.w)));
  for (var cc = 0u; cc < LANE4; cc++) {
    let c = cc * LANES + ln;
    (*acc)[cc] = (*acc)[cc] * corr + p.x * val_vec(base.x + c) + p.y * val_vec(base.y + c) + p.z * val_vec(base.z + c) + p.w * val_vec(base.w + c);
  }
}

//#fragment lane-sum-one
// One lane per slot: its dot products are whole.
fn lane_sum(d: vec4<f32>) -> vec4<f32> {
  return d;
}

//#fragment lane-sum-subgroup
// LANES lanes per slot, consecutive invocations inside one subgroup (subgroups are at least 4 wide and runs of
// consecutive invocations of a 1D workgroup, as in shaders/matvec-reduce.wgsl): an xor butterfly sums their
// partial dots. Called in uniform control flow.
fn lane_sum(d: vec4<f32>) -> vec4<f32> {
  var s = d;
  for (var o = 1u; o < LANES; o <<= 1u) {
    s += subgroupShuffleXor(s, o);
  }
  return s;
}

//#fragment attention-combine
@compute @workgroup_size(64, 1, 1)
fn combine(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  let rows = dims.nq * dims.numHeads;
  if (idx >= rows * HD4) {
    return;
  }
  let c = idx % HD4;
  let ih = idx / HD4; // i * numHeads + h
  var M = NEG;
  for (var sp = 0u; sp < dims.splits; sp++) {
    M = max(M, part[dims.mlOff + sp * rows + ih].x);
  }
  var l = 0.0;
  var a = vec4<f32>(0.0);
  for (var sp = 0u; sp < dims.splits; sp++) {
    let ml = part[dims.mlOff + sp * rows + ih];
    if (ml.y > 0.0) {
      let w = exp(ml.x - M);
      l += w * ml.y;
      a += w * part[(sp * rows + ih) * HD4 + c];
    }
  }
  var o = vec4<f32>(0.0);
  if (l > 0.0) {
    o = a / l;
  }
  let i = ih / dims.numHeads;
  let h = ih % dims.numHeads;
  out[i * dims.oStride4 + h * HD4 + c] = o;
}
