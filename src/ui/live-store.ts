// Webcam live mode: a standing question answered again about the newest frame every N seconds. One round at a
// time: when a round is still running at the next tick, that tick's frame is dropped (never a queue behind a slow
// answer). Each round is its own one-question conversation, dropped with its frame afterwards, so GPU memory
// stays flat however long it runs. Only one tab at a time runs live mode (a Web Lock): two tabs would share one GPU
// and each answer half as often.
import { create } from 'zustand';
import { Comlink, engineWorker, withReports } from './engine-client.ts';
import { useEngineStore } from './engine-store.ts';

export interface LiveRound {
  index: number;
  /** The frame it answered about (frames that came while a round ran were dropped). */
  frame: number;
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
  /** The round in progress: which frame (1, 2, …) and what it is doing. */
  current: { frame: number; phase: 'encoding' | 'answering'; text: string } | null;
  setQuestion(q: string): void;
  setInterval(s: number): void;
  /** Starts live mode (refused, with the reason in `error`, while another tab runs it). */
  start(capture: () => Promise<ImageBitmap>): Promise<void>;
  stop(): void;
}

let timer: ReturnType<typeof setInterval> | null = null;
let inFlight = false;
let startedAt = 0;
let frameNumber = 0;
/** Resolving it gives the live-mode lock back. */
let releaseLock: (() => void) | null = null;

/** Takes the app-wide live-mode lock, or returns false when another tab holds it. */
function takeLiveLock(): Promise<boolean> {
  if (!navigator.locks) return Promise.resolve(true);
  return new Promise((granted) => {
    void navigator.locks.request('llava-mini-live-mode', { ifAvailable: true }, (lock) => {
      granted(lock !== null);
      if (!lock) return;
      return new Promise<void>((release) => (releaseLock = release));
    });
  });
}

export const useLiveStore = create<LiveStore>()((set, get) => ({
  running: false,
  question: 'What do you see?',
  intervalS: 2,
  rounds: [],
  count: 0,
  dropped: 0,
  fps: 0,
  error: null,
  current: null,
  setQuestion: (question) => set({ question }),
  setInterval: (intervalS) => set({ intervalS: Math.max(0.5, intervalS) }),

  async start(capture) {
    if (get().running) return;
    if (!(await takeLiveLock())) {
      set({ error: 'Live mode is running in another tab of this app: stop it there first (one tab at a time uses the GPU for it).' });
      return;
    }
    startedAt = performance.now();
    frameNumber = 0;
    set({ running: true, rounds: [], count: 0, dropped: 0, fps: 0, error: null, current: null });
    const round = async () => {
      const frame = ++frameNumber; // every tick's frame is numbered, answered or dropped
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
        set({ current: { frame, phase: 'encoding', text: '' } });
        const { id } = await engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), 'image');
        imageId = id;
        const { settings } = useEngineStore.getState();
        let text = '';
        set({ current: { frame, phase: 'answering', text } });
        // Reports end with the call: a late delta must not bring back the round it finished.
        const outcome = await withReports(async (report) =>
          engineWorker().ask(
            { conversationId, question: get().question, images: [id], maxNewTokens: settings.maxNewTokens, sampling: { greedy: true } },
            report((d: string) => {
              text += d;
              if (get().running) set({ current: { frame, phase: 'answering', text } });
            }),
          ),
        );
        if (outcome.kind === 'failed' || (outcome.kind === 'stopped' && !outcome.stats)) throw new Error(outcome.reason);
        const stats = outcome.stats!;
        if (!get().running) return;
        const index = get().count + 1;
        const live: LiveRound = { index, frame, text: stats.text || text, latencyMs: performance.now() - t0, memoryTotal: stats.memory.total };
        set((s) => ({ rounds: [...s.rounds.slice(-19), live], count: index, fps: (index * 1000) / (performance.now() - startedAt), current: null }));
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
    releaseLock?.();
    releaseLock = null;
    set({ running: false, current: null });
  },
}));
