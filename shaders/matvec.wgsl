// Decode matrix-vector product (the per-token hot path):  y[m, N] = W[N, K] · x[m, K] (+ b[N]) for m < M <= MAX_M.
//
// Weights (HF layout: W rows are outputs), chosen by the WKIND override, always bound as array<vec4<u32>>:
//   WKIND 0: f32                         one vec4<u32> = 4 weights (bitcast)
//   WKIND 1: f16 (two per u32)           one vec4<u32> = 8 weights (unpack2x16float)
//   WKIND 2: int4 q4f32_1, f32 scales    one vec4<u32> = 32 weights = exactly one quantization group
//   WKIND 3: int4 q4f16_1, f16 scales    same, scales two per u32 (unpack2x16float)
// Reading f16 through u32 + unpack2x16float needs no `shader-f16`: every variant runs on every WebGPU device,
// with the same memory traffic as array<f16>. The int4 layout is MLC's (src/quant/q4.ts): element k of row n is
// nibble k % 8 of word n * K/8 + k / 8; deq = (q - 7) * scale[n, k / 32]. x, b, y are f32; accumulation is f32.
// Rows must be 16-byte aligned: K % 4 == 0 (f32), K % 8 == 0 (f16), K % 32 == 0 (int4); the wrapper checks.
//
// Why this shape: with one row of x, each weight is used once, so the kernel is bound by weight bandwidth
// (lm_head: 128256 x 4096 = 263 MB int4; gate_up: 28672 x 4096) — if enough loads are in flight and x traffic
// stays small. A "unit" is one 16-byte weight load. A workgroup of 128 invocations = 2 row sets x 64 lanes; each
// invocation owns R = 4 rows, so a workgroup covers 8 rows (512 rows with LANES = 1, for small K). The 64 lanes of a row set split K: lane l takes the
// units l, l + 64, l + 128, ... of its 4 rows, so 64 consecutive lanes read 1 KiB contiguous per row (fully
// coalesced), and 4 independent 16-byte loads are in flight per step. x (4-32 floats per unit, from the cache) is
// loaded once per unit into registers and reused for the 4 rows: x traffic is 1/4 of what one row per
// invocation would need (for int4 each 16-byte unit pairs with 128 bytes of x). The 64 lane partial sums of each
// row are then summed (shaders/matvec-reduce.wgsl): with subgroup operations where the device has them (one
// subgroupAdd, then at most one barrier to add the 64 / subgroup-size partials), else in workgroup memory in two
// levels of 8 (2 barriers). The int4 unpacking is vectorized: 4 nibbles per shift/mask/convert, (q - 7) then dot with x, and
// the group's scale multiplies the 32-term partial once.
// K = 4096 int4: 128 units per row = 2 per lane; down_proj K = 14336: 7 per lane (all 128 and 448 with a CPU
// adapter's 1 lane: then a workgroup covers 512 rows and has no row sum, no barrier and no workgroup memory).
//
// M > 1 (a batched matvec: up to MAX_M rows of x, e.g. the 10-30 rows of a follow-up question's prefill): the
// weight registers of a unit are reused for every row of x, so M rows cost about one pass over W, where a 64-row
// prefill tile would idle most of its rows. MAX_M is a const the host sets per pipeline (1, 4, 16: the text is
// specialized, since a private array cannot be sized by an override), so the M = 1 pipeline carries no dead
// accumulators; the m loops have that constant trip count with an `m < M` guard, so compilers unroll them and
// keep acc in registers.
//
// Gated form (override GLU, the decoder's MLP): y[m, n] = silu(Wg[n] · x[m]) * (Wu[n] · x[m]), with the gate
// matrix in `w` / `scales` and the up matrix in `w2` / `scales2` (same storage and shape). An invocation's R = 4
// rows are then gate rows n, n + 1 in slots 0, 1 and up rows n, n + 1 in slots 2, 3: the same loads in flight and
// the same row sum, 2 outputs per invocation (ROWS_PER_WG halves), and neither the [M, 2N] gate|up rows nor a
// separate SwiGLU pass ever reach memory. No bias.
//
// Dispatch: workgroup number b = wid.y * nwg.x + wid.x takes ROWS_PER_WG rows from ROWS_PER_WG * b; the host folds the
// ceil(N / ROWS_PER_WG) workgroups into a 2D
// grid (x <= maxComputeWorkgroupsPerDimension; lm_head needs 16032) and surplus workgroups exit at once.
// y may be a column window of a wider matrix: element (m, n) goes to y[yOff + m * ldy + n], so a caller can split
// W by output rows (when one binding would exceed maxStorageBufferBindingSize) and fill y in parts.

