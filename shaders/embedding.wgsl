// Embeddings: token rows gathered from a table, and the CLIP patch embedding around the linear layer.
//
//   gather         out[r, :] = table[id(r), :]                            dense table, `TT` = f32 (f16 variant)
//   gather_q4      out[r, :] = (q(id(r), :) - 7) * scale(id(r), group)    MLC q4f32_1 / q4f16_1 (`ST` = f32 / f16)
//   patchify       patches[n, (c, ky, kx)] = pixels[c, gy*P + ky, gx*P + kx], n = gy * (S/P) + gx
//   clip_assemble          emb[0] = cls + pos[0];  emb[1 + i] = proj[i] + pos[1 + i]
//   clip_assemble_inplace  the same with proj already in rows 1..N of emb (the linear layer wrote it there)
//
// TT and ST are f32 in this file as written; src/gpu/kernels/embedding.ts specializes `alias TT = f16;`
// (f16 table) or `alias ST = f16;` (q4f16_1 scales) with `enable f16;`, only on devices with shader-f16.
// Entry points declare their own bindings (WGSL resource interfaces are per entry point, so binding numbers
// repeat across entry points); each pipeline uses one entry point and its own layout.
//
// Token ids (i32): id < 0 (the -200 <image> slot) reads row 0 (`clamp`, the reference's embed(max(ids, 0)))
// or gives a zero row (FLAG_NEG_ZERO); id >= vocab is invalid and gives a zero row. A table larger than one
// storage binding is split by rows into blocks (separate buffers); the host dispatches once per block with
// that block's row range, and every dispatch writes only the rows whose id falls in its block. Zero rows
// (invalid ids) are written by the dispatch that carries FLAG_WRITE_INVALID (the first one), so each output
// row is written exactly once.
//
// Parallelization: gather is a pure copy (16 KiB per Llama row): one 256-invocation workgroup per output row,
// invocations striding along the row (coalesced reads and writes); q4 gives each invocation one u32 word (8
// values, one scale load per 4 words). Row counts are folded into a 2D grid (x <= maxComputeWorkgroupsPerDimension),
// surplus workgroups exit. patchify / assemble are tiny reshuffles (577 x 1024 at most): one invocation per
// output element, flat 2D-folded grid of 256-wide workgroups.

alias TT = f32;
alias ST = f32;

const WG: u32 = 256u;

const FLAG_NEG_ZERO: u32 = 1u;      // id < 0 -> zero row (default: row 0)
const FLAG_WRITE_INVALID: u32 = 2u; // this dispatch writes the zero rows of invalid ids

struct GatherDims {
  rows: u32,        // output rows (ids)
  hidden: u32,      // H: values per row
  blockStart: u32,  // first table row held by this block
  blockRows: u32,   // table rows in this block
  vocab: u32,       // rows of the whole table
  idsOff: u32,      // element offset of the first id
  outOff: u32,      // element offset of out(0, 0)
  flags: u32,
}

@group(0) @binding(0) var<uniform> gdims: GatherDims;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
// gather
@group(0) @binding(2) var<storage, read> table: array<TT>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// gather_q4
@group(0) @binding(2) var<storage, read> q_weight: array<u32>;
@group(0) @binding(3) var<storage, read> q_scale: array<ST>;
@group(0) @binding(4) var<storage, read_write> out_q4: array<f32>;

// The table row of output row r, or -1 for an invalid id (zero row).
fn token_row(r: u32) -> i32 {
  var id = ids[gdims.idsOff + r];
  if (id < 0) {
    if ((gdims.flags & FLAG_NEG_ZERO) != 0u) {
      return -1;
    }
    id = 0;
  }
  if (u32(id) >= gdims.vocab) {
    return -1;
  }
  return id;
}

// The block-local row for table row `id`, or -1 when another block holds it.
fn local_row(id: i32) -> i32 {
  let u = u32(id);
  if (u < gdims.blockStart || u - gdims.blockStart >= gdims.blockRows) {
    return -1;
  }
  return i32(u - gdims.blockStart);
}

