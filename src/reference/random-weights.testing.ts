// A tiny LLaVA-Mini config and an in-memory WeightSource filled with seeded random tensors under the real
// checkpoint names. For tests of the reference model (and GPU kernels against it); independent of the checkpoint
// reader. The compressor's pos_embed holds the fixed sin-cos table, as in the real model.
import type { DType, LlavaMiniConfig, TensorInfo, WeightSource } from '../checkpoint/types.ts';
import { sincos2dPosEmbed } from '../checkpoint/sincos.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import { clipLayerPrefix, llamaLayerPrefix, prefusionLayerPrefix, VISION_PREFIX } from '../checkpoint/expected-tensors.ts';

/** Seeded uniform values in [lo, hi). */
export function randomUniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export interface TinyConfigOptions {
  compressorSize?: number;
  imageSize?: number;
  patchSize?: number;
  visionHidden?: number;
  visionLayers?: number;
  visionHeads?: number;
  hiddenAct?: 'quick_gelu' | 'gelu';
  llmHidden?: number;
  llmLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  vocabSize?: number;
  prefusionLayers?: number;
  compressorHeads?: number;
  projectorType?: 'linear' | 'mlp2x_gelu';
  tieWordEmbeddings?: boolean;
  selectFeature?: 'patch' | 'cls_patch';
  /** null: plain RoPE; default: llama3 scaling (factor 8, low 1, high 4, original 8192). */
  ropeScaling?: LlavaMiniConfig['llm']['ropeScaling'];
  tokenizerModelMaxLength?: number;
}

/**
 * A tiny config: image 28, patch 14 (4 patch tokens), CLIP width 16 (2 heads, 3 layers of which 2 run),
 * LLM width 32 (4 heads x 8, 2 KV heads), 2 pre-fusion + 2 LLM layers, vocab 300, BOS 1, stop ids [2].
 */
export function tinyConfig(o: TinyConfigOptions = {}): LlavaMiniConfig {
  const visionHidden = o.visionHidden ?? 16;
  const visionLayers = o.visionLayers ?? 3;
  const llmHidden = o.llmHidden ?? 32;
  const numHeads = o.numHeads ?? 4;
  return {
    llm: {
      hiddenSize: llmHidden,
      intermediateSize: llmHidden * 2,
      numLayers: o.llmLayers ?? 2,
      numHeads,
      numKvHeads: o.numKvHeads ?? 2,
      headDim: llmHidden / numHeads,
      vocabSize: o.vocabSize ?? 300,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling:
        o.ropeScaling === undefined
          ? { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }
          : o.ropeScaling,
      maxPositionEmbeddings: 131072,
      tieWordEmbeddings: o.tieWordEmbeddings ?? false,
    },
    vision: {
      hiddenSize: visionHidden,
      intermediateSize: visionHidden * 4,
      numLayers: visionLayers,
      numHeads: o.visionHeads ?? 2,
      imageSize: o.imageSize ?? 28,
      patchSize: o.patchSize ?? 14,
      numChannels: 3,
      layerNormEps: 1e-5,
      hiddenAct: o.hiddenAct ?? 'quick_gelu',
    },
    mmHiddenSize: visionHidden,
    projectorType: o.projectorType ?? 'mlp2x_gelu',
    visionSelectLayer: -2,
    visionLayersUsed: visionLayers - 1,
    visionSelectFeature: o.selectFeature ?? 'patch',
    compressorSize: o.compressorSize ?? 1,
    compressorHeads: o.compressorHeads ?? 2,
    prefusionLayerNum: o.prefusionLayers ?? 2,
    imageAspectRatio: 'pad',
    tokenizerModelMaxLength: o.tokenizerModelMaxLength ?? 2048,
    bosTokenId: 1,
    eosTokenIds: [2],
  };
}

interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

/** A WeightSource over a Map of f32 tensors. readF32 returns a copy. */
export class InMemoryWeights implements WeightSource {
  readonly tensors = new Map<string, StoredTensor>();

  constructor(readonly config: LlavaMiniConfig) {}

  set(name: string, shape: number[], data: Float32Array): void {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`${name}: ${data.length} values for shape [${shape.join(',')}]`);
    this.tensors.set(name, { shape: [...shape], data });
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`tensor not found: ${name}`);
    const dtype: DType = 'F32';
    return { name, dtype, shape: [...t.shape] };
  }

  async readF32(name: string): Promise<Float32Array> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`tensor not found: ${name}`);
    return t.data.slice();
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }
}

/**
 * Seeded random weights for `config` under the checkpoint's tensor names (every CLIP layer, used or not, and
 * post_layernorm, like the real checkpoint). Matrices are uniform in ±gain/sqrt(fanIn); norm weights 1 ± 0.2;
 * biases ±0.1; embeddings ±1 (position/class ±0.5); compressor query ±1; compressor pos_embed = sincos2d.
 */
