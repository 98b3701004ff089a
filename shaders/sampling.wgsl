// Next-token selection over logits [V]: argmax, and temperature + top-p sampling, all on the GPU.
// The exact definitions (ties, NaN, the kept set, the pick) are in src/reference/sampling.ts; this file
// implements them in f32.
//
// Strategy. V is 128256 for the real model: far too small to fill a GPU with one pass per token, far too large
// for a single workgroup to sort. So nothing is sorted. Logits are split into G = ceil(V / 2048) chunks, one
// workgroup (128 invocations x 16 elements) per chunk, and every decision is made on ORDERED KEYS: the f32
// bit pattern mapped to a u32 that sorts like the float (NaN -> the key of -inf, -0 -> +0). Then
//   reduce_max   (G wg)  per-chunk (max key, lowest index)                 -> work.partMax*
//   final_max    (1 wg)  global max / argmax -> state; also writes result  (argmax mode ends here)
//   radix x 8    (G wg)  the top-p threshold tau = the LARGEST key t with M(t) = sum_{key_i >= t} e_i >= topP * Z,
//                        found 4 bits at a time from the top: step s evaluates M at the 16 candidates
//                        prefix | d << (28 - 4 s) (16 masked sums per element, registers only), each workgroup
//                        writes its 16 chunk sums; the next step's workgroups all re-derive the chosen digit from
//                        those partials (summed in the same fixed order, so every workgroup agrees bit for bit).
//                        M is non-increasing in the key even in f32 (sums of non-negative terms are monotone
//                        under round-to-nearest), so "largest d with M >= target" is well defined.
//   pick_partial (G wg)  tau is final; per-chunk kept mass c_g (sequential per invocation, then over invocations)
//   pick_final   (1 wg)  u * S located among the chunk prefix sums, then among the 128 invocation sums of that
//                        chunk, then among its 16 elements -> result.
// 12 dispatches per sampled token (4 when topP >= 1: no radix steps; 2 for argmax); no sort, no float atomics, deterministic for a given u.
// e_i = exp((x_i - max) / T) is recomputed from the logits in each pass instead of being stored: the same
// expression on the same input gives the same f32 everywhere, and a pass reads V values either way.
//
// Logits are `LT` (f32 here; the f16 variant reads f16 logits, all arithmetic stays f32).

alias LT = f32;

struct Dims {
  V: u32,
  G: u32,         // chunks (= workgroups of the multi-workgroup passes)
  step: u32,      // radix step 0..7
  outIndex: u32,  // element of `result` that receives the token id
}

struct Params {
  temperature: f32,
  topP: f32,
  u: f32,
  keepAll: u32,   // 1 when topP >= 1: every token is kept, tau = 0
}

const WG: u32 = 128u;     // invocations per workgroup
const PER: u32 = 16u;     // elements per invocation
const CHUNK: u32 = 2048u; // WG * PER
const NCAND: u32 = 16u;   // radix candidates per step (4 bits)
const KEY_NEG_INF: u32 = 0x007fffffu;
const KEY_POS_INF: u32 = 0xff800000u;

// work layout (u32 words; f32 values stored as bits):
//   [0, G)              partMaxKey     [G, 2G) partMaxIdx
//   [2G, 2G + 16)       state: 0 max key, 1 argmax, 2 + s prefix before radix step s (s = 0..7), 10 tau
//   [2G + 16, + 128 G)  radix partials [8][G][16] (f32)
//   [.., + G)           pick partials [G] (f32)
@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read> logits: array<LT>;
@group(0) @binding(3) var<storage, read_write> work: array<u32>;
@group(0) @binding(4) var<storage, read_write> result: array<u32>;

var<workgroup> redKey: array<u32, WG>;
var<workgroup> redIdx: array<u32, WG>;
var<workgroup> redF: array<f32, 2048>;     // 16 candidates x 128 invocations (8 KiB)
var<workgroup> redF2: array<f32, 128>;
var<workgroup> candMass: array<f32, 17>;   // M at the 16 candidates, then Z
var<workgroup> bcast: array<u32, 4>;

fn stateBase() -> u32 { return 2u * dims.G; }
fn radixBase() -> u32 { return 2u * dims.G + 16u; }
fn pickBase() -> u32 { return 2u * dims.G + 16u + 128u * dims.G; }

fn isNanBits(b: u32) -> bool { return (b & 0x7fffffffu) > 0x7f800000u; }

