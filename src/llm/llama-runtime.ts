// The LLM on the GPU (spec sections 5-6): Llama decoder layers over a KV cache, final RMSNorm, lm_head, sampling.
//
// prefill(inputEmbeds, rows) runs the prompt rows (fused text + vision tokens, already on the GPU) in chunks of
// prefillChunkSize rows at positions cache length + i; only the last row goes through the final norm and
// lm_head. generate() then picks tokens on the GPU (argmax, or temperature + top-p with a seeded host RNG) and
// reads back 4 bytes per token: the sampled id stays on the GPU and the next step's embedding gather reads it
// from there, so a decode step is one command buffer (gather -> layers -> norm -> lm_head -> sample) and one
// 4-byte readback. The last token generated is not fed back (as the reference): the cache then holds the prompt
// and every generated token but the last.
import type { LlamaConfig } from '../checkpoint/types.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../gpu/buffers.ts';
import { RecordedPass, type ComputePass } from '../gpu/dispatch.ts';
import { recordLinear } from '../gpu/gpu-linear.ts';
import type { KvStorage } from '../gpu/storage.ts';
import { SamplingKernel } from '../gpu/kernels/sampling.ts';
import { llamaLayerPrefix } from '../checkpoint/expected-tensors.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import type { GpuTensor, GpuWeights } from '../weights/gpu-weights.ts';
import { DecoderStack } from './decoder-layer.ts';
import type { KvCache } from './kv-cache.ts';
import type { GenerateOptions, GenerateResult, LlmBackend, PrefillOptions } from './llm-backend.ts';
import { EMBED_TOKENS, TokenEmbedding } from './token-embedding.ts';

export type { GenerateOptions, GenerateResult, GenerateTimings, SamplingOptions } from './llm-backend.ts';

export interface LlamaRuntimeOptions {
  /** KV cache rows (prompt + generated tokens over all turns). Default min(4096, max_position_embeddings). */
  maxContext?: number;
  /** Rows per prefill command buffer (the activation scratch is sized to it). Default 128. */
  prefillChunkSize?: number;
  /** KV cache storage. Default 'f32'; 'f16' halves it and needs shader-f16. */
  kv?: KvStorage;
}

export class LlamaRuntime implements LlmBackend {
  readonly config: LlamaConfig;
  private readonly logits: GPUBuffer;
  private readonly prefillLogits: GPUBuffer;
  private readonly lastHidden: GPUBuffer;
  /** i32 0 .. capacity-1: the positions of plain causal rows (row r of a call at offset cache.length). */
  private readonly positions: GPUBuffer;
  /** u32 token id(s): the sampled token (read by the next gather) or a host-given one. */
  private readonly token: GPUBuffer;
  /** Two, so a step's token can be copied out while the previous step's is still mapped. */
  private readonly readbacks: GPUBuffer[];
  /** One decode step (gather -> layers -> final norm -> lm_head into logits), recorded on first use and replayed per token. */
  private decodePlan: RecordedPass | null = null;
  /** prefillLogits hold the last prefill's last row. */
  private hasPrefillLogits = false;
  /** generate() may start from prefillLogits (a prefill completed since the last generate or rollback). */
  private canGenerate = false;
  private lastPrefillMs = 0;

