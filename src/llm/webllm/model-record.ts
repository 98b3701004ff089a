// The WebLLM AppConfig / ModelRecord for a converted LLaVA-Mini LLM folder (our converter's output:
// `<base>/llm-q4f16_1/` or `<base>/llm-q4f32_1/` holding mlc-chat-config.json, tensor-cache.json,
// params_shard_*.bin and the tokenizer files). The weights run on the stock Llama-3.1-8B-Instruct model library
// of the pinned WebLLM version: a library is tied to an architecture and its shapes, not to weights (WebLLM's
// own list points Hermes-3-Llama-3.1-8B at the same library).
//
// Verified against @mlc-ai/web-llm 0.2.86 (lib/index.js):
// - MLCEngine.reloadInternal (line 18212) takes `cleanModelUrl(record.model)` (line 11280): a "/" is appended,
//   then "resolve/main/" unless the URL already matches /.+\/resolve\/.+\//; `new URL(...)` there throws on a
//   relative URL, so `model` must be absolute. Every file is then resolved relative to it:
//   mlc-chat-config.json and tensor-cache.json (resolveModelPackageResourceURLs, line 3534), the shards
//   (fetchTensorCache, `new URL(shard.dataPath, base)`, line 8233), tokenizer.json (asyncLoadTokenizer,
//   line 14914). A plain static folder therefore gets the fragment "#/resolve/main/": it satisfies the rule, and
//   relative resolution drops a base URL's fragment, so every file is fetched from the folder itself.
// - `required_features` is enforced against the device (line 18287; shader-f16 -> ShaderF16SupportError).
//   The prebuilt q4f16_1 records do not list it; we do, so an f16 model fails with a clear error instead of a
//   shader compilation error.
// - `overrides` are merged over mlc-chat-config.json (line 18243). The prefill chunk size is NOT a runtime
//   option: LLMChatPipeline reads it from the library's metadata (`this.prefillChunkSize =
//   metadata.prefill_chunk_size`, line 11874; 1024 for the `cs1k` libraries), so only context_window_size is
//   overridden (it sizes the KV cache, line 11931).
// - The stock library URL is read from the package's own prebuiltAppConfig (record
//   "Llama-3.1-8B-Instruct-<quant>-MLC"): in 0.2.86 `<modelLibURLPrefix>v0_2_86/base/
//   Llama-3_1-8B-Instruct-<quant>_cs1k-webgpu.wasm`.
import { modelLibURLPrefix, modelVersion, prebuiltAppConfig, type AppConfig, type ModelRecord } from '@mlc-ai/web-llm';
import type { MlcQuantization } from '../../format/mlc.ts';

/** WebLLM's AppConfig.cacheBackend (the type is not exported by the package). */
export type WebLlmCacheBackend = NonNullable<AppConfig['cacheBackend']>;

/** The prebuilt record of the stock Llama-3.1-8B-Instruct model for `q` in the pinned package's prebuiltAppConfig. */
export function stockLlamaRecord(q: MlcQuantization): ModelRecord {
  const id = `Llama-3.1-8B-Instruct-${q}-MLC`;
  const record = prebuiltAppConfig.model_list.find((r) => r.model_id === id);
  if (!record) throw new Error(`@mlc-ai/web-llm's prebuiltAppConfig has no "${id}" (package version changed?)`);
  return record;
}

/** The stock Llama-3.1-8B-Instruct WebGPU library of the pinned WebLLM version for `q`. */
export function stockLlamaLib(q: MlcQuantization): string {
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
  /** Default the stock library of the pinned version (stockLlamaLib). */
  modelLib?: string;
  /** Where relative URLs resolve from. Default the page's (or worker's) location. */
  pageUrl?: string;
}

/** The ModelRecord of a converted LLaVA-Mini LLM. */
export function llavaMiniModelRecord(opts: LlavaMiniModelRecordOptions): ModelRecord {
  const q = opts.quantization;
  if (q !== 'q4f16_1' && q !== 'q4f32_1') throw new Error(`unsupported WebLLM quantization "${String(q)}" (q4f16_1 or q4f32_1)`);
  const contextWindowSize = opts.contextWindowSize ?? 4096;
  if (!Number.isInteger(contextWindowSize) || contextWindowSize < 2) throw new Error(`contextWindowSize must be an integer >= 2, got ${contextWindowSize}`);
  const stock = stockLlamaRecord(q);
  return {
    model: webLlmModelUrl(llmFolderUrl(opts.baseUrl, q, opts.pageUrl), opts.pageUrl),
    model_id: opts.modelId ?? `LLaVA-Mini-Llama-3.1-8B-${q}`,
    model_lib: opts.modelLib ?? stockLlamaLib(q),
    // Same weights' shapes as the stock model: its estimate holds (the engine's own GPU memory comes on top).
    vram_required_MB: stock.vram_required_MB,
    low_resource_required: false,
    required_features: q === 'q4f16_1' ? ['shader-f16'] : [],
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
  return { appConfig: { model_list: [record], cacheBackend: opts.cacheBackend ?? pickCacheBackend() }, modelId: record.model_id };
}

function defaultPageUrl(): string | undefined {
  return (globalThis as { location?: { href: string } }).location?.href;
}
