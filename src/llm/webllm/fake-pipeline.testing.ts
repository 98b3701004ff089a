// A fake WebLLM 0.2.79 LLMChatPipeline for tests (CI has no model library; npm run verify:webllm runs the real
// one). It records every call the backend makes and mimics the real semantics that matter, each as lib/index.js
// has it:
// - tvmjs scopes (beginScope / endScope dispose what they hold; creating objects outside a scope throws;
//   detachFromCurrentScope throws for an object the scope does not hold);
// - tensors whose data are REAL GPUBuffers on the test device, reached through a buffer table
//   (getDataPtr -> gpuBufferFromPtr), data at offset 0 of its own buffer; its byteOffset field holds garbage, as
//   0.2.79's did in the real run (1801401957), so code that trusts it fails here too;
// - TVM's command submission: 0.2.79 submits every kernel as it is called (the fake's model reads its input in a
//   submit of its own), and freed tensor buffers are pooled and reused;
// - the KV cache: begin_forward / end_forward around prefill or decode, a true row count the test compares with
//   filledKVCacheLength, kv_state_popn(kv, seq 0, n) that refuses n > rows;
// - the step API: prefillStep appends the message and reply header to its Conversation, calls this.getInputData()
//   (tokenizing the Conversation: here a fixed token count per message), chunks it by prefillChunkSize, runs
//   this.embedAndForward per chunk and checks filledKVCacheLength grew by each chunk, samples from a script of
//   token ids and calls this.processNextToken (stop tokens not pushed to outputIds, max_tokens, context window);
//   decodeStep feeds outputIds[-1] through embedAndForward (one decode row); Conversation.finishReply checks;
//   per-round statistics with fixed fake durations.
// Learned from the real runs: the library's prefill function is wrong over cached rows (scripts/verify-webllm/
// kv-probe.ts: 17 cached rows then a 4-row prefill, logits 0.76 relative off a fresh prefill), so the fake refuses
// it there; 0.2.79 has no samplePrefillStep / forwardPrefill / getActiveKVStates / invokePrefill;
// the model functions are the fields prefill / decoding called with (x, kvCache, params).
import type { TvmPackedFunc, TvmTensor, TvmWebGpuContext } from './embedding-prefill.ts';
import { KV_POPN } from './embedding-prefill.ts';
import type { WebLlmGenConfig, WebLlmInputData, WebLlmPipeline } from './webllm-backend.ts';

const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, int32: 4 };

/** What 0.2.79's Tensor.byteOffset read in the real run: not an offset (the data starts at 0 of its buffer). */
export const GARBAGE_BYTE_OFFSET = 1801401957;

export class FakeTensor implements TvmTensor {
  disposed = false;
  constructor(
    private readonly tvm: FakeTvm,
    readonly shape: readonly number[],
    readonly dtype: string,
    private readonly ptr: number,
    readonly byteOffset: number,
  ) {}

  get nbytes(): number {
    return this.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[this.dtype]!;
  }

  getDataPtr(): number {
    if (this.disposed) throw new Error('Tensor has already been disposed');
    return this.ptr;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.tvm.release(this.ptr);
  }
}

export class FakeWebGpuContext implements TvmWebGpuContext {
  readonly bufferTable: (GPUBuffer | undefined)[] = [undefined];

  constructor(readonly device: GPUDevice) {}

  gpuBufferFromPtr(ptr: number): GPUBuffer {
    const b = this.bufferTable[ptr];
    if (!b) throw new Error(`fake webGPUContext: no buffer at ${ptr}`);
    return b;
  }

  /** One kernel or copy, submitted at once (0.2.79's submitShader / deviceCopy*). */
  submit(record: (encoder: GPUCommandEncoder) => void): void {
    const encoder = this.device.createCommandEncoder({ label: 'fake tvm kernel' });
    record(encoder);
    this.device.queue.submit([encoder.finish()]);
  }
}

export class FakeTvm {
  readonly lib: { webGPUContext: FakeWebGpuContext };
  private readonly scopes: unknown[][] = [];
  /** Freed buffer-table entries by byte size, reused by empty() (a caching allocator: no flush on free). */
  private readonly pool = new Map<number, number[]>();
  live = 0;
  created = 0;

  constructor(
    device: GPUDevice,
  ) {
    this.lib = { webGPUContext: new FakeWebGpuContext(device) };
  }

  get scopeDepth(): number {
    return this.scopes.length;
  }

