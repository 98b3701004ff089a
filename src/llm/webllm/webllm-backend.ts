// The LlmBackend over a WebLLM (@mlc-ai/web-llm 0.2.86, pinned) model loaded in the same worker: Llama-3.1-8B
// runs on WebLLM's compiled library, fed with our fused embedding rows (spec sections 5-6) straight from the
// engine's GPUBuffer on the device WebLLM created (pipeline.tvm.lib.webGPUContext.device: the engine's kernels
// must run on that device too).
//
//   prefill(input, rows)  our rows -> WebLLM's KV cache (EmbeddingPrefill: convert kernel + WebLLM's forward),
//                         the last chunk's logits kept
//   generate()            WebLLM's own first-token sampling, stop tokens, decode loop, detokenization and
//                         statistics, started through the pipeline's public step API; the prefill step gets our
//                         logits through a hook on the pipeline INSTANCE's forwardPrefill
//   rollback(length)      pops KV rows (multi-turn: back to the end of the previous prompt)
//
// WebLLM internals relied on, as verified in 0.2.86 lib/index.js (line numbers of that file). All of them are
// checked by webllm-backend.test.ts against the installed package's source, so an upgrade that renames or
// reshapes them fails a test:
// - MLCEngine.loadedModelIdToPipeline (Map model id -> LLMChatPipeline, set in reloadInternal line 18328);
//   in a worker, WebWorkerMLCEngineHandler.engine (line 19248) is that MLCEngine. LLMChatPipeline is not
//   exported: its members are reached on the instance.
// - LLMChatPipeline.samplePrefillStep(inp, msgRole, inpRoleStr, genConfig) (12299): resets the round's state
//   (outputIds, stats: resetGenerationRoundState, 12162), calls `this.forwardPrefill(inp, msgRole, inpRoleStr,
//   genConfig)` -> {logits, promptLen, promptTokenIds, assistantPrefixTokenIds}, syncs, samples the first token
//   from `logits` with WebLLM's sampler (sampleFromRawLogits: temperature, top_p, penalties), disposes `logits`,
//   and adds promptLen to the prefill statistics. Our hook (an own property `forwardPrefill` on the instance,
//   shadowing the prototype's 12347) returns the logits of our prefill and promptLen = our rows; it keeps WebLLM's
//   Conversation consistent the way the original does (appendMessage + appendReplyHeader, so finishReply at the
//   stop works), after reset() so it always holds just this turn.
// - commitSampledStep(step, genConfig) (12604) -> {textDelta, stopped, finishReason}: processNextToken (12516)
//   stops on `this.stopTokens` (not pushed to outputIds), on genConfig.max_tokens, on the context window.
//   We set the instance's `stopTokens` field to our stop ids for each answer.
// - sampleDecodeStep(genConfig) (12462): feeds outputIds[-1] through forwardDecodeToken -> embedAndForward (one
//   row, filledKVCacheLength += 1), samples, adds decode statistics. stopped() (12037), triggerStop() (12500:
//   finishReason "abort", what MLCEngine does on interruptGenerate()), getFinishReason(), getMessage(),
//   setSeed() (12132), getCurRound{Prefill,Decoding}Total{Tokens,Time}(), getCurRoundCompletionTotalTokens():
//   the numbers MLCEngine.makeStreamUsageChunk (18477) turns into `usage.extra`, computed here the same way.
// - The KV cache bookkeeping of embedding-prefill.ts (its header lists those members).
//
// Why not engine.chat.completions.create(): MLCEngine.preparePrefillInput (19072) calls pipeline.resetChat()
// (clears the KV cache, filledKVCacheLength = 0) whenever the request's earlier messages do not match the
// pipeline's Conversation, when there are none, or after an "abort" / "length" finish; our cache reuse across
// turns would be lost. So the backend drives the pipeline's step API as MLCEngine._generate (18370) does, and
// an AbortSignal replaces interruptGenerate() (same effect: triggerStop() between decode steps). The engine's
// per-model lock (loadedModelIdToLock) is not taken: nothing else may use this model while it answers for us.
//
// Not verifiable on this machine (no model library, no network): that the stock library's prefill accepts our
// tensors (it does for WebLLM's own embed output of the same shape and dtype), that kv_state_popn behaves as
// TVM's PopN, real timings. Everything else runs in tests against a fake pipeline on a real WebGPU device.
import type { GenerateOptions, GenerateResult, GenerateTimings, LlmBackend, PrefillOptions } from '../llm-backend.ts';
import { EmbeddingPrefill, type ModelDtype, type PipelineForwardState, type TvmTensor } from './embedding-prefill.ts';

/** The subset of WebLLM's GenerationConfig we pass to its sampler. */
export interface WebLlmGenConfig {
  temperature: number;
  top_p: number;
  repetition_penalty: number;
  frequency_penalty: number;
  presence_penalty: number;
  max_tokens: number;
}

