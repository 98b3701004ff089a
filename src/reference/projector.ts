// The multimodal projector (spec section 3): mlp2x_gelu = Linear(mm -> H) + bias, exact GELU, Linear(H -> H) + bias;
// or linear = Linear(mm -> H) + bias. Applied to both the CLIP rows (G) and the compressed rows (Vc).
import type { WeightSource } from '../checkpoint/types.ts';
import { linear } from './linear.ts';
import { gelu } from './ops.ts';
import { readTensor } from './weights.ts';

export interface ProjectorWeights {
  type: 'linear' | 'mlp2x_gelu';
  inDim: number;
  outDim: number;
  w0: Float32Array;
  b0: Float32Array;
  /** mlp2x_gelu only. */
  w2?: Float32Array;
  b2?: Float32Array;
}

export async function loadProjector(src: WeightSource): Promise<ProjectorWeights> {
  const cfg = src.config;
  const mm = cfg.mmHiddenSize;
  const H = cfg.llm.hiddenSize;
  if (cfg.projectorType === 'linear') {
    return {
      type: 'linear',
      inDim: mm,
      outDim: H,
      w0: await readTensor(src, 'model.mm_projector.weight', [H, mm]),
      b0: await readTensor(src, 'model.mm_projector.bias', [H]),
    };
  }
  return {
    type: 'mlp2x_gelu',
    inDim: mm,
    outDim: H,
    w0: await readTensor(src, 'model.mm_projector.0.weight', [H, mm]),
    b0: await readTensor(src, 'model.mm_projector.0.bias', [H]),
    w2: await readTensor(src, 'model.mm_projector.2.weight', [H, H]),
    b2: await readTensor(src, 'model.mm_projector.2.bias', [H]),
  };
}

/** x [rows, mm] -> [rows, H] with preloaded weights. */
export function projectWith(w: ProjectorWeights, x: Float32Array, rows: number): Float32Array {
  const h = linear(x, rows, w.inDim, w.w0, w.outDim, w.b0);
  if (w.type === 'linear') return h;
  return linear(gelu(h), rows, w.outDim, w.w2!, w.outDim, w.b2!);
}

/** x [rows, mm] -> [rows, H]. */
export async function projector(weights: WeightSource, x: Float32Array, rows: number): Promise<Float32Array> {
  return projectWith(await loadProjector(weights), x, rows);
}
