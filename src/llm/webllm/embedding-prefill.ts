// Prefill of our own fused embedding rows into a WebLLM model's KV cache, on the GPU, with no CPU round trip
// (spec sections 5-6: the LLM input F[0:k] ++ V ++ F[k+1:] lives in the engine's GPUBuffer as f32 rows).
//
// Rows go in pieces: the first `prefillChunkSize` rows on an EMPTY cache in one piece, every later row alone. The
// library's prefill function attends wrongly to rows already in the cache: measured on Llama-3.2-1B q0f32 (v0_2_48,
// SwiftShader, scripts/verify-webllm/kv-probe.ts), 17 cached rows then a 4-row prefill gave logits off by 0.76
// relative to a fresh prefill of the 21 rows, while its decode function, one row at a time over the same cache,
// agreed with it (and pop-then-decode reproduced logits within 2.9e-6). So a multi-turn caller keeps cached rows
// only when they fill at least one whole chunk (keptRows), and a fresh prompt longer than a chunk decodes the rest.
//
// For each piece of n rows: a TVM tensor [1, n, hidden] of the model's dtype is
// allocated on the pipeline's device, its GPUBuffer taken from TVM's buffer table, our convert kernel
// (shaders/convert.wgsl) writes rows [offset, offset + n) of our buffer into it (f32 copy, or f16), and the
// model runs on it exactly as WebLLM's own LLMChatPipeline.embedAndForward does after its embedding lookup:
// kv_state_begin_forward(kvCache, ShapeTuple[0], ShapeTuple[n]), prefill(x, kvCache, params) (n > 1) or
// decoding(x, kvCache, params) (n = 1), kv_state_end_forward(kvCache), filledKVCacheLength += n. The last
// chunk's logits are kept for WebLLM's own sampler. Roll-back pops rows off the KV cache (vm.builtin.kv_state_popn).
//
// Verified against @mlc-ai/web-llm 0.2.79 lib/index.js (line numbers of that file; webllm-backend.test.ts checks
// them against the installed package):
//   LLMChatPipeline fields (constructor, 8581-8770): `tvm` (the model's tvmjs Instance), `device`
//     (= tvm.webgpu(), 8665), `prefill` / `decoding` (the library's VM functions, 8669-8671), `params`
//     (getParamsFromCacheByName, 8689), `kvCache` (create_tir_paged_kv_cache with max_total_sequence_length =
//     contextWindowSize and prefillChunkSize, 8735), `fKVCacheBeginForward` / `fKVCacheEndForward`
//     (vm.builtin.kv_state_begin_forward / end_forward, 8725-8726), `prefillChunkSize` (from the library's
//     metadata, 8691), `contextWindowSize`, `slidingWindowSize`, `filledKVCacheLength`, `config`
//     (mlc-chat-config.json + overrides).
//   embedAndForward (9230-9282): the forward sequence above; `.get(0)` of the result is the logits.
//   tvmjs: `tvm.empty(shape, dtype, device)` allocates through WebGPUContext.deviceAllocDataSpace (usage STORAGE |
//     COPY_SRC | COPY_DST); `tensor.getDataPtr()` is the index into the buffer table,
//     `webGPUContext.gpuBufferFromPtr(ptr)` (4283) the GPUBuffer; the data starts at offset 0 of it (each
//     allocation is its own GPUBuffer; tvmjs's own copyFromRawBytes writes at 0, line 5189). `tensor.byteOffset`
//     is NOT usable in 0.2.79: the real run read 1801401957 from it (loadI64 at the wrong field), so it is ignored.
//     0.2.79's WebGPUContext submits every kernel and copy to the queue as it is called (createShader's
//     submitShader, 4059-4146; no pending encoder, no flushCommands: that came later), so TVM's earlier work on a
//     buffer precedes our own queue.submit in queue order.
//     Objects are created inside `beginScope()` / `endScope()` and disposed at its end unless detached.
//   vm.builtin.kv_state_popn is not used by WebLLM; it is the TVM runtime's KVState::PopN(seq_id: int64,
//     n: int32), in every model library's runtime. On the v0_2_48 Llama-3.2-1B q0f32 library it was tried by hand
//     (issue 13: a pop of 2 rows, then the same decode, reproduced the logits within 2.9e-6); npm run
//     verify:webllm exercises it through multi-turn roll-back.
import { f16BytesToF32 } from '../../checkpoint/dtype.ts';
import { readBuffer } from '../../gpu/buffers.ts';
import { ConvertRowsKernel } from '../../gpu/kernels/convert.ts';
import type { DenseStorage } from '../../gpu/storage.ts';
import type { PrefillOptions } from '../llm-backend.ts';

