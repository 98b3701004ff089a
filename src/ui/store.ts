// App state (zustand). The GPU is reached only through src/gpu helpers: device.ts for the adapter/device,
// selftest.ts for the diagnostics. Components read this store and never touch WebGPU themselves.
import { create } from 'zustand';
import { browserGpu, GpuUnavailableError, requestGpuDevice, type AdapterSummary, type GpuContext, type GpuUnavailableKind } from '../gpu/device.ts';
import { runSelfTests, SELF_TEST_CASES, type SelfTestResult } from '../gpu/selftest.ts';

export type GpuState =
  | { kind: 'idle' }
  | { kind: 'requesting' }
  | { kind: 'ready'; summary: AdapterSummary }
  | { kind: 'unavailable'; reason: GpuUnavailableKind; message: string; help: readonly string[] }
  | { kind: 'failed'; message: string; help: readonly string[] }
  | { kind: 'lost'; message: string };

export interface AppState {
  gpu: GpuState;
  selfTest: { running: boolean; results: Record<string, SelfTestResult>; finishedAt: number | null };
  initGpu(): Promise<void>;
  runSelfTest(): Promise<void>;
}

// The live device stays outside React state (it is not data to render).
let context: GpuContext | null = null;
let initStarted = false;

export const useAppStore = create<AppState>()((set, get) => ({
  gpu: { kind: 'idle' },
  selfTest: { running: false, results: {}, finishedAt: null },

  async initGpu() {
    if (initStarted) return; // StrictMode mounts effects twice
    initStarted = true;
    set({ gpu: { kind: 'requesting' } });
    try {
      context = await requestGpuDevice(browserGpu(), {
        onLost: (report) => {
          context = null;
          set({ gpu: { kind: 'lost', message: report.text } });
        },
      });
      set({ gpu: { kind: 'ready', summary: context.summary } });
    } catch (e) {
      if (e instanceof GpuUnavailableError) {
        set({ gpu: { kind: 'unavailable', reason: e.kind, message: e.message, help: e.help } });
      } else {
        set({
          gpu: {
            kind: 'failed',
            message: `Starting WebGPU failed: ${e instanceof Error ? e.message : String(e)}`,
            help: ['Reload the page. If it keeps failing, update the browser and the graphics driver.'],
          },
        });
      }
    }
  },

  async runSelfTest() {
    if (!context || get().selfTest.running) return;
    set({ selfTest: { running: true, results: {}, finishedAt: null } });
    try {
      await runSelfTests({ device: context.device }, SELF_TEST_CASES, (r) =>
        set((s) => ({ selfTest: { ...s.selfTest, results: { ...s.selfTest.results, [r.id]: r } } })),
      );
    } finally {
      set((s) => ({ selfTest: { ...s.selfTest, running: false, finishedAt: Date.now() } }));
    }
  },
}));
