import { describe, expect, it } from 'vitest';
import { compareArrays, formatComparison, formatIndex, relativeError } from './compare.ts';

const tol = { atol: 1e-4, rtol: 1e-4 };

describe('compareArrays', () => {
  it('passes identical and near-identical arrays', () => {
    const e = new Float32Array([1, -2, 3.5, 0]);
    const c = compareArrays(Float32Array.from(e, (v) => v + 5e-5), e, tol);
    expect(c.ok).toBe(true);
    expect(c.failures).toBe(0);
    expect(c.count).toBe(4);
    expect(c.maxAbs).toBeCloseTo(5e-5, 6);
  });

  it('uses atol + rtol * |expected| per element (numpy.allclose)', () => {
    // |e| = 1000: allowed 1e-4 + 0.1 -> 0.05 off passes; |e| = 1: allowed 2e-4 -> 0.05 off fails
    const c = compareArrays([1000.05, 1.05], [1000, 1], tol);
    expect(c.ok).toBe(false);
    expect(c.failures).toBe(1);
    expect(c.worstIndex).toBe(1);
    expect(c.worstActual).toBeCloseTo(1.05);
    expect(c.worstExpected).toBe(1);
    expect(c.maxAbs).toBeCloseTo(0.05, 6);
    expect(c.maxRel).toBeCloseTo(0.05, 6);
  });

  it('names the worst element by shape-aware index', () => {
    const expected = new Float32Array(12);
    const actual = new Float32Array(12);
    actual[7] = 0.5; // row 1, col 3 of [3, 4]
    actual[2] = 1e-3;
    const c = compareArrays(actual, expected, tol);
    expect(c.ok).toBe(false);
    expect(c.worstIndex).toBe(7);
    const msg = formatComparison(c, { name: 'linear', shape: [3, 4] });
    expect(msg).toContain('FAIL');
    expect(msg).toContain('worst [1, 3]');
    expect(msg).toContain('got 0.5000000');
    expect(msg).toContain('2 of 12 outside tolerance');
  });

  it('counts NaN in actual as failures and reports them', () => {
    const c = compareArrays([NaN, 1], [0, 1], tol);
    expect(c.ok).toBe(false);
    expect(c.nans).toBe(1);
    expect(c.worstIndex).toBe(0);
    expect(formatComparison(c)).toContain('1 NaN');
  });

  it('accepts matching non-finite references only when identical', () => {
    expect(compareArrays([Infinity, NaN], [Infinity, NaN], tol).ok).toBe(true);
    expect(compareArrays([-Infinity], [Infinity], tol).ok).toBe(false);
    expect(compareArrays([1e30], [Infinity], tol).ok).toBe(false);
  });

  it('handles zero tolerance and empty arrays', () => {
    expect(compareArrays([1, 2], [1, 2], { atol: 0, rtol: 0 }).ok).toBe(true);
    expect(compareArrays([1, 2.0000001], [1, 2], { atol: 0, rtol: 0 }).ok).toBe(false);
    const empty = compareArrays([], [], tol);
    expect(empty.ok).toBe(true);
    expect(empty.worstIndex).toBe(-1);
    expect(formatComparison(empty)).toContain('no elements');
  });

  it('throws on a length mismatch', () => {
    expect(() => compareArrays([1, 2], [1], tol)).toThrow(/2 elements.*1/);
  });

  it('formats indices of any rank', () => {
    expect(formatIndex(5)).toBe('[5]');
    expect(formatIndex(5, [2, 3])).toBe('[1, 2]');
    expect(formatIndex(23, [2, 3, 4])).toBe('[1, 2, 3]');
    expect(formatComparison(compareArrays([1], [1], tol), { name: 'x', shape: [1, 1] })).toMatch(/^x \[1, 1\]: PASS max abs 0, max rel 0/);
  });
});

describe('relativeError', () => {
  it('is max |a - b| over max |b|; NaN and a length mismatch are infinitely off', () => {
    expect(relativeError(new Float32Array([1, 2, 5]), new Float32Array([1, 2.5, 4]))).toEqual({ maxErr: 1, maxRef: 4, rel: 0.25 });
    expect(relativeError(new Float32Array([0, 0]), new Float32Array([0, 0])).rel).toBe(0);
    expect(relativeError(new Float32Array([NaN]), new Float32Array([1])).rel).toBe(Infinity);
    expect(relativeError(new Float32Array(2), new Float32Array(3)).rel).toBe(Infinity);
  });
});