export function randomWeights(config: LlavaMiniConfig, seed = 1): InMemoryWeights {
  const w = new InMemoryWeights(config);
  let counter = 0;
  const next = (): number => (seed * 1000003 + ++counter * 7919) >>> 0;
  const uni = (name: string, shape: number[], lo: number, hi: number): void => {
    w.set(name, shape, randomUniform(shape.reduce((a, b) => a * b, 1), next(), lo, hi));
  };
  const mat = (name: string, out: number, inDim: number, gain = 1.5, shape: number[] = [out, inDim]): void => {
    const a = gain / Math.sqrt(inDim);
    uni(name, shape, -a, a);
  };
  const bias = (name: string, n: number): void => uni(name, [n], -0.1, 0.1);
  const normW = (name: string, n: number): void => uni(name, [n], 0.8, 1.2);

  // CLIP
  const v = config.vision;
  const D = v.hiddenSize;
  const P = v.patchSize;
  const N = (v.imageSize / P) ** 2;
  mat(`${VISION_PREFIX}embeddings.patch_embedding.weight`, D, v.numChannels * P * P, 1.5, [D, v.numChannels, P, P]);
  uni(`${VISION_PREFIX}embeddings.class_embedding`, [D], -0.5, 0.5);
  uni(`${VISION_PREFIX}embeddings.position_embedding.weight`, [N + 1, D], -0.5, 0.5);
  normW(`${VISION_PREFIX}pre_layrnorm.weight`, D);
  bias(`${VISION_PREFIX}pre_layrnorm.bias`, D);
  for (let i = 0; i < v.numLayers; i++) {
    const p = clipLayerPrefix(i);
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      mat(`${p}self_attn.${proj}.weight`, D, D);
      bias(`${p}self_attn.${proj}.bias`, D);
    }
    normW(`${p}layer_norm1.weight`, D);
    bias(`${p}layer_norm1.bias`, D);
    normW(`${p}layer_norm2.weight`, D);
    bias(`${p}layer_norm2.bias`, D);
    mat(`${p}mlp.fc1.weight`, v.intermediateSize, D);
    bias(`${p}mlp.fc1.bias`, v.intermediateSize);
    mat(`${p}mlp.fc2.weight`, D, v.intermediateSize);
    bias(`${p}mlp.fc2.bias`, D);
  }
  normW(`${VISION_PREFIX}post_layernorm.weight`, D);
  bias(`${VISION_PREFIX}post_layernorm.bias`, D);

  // projector
  const H = config.llm.hiddenSize;
  const mm = config.mmHiddenSize;
  if (config.projectorType === 'mlp2x_gelu') {
    mat('model.mm_projector.0.weight', H, mm);
    bias('model.mm_projector.0.bias', H);
    mat('model.mm_projector.2.weight', H, H);
    bias('model.mm_projector.2.bias', H);
  } else {
    mat('model.mm_projector.weight', H, mm);
    bias('model.mm_projector.bias', H);
  }

  // compressor
  const C = config.compressorSize;
  uni('model.compressor.query', [C * C, mm], -1, 1);
  w.set('model.compressor.pos_embed', [C * C, mm], sincos2dPosEmbed(mm, C));
  mat('model.compressor.attn.in_proj_weight', 3 * mm, mm);
  bias('model.compressor.attn.in_proj_bias', 3 * mm);
  mat('model.compressor.attn.out_proj.weight', mm, mm);
  bias('model.compressor.attn.out_proj.bias', mm);
  normW('model.compressor.ln_q.weight', mm);
  bias('model.compressor.ln_q.bias', mm);
  normW('model.compressor.ln_kv.weight', mm);
  bias('model.compressor.ln_kv.bias', mm);

  // Llama layers
  const l = config.llm;
  const decoder = (p: string): void => {
    mat(`${p}self_attn.q_proj.weight`, l.numHeads * l.headDim, H);
    mat(`${p}self_attn.k_proj.weight`, l.numKvHeads * l.headDim, H);
    mat(`${p}self_attn.v_proj.weight`, l.numKvHeads * l.headDim, H);
    mat(`${p}self_attn.o_proj.weight`, H, l.numHeads * l.headDim);
    mat(`${p}mlp.gate_proj.weight`, l.intermediateSize, H);
    mat(`${p}mlp.up_proj.weight`, l.intermediateSize, H);
    mat(`${p}mlp.down_proj.weight`, H, l.intermediateSize);
    normW(`${p}input_layernorm.weight`, H);
    normW(`${p}post_attention_layernorm.weight`, H);
  };
  for (let i = 0; i < config.prefusionLayerNum; i++) decoder(prefusionLayerPrefix(i));
  uni('model.embed_tokens.weight', [l.vocabSize, H], -1, 1);
  for (let i = 0; i < l.numLayers; i++) decoder(llamaLayerPrefix(i));
  normW('model.norm.weight', H);
  if (!l.tieWordEmbeddings) mat('lm_head.weight', l.vocabSize, H, 3);
  return w;
}

/** Seeded random pixel values [3, S, S] in about the normalized range. */
export function randomPixelValues(config: LlavaMiniConfig, seed: number): Float32Array {
  const S = config.vision.imageSize;
  return randomUniform(3 * S * S, seed, -1.8, 2.1);
}
