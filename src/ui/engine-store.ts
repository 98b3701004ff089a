// The loaded model (in the engine worker): load with progress, memory per component, unload. Settings persist.
import { create } from 'zustand';
import { persist } from 'zustand/middleware';
import type { LoadedModel, LoadProgress, ModelSource } from '../worker/engine-api.ts';
import type { Precision } from '../weights/policy.ts';
import { Comlink, engineWorker } from './engine-client.ts';

export type EngineStatus =
  | { kind: 'idle' }
  | { kind: 'loading'; progress: LoadProgress; startedAt: number }
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
  precision: Precision;
  settings: ChatSettings;
  /** The last model URL typed by the user (persisted). */
  modelUrl: string;
  load(source: ModelSource): Promise<void>;
  setModelUrl(url: string): void;
  unload(): Promise<void>;
  refreshMemory(): Promise<void>;
  setPrecision(p: Precision): void;
  setSettings(s: Partial<ChatSettings>): void;
}

export const DEFAULT_SETTINGS: ChatSettings = { systemPrompt: '', temperature: 0, topP: 1, maxNewTokens: 512, maxVideoFrames: 16 };

export const useEngineStore = create<EngineStore>()(
  persist(
    (set, get) => ({
      status: { kind: 'idle' },
      precision: 'q4',
      settings: DEFAULT_SETTINGS,
      modelUrl: '',
      setModelUrl: (modelUrl) => set({ modelUrl }),
      async load(source) {
        const startedAt = performance.now();
        set({ status: { kind: 'loading', progress: { stage: 'opening', loadedBytes: 0, totalBytes: 0 }, startedAt } });
        try {
          const model = await engineWorker().load(
            source,
            get().precision,
            Comlink.proxy((progress: LoadProgress) => set({ status: { kind: 'loading', progress, startedAt } })),
          );
          set({ status: { kind: 'ready', model } });
        } catch (e) {
          set({ status: { kind: 'error', message: e instanceof Error ? e.message : String(e) } });
        }
      },
      async unload() {
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
