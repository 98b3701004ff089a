// WebLlmBackend: (1) every WebLLM internal it relies on, checked against the installed @mlc-ai/web-llm's source
// (lib/index.js; LLMChatPipeline is not exported), so an upgrade that renames or reshapes one fails here; (2) the
// backend on the fake pipeline (real GPU buffers): the hook, WebLLM's step API driven to the stop, tokens and
// statistics, multi-turn roll-back as spec section 6 does it, abort, sampling options, unhooking.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as webllm from '@mlc-ai/web-llm';
import { createNodeGpu } from '../../node/gpu.ts';
import { f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { readBuffer, storageBufferFrom } from '../../gpu/buffers.ts';
import type { GpuContext } from '../../gpu/device.ts';
import { mulberry32, randomF32 } from '../../util/seeded-random.ts';
import { FAKE_HEAD_DIM, FAKE_KV_HEADS, FAKE_LAYERS, FakePipeline } from './fake-pipeline.testing.ts';
import { expectInOrder, libClassMethods, libLineOf, libMethodSource, webLlmLibSource, webLlmVersion } from './webllm-lib.testing.ts';
import { INSTANCE_MARKER } from './direct-weight-loader.ts';
import { kvCacheBytes, PIPELINE_FIELDS, PIPELINE_METHODS, pipelineOf, stoppedOf, timingsFromUsage, TURN_PLACEHOLDER, WebLlmBackend } from './webllm-backend.ts';

/** Squeezes whitespace so checks do not depend on the bundle's line breaks. */
const flat = (s: string) => s.replace(/\s+/g, ' ');

describe('WebLLM internals (installed @mlc-ai/web-llm)', () => {
  it('is 0.2.79 (library ABI v0_2_48), importable in Node, and does not export LLMChatPipeline (hence the source checks below)', () => {
    expect(webLlmVersion()).toBe('0.2.79');
    expect(webllm.modelVersion).toBe('v0_2_48');
    expect(typeof webllm.MLCEngine).toBe('function');
    expect(typeof webllm.WebWorkerMLCEngineHandler).toBe('function');
    expect('LLMChatPipeline' in webllm).toBe(false);
    for (const m of ['reload', 'unload', 'interruptGenerate', 'chatCompletion']) expect(typeof (webllm.MLCEngine.prototype as unknown as Record<string, unknown>)[m]).toBe('function');
  });

  it('LLMChatPipeline has every method the backend calls or stands in for, and assigns every field it uses', () => {
    const methods = libClassMethods('LLMChatPipeline');
    expect(PIPELINE_METHODS.filter((m) => !methods.has(m))).toEqual([]);
    const ctor = flat(libMethodSource('LLMChatPipeline', 'constructor'));
    expect(PIPELINE_FIELDS.filter((f) => !ctor.includes(`this.${f} = `))).toEqual([]);
    expect(ctor).toContain('this.device = this.tvm.webgpu();');
    expect(ctor).toContain('this.prefill = this.tvm.detachFromCurrentScope(this.vm.getFunction("prefill"));');
    expect(ctor).toContain('this.decoding = this.tvm.detachFromCurrentScope(this.vm.getFunction("decode"));');
    expect(ctor).toContain('this.prefillChunkSize = metadata.prefill_chunk_size;');
    expect(ctor).toContain('this.stopTokens = this.conversation.getStopTokens();');
    expect(ctor).toContain('this.fKVCacheBeginForward = this.tvm.detachFromCurrentScope(this.tvm.getGlobalFunc("vm.builtin.kv_state_begin_forward"));');
    expect(ctor).toContain('this.fKVCacheEndForward = this.tvm.detachFromCurrentScope(this.tvm.getGlobalFunc("vm.builtin.kv_state_end_forward"));');
    // 0.2.86's step API is not there: the backend drives prefillStep / decodeStep.
    for (const later of ['samplePrefillStep', 'forwardPrefill', 'commitSampledStep', 'getActiveKVStates', 'invokePrefill']) expect(methods.has(later), later).toBe(false);
    // WebLLM itself never pops KV rows: we fetch the runtime's kv_state_popn ourselves.
    expect(webLlmLibSource()).not.toContain('kv_state_popn');
  });

  it('prefillStep tokenizes through this.getInputData, forwards each chunk through this.embedAndForward, samples and disposes the logits', () => {
    const src = flat(libMethodSource('LLMChatPipeline', 'prefillStep'));
    const order = [
      'conversation.appendMessage(msgRole, inp, inp_role_str);',
      'conversation.appendReplyHeader(Role.assistant);',
      'const retGetInputData = this.getInputData();',
      'const promptLen = retGetInputData[1];',
      'const retGetChunks = getChunkedPrefillInputData(inputData, this.prefillChunkSize);',
      'logits = this.tvm.detachFromCurrentScope(yield this.embedAndForward(chunk, chunkLen));',
      'if (this.filledKVCacheLength !== prevFilledLen + chunkLen) {',
      'const nextToken = yield this.sampleTokenFromLogits(logits, genConfig);',
      'logits.dispose();',
      'this.curRoundPrefillTotalTokens += promptLen;',
      'this.processNextToken(nextToken, genConfig);',
    ];
    expectInOrder(src, order);
    const decode = flat(libMethodSource('LLMChatPipeline', 'decodeStep'));
    expect(decode).toContain('const chunk = [ this.outputIds.slice(this.outputIds.length - 1), ];');
    expect(decode).toContain('const logits = this.tvm.detachFromCurrentScope(yield this.embedAndForward(chunk, chunkLen));');
    expect(decode).toContain('this.processNextToken(nextToken, genConfig);');
    // Greedy: temperature 0 samples the argmax.
    expect(flat(libMethodSource('LLMChatPipeline', 'sampleTokenFromLogits'))).toContain('// temperature being 0 is allowed here, equivalent to argmax');
  });

  it('embedAndForward runs the forward the way EmbeddingPrefill repeats it', () => {
    const src = flat(libMethodSource('LLMChatPipeline', 'embedAndForward'));
    const order = [
      'allEmbeddings = allEmbeddings.view([1].concat(allEmbeddings.shape));',
      'const inputLenShape = this.tvm.makeShapeTuple([inputDataLen]);',
      'const seqIdsTuple = this.tvm.makeShapeTuple([0]);',
      'this.fKVCacheBeginForward(this.kvCache, seqIdsTuple, inputLenShape);',
      'if (inputDataLen > 1) { retValue = this.prefill(allEmbeddings, this.kvCache, this.params); } else { retValue = this.decoding(allEmbeddings, this.kvCache, this.params); }',
      'this.fKVCacheEndForward(this.kvCache);',
      'this.filledKVCacheLength += inputDataLen;',
      'const logits = this.tvm.detachFromCurrentScope(retValue.get(0));',
      'this.tvm.endScope();',
      'this.tvm.attachToCurrentScope(logits);',
    ];
    expectInOrder(src, order);
  });

  it('stop tokens, max_tokens and abort behave as the backend maps them', () => {
    const next = flat(libMethodSource('LLMChatPipeline', 'processNextToken'));
    expect(next).toContain('let stopTokens = this.stopTokens;');
    expect(next).toContain('if (stopTokens.includes(nextToken)) { this.stopTriggered = true; this.finishReason = "stop"; }');
    expect(next).toContain('if (this.outputIds.length >= max_tokens) { this.stopTriggered = true; this.finishReason = "length";');
    expect(flat(libMethodSource('LLMChatPipeline', 'triggerStop'))).toContain('this.finishReason = "abort";');
  });

  it('the engine holds pipelines by model id (worker: handler.engine); chat.completions would reset our cache', () => {
    expect(flat(libMethodSource('MLCEngine', 'reloadInternal'))).toContain('this.loadedModelIdToPipeline.set(modelId, newPipeline);');
    expect(flat(libMethodSource('WebWorkerMLCEngineHandler', 'constructor'))).toContain('this.engine = new MLCEngine();');
    const prefill = flat(libMethodSource('MLCEngine', 'prefill'));
    expect(prefill).toContain('if (!compareConversationObject(oldConv, newConv)) {');
    expect(prefill).toContain('pipeline.resetChat();');
    expect(flat(libMethodSource('LLMChatPipeline', 'resetChat'))).toContain('this.filledKVCacheLength = 0;');
  });

  it('tvmjs gives tensors and their GPUBuffers, and submits every kernel at once (no pending encoder to flush)', () => {
    const src = webLlmLibSource();
    for (const needle of [
      'gpuBufferFromPtr(ptr) {',
      'usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,',
      'empty(shape, dtype = "float32", dev = this.device("cpu", 0)) {',
      'scalar(value, dtype) {',
      'makeShapeTuple(shape) {',
      'getGlobalFunc(name) {',
      'detachFromCurrentScope(obj) {',
      'attachToCurrentScope(obj) {',
      'getDataPtr() {',
      'this.lib.webGPUContext = webGPUContext;',
    ]) {
      expect(src.includes(needle), needle).toBe(true);
    }
    expect(flat(src)).toContain('const command = commandEncoder.finish(); this.device.queue.submit([command]);');
    expect(src).not.toContain('flushCommands');
  });

  it('the weight loader the direct loader replaces stages records in the wasm heap; the Instance is reachable by its first field', () => {
    const src = flat(webLlmLibSource());
    expect(src).toContain(`constructor(wasmModule, importObject = {}, wasmInstance, env) { this.${INSTANCE_MARKER} = {};`);
    expect(src).toContain('yield this.fetchNDArrayCacheInternal(ndarrayCacheUrl, list["records"], device, artifactCache, signal);');
    expect(src).toContain('fetchNDArrayCacheInternal(ndarrayCacheUrl, list, device, artifactCache, signal) {');
    expect(src).toContain('this.ctx.arrayDecodeStorage(cpu_arr, new Uint8Array(recSource), rec.format, rec.dtype);');
    expect(src).toContain('this.ndarrayCacheUpdate(rec.name, gpu_arr, false);');
    expect(src).toContain('copyFromRawBytes(data) { var _a; // short cut for gpu copy if (this.device.deviceType === DeviceStrToEnum.webgpu) { (_a = this.lib.webGPUContext) === null || _a === void 0 ? void 0 : _a.copyRawBytesToBuffer(data, this.getDataPtr(), 0, data.length);');
    expect(src).toContain('copyRawBytesToBuffer(rawBytes, toPtr, toOffset, nbytes) { // Perhaps it would be more useful to use a staging buffer? this.device.queue.writeBuffer(this.gpuBufferFromPtr(toPtr), toOffset, rawBytes, 0, nbytes); }');
    expect(src).toContain('fetchWithCache(url, storetype, signal) {');
    const reload = flat(libMethodSource('MLCEngine', 'reloadInternal'));
    expect(reload).toContain('const tvm = yield lib$2.exports.instantiate(new Uint8Array(wasmSource), lib$2.exports.createPolyfillWASI(), this.logger);');
    expect(reload).toContain('yield tvm.fetchNDArrayCache(modelUrl, tvm.webgpu(), "webllm/model", cacheType,');
    const ctor = flat(libMethodSource('LLMChatPipeline', 'constructor'));
    expect(ctor).toContain('const fgetMetadata = this.vm.getFunction("_metadata");');
    expect(ctor).toContain('this.params = this.tvm.detachFromCurrentScope(this.tvm.getParamsFromCacheByName(paramNames));');
    expect(src).toContain('const jsonUrl = new URL("ndarray-cache.json", ndarrayCacheUrl).href;');
  });

  it('the line numbers quoted in the docs are those of the installed lib/index.js', () => {
    const lines: [string, number][] = [
      ['class LLMChatPipeline {', 8580],
      ['    prefillStep(inp, msgRole, // either user or tool', 8913],
      ['    decodeStep(genConfig) {', 9048],
      ['    triggerStop() {', 9079],
      ['    processNextToken(nextToken, genConfig) {', 9095],
      ['    embedAndForward(inputData, inputDataLen) {', 9230],
      ['    getInputData() {', 9505],
      ['        this.device = this.tvm.webgpu();', 8665],
      ['        this.prefillChunkSize = metadata.prefill_chunk_size;', 8691],
      ['function getChunkedPrefillInputData(inputData, prefillChunkSize) {', 8433],
      ['function cleanModelUrl(modelUrl) {', 8281],
      ['function hasModelInCache(modelId, appConfig) {', 10235],
      ['function asyncLoadTokenizer(baseUrl, config, appConfig, logger = console.log) {', 10325],
      ['    reloadInternal(modelId, chatOpts) {', 10690],
      ['            this.loadedModelIdToPipeline.set(modelId, newPipeline);', 10803],
      ['    prefill(input, pipeline, chatConfig, genConfig) {', 11530],
      ['        this.engine = new MLCEngine();', 11683],
      ['    class ArtifactCache {', 4323],
      ['        gpuBufferFromPtr(ptr) {', 4283],
      ['        copyRawBytesToBuffer(rawBytes, toPtr, toOffset, nbytes) {', 3916],
      ['        copyFromRawBytes(data) {', 5185],
      ['            this.cacheMetadata = {};', 5484],
      ['        fetchNDArrayCache(ndarrayCacheUrl, device, cacheScope = "tvmjs", cacheType = "cache", signal) {', 5817],
      ['        fetchNDArrayCacheInternal(ndarrayCacheUrl, list, device, artifactCache, signal) {', 5845],
      ['    function instantiate(bufferSource, importObject = {}, logger = console.log) {', 6756],
    ];
    expect(lines.map(([needle]) => [needle.trim(), libLineOf(`\n${needle}`) + 1])).toEqual(lines.map(([needle, line]) => [needle.trim(), line]));
  });
});

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const H = 8;
const C = 4;
const INPUT = randomF32(40 * H, mulberry32(3), 2);

async function setup(quantization: 'q4f16_1' | 'q4f32_1' | 'q0f32' = 'q4f32_1') {
  const p = new FakePipeline(ctx.device, { hidden: H, quantization, prefillChunkSize: C, contextWindowSize: 32 });
  const backend = await WebLlmBackend.attach(p, { hidden: H });
  const input = storageBufferFrom(ctx.device, INPUT, 'llm input');
  return { p, backend, input };
}

async function forwardBytes(p: FakePipeline, i: number): Promise<Uint8Array> {
  const c = p.forwards[i]!.capture;
  return new Uint8Array(await readBuffer(ctx.device, c, c.size));
}

describe('WebLlmBackend on a fake pipeline', () => {
  it('answers through WebLLM\'s step API: hooked prefill, first token from our logits, decode to the stop token', async () => {
    const { p, backend, input } = await setup('q0f32');
    expect([backend.capacity, backend.length]).toEqual([32, 0]);
    await backend.prefill(input, 7);
    // One chunk on the empty cache, then row by row (the library's prefill is wrong over cached rows).
    expect(p.forwards.map((f) => [f.kind, f.rows])).toEqual([['prefill', 4], ['decode', 1], ['decode', 1], ['decode', 1]]);
    expect(Array.from((await backend.logitsOfLastPrefill()).subarray(0, 3))).toEqual([3, 1, 6]);
    p.script = [11, 12, 13, 128009, 99];
    const seen: number[] = [];
    const res = await backend.generate({ maxNewTokens: 10, onToken: (id) => seen.push(id) });
    expect(res.tokens).toEqual([11, 12, 13, 128009]);
    expect(seen).toEqual(res.tokens);
    expect(res.stopped).toBe('eos');
    // Every generated token but the last went through one decode row; the cache holds prompt + 3.
    expect(p.calls.filter((c) => c.startsWith('embed'))).toEqual(['embed tokens=11', 'embed tokens=12', 'embed tokens=13']);
    expect([p.filledKVCacheLength, p.kvRows, backend.length]).toEqual([10, 10, 10]);
    // Greedy for WebLLM's sampler, neutral penalties, max_tokens; no seed set.
    expect(p.sampled[0]).toEqual({ temperature: 0, top_p: 1, repetition_penalty: 1, frequency_penalty: 0, presence_penalty: 0, max_tokens: 10 });
    expect(p.seeds).toEqual([]);
    // WebLLM's own view: one turn in its Conversation, the answer text, the usage it would stream.
    expect(p.conversation.messages).toEqual([
      ['user', undefined, TURN_PLACEHOLDER],
      ['assistant', undefined, '<11><12><13>'],
    ]);
    expect(backend.lastText).toBe('<11><12><13>');
    expect(backend.lastUsage).toMatchObject({ prompt_tokens: 7, completion_tokens: 4 });
    expect(backend.lastUsage!.extra.decode_tokens_per_s).toBeCloseTo(50, 9);
    expect(backend.lastUsage!.extra.time_to_first_token_s).toBeCloseTo(0.005, 12);
    expect(res.timings.decodeMs).toBeCloseTo(60, 9);
    expect(res.timings.tokensPerSecond).toBeCloseTo(50, 9);
    expect(res.timings.firstTokenMs - res.timings.prefillMs).toBeCloseTo(5, 9);
    // Nothing leaked: prefillStep disposed our logits.
    expect([p.tvm.live, p.tvm.scopeDepth]).toEqual([0, 0]);
    await expect(backend.generate({ maxNewTokens: 4 })).rejects.toThrow(/prefill the prompt/);
    backend.destroy();
    input.destroy();
  });

  it('multi-turn (spec section 6): turn 2 rolls back to the end of turn 1\'s prompt and prefills only the new rows', async () => {
    const { p, backend, input } = await setup('q4f16_1');
    // Turn 1: a 9-row prompt, a 3-token answer (11, 12, then the stop).
    await backend.prefill(input, 9);
    p.script = [11, 12, 128009];
    expect((await backend.generate({ maxNewTokens: 8 })).tokens).toEqual([11, 12, 128009]);
    expect(backend.length).toBe(11);
    // Turn 2: the prompt re-rendered = turn 1's prompt + the answer as fused text (3 rows) + the new question (5).
    p.calls.length = 0;
    const forwardsBefore = p.forwards.length;
    // 9 cached rows fill at least one chunk (4): kept; fewer would be re-prefilled from row 0.
    expect([backend.keptRows(9, 17), backend.keptRows(3, 17)]).toEqual([9, 0]);
    backend.rollback(9);
    expect(p.calls).toEqual(['popn seq=0:int64 n=2:int32']);
    expect([p.filledKVCacheLength, p.kvRows]).toEqual([9, 9]);
    await backend.prefill(input, 8, { inputRowOffset: 9 });
    const turn2 = p.forwards.slice(forwardsBefore);
    expect(turn2.map((f) => [f.start, f.rows])).toEqual(Array.from({ length: 8 }, (_, i) => [9 + i, 1]));
    for (const [i, f] of turn2.entries()) {
      const want = f32ToF16Bytes(INPUT.slice((f.start) * H, (f.start + f.rows) * H));
      expect(Buffer.from(await forwardBytes(p, forwardsBefore + i)).equals(Buffer.from(want))).toBe(true);
    }
    p.script = [21, 128001];
    const res = await backend.generate({ maxNewTokens: 8 });
    expect(res.tokens).toEqual([21, 128001]);
    expect(backend.lastUsage!.prompt_tokens).toBe(8);
    expect([p.filledKVCacheLength, p.kvRows]).toEqual([18, 18]);
    // WebLLM's Conversation holds just the current turn (finishReply never sees an unfinished or missing reply).
    expect(p.conversation.messages.map((m) => m[2])).toEqual([TURN_PLACEHOLDER, '<21>']);
    backend.destroy();
    input.destroy();
  });

  it('maps stop ids, max tokens, abort and sampling options onto WebLLM', async () => {
    const { p, backend, input } = await setup();
    await backend.prefill(input, 3);
    p.script = [1, 2, 3, 4, 5];
    const len = await backend.generate({ maxNewTokens: 3 });
    expect([len.tokens, len.stopped]).toEqual([[1, 2, 3], 'length']);

    backend.rollback(3);
    await backend.prefill(input, 2, { inputRowOffset: 3 });
    p.script = [7, 5, 6];
    const eos = await backend.generate({ maxNewTokens: 9, stopIds: [5], sampling: { temperature: 0.7, topP: 0.9, seed: 42 } });
    expect([eos.tokens, eos.stopped]).toEqual([[7, 5], 'eos']);
    expect(p.stopTokens).toEqual([5]);
    expect(backend.defaultStopIds).toEqual([128001, 128008, 128009]);
    expect(p.sampled.at(-1)).toMatchObject({ temperature: 0.7, top_p: 0.9, max_tokens: 9 });
    expect(p.seeds[0]).toBe(42);
    expect(p.seeds).toHaveLength(2); // reseeded after the request, as MLCEngine does

    backend.rollback(5);
    await backend.prefill(input, 2, { inputRowOffset: 5 });
    p.script = [8, 9, 10, 11];
    const ac = new AbortController();
    const aborted = await backend.generate({ maxNewTokens: 9, signal: ac.signal, onToken: (id) => id === 9 && ac.abort() });
    expect([aborted.tokens, aborted.stopped]).toEqual([[8, 9], 'aborted']);
    expect(p.getFinishReason()).toBe('abort');
    expect(p.stopTokens).toEqual([128001, 128008, 128009]); // no stopIds: the model's own again
    expect(p.conversation.messages.at(-1)![2]).toBe('<8><9>');
    await expect(backend.generate({ maxNewTokens: 1, sampling: { temperature: 1, topP: 1, seed: 0.5 } })).rejects.toThrow(/prefill/);
    await backend.prefill(input, 1, { inputRowOffset: 8 });
    await expect(backend.generate({ maxNewTokens: 1, sampling: { temperature: 1, topP: 1, seed: 0.5 } })).rejects.toThrow(/seed must be an integer/);
    expect(p.tvm.scopeDepth).toBe(0);
    backend.destroy();
    input.destroy();
  });

  it('rollback and a second prefill drop pending logits; the hook refuses WebLLM\'s own prompts; destroy unhooks', async () => {
    const { p, backend, input } = await setup();
    await backend.prefill(input, 5);
    await backend.prefill(input, 2, { inputRowOffset: 5 });
    expect(p.tvm.live).toBe(1);
    backend.rollback(5);
    expect(p.tvm.live).toBe(0);
    await expect(backend.logitsOfLastPrefill()).rejects.toThrow(/no completed prefill/);
    // A chat.completions-style prefill step (WebLLM's own tokens): refused with a clear error, the cache untouched.
    p.script = [1];
    await expect(p.prefillStep('hello', 'user')).rejects.toThrow(/LLaVA-Mini prompts only/);
    expect(p.kvRows).toBe(5);
    // A failure inside WebLLM's prefill step (here its sampler) leaves no tensor behind.
    await backend.prefill(input, 2, { inputRowOffset: 5 });
    p.script = [];
    await expect(backend.generate({ maxNewTokens: 2 })).rejects.toThrow(/script exhausted/);
    expect([p.tvm.live, p.tvm.scopeDepth]).toEqual([0, 0]);
    await expect(backend.generate({ maxNewTokens: 2 })).rejects.toThrow(/prefill the prompt/);
    await expect(WebLlmBackend.attach(p, { hidden: H })).rejects.toThrow(/already hooked/);
    backend.rollback(0);
    backend.destroy();
    for (const m of ['getInputData', 'embedAndForward', 'processNextToken']) expect(Object.prototype.hasOwnProperty.call(p, m), m).toBe(false);
    // Unhooked, the pipeline tokenizes and forwards its own Conversation again (on the emptied cache, in one chunk:
    // its own later chunks would meet the library's flaw too).
    p.prefillChunkSize = 64;
    p.conversation.reset();
    p.calls.length = 0;
    p.script = [1];
    await p.prefillStep('hello', 'user');
    expect(p.calls[0]).toMatch(/^embed tokens=1000,1001,1002,1003\b/);
    input.destroy();
  });

  it('finds the pipeline in an engine or a worker handler, and reports its KV cache bytes', async () => {
    const p = new FakePipeline(ctx.device, { hidden: H, quantization: 'q4f16_1', prefillChunkSize: C, contextWindowSize: 32 });
    const engine = { loadedModelIdToPipeline: new Map<string, unknown>([['m', p]]) };
    expect(pipelineOf(engine, 'm')).toBe(p);
    expect(pipelineOf({ engine }, 'm')).toBe(p);
    expect(() => pipelineOf(engine, 'x')).toThrow(/no loaded model "x" \(loaded: m\)/);
    expect(() => pipelineOf({ loadedModelIdToPipeline: new Map([['m', {}]]) }, 'm')).toThrow(/no method prefillStep/);
    const backend = await WebLlmBackend.attach(p, { hidden: H });
    expect(backend.device).toBe(ctx.device);
    expect(backend.bytes()).toBe(2 * FAKE_LAYERS * FAKE_KV_HEADS * FAKE_HEAD_DIM * 32 * 2);
    expect(kvCacheBytes({ num_hidden_layers: 32, num_key_value_heads: 8, hidden_size: 4096, num_attention_heads: 32 }, 4096, 'float16')).toBe(512 * 1024 * 1024);
    expect(kvCacheBytes(undefined, 4096, 'float32')).toBe(0);
    backend.destroy();
  });

  it('maps WebLLM finish reasons and usage to our result shape', () => {
    expect([stoppedOf('stop'), stoppedOf('length'), stoppedOf('abort'), stoppedOf(undefined)]).toEqual(['eos', 'length', 'aborted', 'eos']);
    const t = timingsFromUsage(
      { prompt_tokens: 10, completion_tokens: 5, extra: { e2e_latency_s: 1, prefill_tokens_per_s: 0, decode_tokens_per_s: 40, time_to_first_token_s: 0.01, time_per_output_token_s: 0.025 } },
      120,
    );
    expect(t).toEqual({ prefillMs: 120, decodeMs: 100, tokensPerSecond: 40, firstTokenMs: 130 });
  });
});
