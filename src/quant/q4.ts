// MLC-LLM int4 group quantization (q4f16_1 / q4f32_1), bit-exact, pure TS (browser and Node).
//
// Layout for a Hugging Face weight W [N, K] (out, in), weight layout "NK":
//   qWeight [N, K/8] u32: element j*8 + r of a row is stored in bits 4r..4r+3 of word j (lower index, lower nibble);
//   qScale  [N, K/32]:     one scale per group of 32 consecutive inputs of a row (f32 for q4f32_1, f16 for q4f16_1).
//   dequant: w ≈ (q - 7) * scale, q in 0..14 (15 is never produced).
//
// The quantizer is mlc-llm's GroupQuantize._quantize (python/mlc_llm/quantization/group_quantization.py), which
// runs ENTIRELY IN THE MODEL DTYPE (`model.to(model_dtype)` first, then a TE compute whose constants are of that
// dtype):
//   max_abs = max |w| over the group                        (exact)
//   scale   = max_abs / 7                                    (rounded to the model dtype)
//   q       = min(max(round(w / scale + 7), 0), 14)         (w / scale and "+ 7" each rounded to the model dtype)
// `round` is TVM's tir.round, lowered to llvm.round / roundf: round half AWAY from zero. So for q4f16_1 the
// quantizer sees f16 weights and uses the ROUNDED f16 scale, and the quotient and the +7 are f16-rounded too:
// a weight a hair below a .5 boundary can round up after the f16 rounding of w / scale + 7. We emulate that
// exactly: each f16 (f32) operation is computed in f64 and rounded once to f16 (f32). For +, -, *, / of f16
// (f32) operands this equals the correctly rounded f16 (f32) operation, because f64 -> f32 -> f16 double
// rounding is innocuous (53 >= 2*24 + 2 and 24 >= 2*11 + 2), which is also what LLVM does for half arithmetic
// on CPUs without native f16 (promote to f32, operate, truncate) — mlc_llm convert_weight on a CPU.
//
// All-zero groups (max_abs = 0; also an f16 scale that underflows to 0): scale 0 and every q = 7 here. MLC's
// TE computes 0/0 = NaN there and the NaN goes through its select-based max/min to q = 0, so the packed bits of
// such groups can differ from MLC's, but the dequantized values are identical (anything times scale 0 is 0).
//
// Dequantization here is exact in f32 for f16 scales ((q - 7) has 4 bits, an f16 scale 11: the product fits in
// f32), and one f32 multiplication for f32 scales: the same operation the GPU kernels do. (MLC's own q4f16_1
// kernels dequantize in f16, which rounds (q - 7) * scale to 11 bits; ours keep it exact.)
import { f16ToNumber, numberToF16 } from '../checkpoint/dtype.ts';

/** Elements per quantization group (along K). */
export const Q4_GROUP_SIZE = 32;
/** 4-bit values per u32 storage word. */
export const Q4_PER_WORD = 8;
/** The zero point: q = 7 encodes 0. */
export const Q4_ZERO = 7;

/** Storage dtype of the scales: 'f32' = q4f32_1, 'f16' = q4f16_1. */
export type Q4ScaleDType = 'f32' | 'f16';

export interface Q4Weights {
  /** [N, K/8] packed nibbles. */
  qWeight: Uint32Array;
  /** [N, K/32] scales as f32 values (for 'f16' scales: exactly the f16 values; see q4ScalesToF16Bits). */
  qScale: Float32Array;
  /** Which format these are (what the scales were rounded to, and how the weights were rounded). */
  scaleDType: Q4ScaleDType;
}

export interface QuantizeQ4Options {
  /** 'f32' (q4f32_1, default) or 'f16' (q4f16_1: weights and all quantizer arithmetic in f16, f16 scales). */
  scaleDType?: Q4ScaleDType;
}

function checkShape(what: string, N: number, K: number): void {
  if (!Number.isInteger(N) || N < 1) throw new Error(`${what}: N must be a positive integer, got ${N}`);
  if (!Number.isInteger(K) || K < 1) throw new Error(`${what}: K must be a positive integer, got ${K}`);
  if (K % Q4_GROUP_SIZE !== 0) {
    throw new Error(`${what}: K = ${K} is not a multiple of the group size ${Q4_GROUP_SIZE} (int4 group quantization needs K % 32 == 0)`);
  }
}

/** Round half away from zero (TVM tir.round / C round()). */
export function roundHalfAway(v: number): number {
  const t = Math.trunc(v);
  const frac = v - t; // exact for |v| < 2^52
  if (frac >= 0.5) return t + 1;
  if (frac <= -0.5) return t - 1;
  return t;
}

/** Rounds a JS number to the nearest f16 value (via f32, which is innocuous here; see the header). */
export function roundF16(v: number): number {
  return f16ToNumber(numberToF16(v));
}

/**
 * Quantizes W [N, K] (row-major, HF [out, in]) to MLC int4 groups of 32 along K. Bit-exact with mlc-llm's
 * converter for q4f32_1 (scaleDType 'f32') and q4f16_1 ('f16'; then w is first rounded to f16, as MLC's
 * `model.to("float16")` does), except the q codes of all-zero groups (see the header). Throws unless K % 32 == 0.
 */
