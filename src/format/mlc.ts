// The LLM in MLC's format (what WebLLM loads with a compiled Llama library): the parameter list of mlc-llm's
// LlamaForCausalLM under group quantization (q4f16_1, q4f32_1) or none (q0f16, q0f32), and mlc-chat-config.json.
//
// Parameter names and order follow mlc_llm/model/llama/llama_model.py (module registration order):
//   model.embed_tokens, then per layer self_attn.qkv_proj, self_attn.o_proj, mlp.gate_up_proj, mlp.down_proj,
//   input_layernorm, post_attention_layernorm; model.norm; lm_head (absent when tie_word_embeddings).
// llama_loader.py: qkv_proj = concat(q, k, v) and gate_up_proj = concat(gate, up) on the output axis.
// group_quantization.py: every nn.Linear and the embedding -> `.q_weight` (uint32) then `.q_scale` (model dtype);
// norms stay unquantized in the model dtype (float16 for q4f16_1, float32 for q4f32_1).
// no_quantization.py (q0f16 / q0f32): every parameter keeps its name (`.weight`) in the model dtype; the fused
// qkv_proj / gate_up_proj are the same concatenations.
// (mlc_llm convert_weight emits parameters in the source files' order instead; WebLLM loads by name.)
import { llamaLayerPrefix } from '../checkpoint/expected-tensors.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { LLAMA3_STOP_IDS } from '../checkpoint/config.ts';
import type { Job } from './jobs.ts';

export type MlcQuantization = 'q4f16_1' | 'q4f32_1' | 'q0f16' | 'q0f32';
export const MLC_QUANTIZATIONS: readonly MlcQuantization[] = ['q4f16_1', 'q4f32_1', 'q0f16', 'q0f32'];
/** What a conversion writes unless told otherwise (the 8B model's formats for users). */
export const MLC_DEFAULT_QUANTIZATIONS: readonly MlcQuantization[] = ['q4f16_1', 'q4f32_1'];

/** Whether the format is int4 (else unquantized). */
export const isMlcQ4 = (q: MlcQuantization): boolean => q.startsWith('q4');

/** The model's activation / norm dtype in a format: float16 for q4f16_1 and q0f16, float32 otherwise. */
export const mlcModelDType = (q: MlcQuantization): 'float16' | 'float32' => (q === 'q4f16_1' || q === 'q0f16' ? 'float16' : 'float32');

/** The format a device runs: q4f16_1 with shader-f16, q4f32_1 (f32 scales and activations) without. */
export function mlcQuantizationFor(hasF16: boolean): MlcQuantization {
  return hasF16 ? 'q4f16_1' : 'q4f32_1';
}

/**
 * The weight index file. WebLLM 0.2.79 (pinned) fetches `ndarray-cache.json`; later tvmjs renamed it
 * `tensor-cache.json` (same content).
 */
export const MLC_INDEX_FILE = 'ndarray-cache.json';

/** The prebuilt WebLLM library this output is for: Llama-3_1-8B-Instruct-<q>-ctx4k_cs1k-webgpu.wasm. */
export const MLC_CONTEXT_WINDOW = 4096;
export const MLC_PREFILL_CHUNK = 1024;

/** mlc_llm gen_config.py TOKENIZER_FILES: copied when present, listed in this order. */
export const MLC_TOKENIZER_FILES = ['tokenizer.model', 'tokenizer.json', 'vocab.json', 'merges.txt', 'added_tokens.json', 'tokenizer_config.json'];

/** The checkpoint's LLM matrices that MLC quantizes: [HF source names, rows, cols, MLC name]. */
export function mlcQuantizedTensors(config: LlavaMiniConfig): Array<{ sources: string[]; rows: number; cols: number; mlc: string }> {
  const l = config.llm;
  const H = l.hiddenSize;
  const out: Array<{ sources: string[]; rows: number; cols: number; mlc: string }> = [];
  out.push({ sources: ['model.embed_tokens.weight'], rows: l.vocabSize, cols: H, mlc: 'model.embed_tokens' });
  for (let i = 0; i < l.numLayers; i++) {
    const p = llamaLayerPrefix(i);
    out.push({
      sources: ['q_proj', 'k_proj', 'v_proj'].map((s) => `${p}self_attn.${s}.weight`),
      rows: (l.numHeads + 2 * l.numKvHeads) * l.headDim,
      cols: H,
      mlc: `${p}self_attn.qkv_proj`,
    });
    out.push({ sources: [`${p}self_attn.o_proj.weight`], rows: H, cols: l.numHeads * l.headDim, mlc: `${p}self_attn.o_proj` });
    out.push({ sources: [`${p}mlp.gate_proj.weight`, `${p}mlp.up_proj.weight`], rows: 2 * l.intermediateSize, cols: H, mlc: `${p}mlp.gate_up_proj` });
    out.push({ sources: [`${p}mlp.down_proj.weight`], rows: H, cols: l.intermediateSize, mlc: `${p}mlp.down_proj` });
  }
  if (!l.tieWordEmbeddings) out.push({ sources: ['lm_head.weight'], rows: l.vocabSize, cols: H, mlc: 'lm_head' });
  return out;
}

