// The chat: attachments (encoded and pre-fused in the worker as soon as they are attached), the thread, streaming
// answers with Stop. Bad images give a notice and change nothing else.
import { create } from 'zustand';
import type { AnswerStats } from '../worker/engine-api.ts';
import { Comlink, engineWorker } from './engine-client.ts';
import { useEngineStore } from './engine-store.ts';
import { decodeImageForEngine } from './image-file.ts';

export interface Attachment {
  key: string;
  name: string;
  thumbUrl: string;
  status: 'encoding' | 'ready';
  /** Resolves to the worker's image id. */
  encoded: Promise<string>;
}

export interface ChatMessage {
  id: string;
  role: 'user' | 'assistant';
  text: string;
  images: { name: string; thumbUrl: string }[];
  status: 'streaming' | 'done' | 'stopped' | 'error';
  stats?: AnswerStats;
  error?: string;
}

interface ChatStore {
  conversationId: string;
  messages: ChatMessage[];
  attachments: Attachment[];
  busy: boolean;
  notice: string | null;
  attach(files: readonly File[]): Promise<void>;
  removeAttachment(key: string): void;
  send(question: string): Promise<void>;
  stop(): void;
  newChat(): void;
  dismissNotice(): void;
}

// Attachments keep the order they were given in (a paste then a drop): decoding is queued.
let attachQueue: Promise<void> = Promise.resolve();
let counter = 0;
const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export const useChatStore = create<ChatStore>()((set, get) => ({
  conversationId: newId('conv'),
  messages: [],
  attachments: [],
  busy: false,
  notice: null,

  attach(files) {
    attachQueue = attachQueue.then(async () => {
      for (const file of files) {
        let bitmap: ImageBitmap;
        try {
          bitmap = await decodeImageForEngine(file);
        } catch (e) {
          set({ notice: (e as Error).message });
          continue;
        }
        const key = newId('att');
        const encoded = engineWorker()
          .encodeImage(Comlink.transfer(bitmap, [bitmap]), 'image')
          .then((info) => info.id);
        const attachment: Attachment = { key, name: file.name, thumbUrl: URL.createObjectURL(file), status: 'encoding', encoded };
        set((s) => ({ attachments: [...s.attachments, attachment] }));
        encoded.then(
          () => set((s) => ({ attachments: s.attachments.map((a) => (a.key === key ? { ...a, status: 'ready' } : a)) })),
          (e: Error) => set((s) => ({ attachments: s.attachments.filter((a) => a.key !== key), notice: `${file.name}: ${e.message}` })),
        );
      }
    });
    return attachQueue;
  },

  removeAttachment(key) {
    const a = get().attachments.find((x) => x.key === key);
    if (!a) return;
    set((s) => ({ attachments: s.attachments.filter((x) => x.key !== key) }));
    void a.encoded.then((id) => engineWorker().releaseImage(id)).catch(() => undefined);
  },

  async send(question) {
    const { busy, attachments, conversationId } = get();
    const engine = useEngineStore.getState();
    if (busy) return;
    if (engine.status.kind !== 'ready') {
      set({ notice: 'Load a model first.' });
      return;
    }
    if (!question.trim() && attachments.length === 0) return;
    const user: ChatMessage = { id: newId('m'), role: 'user', text: question, images: attachments.map(({ name, thumbUrl }) => ({ name, thumbUrl })), status: 'done' };
    const answer: ChatMessage = { id: newId('m'), role: 'assistant', text: '', images: [], status: 'streaming' };
    set((s) => ({ busy: true, attachments: [], messages: [...s.messages, user, answer] }));
    const update = (f: (m: ChatMessage) => ChatMessage) => set((s) => ({ messages: s.messages.map((m) => (m.id === answer.id ? f(m) : m)) }));
    try {
      const images = await Promise.all(attachments.map((a) => a.encoded));
      const { settings } = engine;
      const stats = await engineWorker().ask(
        {
          conversationId,
          question,
          images,
          maxNewTokens: settings.maxNewTokens,
          sampling: settings.temperature > 0 ? { temperature: settings.temperature, topP: settings.topP, seed: Date.now() % 2 ** 31 } : { greedy: true },
          systemPrompt: settings.systemPrompt.trim() || undefined,
        },
        Comlink.proxy((delta: string) => update((m) => ({ ...m, text: m.text + delta }))),
      );
      update((m) => ({ ...m, text: stats.text, stats, status: stats.stopped === 'aborted' ? 'stopped' : 'done' }));
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const stopped = /abort|stopped/i.test(message);
      update((m) => ({ ...m, status: stopped ? 'stopped' : 'error', error: stopped ? undefined : message }));
    } finally {
      set({ busy: false });
      void useEngineStore.getState().refreshMemory();
    }
  },

  stop() {
    void engineWorker().stop();
  },

  newChat() {
    const old = get().conversationId;
    void engineWorker().dropConversation(old);
    set({ conversationId: newId('conv'), messages: [], attachments: [], notice: null });
  },

  dismissNotice: () => set({ notice: null }),
}));
