// A model stored in this browser: its own OPFS folder (models/<id>/: the image-side pack, model.json) plus its LLM
// in WebLLM's cache (the Cache API) under a stable URL of this origin, so WebLLM finds it there with no network.
import type { MlcQuantization } from '../convert/index.ts';
import type { AppConfig } from '@mlc-ai/web-llm';
import { llmFolderUrl, llavaMiniAppConfig, webLlmModelUrl } from '../llm/webllm/model-record.ts';
import { SplitModelStore, WebLlmStore } from '../llm/webllm/webllm-store.ts';
import { INSTALL_INFO, MODEL_INFO, type StoredModelInfo, type UnfinishedInstall } from './install.ts';
import { OpfsFolder } from './opfs.ts';

/** Where stored models live in OPFS: one folder per model id. */
export const MODELS_DIR = 'models';

/** The URL WebLLM knows a stored model by (never fetched: every file is in its cache). */
export function storedModelUrl(id: string): string {
  return new URL(`/stored-models/${encodeURIComponent(id)}/`, globalThis.location.origin).href;
}

export async function openStoredModel(id: string, format: MlcQuantization): Promise<SplitModelStore> {
  const folder = await OpfsFolder.open(`${MODELS_DIR}/${id}`);
  const llm = new WebLlmStore(globalThis.caches, llmFolderUrl(storedModelUrl(id), format));
  return new SplitModelStore(folder, `llm-${format}`, llm);
}

/** model.json of a complete model, else install.json of an unfinished one, else null. */
export async function storedModelInfo(id: string): Promise<({ state: 'complete' } & StoredModelInfo) | ({ state: 'unfinished' } & UnfinishedInstall) | null> {
  const folder = await OpfsFolder.open(`${MODELS_DIR}/${id}`);
  const info = await folder.readText(MODEL_INFO);
  if (info) return { state: 'complete', ...(JSON.parse(info) as StoredModelInfo) };
  const unfinished = await folder.readText(INSTALL_INFO);
  return unfinished ? { state: 'unfinished', ...(JSON.parse(unfinished) as UnfinishedInstall) } : null;
}

/** WebLLM's AppConfig for a stored model (Cache API) and the model id to reload it by; modelLib: a library other than the stock 8B one. */
export function storedModelAppConfig(id: string, format: MlcQuantization, modelLib?: string): ReturnType<typeof llavaMiniAppConfig> {
  return llavaMiniAppConfig({ baseUrl: storedModelUrl(id), quantization: format, cacheBackend: 'cache', modelId: id, ...(modelLib ? { modelLib } : {}) });
}

/**
 * What WebLLM's hasModelInCache(modelId, appConfig) needs to find a stored model's LLM in its cache: the record's
 * `model` URL only (0.2.79 line 10235 reads nothing else), so no library is named.
 */
export function storedModelCacheQuery(id: string, format: MlcQuantization): { appConfig: AppConfig; modelId: string } {
  const record = { model: webLlmModelUrl(llmFolderUrl(storedModelUrl(id), format)), model_id: id, model_lib: '' };
  return { appConfig: { model_list: [record], useIndexedDBCache: false }, modelId: id };
}