struct Dims {
  M: u32,
  K: u32,
  N: u32,
  units: u32,      // 16-byte weight units per row: K / 4 (f32), K / 8 (f16), K / 32 (int4)
  ldy: u32,        // row stride of y, in elements
  yOff: u32,       // element offset of y(0, 0)
  rowBlocks: u32,  // ceil(N / ROWS_PER_WG): the number of workgroups that do work
  epilogue: u32,   // EPILOGUE_BIAS: add bias[n]; EPILOGUE_RESIDUAL: add to what y holds (y += W x, a residual
                   // stream in place); neither in the gated form
}

// The epilogue bits, as in matmul-tile.wgsl's Dims (the host's LINEAR_EPILOGUE).
const EPILOGUE_BIAS: u32 = 1u;
const EPILOGUE_RESIDUAL: u32 = 2u;

override WKIND: u32 = 0u;
override GLU: bool = false;
override SCALE_F16: bool = WKIND == 3u; // for scale_at (q4-dequant.wgsl)
const MAX_M: u32 = 1u;   // set by the host per pipeline: 1 (decode), 4, 16
// Invocations splitting one row's K: 64 on a GPU; 1 on a CPU adapter, which runs invocations as a few SIMD fibers,
// so more lanes buy no parallelism and their cross-lane sum costs more than the rows' work (SwiftShader, int4
// decode: 8 lanes 1.4-1.6x slower than 1, 64 lanes 2-3x slower than 8); 1 also for rows shorter than 64 units
// (small K: tiny test models), where more lanes would idle, need more workgroups and sum partials for nothing.
// Any power of two from 8 to WG works (the workgroup row sum takes 8 partials per step), and 1 (no row sum).
override LANES: u32 = 64u;

const WG: u32 = 128u;                    // invocations per workgroup
const R: u32 = 4u;                       // rows per invocation
override SETS: u32 = WG / LANES;         // row sets per workgroup
override OUT_R: u32 = select(R, R / 2u, GLU); // output rows per invocation
override ROWS_PER_WG: u32 = SETS * OUT_R;

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
// The gated form's up matrix and its scales (unused placeholders otherwise).
@group(0) @binding(6) var<storage, read> w2: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> scales2: array<u32>;

//#include matvec-memory

//#include q4-dequant

fn f16x4(a: u32, b: u32) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(a), unpack2x16float(b));
}

