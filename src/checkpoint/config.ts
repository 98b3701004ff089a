// config.json (LlavaLlamaForCausalLM style: Llama fields at the top level plus the mm_* fields) -> LlavaMiniConfig.
// Every problem is a one-line error starting with "config.json:".
import type { ClipVisionConfig, Llama3RopeScaling, LlavaMiniConfig, ProjectorType } from './types.ts';

/** openai/clip-vit-large-patch14-336, used when config.json has no "vision_config". */
export const CLIP_VIT_L_336: Readonly<ClipVisionConfig> = Object.freeze({
  hiddenSize: 1024,
  intermediateSize: 4096,
  numLayers: 24,
  numHeads: 16,
  imageSize: 336,
  patchSize: 14,
  numChannels: 3,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
});

/** Llama-3 stop ids added to the config's own eos ids (when inside the vocabulary). */
export const LLAMA3_STOP_IDS: readonly number[] = [128001, 128008, 128009];

/** Width of one compressor attention head in the released code (8 heads over 1024). */
export const COMPRESSOR_HEAD_DIM = 128;

type Json = Record<string, unknown>;

class Reader {
  constructor(
    readonly obj: Json,
    readonly where: string,
  ) {}

  private fail(key: string, msg: string): never {
    throw new Error(`${this.where}: "${key}" ${msg}`);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  private get(key: string): unknown {
    if (!this.has(key)) throw new Error(`${this.where}: missing "${key}"`);
    return this.obj[key];
  }

  int(key: string, def?: number, min = 1): number {
    if (!this.has(key) && def !== undefined) return def;
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(key, `must be an integer, got ${JSON.stringify(v)}`);
    if (v < min) this.fail(key, `must be >= ${min}, got ${v}`);
    return v;
  }

  /** An integer that may be negative (mm_vision_select_layer). */
  signedInt(key: string, def?: number): number {
    return this.int(key, def, Number.MIN_SAFE_INTEGER);
  }

  num(key: string, def?: number, positive = true): number {
    if (!this.has(key) && def !== undefined) return def;
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, `must be a number, got ${JSON.stringify(v)}`);
    if (positive && !(v > 0)) this.fail(key, `must be > 0, got ${v}`);
    return v;
  }

  bool(key: string, def: boolean): boolean {
    if (!this.has(key)) return def;
    const v = this.get(key);
    if (typeof v !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  str(key: string, def?: string): string {
    if (!this.has(key) && def !== undefined) return def;
    const v = this.get(key);
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** An integer or an array of integers (eos_token_id). */
  intList(key: string): number[] {
    const v = this.get(key);
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0 || !list.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0)) {
      this.fail(key, `must be a token id or a list of token ids, got ${JSON.stringify(v)}`);
    }
    return list as number[];
  }

  object(key: string): Json | null {
    if (!this.has(key)) return null;
    const v = this.obj[key];
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, `must be an object, got ${JSON.stringify(v)}`);
    return v as Json;
  }
}

