// Conversations in IndexedDB (idb-keyval): an index of {id, title, updatedAt} and one record per conversation
// with its messages and image Blobs, so history (images included) survives a reload. Tabs of the app share the
// database and hear each other's changes on a BroadcastChannel; a deleted conversation is remembered as deleted,
// so a tab that still had it open cannot write it back.
import { createStore, del, get, getMany, set, update } from 'idb-keyval';
import type { AnswerStats } from '../worker/engine-api.ts';

export interface StoredMessage {
  id: string;
  role: 'user' | 'assistant';
  text: string;
  images: { name: string; blob: Blob; frames?: Blob[] }[];
  status: 'done' | 'stopped' | 'error';
  stats?: AnswerStats;
  error?: string;
}

export interface ConversationEntry {
  id: string;
  title: string;
  updatedAt: number;
  /** The title is a name the user gave (saves keep it), not the first question's start. */
  named?: boolean;
}

/** What one tab tells the others ('renamed' changes only the index, not the messages). */
export type ChatChange = { kind: 'saved' | 'deleted' | 'renamed'; id: string };

/** The longest conversation name kept. */
export const NAME_MAX = 80;

const store = createStore('llava-mini', 'chats');
const INDEX = 'index';
const CURRENT = 'current';
const DELETED = 'deleted';
const channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel('llava-mini-chats');

/** Calls `onChange` for every change another tab makes. */
export function onOtherTabChange(onChange: (change: ChatChange) => void): void {
  channel?.addEventListener('message', (e: MessageEvent<ChatChange>) => onChange(e.data));
}

export async function listConversations(): Promise<ConversationEntry[]> {
  return (await get<ConversationEntry[]>(INDEX, store)) ?? [];
}

export async function loadConversation(id: string): Promise<StoredMessage[]> {
  return (await get<StoredMessage[]>(`chat:${id}`, store)) ?? [];
}

/** The ids of the saved conversations whose title or any message holds `query` (case-insensitive). */
export async function conversationsMentioning(query: string): Promise<Set<string>> {
  const q = query.trim().toLowerCase();
  const index = await listConversations();
  const messages = await getMany<StoredMessage[] | undefined>(index.map((c) => `chat:${c.id}`), store);
  const holds = (text: string) => text.toLowerCase().includes(q);
  return new Set(index.filter((c, i) => holds(c.title) || (messages[i] ?? []).some((m) => holds(m.text))).map((c) => c.id));
}

export async function isDeleted(id: string): Promise<boolean> {
  return ((await get<string[]>(DELETED, store)) ?? []).includes(id);
}

/** Saves the conversation (not one deleted meanwhile, here or in another tab); returns the index. */
export async function saveConversation(id: string, messages: StoredMessage[]): Promise<ConversationEntry[]> {
  if (await isDeleted(id)) return listConversations();
  await set(`chat:${id}`, messages, store);
  let next: ConversationEntry[] = [];
  await update<ConversationEntry[]>(
    INDEX,
    (index = []) => {
      const named = index.find((c) => c.id === id && c.named);
      const entry = named ? { ...named, updatedAt: Date.now() } : { id, title: automaticTitle(messages), updatedAt: Date.now() };
      return (next = [entry, ...index.filter((c) => c.id !== id)]);
    },
    store,
  );
  await set(CURRENT, id, store);
  channel?.postMessage({ kind: 'saved', id } satisfies ChatChange);
  return next;
}

/** The title of a conversation the user has not named: the start of its first question. */
function automaticTitle(messages: readonly StoredMessage[]): string {
  return messages.find((m) => m.role === 'user')?.text.slice(0, 60) || 'Image chat';
}

/**
 * Names a saved conversation (trimmed, at most NAME_MAX characters), keeping its place in the list; an empty name
 * gives it back its automatic title. Returns the index.
 */
export async function renameConversation(id: string, name: string): Promise<ConversationEntry[]> {
  const title = name.trim().slice(0, NAME_MAX);
  const automatic = title ? null : automaticTitle(await loadConversation(id));
  let next: ConversationEntry[] = [];
  await update<ConversationEntry[]>(
    INDEX,
    (index = []) => (next = index.map((c) => (c.id !== id ? c : automatic === null ? { ...c, title, named: true } : { id, title: automatic, updatedAt: c.updatedAt }))),
    store,
  );
  channel?.postMessage({ kind: 'renamed', id } satisfies ChatChange);
  return next;
}

export async function deleteConversation(id: string): Promise<ConversationEntry[]> {
  await update<string[]>(DELETED, (ids = []) => [...ids.slice(-999), id], store);
  await del(`chat:${id}`, store);
  let next: ConversationEntry[] = [];
  await update<ConversationEntry[]>(INDEX, (index = []) => (next = index.filter((c) => c.id !== id)), store);
  channel?.postMessage({ kind: 'deleted', id } satisfies ChatChange);
  return next;
}

export function currentConversation(): Promise<string | undefined> {
  return get<string>(CURRENT, store);
}

export function setCurrentConversation(id: string): Promise<void> {
  return set(CURRENT, id, store);
}
