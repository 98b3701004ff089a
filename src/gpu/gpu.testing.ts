// Vitest helpers shared by the GPU kernel tests (imported by *.test.ts files only, never by the app).
import { expect } from 'vitest';
import { compareArrays, formatComparison, type Comparison, type Tolerance } from './compare.ts';

/**
 * Asserts that `actual` matches `expected` within `tol` and holds no NaN; the failure message is the comparison
 * summary (worst element, counts). SHOW_CMP=1 prints every summary.
 */
export function expectClose(actual: Float32Array, expected: Float32Array, name: string, shape: number[], tol: Tolerance): Comparison {
  const c = compareArrays(actual, expected, tol);
  if (process.env.SHOW_CMP) console.log(formatComparison(c, { name, shape }));
  expect(c.ok, formatComparison(c, { name, shape })).toBe(true);
  expect(c.nans).toBe(0);
  return c;
}

/** expectClose with a default tolerance, for a file whose comparisons mostly share one. */
export function expectCloseWith(defaultTol: Tolerance) {
  return (actual: Float32Array, expected: Float32Array, name: string, shape: number[], tol: Tolerance = defaultTol): Comparison =>
    expectClose(actual, expected, name, shape, tol);
}
