// The model the app offers: for now the demo checkpoint that `scripts/start.sh` generates into
// public/models/demo/, opened through the real checkpoint reader (HTTP range requests: only headers and
// JSON files are fetched, never the weights themselves, until the engine loads them).
import { create } from 'zustand';
import { openCheckpoint, UrlCheckpointFiles } from '../checkpoint/index.ts';

export const DEMO_MODEL_URL = new URL('models/demo/', new URL(import.meta.env.BASE_URL, window.location.href)).href;

export interface ModelSummary {
  name: string;
  /** Shown next to the name, e.g. 'random weights, for trying the pipeline'. */
  label: string | null;
  url: string;
  /** The folder's files (from demo-model.json): the checkpoint is opened without probing for optional files. */
  files?: string[];
  weightBytes: number;
  tensorCount: number;
  visionTokens: number;
  compressedTokens: number;
  llmHidden: number;
  llmLayers: number;
  prefusionLayers: number;
  vocab: number;
}

export type ModelState =
  | { kind: 'checking' }
  | { kind: 'ready'; model: ModelSummary }
  | { kind: 'missing'; message: string }
  | { kind: 'invalid'; message: string };

interface DemoInfo {
  name?: string;
  label?: string;
  files?: string[];
}

async function fetchDemoInfo(url: string): Promise<DemoInfo | null> {
  const res = await fetch(new URL('demo-model.json', url));
  return res.ok ? ((await res.json()) as DemoInfo) : null;
}

export const useModelStore = create<{ model: ModelState; check(): Promise<void> }>()((set) => ({
  model: { kind: 'checking' },
  async check() {
    set({ model: { kind: 'checking' } });
    const info = await fetchDemoInfo(DEMO_MODEL_URL).catch(() => null);
    if (!info) {
      const message = navigator.onLine
        ? 'No model is prepared yet: start the app with ./scripts/start.sh, which generates the demo model.'
        : 'You are offline and the demo model is served by the app’s server. Models stored in this browser (The real model, below) work offline.';
      set({ model: { kind: 'missing', message } });
      return;
    }
    try {
      const files = info.files;
      const ckpt = await openCheckpoint(new UrlCheckpointFiles(DEMO_MODEL_URL, files ? { files } : {}));
      const c = ckpt.config;
      const patches = (c.vision.imageSize / c.vision.patchSize) ** 2;
      set({
        model: {
          kind: 'ready',
          model: {
            name: info.name ?? 'demo',
            label: info.label ?? null,
            url: DEMO_MODEL_URL,
            ...(files ? { files } : {}),
            weightBytes: ckpt.totalBytes(),
            tensorCount: ckpt.tensorNames().length,
            visionTokens: patches,
            compressedTokens: c.compressorSize ** 2,
            llmHidden: c.llm.hiddenSize,
            llmLayers: c.llm.numLayers,
            prefusionLayers: c.prefusionLayerNum,
            vocab: c.llm.vocabSize,
          },
        },
      });
    } catch (e) {
      set({ model: { kind: 'invalid', message: e instanceof Error ? e.message : String(e) } });
    }
  },
}));
