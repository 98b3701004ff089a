import { describe, expect, it } from 'vitest';
import { compareLogits0 } from './logits.ts';

describe('compareLogits0', () => {
  it('agreeing logits0 with a tie at the top explain a different first token', () => {
    const a = [{ id: 7, logit: 3.80001 }, { id: 9, logit: 3.8 }, { id: 2, logit: 3.1 }];
    const b = [{ id: 9, logit: 3.80002 }, { id: 7, logit: 3.80001 }, { id: 2, logit: 3.1000001 }];
    const c = compareLogits0(a, b);
    expect(c.common).toBe(3);
    expect(c.maxRelDiff).toBeLessThan(1e-4);
    expect(c.tie).toBe(true);
  });

  it('a clear margin, or logits0 that disagree, do not', () => {
    const margin = compareLogits0([{ id: 7, logit: 3.9 }, { id: 9, logit: 3.8 }], [{ id: 9, logit: 3.8 }, { id: 7, logit: 3.7 }]);
    expect(margin.tie).toBe(false);
    expect(margin.maxRelDiff).toBeGreaterThan(1e-3);
    const same = compareLogits0([{ id: 7, logit: 3.9 }], [{ id: 7, logit: 3.9 }]);
    expect(same).toMatchObject({ common: 1, maxRelDiff: 0, tie: false });
    expect(compareLogits0([{ id: 7, logit: 3.9 }], [{ id: 8, logit: 3.9 }]).margins.every(Number.isNaN)).toBe(true);
  });
});
