// The WebLLM model record of a converted LLaVA-Mini LLM, checked against the installed @mlc-ai/web-llm: its
// exported prebuiltAppConfig (the stock library) and its own URL rule (cleanModelUrl, evaluated from lib/index.js,
// and how reloadInternal resolves each file against it), so every file of a plain static folder is fetched from
// that folder.
import { describe, expect, it } from 'vitest';
import { modelLibURLPrefix, modelVersion } from '@mlc-ai/web-llm';
import { libFunctionSource, libMethodSource, webLlmLibSource, webLlmVersion } from './webllm-lib.testing.ts';
import { MLC_INDEX_FILE, mlcQuantizationFor } from '../../format/mlc.ts';
import { dtypeOfQuantization } from './embedding-prefill.ts';
import { llavaMiniAppConfig, llavaMiniModelRecord, llmFolderUrl, pickCacheBackend, stockLlamaLib, webLlmModelUrl } from './model-record.ts';

/** WebLLM's own cleanModelUrl (MLCEngine.reloadInternal and hasModelInCache apply it to record.model). */
const cleanModelUrl = new Function(`${libFunctionSource('cleanModelUrl')}; return cleanModelUrl;`)() as (url: string) => string;
const flat = (s: string) => s.replace(/\s+/g, ' ');

/** The URLs WebLLM 0.2.79 fetches for a record's `model` (reloadInternal, fetchNDArrayCache, asyncLoadTokenizer: each checked below). */
function fetchedUrls(model: string) {
  const modelUrl = cleanModelUrl(model);
  return {
    config: new URL('mlc-chat-config.json', modelUrl).href,
    index: new URL(MLC_INDEX_FILE, modelUrl).href,
    shard: new URL('params_shard_3.bin', modelUrl).href,
    tokenizer: new URL('tokenizer.json', modelUrl).href,
  };
}

