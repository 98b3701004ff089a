// Webcam live mode: a standing question answered again about the newest frame every N seconds. One round at a
// time: when a round is still running at the next tick, that tick's frame is dropped (never a queue behind a slow
// answer). Each round is its own one-question conversation, dropped with its frame afterwards, so GPU memory
// stays flat however long it runs.
import { create } from 'zustand';
import { Comlink, engineWorker } from './engine-client.ts';
import { useEngineStore } from './engine-store.ts';

export interface LiveRound {
  index: number;
  text: string;
  /** Frame capture to last token. */
  latencyMs: number;
  memoryTotal: number;
}

interface LiveStore {
  running: boolean;
  question: string;
  intervalS: number;
  /** The last 20 rounds. */
  rounds: LiveRound[];
  count: number;
  dropped: number;
  /** Rounds per second since start. */
  fps: number;
  error: string | null;
  setQuestion(q: string): void;
  setInterval(s: number): void;
  start(capture: () => Promise<ImageBitmap>): void;
  stop(): void;
}

let timer: ReturnType<typeof setInterval> | null = null;
let inFlight = false;
let startedAt = 0;

export const useLiveStore = create<LiveStore>()((set, get) => ({
  running: false,
  question: 'What do you see?',
  intervalS: 2,
  rounds: [],
  count: 0,
  dropped: 0,
  fps: 0,
  error: null,
  setQuestion: (question) => set({ question }),
  setInterval: (intervalS) => set({ intervalS: Math.max(0.5, intervalS) }),

  start(capture) {
    if (get().running) return;
    startedAt = performance.now();
    set({ running: true, rounds: [], count: 0, dropped: 0, fps: 0, error: null });
    const round = async () => {
      if (inFlight) {
        set((s) => ({ dropped: s.dropped + 1 }));
        return;
      }
      inFlight = true;
      const t0 = performance.now();
      const conversationId = `live-${t0}`;
      let imageId: string | null = null;
      try {
        const bitmap = await capture();
        imageId = (await engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), 'image')).id;
        const { settings } = useEngineStore.getState();
        let text = '';
        const stats = await engineWorker().ask(
          { conversationId, question: get().question, images: [imageId], maxNewTokens: settings.maxNewTokens, sampling: { greedy: true } },
          Comlink.proxy((d: string) => (text += d)),
        );
        if (!get().running) return;
        const index = get().count + 1;
        const live: LiveRound = { index, text: stats.text || text, latencyMs: performance.now() - t0, memoryTotal: stats.memory.total };
        set((s) => ({ rounds: [...s.rounds.slice(-19), live], count: index, fps: (index * 1000) / (performance.now() - startedAt) }));
      } catch (e) {
        if (get().running) set({ error: e instanceof Error ? e.message : String(e) });
      } finally {
        await engineWorker().dropConversation(conversationId);
        if (imageId) await engineWorker().releaseImage(imageId);
        inFlight = false;
      }
    };
    void round();
    timer = setInterval(() => void round(), get().intervalS * 1000);
  },

  stop() {
    if (timer) clearInterval(timer);
    timer = null;
    if (inFlight) void engineWorker().stop();
    set({ running: false });
  },
}));
