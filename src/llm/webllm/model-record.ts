// The WebLLM AppConfig / ModelRecord for a converted LLaVA-Mini LLM folder (our converter's output:
// `<base>/llm-<quantization>/` holding mlc-chat-config.json, ndarray-cache.json, params_shard_*.bin and the
// tokenizer files). The 8B model's weights run on the stock Llama-3.1-8B-Instruct model library of the pinned
// WebLLM version: a library is tied to an architecture and its shapes, not to weights (WebLLM's own list points
// Hermes-3-Llama-3.1-8B at the same library). Any other LLM needs a library compiled for its shapes (modelLib).
//
// Verified against @mlc-ai/web-llm 0.2.79 (lib/index.js):
// - MLCEngine.reloadInternal (line 10690) takes `cleanModelUrl(record.model)` (line 8281): a "/" is appended,
//   then "resolve/main/" unless the URL already matches /.+\/resolve\/.+\//; `new URL(...)` there throws on a
//   relative URL, so `model` must be absolute. Every file is then resolved relative to it: mlc-chat-config.json
//   (line 10717), the tokenizer files (asyncLoadTokenizer, line 10325) and ndarray-cache.json + the shards
//   (tvmjs fetchNDArrayCache, `new URL("ndarray-cache.json", url)`, line 5830; `new URL(shard.dataPath, url)`).
//   A plain static folder therefore gets the fragment "#/resolve/main/": it satisfies the rule, and relative
//   resolution drops a base URL's fragment, so every file is fetched from the folder itself.
// - `required_features` is enforced against the device (line 10764; shader-f16 -> ShaderF16SupportError).
//   The prebuilt q4f16_1 records do not list it; we do, so an f16 model fails with a clear error instead of a
//   shader compilation error.
// - `overrides` are merged over mlc-chat-config.json (line 10718). The prefill chunk size is NOT a runtime
//   option: LLMChatPipeline reads it from the library's metadata (`this.prefillChunkSize =
//   metadata.prefill_chunk_size`, line 8691; 1024 for the `cs1k` libraries), so only context_window_size is
//   overridden (it sizes the KV cache, line 8735).
// - The cache: AppConfig.useIndexedDBCache false = the Cache API (tvmjs ArtifactCache, line 4323: scopes
//   "webllm/config", "webllm/wasm", "webllm/model", keyed by URL), true = IndexedDB. 0.2.79 has no OPFS cache.
// - The stock library URL is read from the package's own prebuiltAppConfig (record
//   "Llama-3.1-8B-Instruct-<quant>-MLC"): in 0.2.79 `<modelLibURLPrefix>v0_2_48/
//   Llama-3_1-8B-Instruct-<quant>-ctx4k_cs1k-webgpu.wasm`.
import { modelLibURLPrefix, modelVersion, prebuiltAppConfig, type AppConfig, type ModelRecord } from '@mlc-ai/web-llm';
import { isMlcQ4, MLC_QUANTIZATIONS, mlcModelDType, type MlcQuantization } from '../../format/mlc.ts';

/** Where WebLLM 0.2.79 caches models: the Cache API, or IndexedDB (AppConfig.useIndexedDBCache). */
export type WebLlmCacheBackend = 'cache' | 'indexeddb';

/** The int4 formats the stock Llama-3.1-8B-Instruct libraries exist in. */
export type StockQuantization = 'q4f16_1' | 'q4f32_1';

/** The prebuilt record of the stock Llama-3.1-8B-Instruct model for `q` in the pinned package's prebuiltAppConfig. */
export function stockLlamaRecord(q: StockQuantization): ModelRecord {
  const id = `Llama-3.1-8B-Instruct-${q}-MLC`;
  const record = prebuiltAppConfig.model_list.find((r) => r.model_id === id);
  if (!record) throw new Error(`@mlc-ai/web-llm's prebuiltAppConfig has no "${id}" (package version changed?)`);
  return record;
}

/** The stock Llama-3.1-8B-Instruct WebGPU library of the pinned WebLLM version for `q`. */
export function stockLlamaLib(q: StockQuantization): string {
  const lib = stockLlamaRecord(q).model_lib;
  const expectedPrefix = `${modelLibURLPrefix}${modelVersion}/`;
  if (!lib.startsWith(expectedPrefix)) throw new Error(`stock Llama library ${lib} is not under ${expectedPrefix}`);
  return lib;
}

