// The chat: attachments (encoded and pre-fused in the worker as soon as they are attached), the thread, streaming
// answers with Stop, conversations saved in IndexedDB. Bad images give a notice and change nothing else.
// Nothing is lost: a streaming answer is saved as it grows (a reload shows it as stopped, with Continue and
// Regenerate); after a reload, a switch of conversation or a lost GPU device, the worker no longer holds the
// conversation: every question sends the saved history, and the worker re-opens the conversation from it when it
// does not hold it (its images encoded again from their saved Blobs). A message sent during an answer waits, visibly, for it to finish.
import { create } from 'zustand';
import type { AnswerStats, ContextRequest, EncodeStage, SavedTurn } from '../worker/engine-api.ts';
import { deleteConversation, listConversations, loadConversation, onOtherTabChange, renameConversation, saveConversation, setCurrentConversation, currentConversation, type ConversationEntry, type StoredMessage } from './chat-db.ts';
import { decodeImageForEngine } from '../image/image-bitmap.ts';
import { Comlink, engineWorker, withReports } from './engine-client.ts';
import { useEngineStore } from './engine-store.ts';
import { showNotice, useNoticeStore } from './notice-store.ts';
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
  /** 'waiting': attached before a model was loaded; encoded once one is. */
  status: 'waiting' | 'encoding' | 'ready';
  /** What the encoding is doing now (an image: its stage; a video: sampling, then frames). */
  stage?: 'decoding' | 'sampling frames' | EncodeStage;
  /** Video: frames encoded so far / sampled. */
  progress?: { done: number; total: number };
  /** Resolves to the worker's image id (a video: one id per frame). */
  encoded: Promise<string | string[]>;
  /** The model load the ids belong to (a reload, e.g. after a lost device, needs them encoded again). */
  generation: number;
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
  /** The token ids streamed so far (this session only; the stats' tokens replace them when the answer ends). */
  streamedTokenIds?: number[];
  error?: string;
}

interface ChatStore {
  conversationId: string;
  conversations: ConversationEntry[];
  messages: ChatMessage[];
  attachments: Attachment[];
  busy: boolean;
  /** A message sent while an answer streamed: sent when it finishes. */
  queued: string | null;
  /** The composer's text (the webcam's "Ask about this frame" asks it). */
  draft: string;
  setDraft(draft: string): void;
  /** Sends the composer's text (and attachments), clearing it. */
  sendDraft(): Promise<void>;
  attach(files: readonly File[]): Promise<void>;
  /** A video (or animated GIF): frames sampled at about 1 fps, capped by the settings, each encoded. */
  attachVideo(file: File): Promise<void>;
  removeAttachment(key: string): void;
  /** Sends, or queues the message when an answer is streaming. Resolves when the answer is complete. */
  send(question: string): Promise<void>;
  /** Asks the last question again (a new answer), or `edited` instead of it, with the same images. */
  resendLast(edited?: string): Promise<void>;
  /** Asks the model to go on after a stopped answer. */
  continueLast(): Promise<void>;
  cancelQueued(): void;
  stop(): void;
  newChat(): void;
  /** Loads the saved conversations, opens the last one, and follows the other tabs' changes. */
  restore(): Promise<void>;
  open(id: string): Promise<void>;
  /** Names a saved conversation; an empty name gives back its automatic title (the first question's start). */
  rename(id: string, name: string): Promise<void>;
  remove(id: string): Promise<void>;
  /** The context the conversation would use with `draft` and the attachments (null when no model is loaded). */
  contextUsage(draft: string): Promise<{ rows: number; limit: number; refusal?: string } | null>;
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

const generation = () => useEngineStore.getState().generation;
const modelReady = () => useEngineStore.getState().status.kind === 'ready';
/** An attachment given before a model is loaded: no ids yet, and a generation no load has (encoded when one is). */
const WAITING = { status: 'waiting', encoded: Promise.resolve([]), generation: -1 } as const;

async function encodeBlob(blob: Blob, name: string, mode: 'image' | 'video'): Promise<string> {
  const bitmap = await decodeImageForEngine(new File([blob], name));
  return (await engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), mode)).id;
}

/** Re-encodes attachments in the worker (their ids belong to an earlier model load or a dropped conversation). */
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

