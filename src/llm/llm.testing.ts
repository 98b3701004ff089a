// Shared by the decoder / LLM / pre-fusion GPU tests: the "within 1e-4 relative per tensor" comparison.
import { expect } from 'vitest';
import { compareArrays, formatComparison, type Comparison } from '../gpu/compare.ts';

/**
 * Every element within rel * (max |expected| over the tensor) + rel * |expected| of the reference: relative to
 * the tensor's scale, so values near zero are not held to an impossible relative bound.
 */
export function expectRelClose(actual: Float32Array, expected: Float32Array, name: string, shape: number[], rel = 1e-4): Comparison {
  let scale = 0;
  for (const e of expected) scale = Math.max(scale, Math.abs(e));
  const c = compareArrays(actual, expected, { atol: rel * scale, rtol: rel });
  expect(c.ok, formatComparison(c, { name, shape })).toBe(true);
  expect(c.nans).toBe(0);
  return c;
}
