// Scaled dot-product attention, flash style: O = softmax(scale * Q K^T, masked) V per head, with grouped-query
// heads, computed by online softmax (running max m and sum l, f32) over blocks of keys. The [nq, nk] score
// matrix is never stored; only a block's scores live in registers or workgroup memory.
//
// Layout: q [nq, nH*hd] f32, k and v [nk, nKV*hd] (`KV4` = vec4<f32> here, vec4<f16> in the f16-cache variant
// made by specializeWgsl; math is f32 either way), out [nq, nH*hd] f32. Row strides are uniforms (q, k/v, out
// may be column windows of wider rows). hd = 4 * HD4 (override), at most 128.
//
// GQA packing: query head h reads KV head g = h / G (G = nH / nKV). For KV head g the G query heads of every
// query row form nq*G "slots" (slot s = row s / G, head g*G + s % G), so one staged K/V block serves all the
// query heads that read it.
//
// Masks (dims.flags): CAUSAL: query row i sees keys 0 .. past + i (past = nk - nq: a KV cache holding earlier
// rows); KEEP: key j is visible only if keep[j] != 0 (pre-fusion pad rows). A row that sees no key gets 0.
//
// The parts shared with the CPU-adapter form (shaders/attention-direct.wgsl: no workgroup memory) are fragments
// of shaders/attention-parts.wgsl: declarations and bindings, the 4-key online-softmax step, `combine`.
// Three entry points here, one bind group layout:
// - `tiled` (many slots: prefill, CLIP, pre-fusion): a workgroup owns 64 slots of one KV head, each slot held by
//   LANES consecutive invocations (64 x LANES in all), each lane holding its share of the slot's scaled q and
//   output accumulator in registers. LANES is 1 without subgroups (a slot's whole q and output: 2 x hd floats,
//   which spill at hd 128 on GPUs), 2 or 4 with them (at most 2 x 32 floats a lane; the lanes' partial scores
//   are summed by subgroup shuffles, `lane_sum`). The workgroup walks its key range in blocks of 1024/hd keys;
//   each block of K and V is staged in workgroup memory (2 x 4 KiB) and read by every lane (broadcast reads).
//   Under CAUSAL the walk stops at the block's last visible key.
// - `splitk` (few slots: decode nq = 1 with GQA 4, the compressor's 1 or 4 queries): a workgroup owns up to 4
//   slots (one vec4 lane each) and one chunk of at most 256 keys, and parallelizes over keys: each invocation
//   scores its own keys for all slots (K read once), a workgroup reduction gives the chunk's max and sum, then 64/HD4 lanes of HD4
//   invocations each accumulate P·V over a share of the keys (V rows read coalesced) and a final reduction
//   sums the lanes. Many chunks run as separate workgroups.
// - `combine`: when the key range is split over several workgroups (dims.splits > 1, either path), each writes
//   its unnormalized partial (acc, m, l) to `part`; this pass merges them: out = sum_c e^(m_c-M) acc_c /
//   sum_c e^(m_c-M) l_c. With one split the main kernels write `out` directly.
// Workgroups are numbered (split fastest, then KV head, then slot block) and folded into a 2D grid.

//#include attention-decls

const SMAX: u32 = 4u;     // slots per splitk workgroup (one vec4 component each)
const CMAX: u32 = 256u;   // keys per splitk chunk

// Workgroup memory is kept at 8 KiB per entry point: enough for real GPUs, and SwiftShader's pipeline build
// time grows with it (about 0.2 s of CPU per KiB).
// tiled: one K block and one V block, [keys][HD4] vec4 (1024 / hd keys, rounded down to a multiple of 4), 4 KiB each.
const TILE4: u32 = 256u;
var<workgroup> ks: array<vec4<f32>, TILE4>;
var<workgroup> vs: array<vec4<f32>, TILE4>;
// splitk: per key of the chunk, the 4 slots' scores, then probabilities; `red` holds the staged q
// [SMAX][MAXC], then the max / sum reductions [WG], then the lane partials [KL][SMAX][HD4] (4 KiB each).
var<workgroup> ss: array<vec4<f32>, CMAX>;
var<workgroup> red: array<vec4<f32>, 256>;

