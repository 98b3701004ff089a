// RoPE inverse frequencies with Llama-3 scaling (spec section 4), the engine's copy: the GPU's cos/sin table is
// built from these. src/reference/rope.ts has its own; keep the two apart so a slip shows up as a parity failure.
import type { LlamaConfig } from '../checkpoint/types.ts';

/**
 * theta^(-2i/d) for i < d/2 in f64, rescaled by band (Llama-3: keep wavelengths under orig/high, divide those over
 * orig/low by `factor`, blend linearly in between), rounded to f32 as PyTorch's inv_freq buffer is.
 */
export function ropeInverseFrequencies(cfg: Pick<LlamaConfig, 'headDim' | 'ropeTheta' | 'ropeScaling'>): Float32Array {
  const { headDim: d, ropeTheta: theta, ropeScaling: s } = cfg;
  if (!Number.isInteger(d) || d <= 0 || d % 2 !== 0) throw new Error(`ropeInverseFrequencies: bad head dim ${d}`);
  const scaled = (f: number): number => {
    if (!s) return f;
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < s.originalMaxPositionEmbeddings / s.highFreqFactor) return f;
    if (wavelen > s.originalMaxPositionEmbeddings / s.lowFreqFactor) return f / s.factor;
    const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return ((1 - smooth) * f) / s.factor + smooth * f;
  };
  return Float32Array.from({ length: d / 2 }, (_, i) => scaled(1 / Math.pow(theta, (2 * i) / d)));
}
