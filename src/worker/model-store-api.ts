// What the model-store worker offers the UI (through Comlink): installing models into the browser's storage (OPFS),
// listing and deleting them. A worker of its own, so a conversion never slows the engine or the page.
import type { MlcQuantization } from '../convert/index.ts';
import type { InstallProgress, InstallSource, StoredModelInfo, UnfinishedInstall } from '../download/install.ts';

/** InstallSource as plain data: a local folder travels as its files. */
export type InstallRequest = Exclude<InstallSource, { kind: 'folder' }> | { kind: 'folder'; name: string; files: [string, Blob][]; clip?: [string, Blob][] };

export type StoredModel =
  /** `webllm`: WebLLM's own hasModelInCache finds the LLM (loadable by WebLLM with no network). */
  | ({ state: 'complete'; webllm: boolean } & StoredModelInfo)
  | ({ state: 'unfinished'; bytes: number } & UnfinishedInstall);

export interface StorageStatus {
  usage: number;
  quota: number;
  persisted: boolean;
}

export interface ModelStoreApi {
  list(): Promise<StoredModel[]>;
  storage(): Promise<StorageStatus>;
  install(request: InstallRequest, format: MlcQuantization, onProgress: (p: InstallProgress) => void): Promise<StoredModelInfo>;
  /** Stops the running install; it stays resumable. */
  cancel(): void;
  remove(id: string): Promise<void>;
}
