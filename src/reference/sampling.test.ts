import { describe, expect, it } from 'vitest';
import { argmaxRef, sampleTopPDetails, sampleTopPRef } from './sampling.ts';

const ln = Math.log;

describe('argmaxRef', () => {
  it('largest value, lowest index on ties, NaN as -inf, -0 == +0', () => {
    expect(argmaxRef([1, 3, 2])).toBe(1);
    expect(argmaxRef([3, 1, 3])).toBe(0);
    expect(argmaxRef([NaN, 1, NaN, 1])).toBe(1);
    expect(argmaxRef([NaN, -Infinity])).toBe(0);
    expect(argmaxRef([-Infinity, -Infinity, -5])).toBe(2);
    expect(argmaxRef([-0, 0])).toBe(0);
    expect(argmaxRef([0, -0, -1])).toBe(0);
    expect(argmaxRef([1, Infinity, Infinity])).toBe(1);
    expect(argmaxRef([NaN, NaN])).toBe(0);
    expect(argmaxRef([])).toBe(0);
  });
});

describe('sampleTopPRef', () => {
  // probabilities 0.1, 0.2, 0.3, 0.4
  const logits = [ln(1), ln(2), ln(3), ln(4)];

  it('greedy when temperature <= 0 or topP <= 0', () => {
    expect(sampleTopPRef(logits, { temperature: 0, topP: 0.9, u: 0.1 })).toBe(3);
    expect(sampleTopPRef(logits, { temperature: 1, topP: 0, u: 0.1 })).toBe(3);
    expect(sampleTopPRef(logits, { temperature: NaN, topP: 0.9, u: 0.1 })).toBe(3);
    expect(sampleTopPDetails(logits, { temperature: 1, topP: 0, u: 0.1 }).greedy).toBe(true);
  });

  it('the kept set: the most probable tokens until the mass first reaches topP', () => {
    const at = (topP: number) => sampleTopPDetails(logits, { temperature: 1, topP, u: 0 });
    expect(at(0.35).kept).toBe(1); // 0.4 >= 0.35
    expect(at(0.5).kept).toBe(2); // 0.4 < 0.5 <= 0.7
    expect(at(0.75).kept).toBe(3); // 0.7 < 0.75 <= 0.9
    expect(at(0.95).kept).toBe(4);
    expect(at(1).kept).toBe(4);
    expect(at(0.5).threshold).toBe(ln(3));
    expect(at(0.5).thresholdMargin).toBeCloseTo(0.1, 12); // min(0.7 - 0.5, 0.5 - 0.4)
  });

  it('the pick: the first kept token (ascending index) whose running sum exceeds u * S', () => {
    // topP 0.5 keeps tokens 2 and 3 (renormalized 3/7, 4/7)
    const pick = (u: number) => sampleTopPRef(logits, { temperature: 1, topP: 0.5, u });
    expect(pick(0)).toBe(2);
    expect(pick(3 / 7 - 1e-9)).toBe(2);
    expect(pick(3 / 7 + 1e-9)).toBe(3);
    expect(pick(0.999999)).toBe(3);
    const d = sampleTopPDetails(logits, { temperature: 1, topP: 0.5, u: 0.2 });
    expect(d.pickMargin).toBeCloseTo(0.2, 12); // min(0.2 - 0, 3/7 - 0.2)
  });

  it('frequencies over a uniform grid of u equal the renormalized probabilities', () => {
    const N = 10000;
    for (const [temperature, topP] of [[1, 1], [1, 0.75], [0.5, 0.9], [2, 0.6]] as const) {
      const counts = [0, 0, 0, 0];
      for (let k = 0; k < N; k++) counts[sampleTopPRef(logits, { temperature, topP, u: (k + 0.5) / N })]!++;
      const e = logits.map((x) => Math.exp((x - ln(4)) / temperature));
      const z = e.reduce((a, b) => a + b, 0);
      const order = [3, 2, 1, 0];
      const kept = new Set<number>();
      let mass = 0;
      for (const i of order) {
        if (mass >= topP * z) break;
        kept.add(i);
        mass += e[i]!;
      }
      const s = [...kept].reduce((a, i) => a + e[i]!, 0);
      for (let i = 0; i < 4; i++) expect(Math.abs(counts[i]! / N - (kept.has(i) ? e[i]! / s : 0))).toBeLessThanOrEqual(1 / N);
    }
  });

  it('ties at the threshold are all kept (equal logits = equal probabilities)', () => {
    const tied = [0, 2, 1, 2, 2, 0.5];
    const d = sampleTopPDetails(tied, { temperature: 1, topP: 0.1, u: 0 });
    expect(d.kept).toBe(3);
    expect(d.threshold).toBe(2);
    // u chooses among the three in index order
    expect([0.1, 0.4, 0.9].map((u) => sampleTopPRef(tied, { temperature: 1, topP: 0.1, u }))).toEqual([1, 3, 4]);
  });

  it('temperature sharpens / flattens', () => {
    const x = [0, 1, 2];
    expect(sampleTopPDetails(x, { temperature: 0.01, topP: 0.99, u: 0.5 }).kept).toBe(1);
    expect(sampleTopPDetails(x, { temperature: 100, topP: 0.9, u: 0.5 }).kept).toBe(3);
  });

  it('NaN is never drawn; -inf only when every non-NaN logit is -inf; all NaN -> argmax', () => {
    const x = [NaN, 0, -Infinity, 0, NaN];
    for (let k = 0; k < 20; k++) expect([1, 3]).toContain(sampleTopPRef(x, { temperature: 1, topP: 1, u: k / 20 }));
    expect(sampleTopPRef([NaN, -Infinity, -Infinity], { temperature: 1, topP: 1, u: 0.7 })).toBe(2);
    expect(sampleTopPDetails([NaN, NaN], { temperature: 1, topP: 1, u: 0.7 })).toMatchObject({ token: 0, greedy: true });
    expect(sampleTopPRef([1, Infinity, 2, Infinity], { temperature: 1, topP: 0.9, u: 0.6 })).toBe(3);
  });

  it('rejects u outside [0, 1)', () => {
    expect(() => sampleTopPRef(logits, { temperature: 1, topP: 0.5, u: 1 })).toThrow(/u must be in/);
    expect(() => sampleTopPRef(logits, { temperature: 1, topP: 0.5, u: -0.1 })).toThrow(/u must be in/);
  });
});