/** What LLMChatPipeline.forwardPrefill resolves to (0.2.86). */
export interface ForwardPrefillResult {
  logits: TvmTensor;
  promptLen: number;
  promptTokenIds: number[] | undefined;
  assistantPrefixTokenIds: number[];
}

export interface WebLlmSampledStep {
  tokenId: number;
}

export interface WebLlmCommittedStep {
  textDelta: string;
  stopped: boolean;
  finishReason?: string;
}

/** Exactly the LLMChatPipeline members the backend uses besides the forward state (0.2.86). */
export interface WebLlmPipeline extends PipelineForwardState {
  forwardPrefill(inp: unknown, msgRole: string, inpRoleStr: string | undefined, genConfig: unknown): Promise<ForwardPrefillResult>;
  conversation: { reset(): void; appendMessage(role: string, message: unknown, roleName?: string): void; appendReplyHeader(role: string): void };
  stopTokens: number[];
  samplePrefillStep(inp: string, msgRole: string, inpRoleStr?: string, genConfig?: WebLlmGenConfig): Promise<WebLlmSampledStep>;
  sampleDecodeStep(genConfig?: WebLlmGenConfig): Promise<WebLlmSampledStep>;
  commitSampledStep(step: WebLlmSampledStep, genConfig?: WebLlmGenConfig): WebLlmCommittedStep;
  stopped(): boolean;
  triggerStop(): void;
  getFinishReason(): string | undefined;
  getMessage(): string;
  setSeed(seed: number): void;
  getCurRoundPrefillTotalTokens(): number;
  getCurRoundPrefillTotalTime(): number;
  getCurRoundDecodingTotalTokens(): number;
  getCurRoundDecodingTotalTime(): number;
  getCurRoundCompletionTotalTokens(): number;
}

/** The pipeline methods the backend calls or replaces (the test checks each against the real prototype). */
export const PIPELINE_METHODS = [
  'forwardPrefill',
  'samplePrefillStep',
  'sampleDecodeStep',
  'commitSampledStep',
  'stopped',
  'triggerStop',
  'getFinishReason',
  'getMessage',
  'setSeed',
  'getCurRoundPrefillTotalTokens',
  'getCurRoundPrefillTotalTime',
  'getCurRoundDecodingTotalTokens',
  'getCurRoundDecodingTotalTime',
  'getCurRoundCompletionTotalTokens',
  'getActiveKVStates',
  'invokePrefill',
  'invokeDecode',
] as const;

/** The pipeline fields the backend reads or writes (assigned in LLMChatPipeline's constructor). */
export const PIPELINE_FIELDS = [
  'tvm',
  'device',
  'kvCache',
  'rnnState',
  'fKVCacheBeginForward',
  'fKVCacheEndForward',
  'filledKVCacheLength',
  'prefillChunkSize',
  'contextWindowSize',
  'slidingWindowSize',
  'config',
  'conversation',
  'stopTokens',
] as const;

/** The placeholder user message WebLLM's Conversation records for a turn (never tokenized: our rows are the prompt). */
export const TURN_PLACEHOLDER = '<llava-mini fused prompt>';

/** MLCEngine, or the WebWorkerMLCEngineHandler holding it. */
export type WebLlmEngineLike = { loadedModelIdToPipeline: Map<string, unknown> } | { engine: { loadedModelIdToPipeline: Map<string, unknown> } };

/** The loaded model's LLMChatPipeline (MLCEngine.loadedModelIdToPipeline, private in the types). */
export function pipelineOf(engine: WebLlmEngineLike, modelId: string): WebLlmPipeline {
  const mlc = 'engine' in engine ? engine.engine : engine;
  const map = mlc.loadedModelIdToPipeline;
  if (!(map instanceof Map)) throw new Error('this WebLLM engine has no loadedModelIdToPipeline map (WebLLM version changed?)');
  const p = map.get(modelId);
  if (!p) throw new Error(`WebLLM has no loaded model "${modelId}" (loaded: ${[...map.keys()].join(', ') || 'none'})`);
  for (const m of PIPELINE_METHODS) {
    if (typeof (p as Record<string, unknown>)[m] !== 'function') throw new Error(`WebLLM pipeline of "${modelId}" has no method ${m} (WebLLM version changed?)`);
  }
  return p as WebLlmPipeline;
}

/** WebLLM's `usage` of a streamed answer (makeStreamUsageChunk, 0.2.86 line 18477), from the pipeline's round statistics. */
export interface WebLlmUsage {
  prompt_tokens: number;
  completion_tokens: number;
  extra: {
    e2e_latency_s: number;
    prefill_tokens_per_s: number;
    decode_tokens_per_s: number;
    time_to_first_token_s: number;
    time_per_output_token_s: number;
  };
}

