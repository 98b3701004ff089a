// FLOPs of each stage from the model's shapes (a multiply-add = 2 FLOPs): matrix products, plus attention's
// Q.K and P.V. Norms, activations and softmax are left out (a few per element, far below the matrices).
import type { LlavaMiniConfig } from '../../src/checkpoint/types.ts';
import { visionPatchCount } from '../../src/checkpoint/config.ts';

const mm = (m: number, k: number, n: number) => 2 * m * k * n;

/** `rows` new rows through one Llama layer after `past` cached rows (causal: row i sees past + i + 1 keys). */
export function llamaLayerFlops(cfg: LlavaMiniConfig, rows: number, past: number): number {
  const l = cfg.llm;
  const H = l.hiddenSize;
  const q = l.numHeads * l.headDim;
  const kv = l.numKvHeads * l.headDim;
  const keys = rows * past + (rows * (rows + 1)) / 2;
  return mm(rows, H, q + 2 * kv) + mm(rows, q, H) + mm(rows, H, 2 * l.intermediateSize) + mm(rows, l.intermediateSize, H) + 2 * 2 * l.numHeads * l.headDim * keys;
}

/** LLM prefill of `rows` rows after `past`, with the lm_head on the last row (what time to first token pays). */
export function llmPrefillFlops(cfg: LlavaMiniConfig, rows: number, past = 0): number {
  return cfg.llm.numLayers * llamaLayerFlops(cfg, rows, past) + mm(1, cfg.llm.hiddenSize, cfg.llm.vocabSize);
}

/** One decode step at context `past`. */
export function decodeFlops(cfg: LlavaMiniConfig, past: number): number {
  return llmPrefillFlops(cfg, 1, past);
}

/** CLIP: patch embedding and the layers that run, over N + 1 rows. */
export function clipFlops(cfg: LlavaMiniConfig): number {
  const v = cfg.vision;
  const n = visionPatchCount(v);
  const rows = n + 1;
  const D = v.hiddenSize;
  const layer = mm(rows, D, 4 * D) + mm(rows, D, 2 * v.intermediateSize) + 2 * 2 * rows * rows * D;
  return mm(n, v.numChannels * v.patchSize * v.patchSize, D) + cfg.visionLayersUsed * layer;
}

/** The projector (mlp2x_gelu or linear) over `rows` rows. */
export function projectorFlops(cfg: LlavaMiniConfig, rows: number): number {
  const H = cfg.llm.hiddenSize;
  return cfg.projectorType === 'mlp2x_gelu' ? mm(rows, cfg.mmHiddenSize, H) + mm(rows, H, H) : mm(rows, cfg.mmHiddenSize, H);
}

/** The compressor: C^2 queries cross-attending to the N CLIP rows. */
export function compressorFlops(cfg: LlavaMiniConfig): number {
  const n = visionPatchCount(cfg.vision);
  const c2 = cfg.compressorSize ** 2;
  const D = cfg.mmHiddenSize;
  return mm(c2, D, D) + mm(n, D, 2 * D) + 2 * 2 * c2 * n * D + mm(c2, D, D);
}

/** Pre-fusion: the N + C^2 vision rows once per image, then `textRows` text rows after them. */
export function prefusionFlops(cfg: LlavaMiniConfig, textRows: number): { vision: number; text: number } {
  const visionRows = visionPatchCount(cfg.vision) + cfg.compressorSize ** 2;
  return {
    vision: cfg.prefusionLayerNum * llamaLayerFlops(cfg, visionRows, 0),
    text: cfg.prefusionLayerNum * llamaLayerFlops(cfg, textRows, visionRows),
  };
}

/** "2.50x faster" / "1.52x slower" for a speed-up ratio (baseline time / ours). */
export function speedWords(speedup: number): string {
  return speedup >= 1 ? `${speedup.toFixed(2)}x faster` : `${(1 / speedup).toFixed(2)}x slower`;
}

/** "68.0% fewer FLOPs" / "7.7% more FLOPs" for a FLOP ratio (ours / baseline). */
export function flopsWords(ratio: number): string {
  return ratio <= 1 ? `${(100 * (1 - ratio)).toFixed(1)}% fewer FLOPs` : `${(100 * (ratio - 1)).toFixed(1)}% more FLOPs`;
}
