// highest(): the k highest logits with their ids, highest first (what `?logits=K` reports for comparing engines).
import { describe, expect, it } from 'vitest';
import { highest } from './conversation.ts';

describe('highest', () => {
  it('finds the k highest in order, keeping the first id on ties, against a full sort', () => {
    const logits = Float32Array.from([0.5, 3, -1, 3, 2.5, 7, 0, 2.5]);
    expect(highest(logits, 3)).toEqual([{ id: 5, logit: 7 }, { id: 1, logit: 3 }, { id: 3, logit: 3 }]);
    let seed = 9;
    const big = Float32Array.from({ length: 5000 }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 10 - 5);
    const sorted = [...big].map((logit, id) => ({ id, logit })).sort((a, b) => b.logit - a.logit || a.id - b.id);
    expect(highest(big, 10)).toEqual(sorted.slice(0, 10));
    expect(highest(Float32Array.from([1, 2]), 5)).toEqual([{ id: 1, logit: 2 }, { id: 0, logit: 1 }]);
  });
});
