// The model store behind ModelStoreApi: OPFS folders under models/, filled by installModel.
import { BlobCheckpointFiles } from '../checkpoint/index.ts';
import type { MlcQuantization } from '../convert/index.ts';
import { retryingFetch } from '../download/fetch-retry.ts';
import { INSTALL_INFO, installModel, MODEL_INFO, modelIdFor, type InstallProgress, type InstallSource, type StoredModelInfo, type UnfinishedInstall } from '../download/install.ts';
import { OpfsFolder } from '../download/opfs.ts';
import { MODELS_DIR, type InstallRequest, type ModelStoreApi, type StorageStatus, type StoredModel } from './model-store-api.ts';

export class ModelStoreHost implements ModelStoreApi {
  private running: AbortController | null = null;

  async list(): Promise<StoredModel[]> {
    const root = await OpfsFolder.open(MODELS_DIR);
    const out: StoredModel[] = [];
    for (const id of await root.folders()) {
      const info = await root.readText(`${id}/${MODEL_INFO}`);
      if (info) {
        out.push({ state: 'complete', ...(JSON.parse(info) as StoredModelInfo) });
        continue;
      }
      const unfinished = await root.readText(`${id}/${INSTALL_INFO}`);
      if (!unfinished) continue;
      const bytes = (await root.walk(id)).reduce((a, [, f]) => a + f.size, 0);
      out.push({ state: 'unfinished', bytes, ...(JSON.parse(unfinished) as UnfinishedInstall) });
    }
    return out;
  }

  async storage(): Promise<StorageStatus> {
    const { usage = 0, quota = 0 } = await navigator.storage.estimate();
    return { usage, quota, persisted: await navigator.storage.persisted() };
  }

  async install(request: InstallRequest, format: MlcQuantization, onProgress: (p: InstallProgress) => void): Promise<StoredModelInfo> {
    if (this.running) throw new Error('a model is already being installed: wait for it or cancel it');
    const source: InstallSource = request.kind === 'folder' ? { kind: 'folder', name: request.name, files: new BlobCheckpointFiles(request.files, request.name) } : request;
    const folder = await OpfsFolder.open(`${MODELS_DIR}/${modelIdFor(source, format)}`);
    this.running = new AbortController();
    try {
      return await installModel(source, format, folder, {
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
    await (await OpfsFolder.open(MODELS_DIR)).removeFolder(id);
  }
}