/** A tvmjs Tensor, as far as we use it. */
export interface TvmTensor {
  readonly shape: readonly number[];
  readonly dtype: string;
  /** Buffer-table index of the data (WebGPU tensors). */
  getDataPtr(): number;
  dispose(): void;
}

/** What a model function returns (an Array of tensors: logits first). */
export interface TvmArray {
  get(index: number): TvmTensor;
}

export interface TvmPackedFunc {
  (...args: unknown[]): unknown;
  dispose(): void;
}

/** tvmjs's WebGPUContext (tvm.lib.webGPUContext). */
export interface TvmWebGpuContext {
  readonly device: GPUDevice;
  gpuBufferFromPtr(ptr: number): GPUBuffer;
}

/** The pipeline's tvmjs Instance, as far as we use it. */
export interface TvmInstance {
  readonly lib: { readonly webGPUContext?: TvmWebGpuContext };
  empty(shape: readonly number[], dtype: string, device: unknown): TvmTensor;
  makeShapeTuple(shape: readonly number[]): unknown;
  scalar(value: number, dtype: string): unknown;
  getGlobalFunc(name: string): TvmPackedFunc;
  beginScope(): void;
  endScope(): void;
  detachFromCurrentScope<T>(obj: T): T;
  attachToCurrentScope<T>(obj: T): T;
}

/** A model function of the library's VM: (input [1, n, hidden], kvCache, params) -> [logits, kvCache]. */
export type TvmModelFunc = (x: TvmTensor, kvCache: unknown, params: unknown) => TvmArray;

/** Exactly the LLMChatPipeline members the embedding prefill uses (private in WebLLM's types, present at run time). */
export interface PipelineForwardState {
  tvm: TvmInstance;
  /** The model's DLDevice (tvm.webgpu()). */
  device: unknown;
  kvCache?: unknown;
  /** The model's weights (a TVM Array, passed to every model function). */
  params: unknown;
  prefill: TvmModelFunc;
  decoding: TvmModelFunc;
  fKVCacheBeginForward(state: unknown, seqIds: unknown, lengths: unknown): void;
  fKVCacheEndForward(state: unknown): void;
  filledKVCacheLength: number;
  prefillChunkSize: number;
  contextWindowSize: number;
  slidingWindowSize: number;
  /** mlc-chat-config.json + overrides. */
  config: { quantization?: string; model_config?: Record<string, unknown> };
}

export type ModelDtype = 'float16' | 'float32';

const CONVERT_OUT: Record<ModelDtype, DenseStorage> = { float16: 'f16', float32: 'f32' };

/** The TVM runtime function that pops rows off a KV state. */
export const KV_POPN = 'vm.builtin.kv_state_popn';

export interface EmbeddingPrefillOptions {
  /** Hidden size of our rows (= the model's). Checked against the model's config when it states one. */
  hidden: number;
  /** The model's activation dtype. Default from config.quantization (q4f16_1 / q0f16 -> float16, q4f32_1 / q0f32 -> float32). */
  dtype?: ModelDtype;
}

/** Model dtype from an MLC quantization name (q4f16_1, q0f16 -> float16; q4f32_1, q0f32 -> float32). */
export function dtypeOfQuantization(q: string): ModelDtype {
  const m = /^q\d+f(16|32)(_\d+)?$/.exec(q);
  if (!m) throw new Error(`cannot tell the model dtype from quantization "${q}"`);
  return m[1] === '16' ? 'float16' : 'float32';
}

/**
 * Feeds f32 rows of our GPUBuffer into a WebLLM pipeline's KV cache and rolls it back. Owns only its convert
 * kernel and the pop-n function handle; the pipeline stays WebLLM's.
 */
export class EmbeddingPrefill {
  readonly dtype: ModelDtype;
  readonly hidden: number;
  private popn: TvmPackedFunc | null = null;

