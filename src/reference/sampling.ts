// Next-token selection, the CPU reference (f64) of shaders/sampling.wgsl.
//
// Definitions (the GPU kernel implements exactly these; only its f32 arithmetic differs):
//
// argmax: the index of the largest logit; ties -> the lowest index. NaN counts as -Infinity, -0 equals +0.
//   If every logit is NaN or -Infinity, the result is 0.
//
// top-p (nucleus) sampling with temperature T and a uniform number u in [0, 1) supplied by the caller:
//   - T <= 0 (or not a number) or topP <= 0: greedy, = argmax.
//   - m = max logit (NaN ignored); e_i = 1 if x_i == m (also covers m = +-Infinity), 0 if x_i is NaN,
//     else exp((x_i - m) / T). Z = sum e_i. If Z == 0 (all NaN) -> argmax.
//   - kept set K: topP >= 1 keeps every token. Otherwise, with M(t) = sum of e_i over the tokens with
//     x_i >= t, the threshold tau is the LARGEST logit value t (over the logits present) with M(t) >= topP * Z,
//     and K = { i : x_i >= tau }. This is "the most probable tokens until their mass first reaches topP",
//     with every token tied with the last one included (equal probability <=> equal logit).
//   - pick: S = sum of e_i over K (ascending index); the token is the first i in K, in ascending index order,
//     whose running sum of e over K exceeds u * S (strictly). If rounding leaves none (never in f64 here),
//     the last i in K with e_i > 0.

/** NaN -> -Infinity (the ordering both implementations use). */
function ordered(x: number): number {
  return Number.isNaN(x) ? -Infinity : x;
}

/** Index of the largest logit, lowest index on ties, NaN as -Infinity; 0 for an empty or all-NaN/-Inf array. */
export function argmaxRef(logits: ArrayLike<number>): number {
  let best = -Infinity;
  let bestI = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = ordered(logits[i]!);
    if (v > best) {
      best = v;
      bestI = i;
    }
  }
  return bestI;
}

export interface TopPOptions {
  /** Softmax temperature T; <= 0 means greedy. */
  temperature: number;
  /** Nucleus mass p; <= 0 means greedy, >= 1 keeps every token. */
  topP: number;
  /** Uniform random number in [0, 1). */
  u: number;
}

/** The reference's intermediate quantities, for tests that must tell a real mismatch from an f32/f64 tie. */
export interface TopPDetails {
  token: number;
  /** True when the result is the argmax (greedy settings or degenerate logits). */
  greedy: boolean;
  /** Number of kept tokens. */
  kept: number;
  /** The threshold logit tau (-Infinity when every token is kept). */
  threshold: number;
  /**
   * How far the kept-set decision is from flipping, as a fraction of Z: min(M(tau) - topP Z, topP Z - M(above tau)) / Z
   * (Infinity when topP >= 1 or greedy).
   */
  thresholdMargin: number;
  /**
   * How far u * S is from the nearest running-sum boundary of the picked token, as a fraction of S:
   * min(u S - cum_before, cum_after - u S) / S (Infinity when greedy).
   */
  pickMargin: number;
  /** Z = sum of all e_i and S = kept mass (f64). */
  z: number;
  keptMass: number;
}

/** Top-p sampling with the definition above, in f64, with diagnostics. */
export function sampleTopPDetails(logits: ArrayLike<number>, opts: TopPOptions): TopPDetails {
  const { temperature: T, topP, u } = opts;
  const greedyResult = (): TopPDetails => ({
    token: argmaxRef(logits),
    greedy: true,
    kept: 1,
    threshold: NaN,
    thresholdMargin: Infinity,
    pickMargin: Infinity,
    z: NaN,
    keptMass: NaN,
  });
  if (!(T > 0) || !(topP > 0)) return greedyResult();
  if (!(u >= 0 && u < 1)) throw new Error(`sampleTopP: u must be in [0, 1), got ${u}`);
  const n = logits.length;
  let m = -Infinity;
  let any = false;
  for (let i = 0; i < n; i++) {
    const x = logits[i]!;
    if (Number.isNaN(x)) continue;
    if (!any || x > m) m = x;
    any = true;
  }
  if (!any) return greedyResult();
  const e = new Float64Array(n);
  let z = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i]!;
    e[i] = Number.isNaN(x) ? 0 : x === m ? 1 : Math.exp((x - m) / T);
    z += e[i]!;
  }
  if (!(z > 0)) return greedyResult();

  let threshold = -Infinity;
  let thresholdMargin = Infinity;
  if (topP < 1) {
    // Distinct logit values, descending, with the mass of each.
    const order = Array.from({ length: n }, (_, i) => i).filter((i) => !Number.isNaN(logits[i]!));
    order.sort((a, b) => logits[b]! - logits[a]! || a - b);
    const target = topP * z;
    let mass = 0;
    let prevMass = 0;
    let k = 0;
    let found = false;
    while (k < order.length) {
      const v = logits[order[k]!]!;
      let groupMass = 0;
      while (k < order.length && logits[order[k]!]! === v) groupMass += e[order[k++]!]!;
      prevMass = mass;
      mass += groupMass;
      if (mass >= target) {
        threshold = v;
        thresholdMargin = Math.min(mass - target, target - prevMass) / z;
        found = true;
        break;
      }
    }
    // Unreachable in exact arithmetic (the full mass is Z >= topP Z); keep everything if rounding says so.
    if (!found) threshold = -Infinity;
  }

  const keep = (i: number): boolean => !Number.isNaN(logits[i]!) && (threshold === -Infinity || logits[i]! >= threshold);
  let s = 0;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (keep(i)) {
      s += e[i]!;
      kept++;
    }
  }
  const r = u * s;
  let cum = 0;
  let token = -1;
  let pickMargin = Infinity;
  let lastPositive = -1;
  for (let i = 0; i < n; i++) {
    if (!keep(i)) continue;
    if (e[i]! > 0) lastPositive = i;
    const before = cum;
    cum += e[i]!;
    if (cum > r) {
      token = i;
      pickMargin = Math.min(r - before, cum - r) / s;
      break;
    }
  }
  if (token < 0) {
    token = lastPositive;
    pickMargin = 0;
  }
  return { token, greedy: false, kept, threshold, thresholdMargin, pickMargin, z, keptMass: s };
}

/** Top-p sampling (see the definition at the top of this file): the chosen token id. */
export function sampleTopPRef(logits: ArrayLike<number>, opts: TopPOptions): number {
  return sampleTopPDetails(logits, opts).token;
}
