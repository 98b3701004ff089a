// Element-wise comparison of a GPU result with its CPU reference, numpy.allclose style:
// element i passes when |actual - expected| <= atol + rtol * |expected|. Pure TS, no GPU.

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface Comparison {
  ok: boolean;
  /** Largest |actual - expected| over finite pairs. */
  maxAbs: number;
  /** Largest |actual - expected| / |expected| over finite pairs with expected != 0. */
  maxRel: number;
  /** The element furthest outside (or closest to) its tolerance: largest |a - e| / (atol + rtol |e|). -1 if empty. */
  worstIndex: number;
  worstActual: number;
  worstExpected: number;
  /** Number of elements outside the tolerance (NaN/Inf mismatches included). */
  failures: number;
  /** Number of elements compared. */
  count: number;
  /** NaNs in `actual` where `expected` is not NaN. */
  nans: number;
  tolerance: Tolerance;
}

type NumArray = ArrayLike<number>;

export function compareArrays(actual: NumArray, expected: NumArray, tolerance: Tolerance): Comparison {
  if (actual.length !== expected.length) {
    throw new Error(`compareArrays: actual has ${actual.length} elements, expected has ${expected.length}`);
  }
  const { atol, rtol } = tolerance;
  let maxAbs = 0;
  let maxRel = 0;
  let worstIndex = -1;
  let worstScore = -1;
  let failures = 0;
  let nans = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    let score: number;
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      // Non-finite reference: only the identical value passes.
      score = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)) ? 0 : Infinity;
    } else if (Number.isNaN(a)) {
      nans++;
      score = Infinity;
    } else {
      const d = Math.abs(a - e);
      if (d > maxAbs) maxAbs = d;
      if (e !== 0 && d / Math.abs(e) > maxRel) maxRel = d / Math.abs(e);
      const allowed = atol + rtol * Math.abs(e);
      score = allowed > 0 ? d / allowed : d > 0 ? Infinity : 0;
    }
    if (score > 1) failures++;
    if (score > worstScore) {
      worstScore = score;
      worstIndex = i;
    }
  }
  return {
    ok: failures === 0,
    maxAbs,
    maxRel,
    worstIndex,
    worstActual: worstIndex >= 0 ? actual[worstIndex] : NaN,
    worstExpected: worstIndex >= 0 ? expected[worstIndex] : NaN,
    failures,
    count: actual.length,
    nans,
    tolerance: { atol, rtol },
  };
}

/** Flat row-major index -> "[r, c]" for shape [R, C] (any rank); "[i]" without a shape. */
export function formatIndex(index: number, shape?: readonly number[]): string {
  if (!shape || shape.length === 0) return `[${index}]`;
  const coords: number[] = [];
  let rest = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    coords.unshift(rest % shape[d]);
    rest = Math.floor(rest / shape[d]);
  }
  return `[${coords.join(', ')}]`;
}

function num(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return v === 0 ? '0' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? v.toPrecision(7) : v.toExponential(4);
}

/**
 * One line: "linear f32 [37, 96]: PASS max abs 1.2e-6, max rel 3.4e-6 (atol 1e-4, rtol 1e-4); worst [3, 12]: got ..., expected ...".
 * `shape` turns the worst flat index into coordinates.
 */
export function formatComparison(c: Comparison, opts: { name?: string; shape?: readonly number[] } = {}): string {
  const head = `${opts.name ?? 'compare'}${opts.shape ? ` [${opts.shape.join(', ')}]` : ''}: ${c.ok ? 'PASS' : 'FAIL'}`;
  const stats = `max abs ${num(c.maxAbs)}, max rel ${num(c.maxRel)} (atol ${c.tolerance.atol}, rtol ${c.tolerance.rtol})`;
  const fails = c.ok ? '' : `; ${c.failures} of ${c.count} outside tolerance${c.nans ? `, ${c.nans} NaN` : ''}`;
  const worst =
    c.worstIndex >= 0
      ? `; worst ${formatIndex(c.worstIndex, opts.shape)}: got ${num(c.worstActual)}, expected ${num(c.worstExpected)}`
      : '; no elements';
  return `${head} ${stats}${fails}${worst}`;
}

/** max |a - b| / max |b| (0 when both are all zeros): one figure for a whole tensor, as `generate --check` prints it. */
export function relativeError(a: Float32Array, b: Float32Array): { maxErr: number; maxRef: number; rel: number } {
  if (a.length !== b.length) return { maxErr: Infinity, maxRef: 0, rel: Infinity };
  let maxErr = 0;
  let maxRef = 0;
  for (let i = 0; i < a.length; i++) {
    const e = Math.abs(a[i]! - b[i]!);
    maxErr = Number.isNaN(e) ? Infinity : Math.max(maxErr, e);
    maxRef = Math.max(maxRef, Math.abs(b[i]!));
  }
  return { maxErr, maxRef, rel: maxRef > 0 ? maxErr / maxRef : maxErr };
}