  private constructor(
    readonly pipeline: PipelineForwardState,
    private readonly gpu: TvmWebGpuContext,
    private readonly kernel: ConvertRowsKernel,
    opts: EmbeddingPrefillOptions,
  ) {
    this.hidden = opts.hidden;
    this.dtype = opts.dtype ?? dtypeOfQuantization(String(pipeline.config.quantization));
  }

  /** Checks that the pipeline is one we can drive and builds the convert kernel on its device. */
  static async create(pipeline: PipelineForwardState, opts: EmbeddingPrefillOptions): Promise<EmbeddingPrefill> {
    const gpu = pipeline.tvm.lib.webGPUContext;
    if (!gpu) throw new Error('WebLLM pipeline has no WebGPU context (tvm.lib.webGPUContext)');
    if (!Number.isInteger(opts.hidden) || opts.hidden < 1) throw new Error(`hidden must be a positive integer, got ${opts.hidden}`);
    const modelHidden = pipeline.config.model_config?.hidden_size;
    if (typeof modelHidden === 'number' && modelHidden !== opts.hidden) {
      throw new Error(`the WebLLM model's hidden size is ${modelHidden}, our LLM input rows have ${opts.hidden}`);
    }
    if (pipeline.kvCache === undefined) throw new Error('the WebLLM model must keep a KV cache: roll-back pops rows off it');
    if (pipeline.slidingWindowSize !== -1 || !(pipeline.contextWindowSize > 0)) {
      throw new Error(`the WebLLM model must use a context window, not a sliding window (context_window_size ${pipeline.contextWindowSize}, sliding_window_size ${pipeline.slidingWindowSize})`);
    }
    if (!(pipeline.prefillChunkSize > 0)) throw new Error(`bad prefillChunkSize ${pipeline.prefillChunkSize}`);
    const kernel = await ConvertRowsKernel.create(gpu.device);
    return new EmbeddingPrefill(pipeline, gpu, kernel, opts);
  }

  /** The GPUDevice WebLLM created: our engine's kernels must run on it (buffers cannot cross devices). */
  get device(): GPUDevice {
    return this.gpu.device;
  }

  /** Rows in WebLLM's KV cache. */
  get length(): number {
    return this.pipeline.filledKVCacheLength;
  }

  get capacity(): number {
    return this.pipeline.contextWindowSize;
  }

  /**
   * Prefills rows [inputRowOffset, inputRowOffset + rows) of `input` ([*, hidden] f32) after the cached rows.
   * Returns the last chunk's logits, detached from every tvm scope: the caller owns them (dispose, or hand them
   * to WebLLM's sampler, which disposes them). Abortable between chunks: the cache is then rolled back to where it
   * was and the abort reason thrown. Resolves once the GPU has run every chunk.
   */
  async run(input: GPUBuffer, rows: number, opts: PrefillOptions = {}): Promise<TvmTensor> {
    const { pipeline, hidden: H } = this;
    const row0 = opts.inputRowOffset ?? 0;
    if (!Number.isInteger(rows) || rows < 1) throw new Error(`WebLLM prefill: rows must be a positive integer, got ${rows}`);
    if (!Number.isInteger(row0) || row0 < 0) throw new Error(`WebLLM prefill: inputRowOffset must be a non-negative integer, got ${row0}`);
    if (input.size < (row0 + rows) * H * 4) throw new Error(`WebLLM prefill: input "${input.label}" has ${input.size} bytes, needs ${(row0 + rows) * H * 4} ([${row0 + rows}, ${H}] f32)`);
    const start = pipeline.filledKVCacheLength;
    if (start + rows > pipeline.contextWindowSize) {
      throw new Error(`WebLLM prefill: ${start} cached + ${rows} new rows exceed the context window of ${pipeline.contextWindowSize}`);
    }
    opts.signal?.throwIfAborted();
    const chunk = pipeline.prefillChunkSize;
    let logits: TvmTensor | null = null;
    try {
      for (let r = 0; r < rows; ) {
        if (r > 0) opts.signal?.throwIfAborted();
        // The library's prefill is sound on an empty cache only (see the header): rows after cached ones go one
        // at a time through its decode function.
        const n = pipeline.filledKVCacheLength === 0 ? Math.min(chunk, rows - r) : 1;
        const next = this.forward(input, row0 + r, n);
        logits?.dispose();
        logits = next;
        r += n;
      }
      // Wait for the GPU, so the wall time covers the work.
      await this.gpu.device.queue.onSubmittedWorkDone();
      return logits!;
    } catch (e) {
      logits?.dispose();
      if (pipeline.filledKVCacheLength > start) this.rollback(start);
      throw e;
    }
  }