@compute @workgroup_size(256, 1, 1)
fn gather(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= gdims.rows) {
    return;
  }
  let H = gdims.hidden;
  let o = gdims.outOff + r * H;
  let id = token_row(r);
  if (id < 0) {
    if ((gdims.flags & FLAG_WRITE_INVALID) != 0u) {
      for (var c = lid; c < H; c += WG) {
        out[o + c] = 0.0;
      }
    }
    return;
  }
  let lr = local_row(id);
  if (lr < 0) {
    return;
  }
  let t = u32(lr) * H;
  for (var c = lid; c < H; c += WG) {
    out[o + c] = f32(table[t + c]);
  }
}

@compute @workgroup_size(256, 1, 1)
fn gather_q4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wid.y * nwg.x + wid.x;
  if (r >= gdims.rows) {
    return;
  }
  let H = gdims.hidden; // a multiple of 32
  let o = gdims.outOff + r * H;
  let id = token_row(r);
  if (id < 0) {
    if ((gdims.flags & FLAG_WRITE_INVALID) != 0u) {
      for (var c = lid; c < H; c += WG) {
        out_q4[o + c] = 0.0;
      }
    }
    return;
  }
  let lr = local_row(id);
  if (lr < 0) {
    return;
  }
  let words = H / 8u;
  let wRow = u32(lr) * words;
  let sRow = u32(lr) * (H / 32u);
  for (var j = lid; j < words; j += WG) {
    let q = q_weight[wRow + j];
    let s = f32(q_scale[sRow + j / 4u]);
    let base = o + j * 8u;
    for (var k = 0u; k < 8u; k++) {
      // element j*8 + k is bits 4k..4k+3 of word j (lower index, lower nibble)
      out_q4[base + k] = (f32((q >> (4u * k)) & 15u) - 7.0) * s;
    }
  }
}

// ---- CLIP patch embedding ----

struct PatchDims {
  channels: u32,  // C
  size: u32,      // S (pixels per side)
  psize: u32,     // P (`patch` is a WGSL reserved word)
  grid: u32,      // S / P
  k: u32,         // C * P * P: values per patch
  total: u32,     // (S / P)^2 * k
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> pdims: PatchDims;
@group(0) @binding(1) var<storage, read> pixels: array<f32>;
@group(0) @binding(2) var<storage, read_write> patches: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn patchify(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid;
  if (e >= pdims.total) {
    return;
  }
  let P = pdims.psize;
  let n = e / pdims.k;
  let k = e - n * pdims.k;
  let c = k / (P * P);
  let rem = k - c * P * P;
  let ky = rem / P;
  let kx = rem - ky * P;
  let gy = n / pdims.grid;
  let gx = n - gy * pdims.grid;
  patches[e] = pixels[(c * pdims.size + gy * P + ky) * pdims.size + gx * P + kx];
}

struct AssembleDims {
  width: u32,  // D
  total: u32,  // (N + 1) * D
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> adims: AssembleDims;
// clip_assemble
@group(0) @binding(1) var<storage, read> proj: array<f32>;
@group(0) @binding(2) var<storage, read> cls: array<f32>;
@group(0) @binding(3) var<storage, read> pos: array<f32>;
@group(0) @binding(4) var<storage, read_write> emb: array<f32>;
// clip_assemble_inplace
@group(0) @binding(1) var<storage, read> cls_ip: array<f32>;
@group(0) @binding(2) var<storage, read> pos_ip: array<f32>;
@group(0) @binding(3) var<storage, read_write> emb_ip: array<f32>;

@compute @workgroup_size(256, 1, 1)
fn clip_assemble(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid;
  if (e >= adims.total) {
    return;
  }
  let D = adims.width;
  var v: f32;
  if (e < D) {
    v = cls[e];
  } else {
    v = proj[e - D];
  }
  emb[e] = v + pos[e];
}

@compute @workgroup_size(256, 1, 1)
fn clip_assemble_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.y * nwg.x + wid.x) * WG + lid;
  if (e >= adims.total) {
    return;
  }
  var v: f32;
  if (e < adims.width) {
    v = cls_ip[e];
  } else {
    v = emb_ip[e];
  }
  emb_ip[e] = v + pos_ip[e];
}
