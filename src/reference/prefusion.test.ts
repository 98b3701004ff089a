import { describe, expect, it } from 'vitest';
import { prefusionMaskAndPositions } from './prefusion.ts';

describe('pre-fusion mask and positions', () => {
  it('[128000, 128000, 5, -200, 7, 8] after N + C^2 = 5 vision rows', () => {
    const ids = [128000, 128000, 5, -200, 7, 8];
    const l = prefusionMaskAndPositions(ids, 5);
    expect(l.rows).toBe(11);
    expect([...l.pad]).toEqual([0, 0, 0, 1, 0, 0]);
    expect([...l.keep]).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1]);
    // vision 0..4, text continues 5, 6, 7, the pad row gets 1, then 8, 9
    expect([...l.positions]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 1, 8, 9]);
    // causal, and key 8 (the image slot) is never visible, not even to itself
    for (let q = 0; q < 11; q++) {
      for (let k = 0; k < 11; k++) expect(l.allowed(q, k)).toBe(k <= q && k !== 8);
    }
    expect([0, 1, 2, 3, 4, 5, 6, 7].every((k) => l.allowed(8, k))).toBe(true);
  });

  it('id 0 counts as pad too (ids <= 0); two image slots', () => {
    const l = prefusionMaskAndPositions([1, -200, 0, 4, -200, 9], 2);
    expect([...l.pad]).toEqual([0, 1, 1, 0, 1, 0]);
    expect([...l.positions]).toEqual([0, 1, 2, 1, 1, 3, 1, 4]);
  });
});