/** Every MLC parameter of the LLM, in MLC's module order. */
export function mlcJobs(config: LlavaMiniConfig, quantization: MlcQuantization): Job[] {
  const l = config.llm;
  const dtype = mlcModelDType(quantization);
  const scaleDType = dtype === 'float16' ? 'f16' : 'f32';
  const normDType = dtype;
  const quantized = new Map(mlcQuantizedTensors(config).map((t) => [t.mlc, t]));
  const q4 = (mlc: string): Job => {
    const t = quantized.get(mlc)!;
    if (!isMlcQ4(quantization)) return { kind: 'dense', sources: t.sources, rows: t.rows, cols: t.cols, dtype, output: `${mlc}.weight` };
    return { kind: 'q4', sources: t.sources, rows: t.rows, cols: t.cols, scaleDType, qWeight: `${mlc}.q_weight`, qScale: `${mlc}.q_scale` };
  };
  const norm = (name: string): Job => ({ kind: 'cast', source: name, shape: [l.hiddenSize], dtype: normDType, output: name });
  const jobs: Job[] = [q4('model.embed_tokens')];
  for (let i = 0; i < l.numLayers; i++) {
    const p = llamaLayerPrefix(i);
    jobs.push(q4(`${p}self_attn.qkv_proj`), q4(`${p}self_attn.o_proj`), q4(`${p}mlp.gate_up_proj`), q4(`${p}mlp.down_proj`));
    jobs.push(norm(`${p}input_layernorm.weight`), norm(`${p}post_attention_layernorm.weight`));
  }
  jobs.push(norm('model.norm.weight'));
  if (!l.tieWordEmbeddings) jobs.push(q4('lm_head'));
  return jobs;
}

/** mlc_llm conversation_template/llama.py "llama-3_1", serialized as Conversation.to_json_dict() does. */
export function llama31ConvTemplate(): Record<string, unknown> {
  return {
    name: 'llama-3_1',
    system_template: '<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>',
    system_message: 'You are a helpful, respectful and honest assistant.',
    system_prefix_token_ids: [128000],
    add_role_after_system_message: true,
    roles: { user: '<|start_header_id|>user', assistant: '<|start_header_id|>assistant', tool: '<|start_header_id|>ipython' },
    role_templates: { user: '{user_message}', assistant: '{assistant_message}', tool: '{tool_message}' },
    messages: [],
    seps: ['<|eot_id|>'],
    role_content_sep: '<|end_header_id|>\n\n',
    role_empty_sep: '<|end_header_id|>\n\n',
    stop_str: [],
    stop_token_ids: [...LLAMA3_STOP_IDS],
    function_string: '',
    use_function_calling: false,
  };
}

export interface MlcChatConfigInput {
  config: LlavaMiniConfig;
  quantization: MlcQuantization;
  /** generation_config.json, when the checkpoint has one (temperature / top_p). */
  generationConfig: object | null;
  /** The tokenizer files copied next to it. */
  tokenizerFiles: string[];
  /** tokenizer.json's "decoder" type: ByteLevel -> byte_level (Llama-3). */
  tokenizerDecoderType: string | null;
}

function num(o: object | null, key: string): number | null {
  const v = o ? (o as Record<string, unknown>)[key] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * mlc-chat-config.json: the fields of mlc_llm protocol/mlc_chat_config.py (MLCChatConfig), model_config = the
 * fields of LlamaConfig (rope_theta is `position_embedding_base` there), ctx4k_cs1k sizes.
 */
export function mlcChatConfig(input: MlcChatConfigInput): Record<string, unknown> {
  const { config, quantization } = input;
  const l = config.llm;
  const rs = l.ropeScaling;
  const modelConfig = {
    hidden_size: l.hiddenSize,
    intermediate_size: l.intermediateSize,
    num_attention_heads: l.numHeads,
    num_hidden_layers: l.numLayers,
    rms_norm_eps: l.rmsNormEps,
    vocab_size: l.vocabSize,
    tie_word_embeddings: l.tieWordEmbeddings,
    position_embedding_base: l.ropeTheta,
    rope_scaling: rs
      ? {
          factor: rs.factor,
          high_freq_factor: rs.highFreqFactor,
          low_freq_factor: rs.lowFreqFactor,
          original_max_position_embeddings: rs.originalMaxPositionEmbeddings,
          rope_type: 'llama3',
        }
      : null,
    context_window_size: MLC_CONTEXT_WINDOW,
    prefill_chunk_size: MLC_PREFILL_CHUNK,
    num_key_value_heads: l.numKvHeads,
    head_dim: l.headDim,
    tensor_parallel_shards: 1,
    pipeline_parallel_stages: 1,
    max_batch_size: 80,
    disaggregation: false,
  };
  // generation_config.json's sampling defaults where it has them; Llama-3.1-Instruct's (0.6, 0.9) otherwise.
  const sampling = (input.generationConfig as { do_sample?: unknown } | null)?.do_sample === false ? null : input.generationConfig;
  const eos = config.eosTokenIds.length === 1 ? config.eosTokenIds[0]! : [...config.eosTokenIds];
  return {
    version: '0.1.0',
    model_type: 'llama',
    quantization,
    model_config: modelConfig,
    vocab_size: l.vocabSize,
    active_vocab_size: l.vocabSize,
    context_window_size: MLC_CONTEXT_WINDOW,
    sliding_window_size: -1,
    prefill_chunk_size: MLC_PREFILL_CHUNK,
    attention_sink_size: -1,
    tensor_parallel_shards: 1,
    pipeline_parallel_stages: 1,
    temperature: num(sampling, 'temperature') ?? 0.6,
    presence_penalty: 0.0,
    frequency_penalty: 0.0,
    repetition_penalty: 1.0,
    top_p: num(sampling, 'top_p') ?? 0.9,
    tokenizer_files: [...input.tokenizerFiles],
    tokenizer_info: {
      token_postproc_method: input.tokenizerDecoderType === 'ByteLevel' ? 'byte_level' : 'byte_fallback',
      prepend_space_in_encode: false,
      strip_space_in_decode: false,
    },
    conv_template: llama31ConvTemplate(),
    pad_token_id: 0,
    bos_token_id: config.bosTokenId,
    eos_token_id: eos,
  };
}
