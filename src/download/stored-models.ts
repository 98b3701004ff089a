// A model stored in this browser: its own OPFS folder (models/<id>/: the image-side pack, model.json) plus its LLM
// in WebLLM's OPFS cache under a stable URL of this origin, so WebLLM finds it there with no network.
import type { MlcQuantization } from '../convert/index.ts';
import { llmFolderUrl, llavaMiniAppConfig } from '../llm/webllm/model-record.ts';
import { SplitModelStore, WEBLLM_OPFS_ROOT, WebLlmStore } from '../llm/webllm/webllm-store.ts';
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
  const llm = new WebLlmStore(await OpfsFolder.open(WEBLLM_OPFS_ROOT), llmFolderUrl(storedModelUrl(id), format));
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

/** WebLLM's AppConfig for a stored model (OPFS cache backend) and the model id to reload it by. */
export function storedModelAppConfig(id: string, format: MlcQuantization): ReturnType<typeof llavaMiniAppConfig> {
  return llavaMiniAppConfig({ baseUrl: storedModelUrl(id), quantization: format, cacheBackend: 'opfs', modelId: id });
}
