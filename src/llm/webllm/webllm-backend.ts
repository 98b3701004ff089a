// The LlmBackend over a WebLLM (@mlc-ai/web-llm 0.2.79, pinned) model loaded in the same worker: the Llama runs
// on WebLLM's compiled library, fed with our fused embedding rows (spec sections 5-6) straight from the engine's
// GPUBuffer on the device WebLLM created (pipeline.tvm.lib.webGPUContext.device: the engine's kernels must run on
// that device too).
//
//   prefill(input, rows)  our rows -> WebLLM's KV cache (EmbeddingPrefill: convert kernel + the library's
//                         prefill / decode functions), the last chunk's logits kept
//   generate()            WebLLM's own first-token sampling, stop tokens, decode loop, detokenization and
//                         statistics (its prefillStep / decodeStep); prefillStep gets our logits through hooks on
//                         the pipeline INSTANCE
//   rollback(length)      pops KV rows (multi-turn: back to the end of the previous prompt)
//
// WebLLM internals relied on, as verified in 0.2.79 lib/index.js (line numbers of that file). All of them are
// checked by webllm-backend.test.ts against the installed package's source, so an upgrade that renames or
// reshapes them fails a test:
// - MLCEngine.loadedModelIdToPipeline (Map model id -> LLMChatPipeline, set in reloadInternal line 10803);
//   in a worker, WebWorkerMLCEngineHandler.engine (line 11683) is that MLCEngine. LLMChatPipeline is not
//   exported: its members are reached on the instance.
// - LLMChatPipeline.prefillStep(inp, msgRole, inpRoleStr, genConfig) (8913): resets the round's state and
//   statistics, appends `inp` as a user message and the assistant header to its Conversation, tokenizes the
//   conversation with `this.getInputData()` (9505) -> [inputData, promptLen], chunks it and runs each chunk
//   through `this.embedAndForward(chunk, chunkLen)` (9230), checking that filledKVCacheLength grew by chunkLen;
//   then samples the first token from the last logits (sampleTokenFromLogits: temperature, top_p, penalties),
//   disposes them, adds promptLen to the prefill statistics and calls `this.processNextToken(token, genConfig)`
//   (9095). Our rows were prefilled before, so three own properties on the instance stand in while our
//   prefillStep runs: getInputData -> one placeholder row with promptLen = our rows (refused outside it: WebLLM's
//   own chat would prefill its tokens into our cache); embedAndForward -> our logits, filledKVCacheLength + 1
//   for the check (undone when prefillStep returns); outside our prefillStep embedAndForward is the prototype's
//   (decodeStep). processNextToken is wrapped to see each sampled token id.
// - processNextToken stops on `this.stopTokens` (not pushed to outputIds), on genConfig.max_tokens, on the
//   context window; we set the instance's `stopTokens` field to our stop ids for each answer.
// - decodeStep(genConfig) (9048): feeds outputIds[-1] through embedAndForward (one row, filledKVCacheLength
//   += 1), samples, adds decode statistics, processNextToken. stopped(), triggerStop() (finishReason "abort",
//   what MLCEngine does on interruptGenerate()), getFinishReason(), getMessage(), setSeed(),
//   getCurRound{Prefill,Decoding}Total{Tokens,Time}(): the numbers MLCEngine's usage chunk (11054) turns into
//   `usage.extra`, computed here the same way.
// - The KV cache bookkeeping of embedding-prefill.ts (its header lists those members).
//
// Why not engine.chat.completions.create(): MLCEngine.prefill resets the pipeline (KV cache included) whenever
// the request's earlier messages do not match the pipeline's Conversation; our cache reuse across turns would
// be lost. So the backend drives the pipeline's step API as MLCEngine._generate does, and an AbortSignal
// replaces interruptGenerate() (same effect: triggerStop() between decode steps). The engine's per-model lock
// (loadedModelIdToLock) is not taken: nothing else may use this model while it answers for us.
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

/** A prompt chunk as LLMChatPipeline handles it: token ids or an image (0.2.79's getInputData / embedAndForward). */
export type WebLlmInputData = Array<number[] | { url: string }>;

/** Exactly the LLMChatPipeline members the backend uses besides the forward state (0.2.79). */
export interface WebLlmPipeline extends PipelineForwardState {
  prefillStep(inp: string, msgRole: string, inpRoleStr?: string, genConfig?: WebLlmGenConfig): Promise<void>;
  decodeStep(genConfig?: WebLlmGenConfig): Promise<void>;
  getInputData(): [WebLlmInputData, number];
  embedAndForward(inputData: WebLlmInputData, inputDataLen: number): Promise<TvmTensor>;
  processNextToken(nextToken: number, genConfig?: WebLlmGenConfig): void;
  conversation: { reset(): void };
  stopTokens: number[];
  stopped(): boolean;
  triggerStop(): void;
  getFinishReason(): string | undefined;
  getMessage(): string;
  setSeed(seed: number): void;
  getCurRoundPrefillTotalTokens(): number;
  getCurRoundPrefillTotalTime(): number;
  getCurRoundDecodingTotalTokens(): number;
  getCurRoundDecodingTotalTime(): number;
}

/** The pipeline methods the backend calls or stands in for (the test checks each against the real prototype). */
export const PIPELINE_METHODS = [
  'prefillStep',
  'decodeStep',
  'getInputData',
  'embedAndForward',
  'processNextToken',
  'stopped',
  'triggerStop',
  'getFinishReason',
  'getMessage',
  'setSeed',
  'getCurRoundPrefillTotalTokens',
  'getCurRoundPrefillTotalTime',
  'getCurRoundDecodingTotalTokens',
  'getCurRoundDecodingTotalTime',
] as const;

