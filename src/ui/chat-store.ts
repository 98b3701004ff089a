// The chat: attachments (encoded and pre-fused in the worker as soon as they are attached), the thread, streaming
// answers with Stop, conversations saved in IndexedDB. Bad images give a notice and change nothing else.
// After a reload (or switching conversations) the worker no longer holds the conversation: the next question
// re-encodes the earlier images from their saved Blobs and sends the history along.
import { create } from 'zustand';
import type { AnswerStats, AskRequest } from '../worker/engine-api.ts';
import { deleteConversation, listConversations, loadConversation, saveConversation, setCurrentConversation, currentConversation, type ConversationEntry, type StoredMessage } from './chat-db.ts';
import { Comlink, engineWorker } from './engine-client.ts';
import { useEngineStore } from './engine-store.ts';
import { decodeImageForEngine } from './image-file.ts';
import { decodeVideoForEngine } from './video-file.ts';

export interface Attachment {
  key: string;
  name: string;
  /** The image file; for a video, its first sampled frame (PNG). */
  blob: Blob;
  thumbUrl: string;
  /** A video: its sampled frames (PNG) and their thumbnails. */
  frames?: Blob[];
  frameUrls?: string[];
  /** A video: how its frames were sampled (shown under the strip). */
  sampling?: { totalFrames: number; fps: number };
  status: 'encoding' | 'ready';
  /** Video: frames encoded so far / sampled. */
  progress?: { done: number; total: number };
  /** Resolves to the worker's image id (a video: one id per frame). */
  encoded: Promise<string | string[]>;
}

export interface ChatMessage {
  id: string;
  role: 'user' | 'assistant';
  text: string;
  images: { name: string; blob: Blob; thumbUrl: string; frames?: Blob[] }[];
  /** The worker's ids of `images` (this session only). */
  imageIds?: (string | string[])[];
  status: 'streaming' | 'done' | 'stopped' | 'error';
  stats?: AnswerStats;
  error?: string;
}

interface ChatStore {
  conversationId: string;
  conversations: ConversationEntry[];
  messages: ChatMessage[];
  attachments: Attachment[];
  busy: boolean;
  notice: string | null;
  attach(files: readonly File[]): Promise<void>;
  /** A video (or animated GIF): frames sampled at about 1 fps, capped by the settings, each encoded. */
  attachVideo(file: File): Promise<void>;
  removeAttachment(key: string): void;
  send(question: string): Promise<void>;
  /** Asks the last question again (a new answer), or `edited` instead of it, with the same images. */
  resendLast(edited?: string): Promise<void>;
  stop(): void;
  newChat(): void;
  /** Loads the saved conversations and opens the last one. */
  restore(): Promise<void>;
  open(id: string): Promise<void>;
  remove(id: string): Promise<void>;
  dismissNotice(): void;
}

const toStored = (m: ChatMessage): StoredMessage => ({
  id: m.id,
  role: m.role,
  text: m.text,
  images: m.images.map(({ name, blob, frames }) => ({ name, blob, ...(frames ? { frames } : {}) })),
  status: m.status === 'streaming' ? 'stopped' : m.status,
  ...(m.stats ? { stats: m.stats } : {}),
  ...(m.error ? { error: m.error } : {}),
});

const fromStored = (m: StoredMessage): ChatMessage => ({ ...m, images: m.images.map((im) => ({ ...im, thumbUrl: URL.createObjectURL(im.blob) })) });

async function encodeBlob(blob: Blob, name: string, mode: 'image' | 'video'): Promise<string> {
  const bitmap = await decodeImageForEngine(new File([blob], name));
  return (await engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), mode)).id;
}

/** Re-encodes a message's images and videos in the worker (a conversation the worker does not hold). */
async function encodeAgain(images: readonly { name: string; blob: Blob; frames?: Blob[] }[]): Promise<(string | string[])[]> {
  const ids: (string | string[])[] = [];
  for (const im of images) {
    if (!im.frames) {
      ids.push(await encodeBlob(im.blob, im.name, 'image'));
      continue;
    }
    const frameIds: string[] = [];
    for (const f of im.frames) frameIds.push(await encodeBlob(f, im.name, 'video'));
    ids.push(frameIds);
  }
  return ids;
}

async function pngOf(bitmap: ImageBitmap): Promise<Blob> {
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  canvas.getContext('2d')!.drawImage(bitmap, 0, 0);
  return canvas.convertToBlob({ type: 'image/png' });
}

/** The earlier completed turns of `messages` as the worker's history, images re-encoded. */
async function historyOf(messages: readonly ChatMessage[]): Promise<NonNullable<AskRequest['history']>> {
  const history: NonNullable<AskRequest['history']> = [];
  for (let i = 0; i + 1 < messages.length; i++) {
    const [user, answer] = [messages[i]!, messages[i + 1]!];
    if (user.role !== 'user' || answer.role !== 'assistant' || answer.status === 'error') continue;
    history.push({ question: user.text, answer: answer.text, images: await encodeAgain(user.images) });
    i++;
  }
  return history;
}

// Attachments keep the order they were given in (a paste then a drop): decoding is queued.
let attachQueue: Promise<void> = Promise.resolve();
let counter = 0;
const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;

