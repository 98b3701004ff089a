// Deterministic pseudo-random weights written straight into a GPU storage format (synthetic models: the full-size
// shapes without weight files). Element e of a tensor is a function of (seed, e) alone, so a tensor split into row
// blocks, or generated on another GPU, holds the same values.
//   KIND 0: f32 values        word i = element first + i
//   KIND 1: f16 pairs         word i = elements first + 2i (low half), first + 2i + 1 (high half)
//   KIND 2: int4 codes 0..14  word i = elements first + 8i .. first + 8i + 7, element k of the word in bits 4k..4k+3
// Values are uniform in [center - amp, center + amp].

override KIND: u32 = 0u;

struct Params {
  count: u32,   // words to write
  seed: u32,
  first: u32,   // global index of the first element
  _pad: u32,
  center: f32,
  amp: f32,
};

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

// PCG hash (Jarzynski & Olano, "Hash Functions for GPU Rendering", 2020).
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

fn bits(e: u32) -> u32 {
  return pcg(e ^ pcg(p.seed));
}

fn value(e: u32) -> f32 {
  let u = f32(bits(e) >> 8u) * (1.0 / 16777216.0);
  return p.center + p.amp * (2.0 * u - 1.0);
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * nwg.x + wg.x) * 256u + lid;
  if (i >= p.count) {
    return;
  }
  if (KIND == 0u) {
    out[i] = bitcast<u32>(value(p.first + i));
  } else if (KIND == 1u) {
    let e = p.first + 2u * i;
    out[i] = pack2x16float(vec2<f32>(value(e), value(e + 1u)));
  } else {
    let e = p.first + 8u * i;
    var w = 0u;
    for (var k = 0u; k < 8u; k++) {
      w |= (bits(e + k) % 15u) << (4u * k);
    }
    out[i] = w;
  }
}