/** The folder our converter writes the LLM into for `q`, under the converted model's base URL. */
export function llmFolderUrl(baseUrl: string, q: MlcQuantization, pageUrl?: string): string {
  const base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, pageUrl ?? defaultPageUrl());
  return new URL(`llm-${q}/`, base).href;
}

/**
 * `ModelRecord.model` for a plain static folder: absolute, and carrying WebLLM's `resolve/<rev>/` marker in the
 * fragment so cleanModelUrl appends nothing (a Hugging Face `.../resolve/<rev>/...` URL is kept as is).
 */
export function webLlmModelUrl(folderUrl: string, pageUrl?: string): string {
  const url = new URL(folderUrl, pageUrl ?? defaultPageUrl());
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  const href = url.href;
  return /.+\/resolve\/.+\//.test(href) ? href : `${href}#/resolve/main/`;
}

export interface LlavaMiniModelRecordOptions {
  /** Base URL of the converted model (the folder holding llm-<quant>/); relative URLs resolve against pageUrl. */
  baseUrl: string;
  quantization: MlcQuantization;
  /** KV cache rows (prompt + answer over every turn). Default 4096. */
  contextWindowSize?: number;
  /** Default `LLaVA-Mini-Llama-3.1-8B-<quant>`; pass a distinct id per model source. */
  modelId?: string;
  /** Default the stock Llama-3.1-8B library of the pinned version (stockLlamaLib; int4 formats only). */
  modelLib?: string;
  /** Where relative URLs resolve from. Default the page's (or worker's) location. */
  pageUrl?: string;
}

/** The ModelRecord of a converted LLaVA-Mini LLM. */
export function llavaMiniModelRecord(opts: LlavaMiniModelRecordOptions): ModelRecord {
  const q = opts.quantization;
  if (!MLC_QUANTIZATIONS.includes(q)) throw new Error(`unsupported WebLLM quantization "${String(q)}" (${MLC_QUANTIZATIONS.join(', ')})`);
  const contextWindowSize = opts.contextWindowSize ?? 4096;
  if (!Number.isInteger(contextWindowSize) || contextWindowSize < 2) throw new Error(`contextWindowSize must be an integer >= 2, got ${contextWindowSize}`);
  const stock = isMlcQ4(q) ? stockLlamaRecord(q as StockQuantization) : null;
  if (!opts.modelLib && !stock) throw new Error(`there is no stock Llama-3.1-8B library for ${q}: give the model library compiled for this LLM`);
  return {
    model: webLlmModelUrl(llmFolderUrl(opts.baseUrl, q, opts.pageUrl), opts.pageUrl),
    model_id: opts.modelId ?? `LLaVA-Mini-Llama-3.1-8B-${q}`,
    model_lib: opts.modelLib ?? stockLlamaLib(q as StockQuantization),
    // The stock model's estimate where its library runs our LLM (the engine's own GPU memory comes on top).
    ...(stock && !opts.modelLib ? { vram_required_MB: stock.vram_required_MB } : {}),
    low_resource_required: false,
    required_features: mlcModelDType(q) === 'float16' ? ['shader-f16'] : [],
    overrides: { context_window_size: contextWindowSize },
  };
}

/** The Cache API where the context has it (secure contexts), else IndexedDB. */
export function pickCacheBackend(scope: { caches?: unknown; indexedDB?: unknown } = globalThis): WebLlmCacheBackend {
  if (scope.caches !== undefined) return 'cache';
  if (scope.indexedDB !== undefined) return 'indexeddb';
  throw new Error('neither the Cache API nor IndexedDB is available to cache the model (an insecure context?)');
}

/** The AppConfig holding just our model, and its id for engine.reload(). */
export function llavaMiniAppConfig(opts: LlavaMiniModelRecordOptions & { cacheBackend?: WebLlmCacheBackend }): { appConfig: AppConfig; modelId: string } {
  const record = llavaMiniModelRecord(opts);
  return { appConfig: { model_list: [record], useIndexedDBCache: (opts.cacheBackend ?? pickCacheBackend()) === 'indexeddb' }, modelId: record.model_id };
}

function defaultPageUrl(): string | undefined {
  return (globalThis as { location?: { href: string } }).location?.href;
}
