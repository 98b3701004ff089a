// Typed view of a LLaVA-Mini checkpoint: the contract between the checkpoint reader
// (which validates a Hugging Face folder into these types) and every model implementation.

/** Llama-3 rope_scaling {rope_type: "llama3"}. */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** The LLM (and the pre-fusion layers, which share its config). */
export interface LlamaConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
}

/** The CLIP vision tower (config.json "vision_config", or defaults of openai/clip-vit-large-patch14-336). */
export interface ClipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  layerNormEps: number;
  hiddenAct: 'quick_gelu' | 'gelu';
}

export type ProjectorType = 'linear' | 'mlp2x_gelu';

export interface LlavaMiniConfig {
  llm: LlamaConfig;
  vision: ClipVisionConfig;
  /** CLIP width fed to the projector and the compressor (mm_hidden_size). */
  mmHiddenSize: number;
  projectorType: ProjectorType;
  /** mm_vision_select_layer, e.g. -2: hidden_states[-2] = output of layer numLayers - 1. */
  visionSelectLayer: number;
  /** Number of CLIP encoder layers that actually run (and are loaded). */
  visionLayersUsed: number;
  visionSelectFeature: 'patch' | 'cls_patch';
  /** C: the compressor emits C*C tokens. */
  compressorSize: number;
  /** Compressor attention heads: width / 128 in the released code. */
  compressorHeads: number;
  prefusionLayerNum: number;
  imageAspectRatio: string;
  tokenizerModelMaxLength: number;
  bosTokenId: number;
  /** Generation stops on any of these. */
  eosTokenIds: number[];
}

export type DType = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'I8' | 'U32';

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
}

/** Read access to named weights, converted to f32 on demand; errors name the tensor. */
export interface WeightSource {
  readonly config: LlavaMiniConfig;
  has(name: string): boolean;
  info(name: string): TensorInfo;
  readF32(name: string): Promise<Float32Array>;
  /** Rows [start, start + count) of a 2-D tensor (so a multi-GB embedding never sits in memory whole). */
  readRowsF32?(name: string, start: number, count: number): Promise<Float32Array>;
}