export const useChatStore = create<ChatStore>()((set, get) => ({
  conversationId: newId('conv'),
  conversations: [],
  messages: [],
  attachments: [],
  busy: false,
  notice: null,

  attachVideo(file) {
    attachQueue = attachQueue.then(async () => {
      const key = newId('att');
      const patch = (f: (a: Attachment) => Attachment) => set((s) => ({ attachments: s.attachments.map((a) => (a.key === key ? f(a) : a)) }));
      let settle!: { resolve: (ids: string[]) => void; reject: (e: Error) => void };
      const encoded = new Promise<string[]>((resolve, reject) => (settle = { resolve, reject }));
      encoded.catch(() => undefined);
      set((s) => ({ attachments: [...s.attachments, { key, name: file.name, blob: file, thumbUrl: '', status: 'encoding', progress: { done: 0, total: 0 }, encoded }] }));
      try {
        const video = await decodeVideoForEngine(file, useEngineStore.getState().settings.maxVideoFrames);
        const frames = await Promise.all(video.frames.map(pngOf));
        const frameUrls = frames.map((f) => URL.createObjectURL(f));
        const sampling = { totalFrames: video.totalFrames, fps: video.fps };
        patch((a) => ({ ...a, blob: frames[0]!, thumbUrl: frameUrls[0]!, frames, frameUrls, sampling, progress: { done: 0, total: frames.length } }));
        const ids: string[] = [];
        for (const bitmap of video.frames) {
          ids.push((await engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), 'video')).id);
          patch((a) => ({ ...a, progress: { done: ids.length, total: frames.length } }));
        }
        settle.resolve(ids);
        patch((a) => ({ ...a, status: 'ready' }));
      } catch (e) {
        settle.reject(e as Error);
        set((s) => ({ attachments: s.attachments.filter((a) => a.key !== key), notice: (e as Error).message }));
      }
    });
    return attachQueue;
  },

  attach(files) {
    attachQueue = attachQueue.then(async () => {
      for (const file of files) {
        if (file.type.startsWith('video/')) {
          void get().attachVideo(file);
          continue;
        }
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
        const attachment: Attachment = { key, name: file.name, blob: file, thumbUrl: URL.createObjectURL(file), status: 'encoding', encoded };
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
    void a.encoded.then((ids) => Promise.all([ids].flat().map((id) => engineWorker().releaseImage(id)))).catch(() => undefined);
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
    const user: ChatMessage = {
      id: newId('m'),
      role: 'user',
      text: question,
      images: attachments.map(({ name, blob, thumbUrl, frames }) => ({ name, blob, thumbUrl, ...(frames ? { frames } : {}) })),
      status: 'done',
    };
    const earlier = get().messages;
    const answer: ChatMessage = { id: newId('m'), role: 'assistant', text: '', images: [], status: 'streaming' };
    set((s) => ({ busy: true, attachments: [], messages: [...s.messages, user, answer] }));
    // Saved at once (the answer as stopped) so that a reload mid-answer keeps the question.
    void saveConversation(conversationId, get().messages.map(toStored)).then((conversations) => set({ conversations }));
    const update = (f: (m: ChatMessage) => ChatMessage) => set((s) => ({ messages: s.messages.map((m) => (m.id === answer.id ? f(m) : m)) }));
    try {
      const images = await Promise.all(attachments.map((a) => a.encoded));
      user.imageIds = images;
      const history = earlier.length > 0 && !(await engineWorker().hasConversation(conversationId)) ? await historyOf(earlier) : undefined;
      const { settings } = engine;
      const stats = await engineWorker().ask(
        {
          conversationId,
          question,
          images,
          maxNewTokens: settings.maxNewTokens,
          sampling: settings.temperature > 0 ? { temperature: settings.temperature, topP: settings.topP, seed: Date.now() % 2 ** 31 } : { greedy: true },
          systemPrompt: settings.systemPrompt.trim() || undefined,
          ...(history ? { history } : {}),
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
      const { conversationId: id, messages } = get();
      if (id === conversationId) set({ conversations: await saveConversation(id, messages.map(toStored)) });
    }
  },

  async resendLast(edited) {
    const { messages, busy, conversationId } = get();
    const user = messages.at(-2);
    if (busy || !user || user.role !== 'user') return;
    // The worker forgets the turn (its images stay encoded); after a reload it holds nothing and the history is resent.
    const held = await engineWorker().hasConversation(conversationId);
    if (held) await engineWorker().undoLastTurn(conversationId);
    const ids = held && user.imageIds ? user.imageIds : await encodeAgain(user.images);
    const attachments: Attachment[] = user.images.map((im, i) => ({ key: newId('att'), ...im, status: 'ready', encoded: Promise.resolve(ids[i]!) }));
    set({ messages: messages.slice(0, -2), attachments });
    await get().send(edited ?? user.text);
  },

  stop() {
    void engineWorker().stop();
  },

  newChat() {
    if (get().busy) return;
    void engineWorker().dropConversation(get().conversationId);
    set({ conversationId: newId('conv'), messages: [], attachments: [], notice: null });
  },

  async restore() {
    const conversations = await listConversations();
    set({ conversations });
    const id = await currentConversation();
    if (id && conversations.some((c) => c.id === id)) await get().open(id);
  },

  async open(id) {
    if (get().busy) return;
    void engineWorker().dropConversation(get().conversationId);
    const messages = (await loadConversation(id)).map(fromStored);
    await setCurrentConversation(id);
    set({ conversationId: id, messages, attachments: [], notice: null });
  },

  async remove(id) {
    if (get().busy && id === get().conversationId) return;
    void engineWorker().dropConversation(id);
    const conversations = await deleteConversation(id);
    set({ conversations });
    if (id === get().conversationId) set({ conversationId: newId('conv'), messages: [], attachments: [] });
  },

  dismissNotice: () => set({ notice: null }),
}));
