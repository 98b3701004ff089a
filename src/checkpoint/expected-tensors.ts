// The one table of tensor names and shapes a LLaVA-Mini checkpoint has for a given config.
// The loader validates against it; the tiny-checkpoint generator writes exactly it.
import { visionPatchCount } from './config.ts';
import type { LlavaMiniConfig } from './types.ts';

export type TensorPart = 'vision' | 'projector' | 'compressor' | 'prefusion' | 'llm';

/** What a tensor is, for initialization (generator) and for readers who want to group them. */
export type TensorRole =
  | 'linear' // a [out, in] matrix (or the conv patch embedding)
  | 'bias'
  | 'norm_weight'
  | 'norm_bias'
  | 'embedding' // token embedding / lm_head rows
  | 'class_embedding'
  | 'position_embedding'
  | 'query' // compressor learned queries
  | 'sincos'; // compressor fixed 2-D sin-cos position table

export interface ExpectedTensor {
  name: string;
  shape: number[];
  part: TensorPart;
  role: TensorRole;
  /** Input width for 'linear' (fan-in), used for initialization scales. */
  fanIn?: number;
  /** False for tensors the real checkpoint has but inference never reads (last CLIP layers, post_layernorm). */
  used: boolean;
}

export const VISION_PREFIX = 'model.vision_tower.vision_tower.vision_model.';

export function clipLayerPrefix(i: number): string {
  return `${VISION_PREFIX}encoder.layers.${i}.`;
}
export function llamaLayerPrefix(i: number): string {
  return `model.layers.${i}.`;
}
export function prefusionLayerPrefix(i: number): string {
  return `model.prefusion_layers.${i}.`;
}

/**
 * Every tensor of the checkpoint, in a fixed order (vision, projector, compressor, pre-fusion, LLM).
 * Includes the CLIP layers at or beyond visionLayersUsed and post_layernorm, marked used = false.
 */
export function expectedTensorList(config: LlavaMiniConfig): ExpectedTensor[] {
  const out: ExpectedTensor[] = [];
  const add = (name: string, shape: number[], part: TensorPart, role: TensorRole, used = true, fanIn?: number): void => {
    out.push(fanIn === undefined ? { name, shape, part, role, used } : { name, shape, part, role, used, fanIn });
  };
  const lin = (prefix: string, outDim: number, inDim: number, part: TensorPart, bias: boolean, used = true): void => {
    add(`${prefix}.weight`, [outDim, inDim], part, 'linear', used, inDim);
    if (bias) add(`${prefix}.bias`, [outDim], part, 'bias', used);
  };
  const ln = (prefix: string, dim: number, part: TensorPart, bias: boolean, used = true): void => {
    add(`${prefix}.weight`, [dim], part, 'norm_weight', used);
    if (bias) add(`${prefix}.bias`, [dim], part, 'norm_bias', used);
  };

  // --- CLIP vision tower
  const v = config.vision;
  const D = v.hiddenSize;
  const P = v.patchSize;
  const vp = VISION_PREFIX;
  add(`${vp}embeddings.class_embedding`, [D], 'vision', 'class_embedding');
  add(`${vp}embeddings.patch_embedding.weight`, [D, v.numChannels, P, P], 'vision', 'linear', true, v.numChannels * P * P);
  add(`${vp}embeddings.position_embedding.weight`, [visionPatchCount(v) + 1, D], 'vision', 'position_embedding');
  ln(`${vp}pre_layrnorm`, D, 'vision', true);
  for (let i = 0; i < v.numLayers; i++) {
    const p = clipLayerPrefix(i);
    const used = i < config.visionLayersUsed;
    for (const proj of ['k_proj', 'v_proj', 'q_proj', 'out_proj']) lin(`${p}self_attn.${proj}`, D, D, 'vision', true, used);
    ln(`${p}layer_norm1`, D, 'vision', true, used);
    lin(`${p}mlp.fc1`, v.intermediateSize, D, 'vision', true, used);
    lin(`${p}mlp.fc2`, D, v.intermediateSize, 'vision', true, used);
    ln(`${p}layer_norm2`, D, 'vision', true, used);
  }
  ln(`${vp}post_layernorm`, D, 'vision', true, false);

  // --- projector
  const H = config.llm.hiddenSize;
  const mm = config.mmHiddenSize;
  if (config.projectorType === 'mlp2x_gelu') {
    lin('model.mm_projector.0', H, mm, 'projector', true);
    lin('model.mm_projector.2', H, H, 'projector', true);
  } else {
    lin('model.mm_projector', H, mm, 'projector', true);
  }

  // --- compressor (Resampler: C^2 queries of width mm, nn.MultiheadAttention, kv_proj = Identity)
  const C2 = config.compressorSize * config.compressorSize;
  add('model.compressor.query', [C2, mm], 'compressor', 'query');
  add('model.compressor.pos_embed', [C2, mm], 'compressor', 'sincos');
  add('model.compressor.attn.in_proj_weight', [3 * mm, mm], 'compressor', 'linear', true, mm);
  add('model.compressor.attn.in_proj_bias', [3 * mm], 'compressor', 'bias');
  lin('model.compressor.attn.out_proj', mm, mm, 'compressor', true);
  ln('model.compressor.ln_q', mm, 'compressor', true);
  ln('model.compressor.ln_kv', mm, 'compressor', true);

  // --- Llama decoder layers (pre-fusion, then the LLM)
  const l = config.llm;
  const decoder = (p: string, part: TensorPart): void => {
    lin(`${p}self_attn.q_proj`, l.numHeads * l.headDim, H, part, false);
    lin(`${p}self_attn.k_proj`, l.numKvHeads * l.headDim, H, part, false);
    lin(`${p}self_attn.v_proj`, l.numKvHeads * l.headDim, H, part, false);
    lin(`${p}self_attn.o_proj`, H, l.numHeads * l.headDim, part, false);
    lin(`${p}mlp.gate_proj`, l.intermediateSize, H, part, false);
    lin(`${p}mlp.up_proj`, l.intermediateSize, H, part, false);
    lin(`${p}mlp.down_proj`, H, l.intermediateSize, part, false);
    ln(`${p}input_layernorm`, H, part, false);
    ln(`${p}post_attention_layernorm`, H, part, false);
  };
  for (let i = 0; i < config.prefusionLayerNum; i++) decoder(prefusionLayerPrefix(i), 'prefusion');

  add('model.embed_tokens.weight', [l.vocabSize, H], 'llm', 'embedding');
  for (let i = 0; i < l.numLayers; i++) decoder(llamaLayerPrefix(i), 'llm');
  ln('model.norm', H, 'llm', false);
  if (!l.tieWordEmbeddings) add('lm_head.weight', [l.vocabSize, H], 'llm', 'embedding', true, H);
  return out;
}

/** name -> shape of every tensor the checkpoint has for this config (including unused CLIP layers). */
export function expectedTensors(config: LlavaMiniConfig): Map<string, number[]> {
  return new Map(expectedTensorList(config).map((t) => [t.name, t.shape]));
}

/** The tensors inference actually reads (the ones openCheckpoint requires). */
export function requiredTensors(config: LlavaMiniConfig): Map<string, number[]> {
  return new Map(expectedTensorList(config).filter((t) => t.used).map((t) => [t.name, t.shape]));
}
