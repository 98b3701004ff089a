import { describe, expect, it } from 'vitest';
import { applyRope, ropeInvFreq, rotateHalf } from './rope.ts';

const LLAMA3 = { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };

/** theta^(-2i/d) written differently: exp(-(2i/d) ln theta). */
function base(i: number, d: number, theta: number): number {
  return Math.exp(-((2 * i) / d) * Math.log(theta));
}

describe('llama3 RoPE inverse frequencies (head dim 128, theta 500000)', () => {
  const f = ropeInvFreq(128, 500000, LLAMA3);

  it('has 64 entries, f32', () => {
    expect(f.length).toBe(64);
    expect(f[0]).toBe(1);
  });

  it('keeps high frequencies (wavelength < 8192/4 = 2048)', () => {
    // i = 28: inv = 500000^(-56/128) = 0.003196..., wavelength 2 pi / 0.003196 = 1966 < 2048
    for (const i of [1, 10, 28]) expect(f[i]).toBe(Math.fround(base(i, 128, 500000)));
    expect((2 * Math.PI) / base(28, 128, 500000)).toBeLessThan(2048);
  });

  it('divides low frequencies by 8 (wavelength > 8192)', () => {
    // i = 35: inv = 500000^(-70/128) = 7.65e-4, wavelength 8212 > 8192
    expect((2 * Math.PI) / base(35, 128, 500000)).toBeGreaterThan(8192);
    for (const i of [35, 50, 63]) expect(f[i]).toBe(Math.fround(base(i, 128, 500000) / 8));
  });

  it('smooths the band in between', () => {
    // i = 30: inv0 = 500000^(-60/128); wavelength in (2048, 8192)
    const inv0 = base(30, 128, 500000);
    const wl = (2 * Math.PI) / inv0;
    expect(wl).toBeGreaterThan(2048);
    expect(wl).toBeLessThan(8192);
    // smooth = (8192 / wl - 1) / 3; result = inv0 * (smooth + (1 - smooth) / 8)
    const s = (8192 / wl - 1) / 3;
    expect(f[30]).toBeCloseTo(Math.fround(inv0 * (s + (1 - s) / 8)), 12);
    expect(Math.abs(f[30]! - inv0 * (s + (1 - s) / 8)) / f[30]!).toBeLessThan(1e-7);
    // boundaries: 28 kept, 29..34 smoothed, 35.. divided
    for (let i = 29; i <= 34; i++) {
      expect(f[i]).toBeLessThan(Math.fround(base(i, 128, 500000)));
      expect(f[i]).toBeGreaterThan(Math.fround(base(i, 128, 500000) / 8));
    }
  });

  it('no scaling when ropeScaling is null', () => {
    const g = ropeInvFreq(8, 10000, null);
    expect([...g]).toEqual([1, 0.1, 0.01, 0.001].map(Math.fround));
  });
});

describe('rotate-half RoPE', () => {
  it('rotate_half([a,b,c,d]) = [-c,-d,a,b]', () => {
    expect([...rotateHalf([1, 2, 3, 4])]).toEqual([-3, -4, 1, 2]);
  });

  it('rotates pairs (i, i + d/2) by pos * inv_freq_i', () => {
    // head dim 4, inv freq [1, 0.5], position 2 -> angles [2, 1]
    const inv = new Float32Array([1, 0.5]);
    const x = new Float32Array([1, 2, 3, 4]);
    const y = applyRope(x, 1, 1, 4, [2], inv);
    const c0 = Math.cos(2), s0 = Math.sin(2), c1 = Math.cos(1), s1 = Math.sin(1);
    const e = [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1];
    e.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 6));
    // position 0 is the identity; two heads are rotated independently
    expect([...applyRope(x, 1, 1, 4, [0], inv)]).toEqual([1, 2, 3, 4]);
    const two = applyRope(new Float32Array([1, 2, 3, 4, 1, 2, 3, 4]), 1, 2, 4, [2], inv);
    expect([...two.subarray(4)]).toEqual([...y]);
  });
});