describe('WebLLM model record', () => {
  it('is checked against @mlc-ai/web-llm 0.2.79, whose files resolve against the cleaned model URL', () => {
    expect(webLlmVersion()).toBe('0.2.79');
    expect(modelVersion).toBe('v0_2_48');
    const reload = flat(libMethodSource('MLCEngine', 'reloadInternal'));
    expect(reload).toContain('let modelUrl = cleanModelUrl(modelRecord.model);');
    expect(reload).toContain('const configUrl = new URL("mlc-chat-config.json", modelUrl).href;');
    expect(reload).toContain('const tokenizer = yield asyncLoadTokenizer(modelUrl, curModelConfig, this.appConfig, this.logger);');
    expect(reload).toContain('yield tvm.fetchNDArrayCache(modelUrl, tvm.webgpu(), "webllm/model", cacheType,');
    expect(flat(libFunctionSource('asyncLoadTokenizer'))).toContain('const url = new URL("tokenizer.json", baseUrl).href;');
    const src = webLlmLibSource();
    expect(src).toContain(`const jsonUrl = new URL("${MLC_INDEX_FILE}", ndarrayCacheUrl).href;`);
    expect(src).toContain('const dataUrl = new URL(shard.dataPath, ndarrayCacheUrl).href;');
  });

  it('uses the stock Llama-3.1-8B-Instruct library of the pinned version (ABI v0_2_48) from prebuiltAppConfig', () => {
    expect(stockLlamaLib('q4f16_1')).toBe(`${modelLibURLPrefix}v0_2_48/Llama-3_1-8B-Instruct-q4f16_1-ctx4k_cs1k-webgpu.wasm`);
    expect(stockLlamaLib('q4f32_1')).toBe(`${modelLibURLPrefix}v0_2_48/Llama-3_1-8B-Instruct-q4f32_1-ctx4k_cs1k-webgpu.wasm`);
  });

  it('points a plain static folder at its own files through WebLLM\'s resolve/main rule', () => {
    const rec = llavaMiniModelRecord({ baseUrl: 'models/llava-mini/', quantization: 'q4f16_1', pageUrl: 'https://app.example/chat/index.html?x=1' });
    expect(rec.model).toBe('https://app.example/chat/models/llava-mini/llm-q4f16_1/#/resolve/main/');
    // Without the marker WebLLM would append resolve/main/ to the path: the files would 404.
    expect(cleanModelUrl('https://app.example/m/llm-q4f16_1/')).toBe('https://app.example/m/llm-q4f16_1/resolve/main/');
    const dir = 'https://app.example/chat/models/llava-mini/llm-q4f16_1/';
    expect(fetchedUrls(rec.model)).toEqual({
      config: `${dir}mlc-chat-config.json`,
      index: `${dir}ndarray-cache.json`,
      shard: `${dir}params_shard_3.bin`,
      tokenizer: `${dir}tokenizer.json`,
    });
  });

  it('keeps a Hugging Face resolve URL as it is and normalizes folder URLs', () => {
    const hf = 'https://huggingface.co/u/llava-mini-mlc/resolve/main/llm-q4f32_1/';
    expect(webLlmModelUrl(hf)).toBe(hf);
    expect(fetchedUrls(webLlmModelUrl(hf)).config).toBe(`${hf}mlc-chat-config.json`);
    expect(webLlmModelUrl('https://h/a/llm-q4f32_1')).toBe('https://h/a/llm-q4f32_1/#/resolve/main/');
    expect(webLlmModelUrl('https://h/a/llm-q4f32_1/#old')).toBe('https://h/a/llm-q4f32_1/#/resolve/main/');
    expect(llmFolderUrl('https://h/base', 'q4f32_1')).toBe('https://h/base/llm-q4f32_1/');
    expect(() => webLlmModelUrl('relative/folder/')).toThrow();
  });

  it('asks shader-f16 for q4f16_1 only, overrides the context window, reuses the stock VRAM estimate', () => {
    const f16 = llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q4f16_1' });
    const f32 = llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q4f32_1', contextWindowSize: 2048, modelId: 'mine' });
    expect(f16.required_features).toEqual(['shader-f16']);
    expect(f32.required_features).toEqual([]);
    expect(f16.overrides).toEqual({ context_window_size: 4096 });
    expect(f32.overrides).toEqual({ context_window_size: 2048 });
    expect(f16.model_id).toBe('LLaVA-Mini-Llama-3.1-8B-q4f16_1');
    expect(f32.model_id).toBe('mine');
    expect(f16.model_lib).toMatch(/q4f16_1-ctx4k_cs1k-webgpu\.wasm$/);
    expect(f32.model_lib).toMatch(/q4f32_1-ctx4k_cs1k-webgpu\.wasm$/);
    expect(f16.vram_required_MB).toBe(5001);
    expect(f32.vram_required_MB).toBeGreaterThan(5001);
    expect(f16.low_resource_required).toBe(false);
    expect(() => llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q4f16_1', contextWindowSize: 0 })).toThrow(/contextWindowSize/);
    expect(() => llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q3' as 'q4f16_1' })).toThrow(/unsupported/);
    // Unquantized formats have no stock 8B library: the record needs the library compiled for the LLM.
    expect(() => llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q0f32' })).toThrow(/no stock Llama-3.1-8B library for q0f32/);
    const lib = 'https://h/libs/Llama-3.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm';
    const q0 = llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q0f32', modelLib: lib });
    expect([q0.model_lib, q0.required_features, q0.vram_required_MB]).toEqual([lib, [], undefined]);
    expect(llavaMiniModelRecord({ baseUrl: 'https://h/m/', quantization: 'q0f16', modelLib: lib }).required_features).toEqual(['shader-f16']);
  });

  it('picks q4f32_1 on adapters without shader-f16, and the model dtype per quantization', () => {
    expect(mlcQuantizationFor(new Set(['shader-f16', 'subgroups']).has('shader-f16'))).toBe('q4f16_1');
    expect(mlcQuantizationFor(new Set(['subgroups']).has('shader-f16'))).toBe('q4f32_1');
    expect(dtypeOfQuantization('q4f16_1')).toBe('float16');
    expect(dtypeOfQuantization('q4f32_1')).toBe('float32');
  });

  it('builds an AppConfig with a cache backend the context has', () => {
    expect(pickCacheBackend({ caches: {}, indexedDB: {} })).toBe('cache');
    expect(pickCacheBackend({ indexedDB: {} })).toBe('indexeddb');
    expect(() => pickCacheBackend({})).toThrow(/Cache API/);
    const { appConfig, modelId } = llavaMiniAppConfig({ baseUrl: 'https://h/m/', quantization: 'q4f32_1', cacheBackend: 'cache' });
    expect(appConfig.useIndexedDBCache).toBe(false);
    expect(llavaMiniAppConfig({ baseUrl: 'https://h/m/', quantization: 'q4f32_1', cacheBackend: 'indexeddb' }).appConfig.useIndexedDBCache).toBe(true);
    expect(appConfig.model_list.map((r) => r.model_id)).toEqual([modelId]);
  });
});