/** The usage WebLLM would report for the pipeline's current round (NaN rates of empty rounds become 0). */
export function usageOf(p: WebLlmPipeline, e2eSeconds: number): WebLlmUsage {
  const rate = (tokens: number, seconds: number) => (seconds > 0 ? tokens / seconds : 0);
  const prefillTime = p.getCurRoundPrefillTotalTime();
  const decodeTokens = p.getCurRoundDecodingTotalTokens();
  const decodeTime = p.getCurRoundDecodingTotalTime();
  return {
    prompt_tokens: p.getCurRoundPrefillTotalTokens(),
    completion_tokens: p.getCurRoundCompletionTotalTokens(),
    extra: {
      e2e_latency_s: e2eSeconds,
      prefill_tokens_per_s: rate(p.getCurRoundPrefillTotalTokens(), prefillTime),
      decode_tokens_per_s: rate(decodeTokens, decodeTime),
      time_to_first_token_s: prefillTime,
      time_per_output_token_s: decodeTokens > 0 ? decodeTime / decodeTokens : 0,
    },
  };
}

/**
 * Our per-answer timings from WebLLM's usage: WebLLM's time to first token covers only sampling the first token
 * (the rows were prefilled by prefill() before its prefill step), so our prefill wall time is added.
 */
export function timingsFromUsage(usage: WebLlmUsage, prefillMs: number): GenerateTimings {
  const decodeMs = usage.extra.time_per_output_token_s * 1000 * Math.max(0, usage.completion_tokens - 1);
  return {
    prefillMs,
    decodeMs,
    tokensPerSecond: usage.extra.decode_tokens_per_s,
    firstTokenMs: prefillMs + usage.extra.time_to_first_token_s * 1000,
  };
}

/** How WebLLM's finish reason maps to ours. */
export function stoppedOf(finishReason: string | undefined): GenerateResult['stopped'] {
  if (finishReason === 'length') return 'length';
  if (finishReason === 'abort') return 'aborted';
  return 'eos';
}

/** KV cache bytes of the model (K and V of every layer for the whole context window), from mlc-chat-config's model_config. */
export function kvCacheBytes(modelConfig: Record<string, unknown> | undefined, contextWindow: number, dtype: ModelDtype): number {
  const num = (k: string) => (typeof modelConfig?.[k] === 'number' ? (modelConfig[k] as number) : NaN);
  const layers = num('num_hidden_layers');
  const kvHeads = num('num_key_value_heads');
  const headDim = Number.isFinite(num('head_dim')) ? num('head_dim') : num('hidden_size') / num('num_attention_heads');
  const bytes = 2 * layers * kvHeads * headDim * contextWindow * (dtype === 'float16' ? 2 : 4);
  return Number.isFinite(bytes) ? bytes : 0;
}

export interface WebLlmBackendOptions {
  /** Hidden size of our LLM input rows. */
  hidden: number;
  /** Default from the model's quantization. */
  dtype?: ModelDtype;
}

export class WebLlmBackend implements LlmBackend {
  /** Logits of the last prefill, waiting for generate() (handed to WebLLM's sampler, which disposes them). */
  private pending: TvmTensor | null = null;
  /** Rows prefilled since the last generate() (WebLLM's prompt_tokens). */
  private pendingRows = 0;
  private lastPrefillMs = 0;
  private usage: WebLlmUsage | null = null;
  private text = '';

  /** The model's own stop tokens (its conv template's), generate()'s default. */
  readonly defaultStopIds: readonly number[];

  private constructor(
    readonly pipeline: WebLlmPipeline,
    readonly rows: EmbeddingPrefill,
  ) {
    this.defaultStopIds = [...pipeline.stopTokens];
  }

  /** Hooks the pipeline's prefill step (one backend per pipeline; destroy() unhooks it). */
  static async attach(pipeline: WebLlmPipeline, opts: WebLlmBackendOptions): Promise<WebLlmBackend> {
    if (Object.prototype.hasOwnProperty.call(pipeline, 'forwardPrefill')) throw new Error('this WebLLM pipeline is already hooked (one WebLlmBackend per pipeline)');
    const rows = await EmbeddingPrefill.create(pipeline, opts);
    const backend = new WebLlmBackend(pipeline, rows);
    const hook: WebLlmPipeline['forwardPrefill'] = (inp, msgRole, inpRoleStr) => backend.forwardPrefill(inp, msgRole, inpRoleStr);
    Object.defineProperty(pipeline, 'forwardPrefill', { value: hook, configurable: true, writable: true });
    return backend;
  }

  /** The GPUDevice WebLLM created: the engine's buffers and kernels must live on it. */
  get device(): GPUDevice {
    return this.rows.device;
  }