  empty(shape: readonly number[], dtype: string, device: unknown): FakeTensor {
    if (!device) throw new Error('fake tvm.empty: no device');
    if (!(dtype in DTYPE_BYTES)) throw new Error(`fake tvm.empty: dtype ${dtype}`);
    const size = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype]!;
    const ptr = this.pool.get(size)?.pop() ?? this.allocate(size);
    return this.attach(new FakeTensor(this, [...shape], dtype, ptr, GARBAGE_BYTE_OFFSET));
  }

  /** A tensor holding `values` (float32), as a packed function's result would be (attached to the scope). */
  resultTensor(values: Float32Array): FakeTensor {
    const ctx = this.lib.webGPUContext;
    const buf = ctx.device.createBuffer({ size: values.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    new Float32Array(buf.getMappedRange()).set(values);
    buf.unmap();
    ctx.bufferTable.push(buf);
    return this.attach(new FakeTensor(this, [1, 1, values.length], 'float32', ctx.bufferTable.length - 1, 0));
  }

  release(ptr: number): void {
    this.live--;
    const size = this.lib.webGPUContext.bufferTable[ptr]!.size;
    this.pool.set(size, [...(this.pool.get(size) ?? []), ptr]);
  }

  makeShapeTuple(shape: readonly number[]): { shapeTuple: number[] } {
    return { shapeTuple: [...shape] };
  }

  scalar(value: number, dtype: string): { value: number; dtype: string } {
    return { value, dtype };
  }

  /** Installed by FakePipeline: the global functions by name. */
  globals = new Map<string, (...args: unknown[]) => unknown>();

  getGlobalFunc(name: string): TvmPackedFunc {
    const f = this.globals.get(name);
    if (!f) throw new Error(`Cannot find global function ${name}`);
    const fn = Object.assign((...args: unknown[]) => f(...args), { dispose: () => undefined });
    if (this.scopes.length === 0) throw new Error('Must call beginScope to use functions that returns TVM objects');
    this.scopes.at(-1)!.push(fn);
    return fn;
  }

  beginScope(): void {
    this.scopes.push([]);
  }

  endScope(): void {
    const scope = this.scopes.pop();
    if (!scope) throw new Error('tvm.endScope called when the stack is empty.');
    for (const v of scope) (v as { dispose?(): void } | undefined)?.dispose?.();
  }

  attachToCurrentScope<T>(obj: T): T {
    const scope = this.scopes.at(-1);
    if (!scope) throw new Error('Must call beginScope to use functions that returns TVM objects');
    scope.push(obj);
    return obj;
  }

  detachFromCurrentScope<T>(obj: T): T {
    const scope = this.scopes.at(-1);
    const i = scope ? scope.indexOf(obj) : -1;
    if (i < 0) throw new Error('Cannot find obj in the current auto conversion pool');
    scope![i] = undefined;
    return obj;
  }

  private attach<T extends FakeTensor>(t: T): T {
    if (this.scopes.length === 0) throw new Error('Must call beginScope to use functions that returns TVM objects');
    this.scopes.at(-1)!.push(t);
    this.live++;
    this.created++;
    return t;
  }

  private allocate(size: number): number {
    const ctx = this.lib.webGPUContext;
    ctx.bufferTable.push(ctx.device.createBuffer({ size: Math.ceil(size / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }));
    return ctx.bufferTable.length - 1;
  }
}

/** One forward the fake model ran: its rows, where they landed, and a GPU copy of its input tensor's bytes. */
export interface ForwardRecord {
  kind: 'prefill' | 'decode';
  rows: number;
  /** Cache rows before this forward (the fake cache's own count). */
  start: number;
  /** The pipeline's filledKVCacheLength when the model ran (its bookkeeping, which must equal `start`). */
  filledBefore: number;
  dtype: string;
  /** Copy of the input tensor's data, made when the model "read" it. */
  capture: GPUBuffer;
}

/** WebLLM's Conversation, as far as the pipeline's step API touches it (same checks as 0.2.79). */
export class FakeConversation {
  messages: [string, string | undefined, unknown][] = [];
  reset(): void {
    this.messages = [];
  }
  appendMessage(role: string, message: unknown, roleName?: string): void {
    if (this.messages.length !== 0 && this.messages.at(-1)![2] === undefined) throw new Error('Have unfinished reply');
    this.messages.push([role, roleName, message]);
  }
  appendReplyHeader(role: string): void {
    this.messages.push([role, undefined, undefined]);
  }
  finishReply(message: string): void {
    if (this.messages.length === 0) throw new Error('Message error should not be 0');
    if (this.messages.at(-1)![2] !== undefined) throw new Error('Already assigned');
    this.messages.at(-1)![2] = message;
  }
}

export interface FakePipelineOptions {
  hidden: number;
  quantization: 'q4f16_1' | 'q4f32_1' | 'q0f16' | 'q0f32';
  prefillChunkSize: number;
  contextWindowSize: number;
  /** Fake seconds per decode step and for the prefill step's sampling (usage statistics). */
  decodeStepSeconds?: number;
  prefillStepSeconds?: number;
}

export const FAKE_LAYERS = 3;
export const FAKE_KV_HEADS = 2;
export const FAKE_HEAD_DIM = 4;

export class FakePipeline implements WebLlmPipeline {
  readonly tvm: FakeTvm;
  readonly device = { deviceType: 'webgpu', deviceId: 0 };
  readonly kvCache = { kind: 'fake paged kv cache' };
  readonly params = { kind: 'fake params' };
  /** Tokens the fake tokenizer makes of a Conversation message (getInputData). */
  tokensPerMessage = 5;
  filledKVCacheLength = 0;
  prefillChunkSize: number;
  contextWindowSize: number;
  slidingWindowSize = -1;
  config: { quantization?: string; model_config?: Record<string, unknown> };
  conversation = new FakeConversation();
  stopTokens = [128001, 128008, 128009];

  /** The fake KV cache's own row count (the truth filledKVCacheLength must track). */
  kvRows = 0;
  /** Every call into the fake's KV / model functions, in order. */
  readonly calls: string[] = [];
  readonly forwards: ForwardRecord[] = [];
  /** Token ids the fake sampler returns, in order. */
  script: number[] = [];
  /** The genConfig of every sampling. */
  readonly sampled: WebLlmGenConfig[] = [];
  seeds: number[] = [];
  /** Called after each forward the model runs (tests abort from here). */
  onForward: ((rec: ForwardRecord) => void) | null = null;
  outputIds: number[] = [];
  private stopTriggered = false;
  private finishReason: string | undefined;
  private outputMessage = '';
  private openForward: number | null = null;
  private round = { prefillTokens: 0, prefillTime: 0, decodeTokens: 0, decodeTime: 0 };
  private readonly decodeStepSeconds: number;
  private readonly prefillStepSeconds: number;

  constructor(
    device: GPUDevice,
    readonly opts: FakePipelineOptions,
  ) {
    this.tvm = new FakeTvm(device);
    this.prefillChunkSize = opts.prefillChunkSize;
    this.contextWindowSize = opts.contextWindowSize;
    this.config = {
      quantization: opts.quantization,
      model_config: { hidden_size: opts.hidden, num_hidden_layers: FAKE_LAYERS, num_key_value_heads: FAKE_KV_HEADS, head_dim: FAKE_HEAD_DIM },
    };
    this.decodeStepSeconds = opts.decodeStepSeconds ?? 0.02;
    this.prefillStepSeconds = opts.prefillStepSeconds ?? 0.005;
    this.tvm.globals.set(KV_POPN, (kv, seq, n) => this.popn(kv, seq, n));
  }

  get dtype(): string {
    return /f16/.test(this.opts.quantization) ? 'float16' : 'float32';
  }

  // ---- KV cache and model functions ----

  fKVCacheBeginForward(state: unknown, seqIds: unknown, lengths: unknown): void {
    if (state !== this.kvCache) throw new Error('begin_forward: unknown state');
    if (this.openForward !== null) throw new Error('begin_forward: a forward is already open');
    const seq = (seqIds as { shapeTuple: number[] }).shapeTuple;
    const len = (lengths as { shapeTuple: number[] }).shapeTuple;
    this.calls.push(`begin_forward seq=[${seq.join(',')}] len=[${len.join(',')}]`);
    this.openForward = len[0]!;
  }

  fKVCacheEndForward(state: unknown): void {
    if (state !== this.kvCache) throw new Error('end_forward: unknown state');
    if (this.openForward === null) throw new Error('end_forward without begin_forward');
    this.calls.push('end_forward');
    this.kvRows += this.openForward;
    this.openForward = null;
  }

  /** The library's prefill function (a VM function field in 0.2.79). */
  readonly prefill = (x: TvmTensor, kv: unknown, params: unknown): { get(i: number): TvmTensor } => {
    this.checkArgs(kv, params);
    // The real library computes this without a word, and wrongly (kv-probe: 0.76 relative off): refused here.
    if (this.kvRows > 0) throw new Error(`prefill n=${x.shape[1]} over ${this.kvRows} cached rows: the real library's logits would be wrong`);
    this.calls.push(`prefill n=${x.shape[1]}`);
    return this.forward('prefill', x, x.shape[1]!);
  };

  /** The library's decode function. */
  readonly decoding = (x: TvmTensor, kv: unknown, params: unknown): { get(i: number): TvmTensor } => {
    this.checkArgs(kv, params);
    this.calls.push('decode');
    return this.forward('decode', x, 1);
  };

  // ---- the step API ----

  async prefillStep(inp: string, msgRole: string, inpRoleStr?: string, genConfig?: WebLlmGenConfig): Promise<void> {
    if (msgRole !== 'user' && msgRole !== 'tool') throw new Error('The last message should be from `user` or `tool`.');
    this.round = { prefillTokens: 0, prefillTime: 0, decodeTokens: 0, decodeTime: 0 };
    this.outputIds = [];
    this.outputMessage = '';
    this.stopTriggered = false;
    this.conversation.appendMessage(msgRole, inp, inpRoleStr);
    this.conversation.appendReplyHeader('assistant');
    const [inputData, promptLen] = this.getInputData();
    const chunks = chunkInput(inputData, this.prefillChunkSize);
    this.tvm.beginScope();
    let logits: TvmTensor | undefined;
    for (const [chunk, len] of chunks) {
      const prev = this.filledKVCacheLength;
      logits = this.tvm.detachFromCurrentScope(await this.embedAndForward(chunk, len));
      if (this.filledKVCacheLength !== prev + len) throw new Error('Internal Error: filledKVCacheLength does not match expected value.');
    }
    this.tvm.endScope();
    if ((logits as FakeTensor).disposed) throw new Error('prefill logits already disposed');
    const token = this.sample(genConfig);
    logits!.dispose();
    this.round.prefillTokens += promptLen;
    this.round.prefillTime += this.prefillStepSeconds;
    this.processNextToken(token, genConfig);
  }

  async decodeStep(genConfig?: WebLlmGenConfig): Promise<void> {
    if (this.stopTriggered) throw new Error('Cannot run decode when stopped');
    this.tvm.beginScope();
    const prev = this.filledKVCacheLength;
    const logits = this.tvm.detachFromCurrentScope(await this.embedAndForward([this.outputIds.slice(-1)], 1));
    if (this.filledKVCacheLength !== prev + 1) throw new Error('Internal Error: filledKVCacheLength does not match expected value.');
    this.tvm.endScope();
    const token = this.sample(genConfig);
    logits.dispose();
    this.round.decodeTokens += 1;
    this.round.decodeTime += this.decodeStepSeconds;
    this.processNextToken(token, genConfig);
  }

  /** Tokenizes the Conversation (the real one: system prefix + every message): tokensPerMessage per message. */
  getInputData(): [WebLlmInputData, number] {
    const n = this.conversation.messages.length * this.tokensPerMessage;
    return [[Array.from({ length: n }, (_, i) => 1000 + i)], n];
  }

  /** The prototype's: token embeddings (the library's embed) then the library's prefill / decode. */
  async embedAndForward(inputData: WebLlmInputData, inputDataLen: number): Promise<TvmTensor> {
    if (inputDataLen > this.prefillChunkSize) throw new Error('InternalError: expect inputDataLen <= this.prefillChunkSize.');
    this.tvm.beginScope();
    const ids = inputData.flatMap((d) => (Array.isArray(d) ? d : []));
    this.calls.push(`embed tokens=${ids.join(',')}`);
    const x = this.tvm.empty([1, inputDataLen, this.opts.hidden], this.dtype, this.device);
    this.fKVCacheBeginForward(this.kvCache, this.tvm.makeShapeTuple([0]), this.tvm.makeShapeTuple([inputDataLen]));
    const out = inputDataLen > 1 ? this.prefill(x, this.kvCache, this.params) : this.decoding(x, this.kvCache, this.params);
    this.fKVCacheEndForward(this.kvCache);
    this.filledKVCacheLength += inputDataLen;
    const logits = this.tvm.detachFromCurrentScope(out.get(0));
    this.tvm.endScope();
    this.tvm.attachToCurrentScope(logits);
    return logits;
  }

  processNextToken(t: number, genConfig?: WebLlmGenConfig): void {
    if (this.stopTriggered) throw new Error('Cannot call process when it is stoppped');
    if (this.stopTokens.includes(t)) {
      this.stopTriggered = true;
      this.finishReason = 'stop';
    } else {
      this.outputIds.push(t);
    }
    this.outputMessage = this.outputIds.map((id) => `<${id}>`).join('');
    if (this.outputIds.length >= (genConfig?.max_tokens ?? Infinity)) {
      this.stopTriggered = true;
      this.finishReason = 'length';
    }
    if (this.filledKVCacheLength === this.contextWindowSize) {
      this.stopTriggered = true;
      this.finishReason = 'length';
    }
    if (this.stopTriggered) this.conversation.finishReply(this.outputMessage);
  }

  stopped(): boolean {
    return this.stopTriggered;
  }

  triggerStop(): void {
    if (this.stopTriggered) return;
    this.stopTriggered = true;
    this.finishReason = 'abort';
    this.conversation.finishReply(this.outputMessage);
  }

  getFinishReason(): string | undefined {
    return this.finishReason;
  }

  getMessage(): string {
    return this.outputMessage;
  }

  setSeed(seed: number): void {
    if (!Number.isInteger(seed)) throw new Error('Seed should be an integer.');
    this.seeds.push(seed);
  }

  getCurRoundPrefillTotalTokens(): number {
    return this.round.prefillTokens;
  }
  getCurRoundPrefillTotalTime(): number {
    return this.round.prefillTime;
  }
  getCurRoundDecodingTotalTokens(): number {
    return this.round.decodeTokens;
  }
  getCurRoundDecodingTotalTime(): number {
    return this.round.decodeTime;
  }

  // ---- internals ----

  private checkArgs(kv: unknown, params: unknown): void {
    if (kv !== this.kvCache) throw new Error('model function: unknown KV cache');
    if (params !== this.params) throw new Error('model function: not the model params');
  }

  private forward(kind: ForwardRecord['kind'], x: TvmTensor, n: number): { get(i: number): TvmTensor } {
    if (this.openForward !== n) throw new Error(`${kind}: ${n} rows but begin_forward announced ${this.openForward}`);
    const H = this.opts.hidden;
    const want = [1, n, H].join(',');
    if (x.shape.join(',') !== want || x.dtype !== this.dtype) throw new Error(`${kind}: input [${x.shape.join(',')}] ${x.dtype}, want [${want}] ${this.dtype}`);
    if (this.kvRows + n > this.contextWindowSize) throw new Error('KV cache full');
    const ctx = this.tvm.lib.webGPUContext;
    const bytes = (x as FakeTensor).nbytes;
    const capture = ctx.device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    ctx.submit((e) => e.copyBufferToBuffer(ctx.gpuBufferFromPtr(x.getDataPtr()), 0, capture, 0, bytes));
    const rec: ForwardRecord = { kind, rows: n, start: this.kvRows, filledBefore: this.filledKVCacheLength, dtype: x.dtype, capture };
    this.forwards.push(rec);
    // Logits: [forward index, rows, start row, 0...] so tests can tell which forward's logits they hold.
    const logits = this.tvm.resultTensor(new Float32Array([this.forwards.length - 1, n, this.kvRows, 0, 0, 0, 0, 0]));
    this.onForward?.(rec);
    return { get: (i) => (i === 0 ? logits : (undefined as never)) };
  }

  private popn(kv: unknown, seq: unknown, n: unknown): void {
    if (kv !== this.kvCache) throw new Error('popn: unknown state');
    const s = seq as { value: number; dtype: string };
    const k = n as { value: number; dtype: string };
    this.calls.push(`popn seq=${s.value}:${s.dtype} n=${k.value}:${k.dtype}`);
    if (s.value !== 0) throw new Error(`popn: no sequence ${s.value}`);
    if (!(k.value >= 0 && k.value <= this.kvRows)) throw new Error(`popn: ${k.value} > ${this.kvRows} rows`);
    this.kvRows -= k.value;
  }

  private sample(genConfig: WebLlmGenConfig | undefined): number {
    this.sampled.push({ ...genConfig! });
    const t = this.script.shift();
    if (t === undefined) throw new Error('fake sampler: script exhausted');
    return t;
  }
}

/** getChunkedPrefillInputData (0.2.79 line 8433) for token data: chunks of at most `size` tokens. */
function chunkInput(data: WebLlmInputData, size: number): Array<[WebLlmInputData, number]> {
  const ids = data.flatMap((d) => (Array.isArray(d) ? d : []));
  const out: Array<[WebLlmInputData, number]> = [];
  for (let i = 0; i < ids.length; i += size) out.push([[ids.slice(i, i + size)], Math.min(size, ids.length - i)]);
  return out;
}
