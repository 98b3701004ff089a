// Installing the real model into the browser's storage: source choice (persisted), the running install with its
// progress, the stored models and the storage they take.
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import type { MlcQuantization } from '../convert/index.ts';
import { DEFAULT_HUB_URL, OFFICIAL_REPO, type InstallProgress } from '../download/install.ts';
import type { LlmChoice, ModelSource } from '../worker/engine-api.ts';
import type { InstallRequest, StorageStatus, StoredModel } from '../worker/model-store-api.ts';
import { withReports } from './engine-client.ts';
import { modelStoreWorker } from './model-store-client.ts';

export type SourceKind = 'hub' | 'url' | 'folder';

/** A stored model as the engine loads it, with the LLM engine picked (and, for WebLLM, a model library if one is given). */
export function storedModelSource(m: Pick<StoredModel, 'id' | 'name'>, llmChoice: LlmChoice, webllmLib: string): ModelSource {
  const lib = webllmLib.trim();
  return { cached: m.id, name: m.name, llm: llmChoice, ...(llmChoice === 'webllm' && lib ? { modelLib: lib } : {}) };
}

export type InstallState =
  | { kind: 'idle' }
  | { kind: 'running'; label: string; progress: InstallProgress; startedAt: number; startBytes: number }
  | { kind: 'error'; message: string };

interface DownloadsStore {
  sourceKind: SourceKind;
  hubUrl: string;
  repo: string;
  convertedUrl: string;
  /** Who runs a stored model's LLM (auto: WebLLM for the 8B model, else our kernels). */
  llmChoice: LlmChoice;
  /** With llmChoice 'webllm': a model library URL other than the stock Llama-3.1-8B one (empty: the stock one). */
  webllmLib: string;
  models: StoredModel[];
  storage: StorageStatus | null;
  install: InstallState;
  setSource(patch: Partial<Pick<DownloadsStore, 'sourceKind' | 'hubUrl' | 'repo' | 'convertedUrl' | 'llmChoice' | 'webllmLib'>>): void;
  refresh(): Promise<void>;
  start(request: InstallRequest, format: MlcQuantization): Promise<void>;
  cancel(): void;
  remove(id: string): Promise<void>;
}

const label = (r: InstallRequest) => (r.kind === 'hub' ? r.repo : r.kind === 'url' ? r.url : r.name);

export const useDownloadsStore = create<DownloadsStore>()(
  persist(
    (set, get) => ({
      sourceKind: 'hub',
      hubUrl: DEFAULT_HUB_URL,
      repo: OFFICIAL_REPO,
      convertedUrl: '',
      llmChoice: 'auto',
      webllmLib: '',
      models: [],
      storage: null,
      install: { kind: 'idle' },
      setSource: (patch) => set(patch),
      async refresh() {
        const worker = modelStoreWorker();
        const [models, storage] = await Promise.all([worker.list(), worker.storage()]);
        set({ models, storage });
      },
      async start(request, format) {
        const startedAt = performance.now();
        let startBytes = -1;
        const running = (progress: InstallProgress): InstallState => {
          // Rate and ETA count from the first report: bytes an earlier run stored are not this run's speed.
          if (startBytes < 0 && progress.bytesTotal > 0) startBytes = progress.bytesDone;
          return { kind: 'running', label: label(request), progress, startedAt, startBytes: Math.max(0, startBytes) };
        };
        set({ install: running({ stage: 'checking', item: null, bytesDone: 0, bytesTotal: 0 }) });
        // Ask the browser not to evict a multi-GB model under storage pressure (window-only API; it may say no).
        await navigator.storage.persist?.().catch(() => false);
        try {
          await withReports((report) => modelStoreWorker().install(request, format, report((p: InstallProgress) => set({ install: running(p) }))));
          set({ install: { kind: 'idle' } });
        } catch (e) {
          set({ install: { kind: 'error', message: e instanceof Error ? e.message : String(e) } });
        }
        await get().refresh();
      },
      cancel: () => void modelStoreWorker().cancel(),
      async remove(id) {
        await modelStoreWorker().remove(id);
        await get().refresh();
      },
    }),
    {
      name: 'llava-mini-downloads',
      partialize: (s) => ({ sourceKind: s.sourceKind, hubUrl: s.hubUrl, repo: s.repo, convertedUrl: s.convertedUrl, llmChoice: s.llmChoice, webllmLib: s.webllmLib }),
    },
  ),
);