/** The methods replaced on the instance (own properties shadowing the prototype's). */
const HOOKED = ['getInputData', 'embedAndForward', 'processNextToken'] as const;

/** The pipeline fields the backend reads or writes (assigned in LLMChatPipeline's constructor). */
export const PIPELINE_FIELDS = [
  'tvm',
  'device',
  'kvCache',
  'params',
  'prefill',
  'decoding',
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

/** WebLLM's `usage` of a streamed answer (0.2.79 line 11054), from the pipeline's round statistics. */
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
export function usageOf(p: WebLlmPipeline, completionTokens: number, e2eSeconds: number): WebLlmUsage {
  const rate = (tokens: number, seconds: number) => (seconds > 0 ? tokens / seconds : 0);
  const prefillTime = p.getCurRoundPrefillTotalTime();
  const decodeTokens = p.getCurRoundDecodingTotalTokens();
  const decodeTime = p.getCurRoundDecodingTotalTime();
  return {
    prompt_tokens: p.getCurRoundPrefillTotalTokens(),
    completion_tokens: completionTokens,
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
  /** True while our prefillStep runs (the hooks stand in for WebLLM's tokenized prompt). */
  private inPrefillStep = false;
  /** Rows the embedAndForward hook added for prefillStep's bookkeeping check, taken back after it. */
  private placeholderRows = 0;
  /** Our logits while prefillStep holds them (it disposes them after sampling, but not when sampling throws). */
  private lent: TvmTensor | null = null;
  /** Token ids processNextToken saw in the current generate(). */
  private sampled: number[] = [];

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
    if (HOOKED.some((m) => Object.prototype.hasOwnProperty.call(pipeline, m))) throw new Error('this WebLLM pipeline is already hooked (one WebLlmBackend per pipeline)');
    const rows = await EmbeddingPrefill.create(pipeline, opts);
    const backend = new WebLlmBackend(pipeline, rows);
    const proto = Object.getPrototypeOf(pipeline) as WebLlmPipeline;
    const hooks: Pick<WebLlmPipeline, (typeof HOOKED)[number]> = {
      // Outside our prefillStep, WebLLM would prefill its own tokenized Conversation into our cache: refused.
      getInputData: () => backend.placeholderInput(),
      embedAndForward: (data, len) => (backend.inPrefillStep ? backend.takeLogits(len) : proto.embedAndForward.call(pipeline, data, len)),
      processNextToken: (token, genConfig) => {
        backend.sampled.push(token);
        proto.processNextToken.call(pipeline, token, genConfig);
      },
    };
    for (const m of HOOKED) Object.defineProperty(pipeline, m, { value: hooks[m], configurable: true, writable: true });
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
    // Greedy: temperature 0 (WebLLM samples argmax at 0) and top_p 1.
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
    // The Conversation holds just this turn (prefillStep appends the placeholder message and the reply header).
    p.conversation.reset();
    const t0 = performance.now();
    const tokens: number[] = [];
    const emit = () => {
      for (const t of this.sampled.splice(0)) {
        tokens.push(t);
        opts.onToken?.(t);
      }
    };
    try {
      this.inPrefillStep = true;
      try {
        await p.prefillStep(TURN_PLACEHOLDER, 'user', undefined, genConfig);
        this.lent = null;
      } finally {
        this.inPrefillStep = false;
        p.filledKVCacheLength -= this.placeholderRows;
        this.placeholderRows = 0;
        this.lent?.dispose();
        this.lent = null;
      }
      emit();
      while (!p.stopped()) {
        if (opts.signal?.aborted) {
          p.triggerStop();
          break;
        }
        await p.decodeStep(genConfig);
        emit();
      }
    } finally {
      this.sampled = [];
      this.dropPending(); // normally taken (and disposed) by prefillStep through the hook already
      this.pendingRows = 0;
      if (!('greedy' in sampling)) p.setSeed(Date.now() % 2 ** 31); // as MLCEngine does after a seeded request
    }
    this.text = p.getMessage();
    this.usage = usageOf(p, tokens.length, (performance.now() - t0 + this.lastPrefillMs) / 1000);
    return { tokens, stopped: stoppedOf(p.getFinishReason()), timings: timingsFromUsage(this.usage, this.lastPrefillMs) };
  }

  keptRows(unchanged: number, total: number): number {
    return this.rows.keptRows(unchanged, total);
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
    for (const m of HOOKED) delete (this.pipeline as Partial<WebLlmPipeline>)[m];
    this.rows.destroy();
  }

  /** prefillStep's prompt: one placeholder row (our rows are in the cache already), promptLen = our rows. */
  private placeholderInput(): [WebLlmInputData, number] {
    if (!this.inPrefillStep || !this.pending) throw new Error('this WebLLM model answers LLaVA-Mini prompts only: call WebLlmBackend.prefill() and generate(), not chat.completions');
    return [[[0]], this.pendingRows];
  }

  /** prefillStep's forward of the placeholder row: our logits (WebLLM's now: it disposes them). */
  private takeLogits(len: number): Promise<TvmTensor> {
    const logits = this.pending;
    this.pending = null;
    if (!logits) return Promise.reject(new Error('WebLlmBackend: prefillStep asked for a second chunk'));
    // prefillStep checks that each chunk grew the cache by its length; generate() takes the row back after it.
    this.pipeline.filledKVCacheLength += len;
    this.placeholderRows += len;
    this.lent = logits;
    this.pipeline.tvm.attachToCurrentScope(logits);
    return Promise.resolve(logits);
  }

  private dropPending(): void {
    this.pending?.dispose();
    this.pending = null;
  }
}