  get capacity(): number {
    return this.rows.capacity;
  }

  get length(): number {
    return this.rows.length;
  }

  /** WebLLM's detokenized answer of the last generate() (its stop strings and tokens removed). */
  get lastText(): string {
    return this.text;
  }

  /** WebLLM's `usage` of the last generate(). */
  get lastUsage(): WebLlmUsage | null {
    return this.usage;
  }

  async prefill(input: GPUBuffer, rows: number, opts: PrefillOptions = {}): Promise<number> {
    const t0 = performance.now();
    this.dropPending();
    const logits = await this.rows.run(input, rows, opts);
    this.pending = logits;
    this.pendingRows += rows;
    this.lastPrefillMs = performance.now() - t0;
    return this.lastPrefillMs;
  }

  async generate(opts: GenerateOptions): Promise<GenerateResult> {
    const p = this.pipeline;
    if (!this.pending) throw new Error('WebLlmBackend.generate: prefill the prompt (or the next turn) first');
    if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) throw new Error(`WebLlmBackend.generate: maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`);
    const sampling = opts.sampling ?? { greedy: true };
    // Greedy: temperature 0 (WebLLM clamps it to 1e-6: the softmax is one-hot but for near-exact ties) and top_p 1.
    const genConfig: WebLlmGenConfig = {
      temperature: 'greedy' in sampling ? 0 : sampling.temperature,
      top_p: 'greedy' in sampling ? 1 : sampling.topP,
      repetition_penalty: 1,
      frequency_penalty: 0,
      presence_penalty: 0,
      max_tokens: opts.maxNewTokens,
    };
    if (!('greedy' in sampling)) {
      if (!Number.isInteger(sampling.seed)) throw new Error(`WebLlmBackend.generate: the seed must be an integer, got ${sampling.seed}`);
      p.setSeed(sampling.seed);
    }
    p.stopTokens = [...(opts.stopIds ?? this.defaultStopIds)];
    const t0 = performance.now();
    const tokens: number[] = [];
    try {
      let step = await p.samplePrefillStep(TURN_PLACEHOLDER, 'user', undefined, genConfig);
      for (;;) {
        p.commitSampledStep(step, genConfig);
        tokens.push(step.tokenId);
        opts.onToken?.(step.tokenId);
        if (p.stopped()) break;
        if (opts.signal?.aborted) {
          p.triggerStop();
          break;
        }
        step = await p.sampleDecodeStep(genConfig);
      }
    } finally {
      this.dropPending(); // normally taken (and disposed) by samplePrefillStep through the hook already
      this.pendingRows = 0;
      if (!('greedy' in sampling)) p.setSeed(Date.now() % 2 ** 31); // as MLCEngine does after a seeded request
    }
    this.text = p.getMessage();
    this.usage = usageOf(p, (performance.now() - t0 + this.lastPrefillMs) / 1000);
    return { tokens, stopped: stoppedOf(p.getFinishReason()), timings: timingsFromUsage(this.usage, this.lastPrefillMs) };
  }

  rollback(length: number): void {
    this.dropPending();
    this.pendingRows = 0;
    this.rows.rollback(length);
  }

  async logitsOfLastPrefill(): Promise<Float32Array> {
    if (!this.pending) throw new Error('WebLlmBackend.logitsOfLastPrefill: no completed prefill');
    return this.rows.readLogits(this.pending);
  }

  /** WebLLM's KV cache for the whole context window (an estimate from the model config; the weights are WebLLM's). */
  bytes(): number {
    return kvCacheBytes(this.pipeline.config.model_config, this.capacity, this.rows.dtype);
  }

  /** Unhooks the pipeline and frees our objects; the model stays loaded in WebLLM. */
  destroy(): void {
    this.dropPending();
    delete (this.pipeline as Partial<WebLlmPipeline>).forwardPrefill;
    this.rows.destroy();
  }

  /** The hooked LLMChatPipeline.forwardPrefill: our prefilled rows stand for the prompt. */
  private forwardPrefill(inp: unknown, msgRole: string, inpRoleStr: string | undefined): Promise<ForwardPrefillResult> {
    const logits = this.pending;
    this.pending = null; // WebLLM's now: samplePrefillStep disposes them
    if (!logits) {
      return Promise.reject(new Error('this WebLLM model answers LLaVA-Mini prompts only: call WebLlmBackend.prefill() and generate(), not chat.completions'));
    }
    const conv = this.pipeline.conversation;
    conv.reset();
    conv.appendMessage(msgRole, inp, inpRoleStr);
    conv.appendReplyHeader('assistant');
    return Promise.resolve({ logits, promptLen: this.pendingRows, promptTokenIds: undefined, assistantPrefixTokenIds: [] });
  }

  private dropPending(): void {
    this.pending?.dispose();
    this.pending = null;
  }
}
