import { describe, expect, it } from 'vitest';
import { attention, kvHeadFor } from './attention.ts';

describe('attention', () => {
  const q = new Float32Array([1, 0, 0, 1, 1, 1]);
  const k = new Float32Array([1, 0, 0, 1, 0, 0]);
  const v = new Float32Array([1, 2, 3, 4, 5, 6]);
  const e = Math.E;

  it('3 tokens with a causal mask, by hand', () => {
    const out = attention({ q, k, v, qRows: 3, kRows: 3, numHeads: 1, headDim: 2, scale: 1, mask: (i, j) => j <= i });
    // row 0 sees key 0 only
    expect([out[0], out[1]]).toEqual([1, 2]);
    // row 1: scores [0, 1] -> [1, e] / (1 + e)
    expect(out[2]).toBeCloseTo((1 + 3 * e) / (1 + e), 6);
    expect(out[3]).toBeCloseTo((2 + 4 * e) / (1 + e), 6);
    // row 2: scores [1, 1, 0] -> [e, e, 1] / (2e + 1)
    expect(out[4]).toBeCloseTo((e * 1 + e * 3 + 5) / (2 * e + 1), 6);
    expect(out[5]).toBeCloseTo((e * 2 + e * 4 + 6) / (2 * e + 1), 6);
  });

  it('a mask array equals the mask function; masked keys are excluded; scale applies', () => {
    const fn = (i: number, j: number): boolean => j <= i && j !== 1;
    const arr = new Uint8Array(9);
    for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) arr[i * 3 + j] = fn(i, j) ? 1 : 0;
    const a = attention({ q, k, v, qRows: 3, kRows: 3, numHeads: 1, headDim: 2, scale: 2, mask: fn });
    const b = attention({ q, k, v, qRows: 3, kRows: 3, numHeads: 1, headDim: 2, scale: 2, mask: arr });
    expect([...a]).toEqual([...b]);
    // row 1 sees key 0 only
    expect([a[2], a[3]]).toEqual([1, 2]);
    // row 2: keys 0 and 2, scores [2*1, 2*0] -> [e^2, 1] / (e^2 + 1)
    expect(a[4]).toBeCloseTo((e * e * 1 + 5) / (e * e + 1), 6);
    // no mask = every key
    const c = attention({ q, k, v, qRows: 3, kRows: 3, numHeads: 1, headDim: 2, scale: 1 });
    expect(c[0]).toBeCloseTo((e * 1 + 3 + 5) / (e + 2), 6);
  });

  it('GQA: head h reads KV head floor(h / (nH / nKV))', () => {
    expect([0, 1, 2, 3].map((h) => kvHeadFor(h, 4, 2))).toEqual([0, 0, 1, 1]);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((h) => kvHeadFor(h, 8, 2))).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
    expect(kvHeadFor(31, 32, 8)).toBe(7);
    // 4 query heads, 2 KV heads of dim 1; zero keys -> uniform weights -> output = mean of that KV head's values
    const qq = new Float32Array([0.3, -1, 2, 5]); // 1 row x 4 heads
    const kk = new Float32Array([0, 0, 0, 0]); // 2 rows x 2 kv heads
    const vv = new Float32Array([10, 20, 30, 60]); // kv head 0: [10, 30], kv head 1: [20, 60]
    const out = attention({ q: qq, k: kk, v: vv, qRows: 1, kRows: 2, numHeads: 4, numKvHeads: 2, headDim: 1, scale: 1 });
    expect([...out]).toEqual([20, 20, 40, 40]);
  });
});
