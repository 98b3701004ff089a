import { describe, expect, it } from 'vitest';
import {
  bf16BytesToF32,
  bf16ToNumber,
  f16BytesToF32,
  f16ToNumber,
  f32ToBf16Bytes,
  f32ToF16Bytes,
  numberToBf16,
  numberToF16,
} from './dtype.ts';

const u16 = (bytes: Uint8Array): number[] => [...new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)];
const bytesOf16 = (...bits: number[]): Uint8Array => new Uint8Array(new Uint16Array(bits).buffer);
const f32Bits = (v: number): number => new Uint32Array(new Float32Array([v]).buffer)[0]!;

describe('f16 -> f32', () => {
  it('decodes normals, zeros, subnormals, infinities and NaN exactly', () => {
    expect(f16ToNumber(0x3c00)).toBe(1);
    expect(f16ToNumber(0xc000)).toBe(-2);
    expect(f16ToNumber(0x7bff)).toBe(65504);
    expect(f16ToNumber(0x0400)).toBe(2 ** -14); // smallest normal
    expect(f16ToNumber(0x0001)).toBe(2 ** -24); // smallest subnormal
    expect(f16ToNumber(0x03ff)).toBe(1023 * 2 ** -24); // largest subnormal
    expect(f16ToNumber(0x8001)).toBe(-(2 ** -24));
    expect(Object.is(f16ToNumber(0x8000), -0)).toBe(true);
    expect(f16ToNumber(0x7c00)).toBe(Infinity);
    expect(f16ToNumber(0xfc00)).toBe(-Infinity);
    expect(f16ToNumber(0x7e00)).toBeNaN();
    expect(f16ToNumber(0x7c01)).toBeNaN();
  });

  it('converts arrays (also from an odd byte offset)', () => {
    const bits = [0x3c00, 0x0001, 0x7c00, 0xfe00, 0x3555];
    const out = f16BytesToF32(bytesOf16(...bits));
    expect([...out.slice(0, 3)]).toEqual([1, 2 ** -24, Infinity]);
    expect(out[3]).toBeNaN();
    expect(out[4]).toBeCloseTo(1 / 3, 3);
    const odd = new Uint8Array(11);
    odd.set(bytesOf16(...bits), 1);
    expect([...f16BytesToF32(odd.subarray(1))].map(String)).toEqual([...out].map(String));
  });
});

describe('bf16 -> f32', () => {
  it('is the top half of the f32 bits', () => {
    expect(bf16ToNumber(0x3f80)).toBe(1);
    expect(bf16ToNumber(0x0001)).toBe(2 ** -133); // bf16 subnormal
    expect(bf16ToNumber(0x7f80)).toBe(Infinity);
    expect(bf16ToNumber(0xff80)).toBe(-Infinity);
    expect(bf16ToNumber(0x7fc0)).toBeNaN();
    const out = bf16BytesToF32(bytesOf16(0x4049, 0xc2f7));
    expect(out[0]).toBe(3.140625);
    expect(out[1]).toBe(-123.5);
  });
});

describe('f32 -> f16 (round to nearest even)', () => {
  it('rounds ties to even', () => {
    // 1 + 2^-11 is exactly between 1 and 1 + 2^-10: ties to even (1)
    expect(numberToF16(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3 * 2^-11 is between 1 + 2^-10 (odd) and 1 + 2^-9 (even): rounds up
    expect(numberToF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    // just above the tie rounds up
    expect(numberToF16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
  });

  it('handles overflow, subnormals, underflow, inf and NaN', () => {
    expect(numberToF16(65504)).toBe(0x7bff);
    expect(numberToF16(65519)).toBe(0x7bff); // below the midpoint 65520
    expect(numberToF16(65520)).toBe(0x7c00); // tie to even -> inf
    expect(numberToF16(1e6)).toBe(0x7c00);
    expect(numberToF16(-1e6)).toBe(0xfc00);
    expect(numberToF16(2 ** -24)).toBe(0x0001);
    expect(numberToF16(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24: even is 0
    expect(numberToF16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(numberToF16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 (x 2^-24): even is 2
    expect(numberToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(numberToF16(2 ** -30)).toBe(0x0000);
    expect(numberToF16(-(2 ** -30))).toBe(0x8000);
    expect(numberToF16(Infinity)).toBe(0x7c00);
    expect(numberToF16(-Infinity)).toBe(0xfc00);
    const nan = numberToF16(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x3ff).not.toBe(0);
  });

  it('round-trips every finite f16 value through f32 bytes', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const asF32 = f16BytesToF32(new Uint8Array(all.buffer));
    const back = u16(f32ToF16Bytes(asF32));
    const bad: number[] = [];
    for (let i = 0; i < 65536; i++) {
      const isNan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (isNan ? (back[i]! & 0x7c00) !== 0x7c00 || (back[i]! & 0x3ff) === 0 : back[i] !== i) bad.push(i);
    }
    expect(bad).toEqual([]);
  });
});

describe('f32 -> bf16 (round to nearest even)', () => {
  it('rounds ties to even and keeps NaN a NaN', () => {
    expect(numberToBf16(1)).toBe(0x3f80);
    // 1 + 2^-8 is the tie between 1 (0x3f80, even) and 1 + 2^-7 (0x3f81)
    expect(numberToBf16(1 + 2 ** -8)).toBe(0x3f80);
    // 1 + 3 * 2^-8 is the tie between 0x3f81 (odd) and 0x3f82 (even)
    expect(numberToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(numberToBf16(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(numberToBf16(3.4e38)).toBe(0x7f80); // rounds up to inf
    expect(numberToBf16(-Infinity)).toBe(0xff80);
    const nanBits = f32Bits(NaN);
    expect(nanBits).not.toBe(0);
    const bf = u16(f32ToBf16Bytes(new Float32Array([NaN, 2 ** -130])));
    expect(bf16ToNumber(bf[0]!)).toBeNaN();
    expect(bf16ToNumber(bf[1]!)).toBe(2 ** -130); // subnormal survives exactly
    // a NaN whose payload is only in the low 16 bits must stay NaN (not become inf)
    const lowNan = new Float32Array(new Uint32Array([0x7f800001]).buffer);
    expect(bf16ToNumber(u16(f32ToBf16Bytes(lowNan))[0]!)).toBeNaN();
  });
});
