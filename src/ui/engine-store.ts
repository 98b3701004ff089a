// The loaded model (in the engine worker): load with progress, memory per component, unload. Settings persist.
// A GPU device lost under the model (driver reset, out of memory) is recovered here: the worker says so, the same
// source is loaded again (a stored model from the browser's storage) and the user is told what happened; the chat
// then resumes its conversation from the saved history.
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import type { LoadedModel, LoadProgress, ModelSource } from '../worker/engine-api.ts';
import type { Precision } from '../precision/policy.ts';
import { Comlink, engineWorker, withReports } from './engine-client.ts';
import { showNotice } from './notice-store.ts';

export type EngineStatus =
  | { kind: 'idle' }
  | { kind: 'loading'; progress: LoadProgress; startedAt: number; stage: { startedAt: number; startBytes: number } }
  | { kind: 'ready'; model: LoadedModel }
  | { kind: 'error'; message: string };

export interface ChatSettings {
  systemPrompt: string;
  /** 0: greedy (the reference's decoding). */
  temperature: number;
  topP: number;
  maxNewTokens: number;
  /** Cap on the frames sampled from a video (about 1 per second before the cap). */
  maxVideoFrames: number;
}

interface EngineStore {
  status: EngineStatus;
  /** Counts successful loads: images encoded under an older one are gone from the worker. */
  generation: number;
  precision: Precision;
  settings: ChatSettings;
  /** The last model URL typed by the user (persisted). */
  modelUrl: string;
  load(source: ModelSource): Promise<void>;
  setModelUrl(url: string): void;
  unload(): Promise<void>;
  /** The worker lost the model's GPU device: load the same source again on a new one and say so. */
  recoverFromLostDevice(message: string): Promise<void>;
  refreshMemory(): Promise<void>;
  setPrecision(p: Precision): void;
  setSettings(s: Partial<ChatSettings>): void;
}

export const DEFAULT_SETTINGS: ChatSettings = { systemPrompt: '', temperature: 0, topP: 1, maxNewTokens: 512, maxVideoFrames: 16 };
/** The answer limit on a software (CPU) adapter when the user kept the default: answers that end in seconds, not minutes. */
export const SOFTWARE_ADAPTER_MAX_TOKENS = 64;

let lastSource: ModelSource | null = null;
let watching = false;
/** Counts load() calls: only the newest one may change the status. */
let latestLoad = 0;

export const useEngineStore = create<EngineStore>()(
  persist(
    (set, get) => ({
      status: { kind: 'idle' },
      generation: 0,
      precision: 'q4',
      settings: DEFAULT_SETTINGS,
      modelUrl: '',
      setModelUrl: (modelUrl) => set({ modelUrl }),
      async load(source) {
        if (!watching) {
          watching = true;
          void engineWorker().watchDeviceLoss(Comlink.proxy((message: string) => void get().recoverFromLostDevice(message)));
        }
        lastSource = source;
        const thisLoad = ++latestLoad;
        const startedAt = performance.now();
        set({ status: { kind: 'loading', progress: { stage: 'opening', loadedBytes: 0, totalBytes: 0 }, startedAt, stage: { startedAt, startBytes: 0 } } });
        try {
          const model = await withReports((report) =>
            engineWorker().load(
              source,
              get().precision,
              report((progress: LoadProgress) => {
                const s = get().status;
                if (thisLoad !== latestLoad || s.kind !== 'loading') return; // a newer load began
                // Rates (and so times left) are measured from where the current stage began.
                const same = s.progress.stage === progress.stage;
                const stage = same ? s.stage : { startedAt: performance.now(), startBytes: progress.loadedBytes };
                set({ status: { kind: 'loading', progress, startedAt, stage } });
              }),
            ),
          );
          if (thisLoad !== latestLoad) return; // a newer load replaced this one in the worker
          set((s) => ({ status: { kind: 'ready', model }, generation: s.generation + 1 }));
          if (model.adapter.isFallbackAdapter && get().settings.maxNewTokens === DEFAULT_SETTINGS.maxNewTokens) {
            get().setSettings({ maxNewTokens: SOFTWARE_ADAPTER_MAX_TOKENS });
            showNotice(
              `This GPU is a software (CPU) adapter, so each token takes a while: answers are limited to ${SOFTWARE_ADAPTER_MAX_TOKENS} tokens. Raise "Max new tokens" in Settings for longer ones.`,
              'info',
            );
          }
        } catch (e) {
          if (thisLoad === latestLoad) set({ status: { kind: 'error', message: e instanceof Error ? e.message : String(e) } });
        }
      },
      async recoverFromLostDevice(message) {
        const source = lastSource;
        set({ status: { kind: 'idle' } });
        if (!source) return;
        showNotice(`The GPU device was lost (${message}). Reloading the model on a new device…`, 'info');
        await get().load(source);
        const status = get().status;
        if (status.kind === 'ready') showNotice('The GPU device was lost and has been replaced: the model is loaded again, and your conversation goes on from where it was.', 'info');
        else if (status.kind === 'error') showNotice(`The GPU device was lost and the model could not be loaded again: ${status.message}`);
      },
      async unload() {
        lastSource = null;
        await engineWorker().unload();
        set({ status: { kind: 'idle' } });
      },
      async refreshMemory() {
        const s = get().status;
        const memory = await engineWorker().memory();
        if (s.kind === 'ready' && memory) set({ status: { kind: 'ready', model: { ...s.model, memory } } });
      },
      setPrecision: (precision) => set({ precision }),
      setSettings: (s) => set({ settings: { ...get().settings, ...s } }),
    }),
    {
      name: 'llava-mini-engine',
      partialize: (s) => ({ precision: s.precision, settings: s.settings, modelUrl: s.modelUrl }),
      // Settings saved by an older version lack newer fields.
      merge: (saved, current) => ({ ...current, ...(saved as object), settings: { ...DEFAULT_SETTINGS, ...(saved as Partial<EngineStore> | undefined)?.settings } }),
    },
  ),
);