/** The completed turns of `messages` (question, then answer; failed answers left out). */
function turnsOf(messages: readonly ChatMessage[]): { user: ChatMessage; answer: ChatMessage }[] {
  const turns: { user: ChatMessage; answer: ChatMessage }[] = [];
  for (let i = 0; i + 1 < messages.length; i++) {
    const [user, answer] = [messages[i]!, messages[i + 1]!];
    if (user.role !== 'user' || answer.role !== 'assistant' || answer.status === 'error') continue;
    turns.push({ user, answer });
    i++;
  }
  return turns;
}

/** The earlier completed turns of `messages` as saved (the worker re-opens the conversation from them if needed). */
function historyOf(messages: readonly ChatMessage[]): SavedTurn[] {
  return turnsOf(messages).map(({ user, answer }) => ({
    question: user.text,
    answer: answer.text,
    images: user.images.map(({ name, blob, frames }) => ({ name, blob, ...(frames ? { frames } : {}) })),
  }));
}

const framesOf = (images: readonly { frames?: Blob[] }[]) => images.map((im) => im.frames?.length ?? 1);

// Attachments keep the order they were given in (a paste then a drop): decoding is queued.
let attachQueue: Promise<void> = Promise.resolve();
let counter = 0;
const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
/** A streaming answer is written to IndexedDB at most this often. */
const SAVE_EVERY_MS = 1000;

/**
 * `?logits=K` in the page's URL: each answer also reports its first token's K highest logits (on the answer element as
 * data-top-logits0), so two engines can be compared on the same input (npm run verify:webllm does).
 */
function topLogitsRequested(): number | undefined {
  const k = Number(new URLSearchParams(globalThis.location?.search ?? '').get('logits'));
  return Number.isInteger(k) && k > 0 && k <= 100 ? k : undefined;
}
let following = false;