@compute @workgroup_size(128, 1, 1)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
//#include matvec-builtins
) {
  let block = wid.y * nwg.x + wid.x;
  if (block >= dims.rowBlocks) {
    return; // surplus workgroup of a folded 2D grid (uniform across the workgroup)
  }
  let M = dims.M;
  let N = dims.N;
  let units = dims.units;
  let xRow = dims.K / 4u; // vec4s per row of x
  let lane = lid % LANES;
  let rowSet = lid / LANES;
  let n0 = block * ROWS_PER_WG + rowSet * OUT_R;

  // Weight unit offsets of this invocation's rows (clamped into W; results of rows >= N are never stored). Gated:
  // slots r and r + 2 hold the same row of the gate and the up matrix.
  var rowBase: array<u32, R>;
  for (var r = 0u; r < R; r++) {
    rowBase[r] = min(n0 + r % OUT_R, N - 1u) * units;
  }

  var acc: array<vec4<f32>, MAX_M>; // acc[m][r]: row r of this invocation, row m of x (zero-initialized)

  for (var u = lane; u < units; u += LANES) {
    var wv: array<vec4<u32>, R>;
    var sc = vec4<f32>(1.0);
    // Slots OUT_R.. read the up matrix in the gated form: separate loops keep every load unconditional.
    for (var r = 0u; r < OUT_R; r++) {
      wv[r] = w[rowBase[r] + u];
    }
    for (var r = OUT_R; r < R; r++) {
      wv[r] = w2[rowBase[r] + u];
    }
    if (WKIND >= 2u) {
      for (var r = 0u; r < OUT_R; r++) {
        sc[r] = scale_at(rowBase[r] + u); // int4: unit index == group index
      }
      for (var r = OUT_R; r < R; r++) {
        let g = rowBase[r] + u;
        sc[r] = scale_in(scales2[scale_word(g)], g);
      }
    }
    for (var m = 0u; m < MAX_M; m++) {
      if (m >= M) {
        continue;
      }
      if (WKIND == 0u) {
        let xv = x[m * xRow + u];
        for (var r = 0u; r < R; r++) {
          acc[m][r] += dot(bitcast<vec4<f32>>(wv[r]), xv);
        }
      } else if (WKIND == 1u) {
        let xb = m * xRow + 2u * u;
        let x0 = x[xb];
        let x1 = x[xb + 1u];
        for (var r = 0u; r < R; r++) {
          let v = wv[r];
          acc[m][r] += dot(f16x4(v.x, v.y), x0) + dot(f16x4(v.z, v.w), x1);
        }
      } else {
        let xb = m * xRow + 8u * u;
        let x0 = x[xb];
        let x1 = x[xb + 1u];
        let x2 = x[xb + 2u];
        let x3 = x[xb + 3u];
        let x4 = x[xb + 4u];
        let x5 = x[xb + 5u];
        let x6 = x[xb + 6u];
        let x7 = x[xb + 7u];
        for (var r = 0u; r < R; r++) {
          let v = wv[r];
          let s = dot(nib(v.x, LO), x0) + dot(nib(v.x, HI), x1)
                + dot(nib(v.y, LO), x2) + dot(nib(v.y, HI), x3)
                + dot(nib(v.z, LO), x4) + dot(nib(v.z, HI), x5)
                + dot(nib(v.w, LO), x6) + dot(nib(v.w, HI), x7);
          acc[m][r] += s * sc[r];
        }
      }
    }
  }

  // Sum the LANES partials of each row set, one row of x at a time (M is uniform: barriers are safe), then lane 0
  // of the row set stores its R outputs. The sum is a fragment of matvec-reduce.wgsl: across subgroups where the
  // device has them, else in workgroup memory.
  for (var m = 0u; m < MAX_M; m++) {
    if (m >= M) {
      continue;
    }
    var total = acc[m];
//#include matvec-row-sum
    if (lane == 0u) {
      for (var r = 0u; r < OUT_R; r++) {
        let n = n0 + r;
        if (n < N) {
          let at = dims.yOff + m * dims.ldy + n;
          var v = total[r];
          if (GLU) {
            v = v / (1.0 + exp(-v)) * total[r + OUT_R]; // silu(gate) * up, as elementwise.wgsl's swiglu
          } else {
            if ((dims.epilogue & EPILOGUE_BIAS) != 0u) {
              v += bias[n];
            }
            if ((dims.epilogue & EPILOGUE_RESIDUAL) != 0u) {
              v += y[at]; // the residual stream, updated in place: only this invocation touches y[at]
            }
          }
          y[at] = v;
        }
      }
    }
  }
}