  private constructor(
    readonly device: GPUDevice,
    readonly stack: DecoderStack,
    readonly cache: KvCache,
    private readonly embedding: TokenEmbedding,
    private readonly finalNorm: GpuTensor,
    private readonly lmHead: GpuTensor,
    private readonly sampler: SamplingKernel,
    /** config.eosTokenIds: generate()'s default stop ids. */
    readonly eosTokenIds: readonly number[],
  ) {
    this.config = stack.config;
    const V = this.config.vocabSize;
    this.logits = createStorageBuffer(device, V * 4, 'llm logits');
    this.prefillLogits = createStorageBuffer(device, V * 4, 'llm prefill logits');
    this.lastHidden = createStorageBuffer(device, this.config.hiddenSize * 4, 'llm last hidden');
    this.positions = storageBufferFrom(device, Int32Array.from({ length: cache.capacity }, (_, i) => i), 'llm positions');
    this.token = createStorageBuffer(device, 4, 'llm token');
    this.readbacks = [0, 1].map((i) => device.createBuffer({ label: `llm token readback ${i}`, size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
  }

  /** Uploads (once) the LLM's tensors from `weights` and allocates the KV cache and scratch. */
  static async create(weights: GpuWeights, opts: LlamaRuntimeOptions = {}): Promise<LlamaRuntime> {
    const cfg = weights.source.config.llm;
    const capacity = opts.maxContext ?? Math.min(4096, cfg.maxPositionEmbeddings);
    const prefixes = Array.from({ length: cfg.numLayers }, (_, i) => llamaLayerPrefix(i));
    const stack = await DecoderStack.create(weights, prefixes, { maxRows: opts.prefillChunkSize ?? 128, maxPositions: capacity, kv: opts.kv });
    const embedding = await TokenEmbedding.create(weights);
    const finalNorm = await weights.load('model.norm.weight');
    const lmHead = await weights.load(cfg.tieWordEmbeddings ? EMBED_TOKENS : 'lm_head.weight');
    await stack.kernels.linear.prepare([lmHead], [1]);
    await stack.kernels.norm.prepare('rmsnorm', [finalNorm]);
    const sampler = await SamplingKernel.create(weights.device);
    return new LlamaRuntime(weights.device, stack, stack.createCache(capacity, 'llm kv'), embedding, finalNorm, lmHead, sampler, weights.source.config.eosTokenIds);
  }

  /** Rows per prefill command buffer. */
  get prefillChunkSize(): number {
    return this.stack.scratch.maxRows;
  }

  /** KV cache rows (maxContext). */
  get capacity(): number {
    return this.cache.capacity;
  }

  /** Rows in the KV cache: the position of the next row. */
  get length(): number {
    return this.cache.length;
  }

  /**
   * Runs `rows` input embeddings [rows, H] (f32, from row `inputRowOffset` of `input`) through the LLM, appending
   * them to the cache, and leaves the last row's logits for generate(). Abortable between chunks (the cache is
   * then rolled back to where it was). Returns the wall time in ms.
   */
  async prefill(input: GPUBuffer, rows: number, opts: PrefillOptions = {}): Promise<number> {
    const H = this.config.hiddenSize;
    const row0 = opts.inputRowOffset ?? 0;
    if (!Number.isInteger(rows) || rows < 1) throw new Error(`LlamaRuntime.prefill: rows must be a positive integer, got ${rows}`);
    if (input.size < (row0 + rows) * H * 4) throw new Error(`LlamaRuntime.prefill: input "${input.label}" has ${input.size} bytes, needs ${(row0 + rows) * H * 4} ([${row0 + rows}, ${H}] f32)`);
    this.cache.checkRoom(rows);
    const t0 = performance.now();
    const start = this.cache.length;
    this.hasPrefillLogits = false;
    this.canGenerate = false;
    try {
      await this.stack.runChunks(rows, opts.signal, (encoder, r, n) => {
        encoder.copyBufferToBuffer(input, (row0 + r) * H * 4, this.stack.scratch.x, 0, n * H * 4);
        const pass = encoder.beginComputePass({ label: 'llm prefill chunk' });
        this.stack.record(pass, this.cache, { rows: n, positions: this.positions, positionOffset: this.cache.length, keep: null });
        if (r + n === rows) this.recordHead(pass, n - 1, this.prefillLogits);
        pass.end();
      });
    } catch (e) {
      this.cache.rollback(start);
      throw e;
    }
    this.hasPrefillLogits = true;
    this.canGenerate = true;
    this.lastPrefillMs = performance.now() - t0;
    return this.lastPrefillMs;
  }

  /** One token with its plain embedding through the LLM (appended to the cache); its logits via readLogits(). */
  async decode(tokenId: number): Promise<void> {
    if (!Number.isInteger(tokenId) || tokenId < 0 || tokenId >= this.config.vocabSize) throw new Error(`LlamaRuntime.decode: token id ${tokenId} outside 0..${this.config.vocabSize - 1}`);
    this.canGenerate = false;
    this.device.queue.writeBuffer(this.token, 0, new Uint32Array([tokenId]));
    const encoder = this.device.createCommandEncoder({ label: 'llm decode' });
    const pass = encoder.beginComputePass({ label: 'llm decode' });
    this.recordDecode(pass);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    await this.device.queue.onSubmittedWorkDone();
  }

  /**
   * The logits [V] of the last decode() step, or of generate()'s last step run (after a stop token, that is the
   * step submitted ahead and discarded).
   */
  readLogits(): Promise<Float32Array> {
    return readF32(this.device, this.logits, this.config.vocabSize);
  }

  /** The logits [V] of the last prefill's last row (`logits0` of a dump). */
  logitsOfLastPrefill(): Promise<Float32Array> {
    if (!this.hasPrefillLogits) throw new Error('LlamaRuntime.logitsOfLastPrefill: no completed prefill');
    return readF32(this.device, this.prefillLogits, this.config.vocabSize);
  }

  /** Generates from the last prefill's logits; the cache grows by the tokens fed back. */
  async generate(opts: GenerateOptions): Promise<GenerateResult> {
    if (!this.canGenerate) throw new Error('LlamaRuntime.generate: prefill the prompt (or the next turn) first');
    if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 1) throw new Error(`LlamaRuntime.generate: maxNewTokens must be a positive integer, got ${opts.maxNewTokens}`);
    const sampling = opts.sampling ?? { greedy: true };
    const topP = 'greedy' in sampling ? null : { ...sampling, rng: mulberry32(sampling.seed) };
    if (topP) await this.sampler.initTopP(); // built on the first sampled answer (greedy never needs them)
    this.canGenerate = false; // the prefill logits are consumed: the next generate() needs a new prefill
    const stops = new Set(opts.stopIds ?? this.eosTokenIds);
    const V = this.config.vocabSize;
    const pick = (pass: GPUComputePassEncoder, logits: GPUBuffer) => {
      if (topP) this.sampler.sample(pass, logits, this.token, V, { temperature: topP.temperature, topP: topP.topP, u: topP.rng() });
      else this.sampler.argmax(pass, logits, this.token, V);
    };
    // A step is submitted before the previous step's token is read back: the sampled id stays on the GPU, so the
    // GPU starts the next token while the host waits for the last one's 4 bytes. A step submitted after a stop
    // (an end-of-sequence token, an abort) is discarded: its KV row is rolled back.
    let submitted = 0;
    const submit = (): Promise<number> => {
      const first = submitted === 0;
      const readback = this.readbacks[submitted++ % 2]!;
      const encoder = this.device.createCommandEncoder({ label: first ? 'llm first token' : 'llm decode step' });
      const pass = encoder.beginComputePass({ label: 'llm decode step' });
      if (!first) this.recordDecode(pass);
      pick(pass, first ? this.prefillLogits : this.logits);
      pass.end();
      encoder.copyBufferToBuffer(this.token, 0, readback, 0, 4);
      this.device.queue.submit([encoder.finish()]);
      return readback.mapAsync(GPUMapMode.READ).then(() => {
        const id = new Uint32Array(readback.getMappedRange())[0]!;
        readback.unmap();
        return id;
      });
    };

    const t0 = performance.now();
    const tokens: number[] = [];
    let stopped: GenerateResult['stopped'] = 'length';
    let firstTokenMs = 0;
    let tDecode = 0;
    let pending = submit();
    let ahead: Promise<number> | null = null;
    try {
      for (;;) {
        // Not past the cache either: a full cache throws below, once this token is delivered.
        ahead = submitted < opts.maxNewTokens && !opts.signal?.aborted && this.cache.length < this.cache.capacity ? submit() : null;
        const id = await pending;
        if (tokens.length === 0) {
          firstTokenMs = this.lastPrefillMs + (performance.now() - t0);
          tDecode = performance.now();
        }
        tokens.push(id);
        opts.onToken?.(id);
        if (stops.has(id)) {
          stopped = 'eos';
          break;
        }
        if (tokens.length >= opts.maxNewTokens) break;
        if (opts.signal?.aborted) {
          stopped = 'aborted';
          break;
        }
        if (!ahead) this.cache.checkRoom(1); // throws: the context is full
        pending = ahead!;
        ahead = null;
      }
    } finally {
      if (ahead) {
        // The step after the last token: let it finish, then forget the row it appended.
        await ahead.catch(() => undefined);
        this.cache.rollback(this.cache.length - 1);
      }
    }
    const decodeMs = tokens.length > 1 ? performance.now() - tDecode : 0;
    return {
      tokens,
      stopped,
      timings: { prefillMs: this.lastPrefillMs, decodeMs, tokensPerSecond: decodeMs > 0 ? ((tokens.length - 1) * 1000) / decodeMs : 0, firstTokenMs },
    };
  }

  /** Forgets cached rows from `length` on (multi-turn: the next prefill continues there). */
  rollback(length: number): void {
    this.cache.rollback(length);
    this.canGenerate = false;
  }

  /** GPU bytes held besides the weights: KV cache, activation scratch, RoPE table, logits and small buffers. */
  bytes(): number {
    const own = [this.logits, this.prefillLogits, this.lastHidden, this.positions, this.token, ...this.readbacks].reduce((s, b) => s + b.size, 0);
    return this.cache.bytes() + this.stack.bytes() + own;
  }

  destroy(): void {
    for (const b of [this.logits, this.prefillLogits, this.lastHidden, this.positions, this.token, ...this.readbacks]) b.destroy();
    this.cache.destroy();
    this.stack.destroy();
    this.embedding.destroy();
    this.sampler.destroy();
  }

  /**
   * Gather of the token in `this.token` -> every layer at position cache.length -> final norm -> lm_head -> logits:
   * the decode plan replayed at that position (bind groups and uniforms were made once, when it was recorded).
   */
  private recordDecode(pass: GPUComputePassEncoder): void {
    this.cache.checkRoom(1);
    if (!this.decodePlan) {
      const plan = new RecordedPass(this.cache.capacity);
      this.embedding.record(plan, this.token, this.stack.scratch.x, 1);
      this.stack.recordDecode(plan, this.cache, this.positions);
      this.recordHead(plan, 0, this.logits);
      this.decodePlan = plan;
    }
    this.decodePlan.replay(pass, this.cache.length);
    this.cache.advance(1);
  }

  /** Final RMSNorm of scratch.x row `row` only, then lm_head (row blocks for a big vocabulary) into `logits`. */
  private recordHead(pass: ComputePass, row: number, logits: GPUBuffer): void {
    this.stack.kernels.rmsNorm(pass, this.stack.scratch.x, this.finalNorm, this.lastHidden, 1, this.config.rmsNormEps, row);
    recordLinear(pass, this.stack.kernels.linear, this.lastHidden, this.lmHead, null, logits, 1);
  }
}