export const useChatStore = create<ChatStore>()((set, get) => {
  const save = async (id: string) => {
    const { conversationId, messages } = get();
    if (id === conversationId) set({ conversations: await saveConversation(id, messages.map(toStored)) });
  };
  const patchAttachment = (key: string, f: (a: Attachment) => Attachment) => set((s) => ({ attachments: s.attachments.map((a) => (a.key === key ? f(a) : a)) }));
  /** Marks an attachment ready when its encoding ends, or drops it with a notice when that fails. */
  const settleAttachment = (key: string, name: string, encoded: Promise<unknown>) =>
    encoded.then(
      () => patchAttachment(key, (a) => ({ ...a, status: 'ready', stage: undefined, progress: undefined })),
      (e: Error) => {
        set((s) => ({ attachments: s.attachments.filter((a) => a.key !== key) }));
        showNotice(`${name}: ${e.message}`);
      },
    );
  // A model just loaded: the attachments that waited for one are encoded now, not when the question is sent.
  useEngineStore.subscribe((s, prev) => {
    if (s.status.kind !== 'ready' || prev.status.kind === 'ready') return;
    for (const a of get().attachments) {
      if (a.status !== 'waiting') continue;
      const encoded = encodeAgain([a]).then((ids) => ids[0]!);
      patchAttachment(a.key, (x) => ({ ...x, status: 'encoding', stage: 'image side', encoded, generation: generation() }));
      void settleAttachment(a.key, a.name, encoded);
    }
  });
  /** The attachments' worker ids, encoded again when the model was reloaded since. */
  const idsOf = async (attachments: readonly Attachment[]) =>
    Promise.all(attachments.map(async (a) => (a.generation === generation() ? a.encoded : (await encodeAgain([a]))[0]!)));

  return {
    conversationId: newId('conv'),
    conversations: [],
    messages: [],
    attachments: [],
    busy: false,
    queued: null,
    draft: '',
    setDraft: (draft) => set({ draft }),
    async sendDraft() {
      const { draft, attachments, busy, queued } = get();
      if (!draft.trim() && attachments.length === 0) return;
      const ready = useEngineStore.getState().status.kind === 'ready';
      // Refused (nothing loaded, a second queued message, over the context): the notice says why, the text stays.
      if (busy ? queued !== null : !ready) return get().send(draft);
      if (!busy) {
        const usage = await get().contextUsage(draft);
        if (usage?.refusal) return showNotice(usage.refusal);
      }
      set({ draft: '' });
      return get().send(draft);
    },

    attachVideo(file) {
      attachQueue = attachQueue.then(async () => {
        const key = newId('att');
        const patch = (f: (a: Attachment) => Attachment) => patchAttachment(key, f);
        let settle!: { resolve: (ids: string[]) => void; reject: (e: Error) => void };
        const encoded = new Promise<string[]>((resolve, reject) => (settle = { resolve, reject }));
        encoded.catch(() => undefined);
        const att: Attachment = { key, name: file.name, blob: file, thumbUrl: '', status: 'encoding', stage: 'sampling frames', progress: { done: 0, total: 0 }, encoded, generation: generation() };
        set((s) => ({ attachments: [...s.attachments, att] }));
        try {
          const video = await decodeVideoForEngine(file, useEngineStore.getState().settings.maxVideoFrames);
          const frames = await Promise.all(video.frames.map(pngOf));
          const frameUrls = frames.map((f) => URL.createObjectURL(f));
          const sampling = { totalFrames: video.totalFrames, fps: video.fps };
          patch((a) => ({ ...a, blob: frames[0]!, thumbUrl: frameUrls[0]!, frames, frameUrls, sampling, progress: { done: 0, total: frames.length } }));
          if (!modelReady()) {
            for (const bitmap of video.frames) bitmap.close();
            settle.resolve([]);
            return patch((a) => ({ ...a, ...WAITING, stage: undefined, progress: undefined }));
          }
          const ids: string[] = [];
          for (const bitmap of video.frames) {
            const info = await withReports((report) =>
              engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), 'video', report((stage: EncodeStage) => patch((a) => ({ ...a, stage })))),
            );
            ids.push(info.id);
            patch((a) => ({ ...a, progress: { done: ids.length, total: frames.length } }));
          }
          settle.resolve(ids);
          patch((a) => ({ ...a, status: 'ready', stage: undefined }));
        } catch (e) {
          settle.reject(e as Error);
          set((s) => ({ attachments: s.attachments.filter((a) => a.key !== key) }));
          showNotice((e as Error).message);
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
            showNotice((e as Error).message);
            continue;
          }
          const key = newId('att');
          const shown = { key, name: file.name, blob: file, thumbUrl: URL.createObjectURL(file) };
          if (!modelReady()) {
            bitmap.close();
            set((s) => ({ attachments: [...s.attachments, { ...shown, ...WAITING }] }));
            continue;
          }
          const encoded = withReports((report) =>
            engineWorker().encodeImage(Comlink.transfer(bitmap, [bitmap]), 'image', report((stage: EncodeStage) => patchAttachment(key, (a) => ({ ...a, stage })))),
          ).then((info) => info.id);
          set((s) => ({ attachments: [...s.attachments, { ...shown, status: 'encoding', stage: 'decoding', encoded, generation: generation() }] }));
          void settleAttachment(key, file.name, encoded);
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
      const { busy, attachments, conversationId, queued } = get();
      const engine = useEngineStore.getState();
      if (!question.trim() && attachments.length === 0) return;
      if (busy) {
        if (queued !== null) return showNotice('A message is already waiting for this answer to finish: send this one after it.');
        set({ queued: question });
        return;
      }
      if (engine.status.kind !== 'ready') return showNotice('Load a model first: pick one in the top bar.');
      const usage = await get().contextUsage(question);
      if (usage?.refusal) return showNotice(usage.refusal);
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
      if (useNoticeStore.getState().notice?.tone === 'info') useNoticeStore.getState().dismiss();
      // Saved at once and then as it grows (the answer as stopped): a reload mid-answer keeps what was written.
      void save(conversationId);
      let lastSave = performance.now();
      const update = (f: (m: ChatMessage) => ChatMessage) => set((s) => ({ messages: s.messages.map((m) => (m.id === answer.id ? f(m) : m)) }));
      try {
        const images = await idsOf(attachments);
        user.imageIds = images;
        const history = earlier.length > 0 ? historyOf(earlier) : undefined;
        const { settings } = useEngineStore.getState();
        // Reports end with the call: a late delta must not append to the final text.
        const outcome = await withReports(async (report) =>
          engineWorker().ask(
            {
              conversationId,
              question,
              images,
              maxNewTokens: settings.maxNewTokens,
              sampling: settings.temperature > 0 ? { temperature: settings.temperature, topP: settings.topP, seed: Date.now() % 2 ** 31 } : { greedy: true },
              systemPrompt: settings.systemPrompt.trim() || undefined,
              ...(history ? { history } : {}),
              ...(topLogitsRequested() ? { topLogits: topLogitsRequested() } : {}),
            },
            report((delta: string) => {
              update((m) => ({ ...m, text: m.text + delta }));
              if (performance.now() - lastSave > SAVE_EVERY_MS) {
                lastSave = performance.now();
                void save(conversationId);
              }
            }),
            report((id: number) => update((m) => ({ ...m, streamedTokenIds: [...(m.streamedTokenIds ?? []), id] }))),
          ),
        );
        if (outcome.kind === 'failed') update((m) => ({ ...m, status: 'error', error: outcome.reason }));
        else if (outcome.stats) update((m) => ({ ...m, text: outcome.stats!.text, stats: outcome.stats, status: outcome.kind }));
        else update((m) => ({ ...m, status: 'stopped' })); // stopped before any stats: the streamed text stays
      } catch (e) {
        // The page's own part failed (attachments encoded again, the worker unreachable).
        update((m) => ({ ...m, status: 'error', error: e instanceof Error ? e.message : String(e) }));
      } finally {
        set({ busy: false });
        void useEngineStore.getState().refreshMemory();
        await save(conversationId);
      }
      const next = get().queued;
      if (next !== null) {
        set({ queued: null });
        if (get().conversationId === conversationId) await get().send(next);
      }
    },

    async resendLast(edited) {
      const { messages, busy, conversationId } = get();
      const user = messages.at(-2);
      if (busy || !user || user.role !== 'user') return;
      // The worker forgets the turn (its images stay encoded); after a reload it holds nothing and the history is resent.
      const held = await engineWorker().undoLastTurn(conversationId);
      const ids = held && user.imageIds ? user.imageIds : await encodeAgain(user.images);
      const attachments: Attachment[] = user.images.map((im, i) => ({ key: newId('att'), ...im, status: 'ready', encoded: Promise.resolve(ids[i]!), generation: generation() }));
      set({ messages: messages.slice(0, -2), attachments });
      await get().send(edited ?? user.text);
    },

    continueLast() {
      return get().send('Continue.');
    },

    cancelQueued: () => set({ queued: null }),

    stop() {
      set({ queued: null });
      void engineWorker().stop();
    },

    newChat() {
      if (get().busy) return;
      void engineWorker().dropConversation(get().conversationId);
      set({ conversationId: newId('conv'), messages: [], attachments: [], queued: null });
    },

    async restore() {
      if (!following) {
        following = true;
        onOtherTabChange(async ({ kind, id }) => {
          set({ conversations: await listConversations() });
          if (id !== get().conversationId || kind === 'renamed') return;
          if (kind === 'deleted') {
            if (get().busy) get().stop();
            set({ conversationId: newId('conv'), messages: [], attachments: [], queued: null });
            showNotice('This conversation was deleted in another tab.', 'info');
          } else if (!get().busy) {
            // The other tab went on with it: show what it wrote (this tab's worker no longer matches it).
            void engineWorker().dropConversation(id);
            set({ messages: (await loadConversation(id)).map(fromStored) });
          }
        });
      }
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
      set({ conversationId: id, messages, attachments: [], queued: null });
    },

    async rename(id, name) {
      set({ conversations: await renameConversation(id, name) });
    },

    async remove(id) {
      if (get().busy && id === get().conversationId) return;
      void engineWorker().dropConversation(id);
      const conversations = await deleteConversation(id);
      set({ conversations });
      if (id === get().conversationId) set({ conversationId: newId('conv'), messages: [], attachments: [] });
    },

    async contextUsage(draft) {
      if (useEngineStore.getState().status.kind !== 'ready') return null;
      const { conversationId, messages, attachments } = get();
      const req: ContextRequest = {
        conversationId,
        systemPrompt: useEngineStore.getState().settings.systemPrompt.trim() || undefined,
        history: turnsOf(messages).map(({ user, answer }) => ({ question: user.text, answer: answer.text, images: framesOf(user.images) })),
        question: draft,
        frames: framesOf(attachments),
      };
      return engineWorker().contextUsage(req).catch(() => null);
    },
  };
});
