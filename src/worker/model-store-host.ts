// The model store behind ModelStoreApi: stored models (src/download/stored-models.ts) filled by installModel.
import { hasModelInCache } from '@mlc-ai/web-llm';
import { BlobCheckpointFiles } from '../checkpoint/index.ts';
import type { MlcQuantization } from '../convert/index.ts';
import { retryingFetch } from '../download/fetch-retry.ts';
import { formatToInstall, installModel, modelIdFor, type InstallProgress, type InstallSource, type StoredModelInfo } from '../download/install.ts';
import { OpfsFolder } from '../download/opfs.ts';
import { MODELS_DIR, openStoredModel, storedModelCacheQuery, storedModelInfo } from '../download/stored-models.ts';
import type { InstallRequest, ModelStoreApi, StorageStatus, StoredModel } from './model-store-api.ts';

export class ModelStoreHost implements ModelStoreApi {
  private running: AbortController | null = null;

  async list(): Promise<StoredModel[]> {
    const out: StoredModel[] = [];
    for (const id of await (await OpfsFolder.open(MODELS_DIR)).folders()) {
      const info = await storedModelInfo(id);
      if (!info) continue;
      if (info.state === 'complete') {
        const { appConfig, modelId } = storedModelCacheQuery(id, info.format);
        out.push({ ...info, webllm: await hasModelInCache(modelId, appConfig).catch(() => false) });
      } else {
        out.push({ ...info, bytes: await (await openStoredModel(id, info.format)).bytes() });
      }
    }
    return out;
  }

  async storage(): Promise<StorageStatus> {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    return { usage, quota, persisted: await navigator.storage.persisted() };
  }

  async install(request: InstallRequest, deviceFormat: MlcQuantization, onProgress: (p: InstallProgress) => void): Promise<StoredModelInfo> {
    if (this.running) throw new Error('a model is already being installed: wait for it or cancel it');
    const source: InstallSource =
      request.kind === 'folder'
        ? { kind: 'folder', name: request.name, files: new BlobCheckpointFiles(request.files, request.name), ...(request.clip ? { clipFiles: new BlobCheckpointFiles(request.clip, 'CLIP folder') } : {}) }
        : request;
    const format = await formatToInstall(source, deviceFormat, retryingFetch());
    const store = await openStoredModel(modelIdFor(source, format), format);
    this.running = new AbortController();
    try {
      return await installModel(source, format, store, {
        freeBytes: async () => {
          const { usage = 0, quota = 0 } = await navigator.storage.estimate();
          return quota - usage;
        },
        fetch: retryingFetch(),
        onProgress,
        signal: this.running.signal,
      });
    } finally {
      this.running = null;
    }
  }

  cancel(): void {
    this.running?.abort(new Error('Install stopped: it resumes where it stopped when started again.'));
  }

  async remove(id: string): Promise<void> {
    const info = await storedModelInfo(id);
    if (info) await (await openStoredModel(id, info.format)).removeLlm();
    await (await OpfsFolder.open(MODELS_DIR)).removeFolder(id);
  }
}
