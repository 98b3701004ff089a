// MLC int4 group quantization (src/quant/q4.ts): packed bits against an independent nibble-by-nibble packer,
// rounding (half away from zero, after the model-dtype rounding), all-zero groups, error bounds, argument checks.
import { describe, expect, it } from 'vitest';
import { f16ToNumber, numberToF16 } from '../checkpoint/dtype.ts';
import { mulberry32, randomF32 } from '../util/seeded-random.ts';
import { dequantizeQ4, q4Bytes, q4Code, q4ScalesFromF16Bits, q4ScalesToF16Bits, quantizeQ4, roundHalfAway } from './q4.ts';

/** Independent packer: codes [N, K] (0..15) -> words, one nibble at a time via hex string building. */
function packByHex(codes: number[][]): Uint32Array {
  const words: number[] = [];
  for (const row of codes) {
    for (let j = 0; j < row.length / 8; j++) {
      // the most significant nibble is element 7 of the word: build the hex string from element 7 down to 0
      let hex = '';
      for (let r = 7; r >= 0; r--) hex += row[j * 8 + r]!.toString(16);
      words.push(parseInt(hex, 16));
    }
  }
  return new Uint32Array(words);
}

describe('quantizeQ4 packing', () => {
  it('packs a hand-made matrix exactly (element j*8+r in bits 4r..4r+3 of word j)', () => {
    // Row 0: max |w| = 7 -> scale 1, so q = w + 7 exactly. Row 1: max 3.5 -> scale 0.5, q = 2w + 7.
    const N = 2;
    const K = 32;
    const row0 = Array.from({ length: K }, (_, k) => ((k * 5) % 15) - 7); // -7..7, covers every code 0..14
    row0[3] = 7; // make sure the max is there
    const row1 = Array.from({ length: K }, (_, k) => (((k * 3) % 15) - 7) / 2);
    row1[0] = -3.5;
    const w = new Float32Array([...row0, ...row1]);
    const { qWeight, qScale } = quantizeQ4(w, N, K);
    expect(Array.from(qScale)).toEqual([1, 0.5]);
    const codes = [row0.map((v) => v + 7), row1.map((v) => 2 * v + 7)];
    expect(Array.from(qWeight)).toEqual(Array.from(packByHex(codes)));
    // by hand: row 0 elements 0..7 are -7, -2, 3, 7, -2, 3, -7, -2 -> codes 0, 5, 10, 14, 5, 10, 0, 5, so word 0
    // read from its top nibble (element 7) down is 5 0 a 5 e a 5 0
    expect(codes[0]!.slice(0, 8)).toEqual([0, 5, 10, 14, 5, 10, 0, 5]);
    expect(qWeight[0]).toBe(0x50a5ea50);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) expect(q4Code(qWeight, K, n, k)).toBe(codes[n]![k]);
  });

  it('dequantizes the hand-made matrix back exactly', () => {
    const K = 64;
    const w = new Float32Array(K).map((_, k) => ((k % 15) - 7) * 0.25);
    const q = quantizeQ4(w, 1, K);
    expect(Array.from(dequantizeQ4(q.qWeight, q.qScale, 1, K))).toEqual(Array.from(w));
  });

  it('rounds half away from zero', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 0.49999997].map(roundHalfAway)).toEqual([1, 2, 3, -1, -2, -3, 2, 0]);
    // scale 1 (max 7): w = 0.5 -> 7.5 -> 8; w = -0.5 -> 6.5 -> 7; w = 1.5 -> 9; w = -1.5 -> 5.5 -> 6
    const w = new Float32Array(32);
    w[0] = 7;
    w[1] = 0.5;
    w[2] = -0.5;
    w[3] = 1.5;
    w[4] = -1.5;
    w[5] = 6.5;
    w[6] = -6.5;
    w[7] = 0.4999;
    const { qWeight } = quantizeQ4(w, 1, 32);
    expect([1, 2, 3, 4, 5, 6, 7].map((k) => q4Code(qWeight, 32, 0, k))).toEqual([8, 7, 9, 6, 14, 1, 7]);
  });

  it('clamps to 0..14 and never produces 15', () => {
    const rng = mulberry32(9);
    const w = randomF32(64 * 96, rng, 3);
    for (const scaleDType of ['f32', 'f16'] as const) {
      const { qWeight } = quantizeQ4(w, 64, 96, { scaleDType });
      let min = 15;
      let max = 0;
      for (let n = 0; n < 64; n++) {
        for (let k = 0; k < 96; k++) {
          const c = q4Code(qWeight, 96, n, k);
          min = Math.min(min, c);
          max = Math.max(max, c);
        }
      }
      expect([min, max]).toEqual([0, 14]);
    }
  });

  it('an all-zero group gets scale 0 and q = 7 (and dequantizes to 0); its neighbours are unaffected', () => {
    const K = 64;
    const w = new Float32Array(K);
    for (let k = 32; k < 64; k++) w[k] = k % 2 ? 1 : -1;
    const q = quantizeQ4(w, 1, K);
    expect(q.qScale[0]).toBe(0);
    expect(q.qScale[1]).toBe(Math.fround(1 / 7));
    for (let j = 0; j < 4; j++) expect(q.qWeight[j]).toBe(0x77777777);
    const d = dequantizeQ4(q.qWeight, q.qScale, 1, K);
    expect(Array.from(d.subarray(0, 32)).every((v) => v === 0)).toBe(true);
    expect(Math.max(...Array.from(d.subarray(32)).map((v, i) => Math.abs(v - w[32 + i]!)))).toBeLessThan(1e-6);
  });
});