// tiled reads its staged block.
fn key_vec(e: u32) -> vec4<f32> {
  return ks[e];
}

fn val_vec(e: u32) -> vec4<f32> {
  return vs[e];
}

//#include lane-sum
//#include attention-update4

@compute @workgroup_size(64u * LANES, 1, 1)
fn tiled(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let wg = wid.y * nwg.x + wid.x;
  if (wg >= dims.workgroups) {
    return; // surplus workgroup of a folded grid (uniform)
  }
  let task = workgroup_task(wg);
  let split = task.x;
  let g = task.y;
  let G = dims.group;
  let nslots = dims.nq * G;
  let slot0 = task.z * WG;
  let slot = slot0 + lid / LANES;
  let ln = lid % LANES;
  let live = slot < nslots;
  let sl = min(slot, nslots - 1u); // a dead slot computes its block's last live one (no store): lane_sum is uniform
  let i = sl / G;
  let h = g * G + sl % G;
  let lim = dims.past + i;

  let k0 = split * dims.chunk;
  var k1 = min(dims.nk, k0 + dims.chunk);
  if ((dims.flags & CAUSAL) != 0u) {
    let iLast = (min(slot0 + WG, nslots) - 1u) / G;
    k1 = min(k1, dims.past + iLast + 1u);
  }

  var qr: array<vec4<f32>, RC>;
  var acc: array<vec4<f32>, RC>;
  load_slot(&qr, &acc, i, h, ln);
  var ml = vec2<f32>(NEG, 0.0); // running max and sum

  let TK = (TILE4 / HD4) & ~3u; // keys per staged block, a multiple of 4 (>= 8)
  let kvHead = g * HD4;
  for (var t0 = k0; t0 < k1; t0 += TK) {
    let nt = min(TK, k1 - t0);
    for (var e = lid; e < nt * HD4; e += WG * LANES) {
      let src = (t0 + e / HD4) * dims.kvStride4 + kvHead + e % HD4;
      ks[e] = vec4<f32>(k[src]);
      vs[e] = vec4<f32>(v[src]);
    }
    workgroupBarrier();
    // Four keys at a time: one vec4 of scores, one running-max update and one rescale per 4 keys.
    // Keys past nt (stale block entries) and invisible keys are masked (weight 0).
    for (var j = 0u; j < nt; j += 4u) {
      var masked: vec4<bool>;
      for (var t = 0u; t < 4u; t++) {
        masked[t] = j + t >= nt || !visible(t0 + j + t, lim);
      }
      let kb = j * HD4;
      update4(&qr, &acc, &ml, vec4<u32>(kb, kb + HD4, kb + 2u * HD4, kb + 3u * HD4), masked, ln);
    }
    workgroupBarrier();
  }

  if (live) {
    store_slot(&acc, ml, i, h, split, ln);
  }
}

