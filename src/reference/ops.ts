// Elementwise and row-wise building blocks of the CPU reference model.
// Conventions: row-major Float32Array, dims passed explicitly, every reduction accumulated in f64,
// results rounded to f32 once when stored. Every function is pure (returns a new array).

const TWO_OVER_SQRT_PI = 1.1283791670955126; // 2 / sqrt(pi)

/**
 * erf(x) to ~1e-16 relative accuracy (f64).
 * Uses erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_{n>=0} 2^n x^(2n+1) / (1*3*5*...*(2n+1)),
 * a series of positive terms (no cancellation) that converges for every x. Past |x| = 6, erf = ±1
 * to within 2e-17.
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax >= 6) return x > 0 ? 1 : -1;
  if (ax === 0) return x; // keeps the sign of -0
  const x2 = ax * ax;
  let term = ax; // n = 0: x / 1
  let sum = ax;
  for (let n = 1; n < 500; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  const r = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
  return x < 0 ? -r : r;
}

/** Exact GELU (PyTorch nn.GELU(), approximate='none'): x/2 * (1 + erf(x / sqrt(2))). */
export function geluScalar(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

export function sigmoidScalar(x: number): number {
  // Stable for large |x|.
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** CLIP's quick_gelu: x * sigmoid(1.702 x). */
export function quickGeluScalar(x: number): number {
  return x * sigmoidScalar(1.702 * x);
}

/** SiLU / swish: x * sigmoid(x). */
export function siluScalar(x: number): number {
  return x * sigmoidScalar(x);
}

function mapF32(x: Float32Array, f: (v: number) => number): Float32Array {
  const y = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = f(x[i]!);
  return y;
}

export function gelu(x: Float32Array): Float32Array {
  return mapF32(x, geluScalar);
}
export function quickGelu(x: Float32Array): Float32Array {
  return mapF32(x, quickGeluScalar);
}
export function silu(x: Float32Array): Float32Array {
  return mapF32(x, siluScalar);
}

export type Activation = 'gelu' | 'quick_gelu' | 'silu';

export function activation(kind: Activation, x: Float32Array): Float32Array {
  switch (kind) {
    case 'gelu':
      return gelu(x);
    case 'quick_gelu':
      return quickGelu(x);
    case 'silu':
      return silu(x);
  }
}

function checkLen(what: string, a: ArrayLike<number>, n: number): void {
  if (a.length !== n) throw new Error(`${what}: has ${a.length} values, expected ${n}`);
}

/**
 * LayerNorm over the last dim (biased variance, like torch): (x - mean) / sqrt(var + eps) * w + b.
 * x: [rows, dim]; weight, bias: [dim].
 */
export function layerNorm(
  x: Float32Array,
  rows: number,
  dim: number,
  weight: Float32Array,
  bias: Float32Array,
  eps: number,
): Float32Array {
  checkLen('layerNorm x', x, rows * dim);
  checkLen('layerNorm weight', weight, dim);
  checkLen('layerNorm bias', bias, dim);
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) s += x[o + i]!;
    const mean = s / dim;
    let v = 0;
    for (let i = 0; i < dim; i++) {
      const d = x[o + i]! - mean;
      v += d * d;
    }
    const inv = 1 / Math.sqrt(v / dim + eps);
    for (let i = 0; i < dim; i++) y[o + i] = (x[o + i]! - mean) * inv * weight[i]! + bias[i]!;
  }
  return y;
}

/** Llama RMSNorm (HF): weight * x / sqrt(mean(x^2) + eps). x: [rows, dim]; weight: [dim]. */
export function rmsNorm(x: Float32Array, rows: number, dim: number, weight: Float32Array, eps: number): Float32Array {
  checkLen('rmsNorm x', x, rows * dim);
  checkLen('rmsNorm weight', weight, dim);
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) s += x[o + i]! * x[o + i]!;
    const inv = 1 / Math.sqrt(s / dim + eps);
    for (let i = 0; i < dim; i++) y[o + i] = weight[i]! * (x[o + i]! * inv);
  }
  return y;
}

/** Softmax of one row of scores (max-subtracted), computed and returned in f64. Entries set to -Infinity get 0. */
export function softmax(scores: ArrayLike<number>): Float64Array {
  const n = scores.length;
  let m = -Infinity;
  for (let i = 0; i < n; i++) if (scores[i]! > m) m = scores[i]!;
  const p = new Float64Array(n);
  if (m === -Infinity) throw new Error('softmax: every entry is masked');
  let s = 0;
  for (let i = 0; i < n; i++) {
    const e = scores[i] === -Infinity ? 0 : Math.exp(scores[i]! - m);
    p[i] = e;
    s += e;
  }
  for (let i = 0; i < n; i++) p[i] = p[i]! / s;
  return p;
}

/** Row-wise softmax of x: [rows, dim], returned as f32. */
export function softmaxRows(x: Float32Array, rows: number, dim: number): Float32Array {
  checkLen('softmaxRows x', x, rows * dim);
  const y = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) y.set(softmax(x.subarray(r * dim, (r + 1) * dim)), r * dim);
  return y;
}

/** Elementwise a + b (same length). */
export function add(a: Float32Array, b: Float32Array): Float32Array {
  checkLen('add b', b, a.length);
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i]! + b[i]!;
  return y;
}

/** Elementwise a * b (same length). */
export function mul(a: Float32Array, b: Float32Array): Float32Array {
  checkLen('mul b', b, a.length);
  const y = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i]! * b[i]!;
  return y;
}

/** Index of the largest value; the lowest index wins ties. NaN never wins. */
export function argmax(x: ArrayLike<number>): number {
  let best = -1;
  let bestV = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (best < 0 || v > bestV) {
      if (Number.isNaN(v)) continue;
      best = i;
      bestV = v;
    }
  }
  if (best < 0) throw new Error('argmax: empty or all NaN');
  return best;
}

/** Rows [start, end) of a row-major [*, dim] matrix, copied. */
export function sliceRows(x: Float32Array, dim: number, start: number, end: number): Float32Array {
  return x.slice(start * dim, end * dim);
}

/** Concatenate row-major matrices that share the same width. */
export function concatRows(parts: Float32Array[]): Float32Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const y = new Float32Array(n);
  let o = 0;
  for (const p of parts) {
    y.set(p, o);
    o += p.length;
  }
  return y;
}