// u32 key that orders like the float; NaN -> key(-inf), -0 -> key(+0).
fn keyOfBits(b0: u32) -> u32 {
  var b = b0;
  if (isNanBits(b)) { b = 0xff800000u; }
  if (b == 0x80000000u) { b = 0u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

fn keyToF32(k: u32) -> f32 {
  if ((k & 0x80000000u) != 0u) { return bitcast<f32>(k & 0x7fffffffu); }
  return bitcast<f32>(~k);
}

// true when (ka, ia) beats (kb, ib): larger key, then lower index.
fn better(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
  return ka > kb || (ka == kb && ia < ib);
}

// Unnormalized probability of a token with logit bits `b` and key `k` given the max key and max value.
fn weight(b: u32, k: u32, maxKey: u32, m: f32) -> f32 {
  if (isNanBits(b)) { return 0.0; }
  if (k == maxKey) { return 1.0; }
  if (k == KEY_NEG_INF || maxKey == KEY_POS_INF) { return 0.0; }
  let x = bitcast<f32>(b);
  // (x - m) can overflow to -inf for huge finite logits: clamp below exp's f32 underflow.
  return exp(max((x - m) / params.temperature, -126.0));
}

fn logitBits(i: u32) -> u32 {
  return bitcast<u32>(f32(logits[i]));
}

// ---------------------------------------------------------------------------------------------------------
// argmax / max

@compute @workgroup_size(WG)
fn reduce_max(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let g = wid.x;
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var k = 0u; k < PER; k++) {
    let i = g * CHUNK + k * WG + t;
    if (i < dims.V) {
      let key = keyOfBits(logitBits(i));
      if (key > bk) { // i increases: strict > keeps the lowest index of a tie
        bk = key;
        bi = i;
      }
    }
  }
  redKey[t] = bk;
  redIdx[t] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s && better(redKey[t + s], redIdx[t + s], redKey[t], redIdx[t])) {
      redKey[t] = redKey[t + s];
      redIdx[t] = redIdx[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    work[g] = redKey[0];
    work[dims.G + g] = redIdx[0];
  }
}

@compute @workgroup_size(WG)
fn final_max(@builtin(local_invocation_index) t: u32) {
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var g = t; g < dims.G; g += WG) {
    let k = work[g];
    let i = work[dims.G + g];
    if (better(k, i, bk, bi)) {
      bk = k;
      bi = i;
    }
  }
  redKey[t] = bk;
  redIdx[t] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s && better(redKey[t + s], redIdx[t + s], redKey[t], redIdx[t])) {
      redKey[t] = redKey[t + s];
      redIdx[t] = redIdx[t + s];
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    var idx = redIdx[0];
    if (idx == 0xffffffffu) { idx = 0u; } // V == 0 cannot happen; keep the result in range anyway
    work[stateBase()] = redKey[0];
    work[stateBase() + 1u] = idx;
    result[dims.outIndex] = idx;
  }
}

// ---------------------------------------------------------------------------------------------------------
// top-p threshold

fn shiftOf(s: u32) -> u32 { return 28u - 4u * s; }

// The prefix chosen by radix step s (from the prefix it started with and the partials it wrote): the largest
// candidate d with M_d >= topP * Z. Every workgroup calls it with the same data and gets the same answer.
// Must be called in uniform control flow (barriers).
fn decide(s: u32, t: u32) -> u32 {
  let G = dims.G;
  if (t < NCAND) {
    var acc = 0.0;
    for (var g = 0u; g < G; g++) {
      acc += bitcast<f32>(work[radixBase() + (s * G + g) * NCAND + t]);
    }
    candMass[t] = acc;
  } else if (t == NCAND) {
    var z = 0.0;
    for (var g = 0u; g < G; g++) {
      z += bitcast<f32>(work[radixBase() + g * NCAND]); // step 0, candidate 0 (key 0): every token
    }
    candMass[NCAND] = z;
  }
  workgroupBarrier();
  if (t == 0u) {
    let goal = params.topP * candMass[NCAND];
    var d = 0u;
    for (var c = 1u; c < NCAND; c++) {
      if (candMass[c] >= goal) { d = c; }
    }
    bcast[0] = work[stateBase() + 2u + s] + (d << shiftOf(s));
  }
  return workgroupUniformLoad(&bcast[0]);
}

@compute @workgroup_size(WG)
fn radix(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let g = wid.x;
  let s = dims.step;
  var prefix = 0u;
  if (s > 0u) {
    prefix = decide(s - 1u, t);
  }
  if (g == 0u && t == 0u) {
    work[stateBase() + 2u + s] = prefix;
  }
  let maxKey = work[stateBase()];
  let m = keyToF32(maxKey);
  let shift = shiftOf(s);

  var acc: array<f32, 16>;
  for (var d = 0u; d < NCAND; d++) { acc[d] = 0.0; }
  for (var k = 0u; k < PER; k++) {
    let i = g * CHUNK + k * WG + t;
    if (i < dims.V) {
      let b = logitBits(i);
      let key = keyOfBits(b);
      if (key >= prefix) {
        let e = weight(b, key, maxKey, m);
        for (var d = 0u; d < NCAND; d++) {
          acc[d] += select(0.0, e, key >= prefix + (d << shift));
        }
      }
    }
  }
  for (var d = 0u; d < NCAND; d++) { redF[d * WG + t] = acc[d]; }
  workgroupBarrier();
  {
    // 128 invocations: candidate t / 8, segment t % 8 of 16 invocation sums.
    let d = t / 8u;
    let j = t % 8u;
    var a = 0.0;
    for (var q = 0u; q < 16u; q++) { a += redF[d * WG + j * 16u + q]; }
    redF2[d * 8u + j] = a;
  }
  workgroupBarrier();
  if (t < NCAND) {
    var a = 0.0;
    for (var j = 0u; j < 8u; j++) { a += redF2[t * 8u + j]; }
    work[radixBase() + (s * dims.G + g) * NCAND + t] = bitcast<u32>(a);
  }
}