export function quantizeQ4(w: Float32Array, N: number, K: number, opts: QuantizeQ4Options = {}): Q4Weights {
  checkShape('quantizeQ4', N, K);
  if (w.length !== N * K) throw new Error(`quantizeQ4: w has ${w.length} values, expected ${N}x${K} = ${N * K}`);
  const scaleDType = opts.scaleDType ?? 'f32';
  const rnd: (v: number) => number = scaleDType === 'f16' ? roundF16 : Math.fround;
  const groups = K / Q4_GROUP_SIZE;
  const qWeight = new Uint32Array((N * K) / Q4_PER_WORD);
  const qScale = new Float32Array(N * groups);
  const g = new Float64Array(Q4_GROUP_SIZE); // one group's weights in the model dtype

  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < groups; gi++) {
      const base = n * K + gi * Q4_GROUP_SIZE;
      let maxAbs = 0;
      for (let i = 0; i < Q4_GROUP_SIZE; i++) {
        const v = rnd(w[base + i]!);
        if (Number.isNaN(v)) throw new Error(`quantizeQ4: w[${n}, ${gi * Q4_GROUP_SIZE + i}] is NaN`);
        g[i] = v;
        const a = Math.abs(v);
        if (a > maxAbs) maxAbs = a;
      }
      if (!Number.isFinite(maxAbs)) throw new Error(`quantizeQ4: row ${n}, group ${gi} holds an infinite weight (after rounding to ${scaleDType})`);
      const scale = rnd(maxAbs / Q4_ZERO);
      qScale[n * groups + gi] = scale;
      const wordBase = (base / Q4_PER_WORD) >>> 0;
      for (let j = 0; j < Q4_GROUP_SIZE / Q4_PER_WORD; j++) {
        let word = 0;
        for (let r = 0; r < Q4_PER_WORD; r++) {
          let q = Q4_ZERO;
          if (scale !== 0) {
            const t = rnd(rnd(g[j * Q4_PER_WORD + r]! / scale) + Q4_ZERO);
            q = Math.min(Math.max(roundHalfAway(t), 0), 2 * Q4_ZERO);
          }
          word |= q << (4 * r);
        }
        qWeight[wordBase + j] = word >>> 0;
      }
    }
  }
  return { qWeight, qScale, scaleDType };
}

/** The 4-bit code of element (n, k): 0..15. */
export function q4Code(qWeight: Uint32Array, K: number, n: number, k: number): number {
  return (qWeight[(n * K + k) >>> 3]! >>> (4 * (k & 7))) & 0xf;
}

/** W [N, K] as f32: (q - 7) * scale, one f32 multiplication per element (what the GPU kernels compute). */
export function dequantizeQ4(qWeight: Uint32Array, qScale: Float32Array, N: number, K: number): Float32Array {
  checkShape('dequantizeQ4', N, K);
  const groups = K / Q4_GROUP_SIZE;
  if (qWeight.length !== (N * K) / Q4_PER_WORD) throw new Error(`dequantizeQ4: qWeight has ${qWeight.length} words, expected ${N}x${K / Q4_PER_WORD}`);
  if (qScale.length !== N * groups) throw new Error(`dequantizeQ4: qScale has ${qScale.length} values, expected ${N}x${groups}`);
  const out = new Float32Array(N * K);
  for (let i = 0; i < qWeight.length; i++) {
    const word = qWeight[i]!;
    const e0 = i * Q4_PER_WORD;
    const s = qScale[(e0 / Q4_GROUP_SIZE) >>> 0]!; // row-major: element e of W is in group floor(e / 32) of the flat scale array
    for (let r = 0; r < Q4_PER_WORD; r++) out[e0 + r] = (((word >>> (4 * r)) & 0xf) - Q4_ZERO) * s;
  }
  return out;
}

/** f16 bits of the scales (the q4f16_1 `q_scale` tensor). Throws if a scale is not exactly an f16 value. */
export function q4ScalesToF16Bits(qScale: Float32Array): Uint16Array {
  const out = new Uint16Array(qScale.length);
  for (let i = 0; i < qScale.length; i++) {
    const h = numberToF16(qScale[i]!);
    if (f16ToNumber(h) !== qScale[i]) throw new Error(`q4ScalesToF16Bits: scale ${i} = ${qScale[i]} is not an f16 value (quantize with scaleDType 'f16')`);
    out[i] = h;
  }
  return out;
}

/** f16 scale bits (as stored in a q4f16_1 checkpoint) -> f32 values. */
export function q4ScalesFromF16Bits(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f16ToNumber(bits[i]!);
  return out;
}

/** Bytes of the GPU buffers for a quantized [N, K]: q_weight and q_scale (before 4-byte alignment). */
export function q4Bytes(N: number, K: number, scaleDType: Q4ScaleDType): { qWeight: number; qScale: number } {
  return { qWeight: (N * K) / 2, qScale: (N * K) / Q4_GROUP_SIZE * (scaleDType === 'f16' ? 2 : 4) };
}
