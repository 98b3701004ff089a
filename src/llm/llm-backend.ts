// What the engine's Conversation needs of an LLM (spec sections 5-6), whoever runs it: the native LlamaRuntime
// (src/llm/llama-runtime.ts, our WGSL) or WebLLM's compiled Llama library (src/llm/webllm/webllm-backend.ts).
// The input rows are fused embeddings computed on the GPU by the engine (LlmInputAssembler.input: [rows, H]
// f32); both backends read them from that GPUBuffer with no CPU round trip.

export type SamplingOptions = { greedy: true } | { temperature: number; topP: number; seed: number };

export interface GenerateOptions {
  maxNewTokens: number;
  /** Generation stops after emitting one of these (it is included in `tokens`). Default the checkpoint's eosTokenIds. */
  stopIds?: readonly number[];
  /** Default greedy. */
  sampling?: SamplingOptions;
  onToken?(id: number): void;
  /** Checked between tokens; an abort ends generation with stopped = 'aborted'. */
  signal?: AbortSignal;
}

export interface GenerateTimings {
  /** Wall time of the last prefill (all chunks, GPU done). */
  prefillMs: number;
  /** Wall time of the decode steps (tokens after the first). */
  decodeMs: number;
  /** Decode steps per second (0 when only one token was generated). */
  tokensPerSecond: number;
  /** Time to first token: prefillMs + picking and reading back the first token. */
  firstTokenMs: number;
}

export interface GenerateResult {
  tokens: number[];
  stopped: 'eos' | 'length' | 'aborted';
  timings: GenerateTimings;
}

export interface PrefillOptions {
  /** Checked between chunks; an abort throws and leaves the cache as it was before the call. */
  signal?: AbortSignal;
  /** First row of `input` to read (multi-turn: the rows before are already in the cache). Default 0. */
  inputRowOffset?: number;
}

/**
 * An LLM with a KV cache that is fed fused embedding rows from a GPUBuffer. The cache holds, after generate(),
 * the prompt and every generated token but the last (that one was never fed back), so a multi-turn caller rolls
 * back to the end of the previous prompt and prefills the answer (as fused text) and the new question.
 */
export interface LlmBackend {
  /** KV cache rows: prompt + generated tokens must fit. */
  readonly capacity: number;
  /** Rows in the KV cache now: the position of the next row. */
  readonly length: number;
  /**
   * Runs `rows` rows [rows, H] f32 of `input` (from row opts.inputRowOffset) through the model, appending them to
   * the cache, and keeps the last row's logits for generate(). Returns the wall time in ms.
   */
  prefill(input: GPUBuffer, rows: number, opts?: PrefillOptions): Promise<number>;
  /** Generates from the last prefill's logits (once per prefill); the cache grows by the tokens fed back. */
  generate(opts: GenerateOptions): Promise<GenerateResult>;
  /** Forgets cached rows from `length` on; the next prefill continues there. */
  rollback(length: number): void;
  /**
   * Of the first `unchanged` rows of a new prompt of `total` rows, which the cache holds already, how many to keep:
   * a backend whose continued prefill is slow or unsound says fewer (a multi-turn caller rolls back to that).
   * Absent: all of them.
   */
  keptRows?(unchanged: number, total: number): number;
  /** The logits [V] of the last prefill's last row (debug dumps). */
  logitsOfLastPrefill(): Promise<Float32Array>;
  /** GPU bytes held besides the weights (KV cache, scratch). */
  bytes(): number;
  destroy(): void;
}