describe('quantizeQ4 tiny groups', () => {
  it('f16: a scale that underflows to 0 behaves like an all-zero group (scale 0, q = 7, dequant 0)', () => {
    const w = new Float32Array(32).fill(1e-7); // f16(1e-7) is a subnormal; / 7 rounds to 0 in f16
    const q = quantizeQ4(w, 1, 32, { scaleDType: 'f16' });
    expect(q.qScale[0]).toBe(0);
    expect(Array.from(q.qWeight)).toEqual([0x77777777, 0x77777777, 0x77777777, 0x77777777]);
    // in f32 the same group quantizes normally
    const qf = quantizeQ4(w, 1, 32);
    expect(qf.qScale[0]).toBe(Math.fround(Math.fround(1e-7) / 7));
    expect(qf.qWeight[0]).toBe(0xeeeeeeee);
  });
});

describe('quantizeQ4 accuracy', () => {
  it('f32 scales (q4f32_1): |w - deq| <= scale / 2 (plus f32 rounding)', () => {
    const [N, K] = [33, 96];
    const w = randomF32(N * K, mulberry32(1), 0.1);
    const q = quantizeQ4(w, N, K);
    const d = dequantizeQ4(q.qWeight, q.qScale, N, K);
    for (let i = 0; i < N * K; i++) {
      const s = q.qScale[Math.floor(i / 32)]!;
      expect(Math.abs(w[i]! - d[i]!)).toBeLessThanOrEqual(s * (0.5 + 1e-5));
    }
    // scale is max|w| / 7 in f32
    for (let g = 0; g < (N * K) / 32; g++) {
      const m = Math.max(...Array.from(w.subarray(g * 32, g * 32 + 32)).map(Math.abs));
      expect(q.qScale[g]).toBe(Math.fround(m / 7));
    }
  });

  it('f16 scales (q4f16_1): scales are f16(f16 max / 7), the error bound holds with the f16 roundings', () => {
    const [N, K] = [33, 96];
    const w = randomF32(N * K, mulberry32(2), 0.05);
    const q = quantizeQ4(w, N, K, { scaleDType: 'f16' });
    expect(q.scaleDType).toBe('f16');
    const d = dequantizeQ4(q.qWeight, q.qScale, N, K);
    const f16 = (v: number) => f16ToNumber(numberToF16(v));
    for (let g = 0; g < (N * K) / 32; g++) {
      const m = Math.max(...Array.from(w.subarray(g * 32, g * 32 + 32)).map((v) => Math.abs(f16(v))));
      expect(q.qScale[g]).toBe(f16(m / 7));
    }
    for (let i = 0; i < N * K; i++) {
      const s = q.qScale[Math.floor(i / 32)]!;
      // w -> f16 (half an ulp of w), the quotient and the +7 in f16 (2^-8 of a code at most, codes < 16),
      // the f16 scale itself (the max element can land up to 7 * 2^-11 * scale away).
      const bound = s * (0.5 + 2 ** -8 + 7 * 2 ** -11) + Math.abs(w[i]! - f16(w[i]!));
      expect(Math.abs(w[i]! - d[i]!)).toBeLessThanOrEqual(bound);
    }
    // the scales survive a trip through f16 bits
    const bits = q4ScalesToF16Bits(q.qScale);
    expect(Array.from(q4ScalesFromF16Bits(bits))).toEqual(Array.from(q.qScale));
  });

  it('f16: quantizes the f16-rounded weight with the rounded scale and f16 arithmetic (MLC), not in f32', () => {
    // Find a weight where the f32 recipe and the f16 recipe disagree: the f16 rounding of w/scale + 7 pushes
    // it onto (or off) a .5 boundary. Check our f16 result against a direct f16 emulation step by step.
    const f16 = (v: number) => f16ToNumber(numberToF16(v));
    const rng = mulberry32(3);
    let disagreements = 0;
    for (let trial = 0; trial < 200; trial++) {
      const w = randomF32(32, rng, 1);
      const qh = quantizeQ4(w, 1, 32, { scaleDType: 'f16' });
      const qf = quantizeQ4(w, 1, 32, { scaleDType: 'f32' });
      const wh = Array.from(w, f16);
      const s = f16(Math.max(...wh.map(Math.abs)) / 7);
      for (let k = 0; k < 32; k++) {
        const expected = Math.min(14, Math.max(0, roundHalfAway(f16(f16(wh[k]! / s) + 7))));
        expect(q4Code(qh.qWeight, 32, 0, k)).toBe(expected);
        if (q4Code(qf.qWeight, 32, 0, k) !== expected) disagreements++;
      }
    }
    expect(disagreements).toBeGreaterThan(0); // the two recipes really differ somewhere
  });

  it('f16: a value just below a .5 boundary rounds up after the f16 rounding of w / scale + 7', () => {
    // max 7 -> scale 1 (exact in f16). w = 1.4999 -> f16(1.4999) = 1.5 -> 8.5 -> 9 (f32 recipe: 8.4999 -> 8).
    const w = new Float32Array(32);
    w[0] = 7;
    w[1] = 1.4999;
    expect(q4Code(quantizeQ4(w, 1, 32, { scaleDType: 'f16' }).qWeight, 32, 0, 1)).toBe(9);
    expect(q4Code(quantizeQ4(w, 1, 32, { scaleDType: 'f32' }).qWeight, 32, 0, 1)).toBe(8);
  });
});

describe('quantizeQ4 arguments', () => {
  it('requires K % 32 == 0 and matching lengths', () => {
    expect(() => quantizeQ4(new Float32Array(40), 1, 40)).toThrow(/K = 40 is not a multiple of the group size 32/);
    expect(() => quantizeQ4(new Float32Array(64), 1, 32)).toThrow(/expected 1x32/);
    expect(() => dequantizeQ4(new Uint32Array(4), new Float32Array(1), 1, 48)).toThrow(/multiple of the group size/);
    expect(() => dequantizeQ4(new Uint32Array(3), new Float32Array(1), 1, 32)).toThrow(/qWeight has 3 words/);
    expect(() => quantizeQ4(new Float32Array([NaN, ...new Array(31).fill(0)]), 1, 32)).toThrow(/NaN/);
    expect(() => q4ScalesToF16Bits(new Float32Array([0.1]))).toThrow(/not an f16 value/);
  });

  it('reports buffer sizes', () => {
    expect(q4Bytes(4096, 4096, 'f16')).toEqual({ qWeight: 8388608, qScale: 1048576 });
    expect(q4Bytes(128256, 4096, 'f32')).toEqual({ qWeight: 262668288, qScale: 65667072 });
  });
});