@compute @workgroup_size(64, 1, 1)
fn splitk(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let wg = wid.y * nwg.x + wid.x;
  if (wg >= dims.workgroups) {
    return;
  }
  let task = workgroup_task(wg);
  let split = task.x;
  let g = task.y;
  let G = dims.group;
  let nslots = dims.nq * G;
  let s0 = task.z * SMAX;
  let ns = min(SMAX, nslots - s0);

  let k0 = split * dims.chunk;
  var k1 = min(dims.nk, k0 + dims.chunk);
  if ((dims.flags & CAUSAL) != 0u) {
    k1 = min(k1, dims.past + (s0 + ns - 1u) / G + 1u);
  }
  var nkc = 0u;
  if (k1 > k0) {
    nkc = k1 - k0;
  }
  let kvHead = g * HD4;

  // Stage the scaled q of the slots: red[s * MAXC + c] (slots past ns stay zero; they are never stored).
  for (var e = lid; e < SMAX * HD4; e += WG) {
    let s = e / HD4;
    var qv = vec4<f32>(0.0);
    if (s < ns) {
      let sl = s0 + s;
      qv = q[(sl / G) * dims.qStride4 + (g * G + sl % G) * HD4 + e % HD4] * dims.scale;
    }
    red[s * MAXC + e % HD4] = qv;
  }
  workgroupBarrier();

  // Scores, one vec4 component per slot: invocation lid takes keys lid, lid + 64, ... (each K row read once).
  // Masked keys (and slots past ns) get the marker NEG.
  var lim = vec4<u32>(0u);
  var slotLive = vec4<bool>(false);
  for (var s = 0u; s < SMAX; s++) {
    lim[s] = dims.past + (s0 + min(s, ns - 1u)) / G;
    slotLive[s] = s < ns;
  }
  var pmax = vec4<f32>(NEG);
  for (var jj = lid; jj < nkc; jj += WG) {
    let key = k0 + jj;
    let kb = key * dims.kvStride4 + kvHead;
    var s0v = vec4<f32>(0.0);
    var s1v = vec4<f32>(0.0);
    var s2v = vec4<f32>(0.0);
    var s3v = vec4<f32>(0.0);
    for (var c = 0u; c < HD4; c++) {
      let kv = vec4<f32>(k[kb + c]);
      s0v += red[c] * kv;
      s1v += red[MAXC + c] * kv;
      s2v += red[2u * MAXC + c] * kv;
      s3v += red[3u * MAXC + c] * kv;
    }
    var sc = vec4<f32>(dot(s0v, vec4<f32>(1.0)), dot(s1v, vec4<f32>(1.0)), dot(s2v, vec4<f32>(1.0)), dot(s3v, vec4<f32>(1.0)));
    for (var s = 0u; s < SMAX; s++) {
      if (!slotLive[s] || !visible(key, lim[s])) {
        sc[s] = NEG;
      }
    }
    ss[jj] = sc;
    pmax = max(pmax, sc);
  }
  workgroupBarrier(); // q no longer needed: `red` is free

  // Chunk max per slot (tree over the 64 invocations, 4 slots at once).
  red[lid] = pmax;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red[lid] = max(red[lid], red[lid + stride]);
    }
    workgroupBarrier();
  }
  let mx = red[0];
  workgroupBarrier();

  // Probabilities p = e^(score - max) (0 where masked) and their sum per slot.
  var psum = vec4<f32>(0.0);
  for (var jj = lid; jj < nkc; jj += WG) {
    let sv = ss[jj];
    let p = select(exp(sv - mx), vec4<f32>(0.0), sv == vec4<f32>(NEG));
    ss[jj] = p;
    psum += p;
  }
  red[lid] = psum;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      red[lid] += red[lid + stride];
    }
    workgroupBarrier();
  }
  let lsum = red[0];
  workgroupBarrier();

  // P·V: KL lanes of HD4 invocations; lane ln takes keys ln, ln + KL, ... (a lane reads whole V rows).
  let KL = WG / HD4;
  let lane = lid / HD4;
  let c = lid % HD4;
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  if (lane < KL) {
    for (var jj = lane; jj < nkc; jj += KL) {
      let vv = vec4<f32>(v[(k0 + jj) * dims.kvStride4 + kvHead + c]);
      let p = ss[jj];
      a0 += p.x * vv;
      a1 += p.y * vv;
      a2 += p.z * vv;
      a3 += p.w * vv;
    }
    let o = lane * SMAX * HD4 + c;
    red[o] = a0;
    red[o + HD4] = a1;
    red[o + 2u * HD4] = a2;
    red[o + 3u * HD4] = a3;
  }
  workgroupBarrier();

  for (var e = lid; e < ns * HD4; e += WG) {
    let s = e / HD4;
    let cc = e % HD4;
    var sum = vec4<f32>(0.0);
    for (var ln = 0u; ln < KL; ln++) {
      sum += red[(ln * SMAX + s) * HD4 + cc];
    }
    let sl = s0 + s;
    let i = sl / G;
    let h = g * G + sl % G;
    store_head_vec(i, h, split, cc, sum, lsum[s]);
    if (cc == 0u) {
      store_ml(i, h, split, mx[s], lsum[s]);
    }
  }
}

//#include attention-combine