  /**
   * Of `unchanged` cached rows of a new `total`-row prompt, how many to keep: all of them when they fill a whole
   * chunk (the rest then decodes row by row, fewer rows than a fresh prefill would decode), else none (one fresh
   * prefill beats decoding the rest row by row; the library's prefill over cached rows is not an option).
   */
  keptRows(unchanged: number, total: number): number {
    if (!(unchanged <= total)) throw new Error(`WebLLM keptRows: ${unchanged} unchanged rows of ${total}`);
    return unchanged >= this.pipeline.prefillChunkSize ? unchanged : 0;
  }

  /** Pops cached rows from `length` on (vm.builtin.kv_state_popn on sequence 0) and sets filledKVCacheLength. */
  rollback(length: number): void {
    const { pipeline } = this;
    const filled = pipeline.filledKVCacheLength;
    if (!Number.isInteger(length) || length < 0 || length > filled) throw new Error(`WebLLM rollback: length ${length} outside 0..${filled}`);
    if (length === filled) return;
    const { tvm } = pipeline;
    this.popn ??= (() => {
      tvm.beginScope();
      try {
        return tvm.detachFromCurrentScope(tvm.getGlobalFunc(KV_POPN));
      } finally {
        tvm.endScope();
      }
    })();
    this.popn(pipeline.kvCache, tvm.scalar(0, 'int64'), tvm.scalar(filled - length, 'int32'));
    pipeline.filledKVCacheLength = length;
  }

  /** Reads a logits tensor (f32 or f16, on the pipeline's device) back as f32 values. */
  async readLogits(t: TvmTensor): Promise<Float32Array> {
    const count = t.shape.reduce((a, b) => a * b, 1);
    const bytes = t.dtype === 'float32' ? 4 : t.dtype === 'float16' ? 2 : 0;
    if (!bytes) throw new Error(`WebLLM logits of dtype ${t.dtype}`);
    const raw = new Uint8Array(await readBuffer(this.gpu.device, this.gpu.gpuBufferFromPtr(t.getDataPtr()), count * bytes, 0));
    return bytes === 4 ? new Float32Array(raw.buffer, 0, count) : f16BytesToF32(raw);
  }

  destroy(): void {
    this.kernel.destroy();
    this.popn?.dispose();
    this.popn = null;
  }

  /**
   * One forward of rows [inputRow, inputRow + n) of `input` (n <= prefillChunkSize) after the cached rows, whatever
   * the cache holds (run() decides the pieces; the KV probe calls it directly): tensor, our copy into it, WebLLM's
   * prefill (n > 1) or decode. Returns the piece's logits, detached.
   */
  forward(input: GPUBuffer, inputRow: number, n: number): TvmTensor {
    const { pipeline, hidden: H } = this;
    const { tvm } = pipeline;
    tvm.beginScope();
    try {
      const x = tvm.empty([1, n, H], this.dtype, pipeline.device);
      const target = this.gpu.gpuBufferFromPtr(x.getDataPtr());
      const encoder = this.gpu.device.createCommandEncoder({ label: 'webllm prefill input' });
      this.kernel.run(encoder, input, inputRow * H, target, 0, n * H, CONVERT_OUT[this.dtype]);
      this.gpu.device.queue.submit([encoder.finish()]);

      const lengths = tvm.makeShapeTuple([n]);
      const seqIds = tvm.makeShapeTuple([0]);
      pipeline.fKVCacheBeginForward(pipeline.kvCache, seqIds, lengths);
      const out = n > 1 ? pipeline.prefill(x, pipeline.kvCache, pipeline.params) : pipeline.decoding(x, pipeline.kvCache, pipeline.params);
      pipeline.fKVCacheEndForward(pipeline.kvCache);
      pipeline.filledKVCacheLength += n;
      return tvm.detachFromCurrentScope(out.get(0));
    } finally {
      tvm.endScope();
    }
  }
}