// ---------------------------------------------------------------------------------------------------------
// pick

fn currentTau(t: u32) -> u32 {
  // Mirrors the host: keepAll skips the radix steps and keeps every key (>= 0).
  if (params.keepAll != 0u) { return 0u; }
  return decide(7u, t);
}

// Sum of e over the kept elements of invocation t's 16 contiguous elements of chunk g, in index order.
fn threadKeptMass(g: u32, t: u32, tau: u32, maxKey: u32, m: f32) -> f32 {
  var a = 0.0;
  for (var k = 0u; k < PER; k++) {
    let i = g * CHUNK + t * PER + k;
    if (i < dims.V) {
      let b = logitBits(i);
      let key = keyOfBits(b);
      if (key >= tau) { a += weight(b, key, maxKey, m); }
    }
  }
  return a;
}

@compute @workgroup_size(WG)
fn pick_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let g = wid.x;
  let tau = currentTau(t);
  if (g == 0u && t == 0u) {
    work[stateBase() + 10u] = tau;
  }
  let maxKey = work[stateBase()];
  let m = keyToF32(maxKey);
  redF[t] = threadKeptMass(g, t, tau, maxKey, m);
  workgroupBarrier();
  if (t == 0u) {
    var a = 0.0;
    for (var q = 0u; q < WG; q++) { a += redF[q]; }
    work[pickBase() + g] = bitcast<u32>(a);
  }
}

@compute @workgroup_size(WG)
fn pick_final(@builtin(local_invocation_index) t: u32) {
  let G = dims.G;
  let tau = work[stateBase() + 10u];
  let maxKey = work[stateBase()];
  let m = keyToF32(maxKey);
  // bcast: 0 chunk, 1 fallback flag, 2 bits of r, 3 bits of the running sum before the chunk
  if (t == 0u) {
    var total = 0.0;
    for (var g = 0u; g < G; g++) { total += bitcast<f32>(work[pickBase() + g]); }
    let r = params.u * total;
    var cum = 0.0;
    var chunk = 0xffffffffu;
    var lastPos = 0xffffffffu;
    var before = 0.0;
    for (var g = 0u; g < G; g++) {
      let c = bitcast<f32>(work[pickBase() + g]);
      if (c > 0.0) { lastPos = g; }
      if (chunk == 0xffffffffu) {
        let next = cum + c;
        if (next > r) {
          chunk = g;
          before = cum;
        }
        cum = next;
      }
    }
    var fallback = 0u;
    if (chunk == 0xffffffffu) {
      chunk = lastPos; // rounding left u * S beyond the last sum: take the last kept token with e > 0
      fallback = 1u;
    }
    bcast[0] = chunk;
    bcast[1] = fallback;
    bcast[2] = bitcast<u32>(r);
    bcast[3] = bitcast<u32>(before);
  }
  let chunk = workgroupUniformLoad(&bcast[0]);
  if (chunk == 0xffffffffu) {
    // Z == 0 (every logit NaN): greedy. Uniform branch; no barrier after it.
    if (t == 0u) { result[dims.outIndex] = work[stateBase() + 1u]; }
    return;
  }
  redF[t] = threadKeptMass(chunk, t, tau, maxKey, m);
  workgroupBarrier();
  if (t == 0u) {
    var fallback = bcast[1] != 0u;
    let r = bitcast<f32>(bcast[2]);
    var cum = bitcast<f32>(bcast[3]);
    var inv = 0xffffffffu;
    var lastPosInv = 0u;
    for (var q = 0u; q < WG; q++) {
      let a = redF[q];
      if (a > 0.0) { lastPosInv = q; }
      if (!fallback && inv == 0xffffffffu) {
        if (cum + a > r) {
          inv = q;
        } else {
          cum += a;
        }
      }
    }
    if (inv == 0xffffffffu) {
      inv = lastPosInv;
      fallback = true;
    }
    var token = 0xffffffffu;
    var lastPos = 0xffffffffu;
    for (var k = 0u; k < PER; k++) {
      let i = chunk * CHUNK + inv * PER + k;
      if (i < dims.V) {
        let b = logitBits(i);
        let key = keyOfBits(b);
        if (key >= tau) {
          let e = weight(b, key, maxKey, m);
          if (e > 0.0) { lastPos = i; }
          cum += e;
          if (!fallback && token == 0xffffffffu && cum > r) { token = i; }
        }
      }
    }
    if (token == 0xffffffffu) { token = lastPos; }
    if (token == 0xffffffffu) { token = work[stateBase() + 1u]; }
    result[dims.outIndex] = token;
  }
}
