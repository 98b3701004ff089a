// Image preprocessing on the GPU, bit-exact with src/reference/preprocess.ts (spec section 1 and 7):
//   [pad to square with (122,116,104)] -> Pillow BICUBIC resize of the shortest edge to S in Pillow's 8-bit
//   fixed point (PRECISION_BITS 22), horizontal pass to uint8 then vertical pass to uint8 -> center crop S x S
//   -> x/255 + normalize (a 256-entry f32 table per channel, made on the CPU by the reference's own function).
//   Video frames: torch's nearest interpolate straight to S x S (source indices made on the CPU).
//
// Everything that involves floating point (filter windows, fixed-point weights, nearest indices, the
// normalization table) is computed on the CPU (the bicubic weights and the table by the reference's own code) and
// uploaded in `table`; the GPU does only integer arithmetic (i32 multiply-adds, arithmetic shift, clamp), so the result is exact by
// construction. i32 cannot overflow: the host checks 2^21 + 255 * sum(max(w, 0)) < 2^31 (and the negative
// counterpart) for every output, which bounds every partial sum.
//
// Both passes are generic separable filters described by the table; an axis whose size does not change (Pillow
// skips that pass) or a NEAREST axis is a 1-tap filter of weight 2^22, which reproduces the byte exactly
// ((v << 22) + 2^21) >> 22 = v. Only the crop window is computed:
//   hpass: mid[j, i] (packed RGB, one u32) for the source rows the vertical filter of the S crop rows needs
//          (rowSrc[j], in padded coordinates) and the S crop columns; one invocation per mid pixel, taps read
//          neighbouring source pixels of one row (adjacent invocations -> adjacent addresses).
//   vpass: out[c, y, x] for the S x S crop; one invocation per output pixel reads its column of mid.
// Padding is never materialized: a source coordinate outside the image reads the pad color.
// Large images: src is bound one band of rows at a time (the host splits hpass into dispatches whose rows fit
// in maxStorageBufferBindingSize; bandRow0 / bandShift locate the band inside the bound range).
// Output is `OT`: f32 here; the f16 variant stores f16 (the table stays f32).

alias OT = f32;

struct Params {
  srcW: u32,
  srcH: u32,
  rowStride: u32,   // u32 (pixels) per source row in the buffer
  padColor: u32,    // packed RGB read outside the image
  padLeft: u32,     // image origin inside the padded canvas
  padTop: u32,
  S: u32,
  midRows: u32,
  jStart: u32,      // hpass: mid rows [jStart, jEnd) in this dispatch
  jEnd: u32,
  bandRow0: u32,    // first image row of the bound src range
  bandShift: u32,   // u32 index of pixel (0, bandRow0) in the bound range
  kH: u32,          // taps per output in the horizontal / vertical weight tables
  kV: u32,
  outOffset: u32,   // element offset of out[0, 0, 0]
  _pad: u32,
  offHMin: u32,     // table sections (u32 offsets)
  offHCount: u32,
  offHW: u32,
  offVMin: u32,
  offVCount: u32,
  offVW: u32,
  offRowSrc: u32,
  offLut: u32,
}

const HALF: i32 = 1 << 21;  // 1 << (PRECISION_BITS - 1)

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;         // RGBA8 packed, R in the low byte
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> mid: array<u32>;   // [midRows, S] packed RGB
@group(0) @binding(4) var<storage, read_write> out: array<OT>;    // [3, S, S]

fn clip8(ss: i32) -> u32 {
  return u32(clamp(ss >> 22u, 0, 255)); // arithmetic shift = floor, as Pillow's clip8
}

fn flatIndex(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn hpass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let S = P.S;
  let idx = flatIndex(wid, nwg, lid);
  if (idx >= (P.jEnd - P.jStart) * S) {
    return;
  }
  let j = P.jStart + idx / S;
  let i = idx % S;
  let row = i32(table[P.offRowSrc + j]) - i32(P.padTop);
  let rowInside = row >= 0 && row < i32(P.srcH);
  var rowBase = 0u;
  if (rowInside) {
    rowBase = P.bandShift + u32(row - i32(P.bandRow0)) * P.rowStride;
  }
  let xmin = table[P.offHMin + i];
  let n = table[P.offHCount + i];
  let wBase = P.offHW + i * P.kH;
  var r = HALF;
  var g = HALF;
  var b = HALF;
  for (var t = 0u; t < n; t++) {
    let col = i32(xmin + t) - i32(P.padLeft);
    var p = P.padColor;
    if (rowInside && col >= 0 && col < i32(P.srcW)) {
      p = src[rowBase + u32(col)];
    }
    let w = bitcast<i32>(table[wBase + t]);
    r += i32(p & 255u) * w;
    g += i32((p >> 8u) & 255u) * w;
    b += i32((p >> 16u) & 255u) * w;
  }
  mid[j * S + i] = clip8(r) | (clip8(g) << 8u) | (clip8(b) << 16u);
}

fn lut(c: u32, v: u32) -> OT {
  return OT(bitcast<f32>(table[P.offLut + c * 256u + v]));
}

@compute @workgroup_size(256)
fn vpass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let S = P.S;
  let idx = flatIndex(wid, nwg, lid);
  if (idx >= S * S) {
    return;
  }
  let y = idx / S;
  let x = idx % S;
  let ymin = table[P.offVMin + y];
  let n = table[P.offVCount + y];
  let wBase = P.offVW + y * P.kV;
  var r = HALF;
  var g = HALF;
  var b = HALF;
  for (var t = 0u; t < n; t++) {
    let p = mid[(ymin + t) * S + x];
    let w = bitcast<i32>(table[wBase + t]);
    r += i32(p & 255u) * w;
    g += i32((p >> 8u) & 255u) * w;
    b += i32((p >> 16u) & 255u) * w;
  }
  let plane = S * S;
  let o = P.outOffset + y * S + x;
  out[o] = lut(0u, clip8(r));
  out[o + plane] = lut(1u, clip8(g));
  out[o + 2u * plane] = lut(2u, clip8(b));
}