function asObject(json: unknown, where: string): Json {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${where}: not a JSON object`);
  return json as Json;
}

function parseRopeScaling(r: Reader): Llama3RopeScaling | null {
  const raw = r.object('rope_scaling');
  if (!raw) return null;
  const s = new Reader(raw, `${r.where}: rope_scaling`);
  const type = s.has('rope_type') ? s.str('rope_type') : s.str('type', 'default');
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw new Error(`${r.where}: rope_scaling type "${type}" is not supported (only "llama3")`);
  }
  const out: Llama3RopeScaling = {
    factor: s.num('factor'),
    lowFreqFactor: s.num('low_freq_factor'),
    highFreqFactor: s.num('high_freq_factor'),
    originalMaxPositionEmbeddings: s.int('original_max_position_embeddings'),
  };
  if (!(out.highFreqFactor > out.lowFreqFactor)) {
    throw new Error(`${r.where}: rope_scaling high_freq_factor (${out.highFreqFactor}) must exceed low_freq_factor (${out.lowFreqFactor})`);
  }
  return out;
}

/** The CLIP vision config: a HF CLIPVisionConfig object (or a CLIPConfig's vision_config). */
export function parseClipVisionConfig(json: unknown, where = 'config.json: vision_config'): ClipVisionConfig {
  const r = new Reader(asObject(json, where), where);
  const act = r.str('hidden_act', CLIP_VIT_L_336.hiddenAct);
  if (act !== 'quick_gelu' && act !== 'gelu') {
    throw new Error(`${where}: hidden_act "${act}" is not supported (quick_gelu or gelu)`);
  }
  const v: ClipVisionConfig = {
    hiddenSize: r.int('hidden_size'),
    intermediateSize: r.int('intermediate_size'),
    numLayers: r.int('num_hidden_layers'),
    numHeads: r.int('num_attention_heads'),
    imageSize: r.int('image_size'),
    patchSize: r.int('patch_size'),
    numChannels: r.int('num_channels', CLIP_VIT_L_336.numChannels),
    layerNormEps: r.num('layer_norm_eps', CLIP_VIT_L_336.layerNormEps),
    hiddenAct: act,
  };
  if (v.hiddenSize % v.numHeads !== 0) {
    throw new Error(`${where}: hidden_size ${v.hiddenSize} is not divisible by num_attention_heads ${v.numHeads}`);
  }
  if (v.imageSize % v.patchSize !== 0) {
    throw new Error(`${where}: image_size ${v.imageSize} is not a multiple of patch_size ${v.patchSize}: the patches do not tile a square grid`);
  }
  return v;
}

/** Number of patch tokens of the vision tower ((image/patch)^2; 576 for CLIP-L/336). */
export function visionPatchCount(v: ClipVisionConfig): number {
  return (v.imageSize / v.patchSize) ** 2;
}

export interface ParseConfigOptions {
  /** Vision config to use when config.json has no "vision_config" (for example from a separate CLIP folder). */
  visionConfig?: ClipVisionConfig;
  /** Name used in errors; default "config.json". */
  where?: string;
}

export function parseLlavaMiniConfig(json: unknown, options: ParseConfigOptions = {}): LlavaMiniConfig {
  const where = options.where ?? 'config.json';
  const r = new Reader(asObject(json, where), where);

  // --- Llama
  const hiddenSize = r.int('hidden_size');
  const numHeads = r.int('num_attention_heads');
  const numKvHeads = r.int('num_key_value_heads', numHeads);
  if (!r.has('head_dim') && hiddenSize % numHeads !== 0) {
    throw new Error(`${where}: hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  }
  const headDim = r.int('head_dim', hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new Error(`${where}: num_attention_heads ${numHeads} is not divisible by num_key_value_heads ${numKvHeads}`);
  }
  if (headDim % 2 !== 0) throw new Error(`${where}: head_dim ${headDim} must be even (rotary embedding)`);
  const vocabSize = r.int('vocab_size');
  const act = r.str('hidden_act', 'silu');
  if (act !== 'silu') throw new Error(`${where}: hidden_act "${act}" is not supported (Llama uses silu)`);
  if (r.bool('attention_bias', false)) throw new Error(`${where}: attention_bias true is not supported (Llama has no attention biases)`);
  if (r.bool('mlp_bias', false)) throw new Error(`${where}: mlp_bias true is not supported (Llama has no MLP biases)`);
  const llm = {
    hiddenSize,
    intermediateSize: r.int('intermediate_size'),
    numLayers: r.int('num_hidden_layers'),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize,
    rmsNormEps: r.num('rms_norm_eps'),
    ropeTheta: r.num('rope_theta', 10000),
    ropeScaling: parseRopeScaling(r),
    maxPositionEmbeddings: r.int('max_position_embeddings', 2048),
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
  };

  // --- vision tower
  const visionJson = r.object('vision_config');
  const vision = visionJson
    ? parseClipVisionConfig(visionJson, `${where}: vision_config`)
    : { ...(options.visionConfig ?? CLIP_VIT_L_336) };
  if (visionJson && options.visionConfig) {
    const a = vision;
    const b = options.visionConfig;
    for (const k of Object.keys(a) as Array<keyof ClipVisionConfig>) {
      if (a[k] !== b[k]) {
        throw new Error(`${where}: vision_config ${k} = ${a[k]} disagrees with the separate CLIP folder's config (${b[k]})`);
      }
    }
  }

  // --- multimodal
  const mmHiddenSize = r.int('mm_hidden_size');
  if (mmHiddenSize !== vision.hiddenSize) {
    throw new Error(`${where}: mm_hidden_size ${mmHiddenSize} differs from the vision tower's hidden_size ${vision.hiddenSize}`);
  }
  const projector = r.str('mm_projector_type', 'linear');
  if (projector !== 'linear' && projector !== 'mlp2x_gelu') {
    throw new Error(`${where}: mm_projector_type "${projector}" is not supported (linear or mlp2x_gelu)`);
  }
  const projectorType: ProjectorType = projector;

  const visionSelectLayer = r.signedInt('mm_vision_select_layer');
  const nv = vision.numLayers;
  // hidden_states has nv + 1 entries: [embeddings (after pre_layrnorm), layer 1, ..., layer nv]
  if (visionSelectLayer < -(nv + 1) || visionSelectLayer > nv) {
    throw new Error(
      `${where}: mm_vision_select_layer ${visionSelectLayer} is out of range for a ${nv}-layer vision tower (${-(nv + 1)}..${nv})`,
    );
  }
  const visionLayersUsed = visionSelectLayer < 0 ? nv + 1 + visionSelectLayer : visionSelectLayer;
  const feature = r.str('mm_vision_select_feature', 'patch');
  if (feature !== 'patch' && feature !== 'cls_patch') {
    throw new Error(`${where}: mm_vision_select_feature "${feature}" is not supported (patch or cls_patch)`);
  }

  const c = r.obj['compressor_size'];
  if (c === undefined || c === null) throw new Error(`${where}: missing "compressor_size"`);
  if (typeof c !== 'number' || !Number.isSafeInteger(c) || c < 1) {
    throw new Error(`${where}: compressor_size must be a positive integer (the compressor emits a C x C grid of tokens), got ${JSON.stringify(c)}`);
  }
  const compressorSize = c;
  if (mmHiddenSize % COMPRESSOR_HEAD_DIM !== 0) {
    throw new Error(
      `${where}: mm_hidden_size ${mmHiddenSize} is not divisible by ${COMPRESSOR_HEAD_DIM}, the compressor's head width`,
    );
  }
  if (mmHiddenSize % 4 !== 0) {
    throw new Error(`${where}: mm_hidden_size ${mmHiddenSize} must be divisible by 4 (2-D sin-cos position embedding)`);
  }
  const compressorHeads = mmHiddenSize / COMPRESSOR_HEAD_DIM;
  const grid = Math.round(Math.sqrt(visionPatchCount(vision)));
  if (grid * grid !== visionPatchCount(vision)) {
    throw new Error(`${where}: the vision tower's ${visionPatchCount(vision)} patches do not form a square grid`);
  }

  const prefusionLayerNum = r.int('prefusion_layer_num', 4, 0);
  const imageAspectRatio = r.str('image_aspect_ratio', 'square');
  const tokenizerModelMaxLength = r.int('tokenizer_model_max_length', llm.maxPositionEmbeddings);

  const bosTokenId = r.int('bos_token_id', undefined, 0);
  // The config's own eos ids, then the Llama-3 stop ids that exist in this vocabulary.
  const eosTokenIds: number[] = [];
  for (const id of r.intList('eos_token_id')) if (!eosTokenIds.includes(id)) eosTokenIds.push(id);
  for (const id of LLAMA3_STOP_IDS) if (id < vocabSize && !eosTokenIds.includes(id)) eosTokenIds.push(id);

  return {
    llm,
    vision,
    mmHiddenSize,
    projectorType,
    visionSelectLayer,
    visionLayersUsed,
    visionSelectFeature: feature,
    compressorSize,
    compressorHeads,
    prefusionLayerNum,
    imageAspectRatio,
    tokenizerModelMaxLength,
    bosTokenId,
    eosTokenIds,
  };
}
