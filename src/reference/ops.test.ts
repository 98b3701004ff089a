import { describe, expect, it } from 'vitest';
import { argmax, erf, geluScalar, layerNorm, quickGeluScalar, rmsNorm, siluScalar, softmax, softmaxRows } from './ops.ts';

describe('erf / activations', () => {
  it('erf matches known values to well under 1e-7', () => {
    const cases: [number, number][] = [
      [0, 0],
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [-0.5, -0.5204998778130465],
      [1, 0.8427007929497149],
      [-1, -0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [5.5, 0.9999999999999927],
      [7, 1],
    ];
    for (const [x, e] of cases) expect(Math.abs(erf(x) - e)).toBeLessThan(1e-14);
  });

  it('exact gelu, quick_gelu, silu at a few points', () => {
    expect(geluScalar(1)).toBeCloseTo(0.8413447460685429, 14);
    expect(geluScalar(-1)).toBeCloseTo(-0.15865525393145707, 14);
    expect(geluScalar(0.5)).toBeCloseTo(0.34573123063700656, 14);
    expect(geluScalar(-3)).toBeCloseTo(-0.00404969409489031, 14);
    expect(quickGeluScalar(1)).toBeCloseTo(0.8457957659328212, 14);
    expect(quickGeluScalar(-2)).toBeCloseTo(-0.06434137685579186, 14);
    expect(siluScalar(1)).toBeCloseTo(0.7310585786300049, 14);
    expect(siluScalar(-3)).toBeCloseTo(-0.14227761953270035, 14);
    expect(siluScalar(-800)).toBeCloseTo(0, 14); // no overflow
  });
});

describe('norms and softmax', () => {
  it('rmsNorm by hand', () => {
    // mean(x^2) = (1 + 4 + 9 + 16) / 4 = 7.5
    const x = new Float32Array([1, 2, 3, 4, -2, 0, 0, 0]);
    const w = new Float32Array([1, 1, 2, 0.5]);
    const y = rmsNorm(x, 2, 4, w, 0);
    const r = 1 / Math.sqrt(7.5);
    expect([...y.subarray(0, 4)].map((v, i) => v - [r, 2 * r, 6 * r, 2 * r][i]!).every((d) => Math.abs(d) < 1e-6)).toBe(true);
    // second row: mean(x^2) = 1 -> x / 1 * w
    expect([...y.subarray(4)]).toEqual([-2, 0, 0, 0]);
    // eps enters under the root
    const z = rmsNorm(new Float32Array([3, 4]), 1, 2, new Float32Array([1, 1]), 0.5); // mean sq 12.5 + 0.5 = 13
    expect(z[0]).toBeCloseTo(3 / Math.sqrt(13), 6);
  });

  it('layerNorm by hand', () => {
    // mean 2.5, biased variance 1.25
    const y = layerNorm(new Float32Array([1, 2, 3, 4]), 1, 4, new Float32Array([1, 2, 1, 1]), new Float32Array([0, 0, 1, -1]), 0);
    const s = Math.sqrt(1.25);
    const e = [-1.5 / s, (2 * -0.5) / s, 0.5 / s + 1, 1.5 / s - 1];
    e.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 6));
  });

  it('softmax by hand, max-subtracted (no overflow)', () => {
    const p = softmax([0, Math.log(2), Math.log(3)]);
    expect(p[0]).toBeCloseTo(1 / 6, 15);
    expect(p[1]).toBeCloseTo(2 / 6, 15);
    expect(p[2]).toBeCloseTo(3 / 6, 15);
    const q = softmax([1000, 1000, -Infinity]);
    expect([...q]).toEqual([0.5, 0.5, 0]);
    const r = softmaxRows(new Float32Array([0, 0, 5, 5]), 2, 2);
    expect([...r]).toEqual([0.5, 0.5, 0.5, 0.5]);
  });

  it('argmax takes the lowest index on ties', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([-5])).toBe(0);
    expect(argmax([NaN, 1, 1])).toBe(1);
  });
});
