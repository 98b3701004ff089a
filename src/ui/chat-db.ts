// Conversations in IndexedDB (idb-keyval): an index of {id, title, updatedAt} and one record per conversation
// with its messages and image Blobs, so history (images included) survives a reload.
import { createStore, del, get, set } from 'idb-keyval';
import type { AnswerStats } from '../worker/engine-api.ts';

export interface StoredMessage {
  id: string;
  role: 'user' | 'assistant';
  text: string;
  images: { name: string; blob: Blob }[];
  status: 'done' | 'stopped' | 'error';
  stats?: AnswerStats;
  error?: string;
}

export interface ConversationEntry {
  id: string;
  title: string;
  updatedAt: number;
}

const store = createStore('llava-mini', 'chats');
const INDEX = 'index';
const CURRENT = 'current';

export async function listConversations(): Promise<ConversationEntry[]> {
  return (await get<ConversationEntry[]>(INDEX, store)) ?? [];
}

export async function loadConversation(id: string): Promise<StoredMessage[]> {
  return (await get<StoredMessage[]>(`chat:${id}`, store)) ?? [];
}

export async function saveConversation(id: string, messages: StoredMessage[]): Promise<ConversationEntry[]> {
  await set(`chat:${id}`, messages, store);
  const title = messages.find((m) => m.role === 'user')?.text.slice(0, 60) || 'Image chat';
  const index = (await listConversations()).filter((c) => c.id !== id);
  const next = [{ id, title, updatedAt: Date.now() }, ...index];
  await set(INDEX, next, store);
  await set(CURRENT, id, store);
  return next;
}

export async function deleteConversation(id: string): Promise<ConversationEntry[]> {
  await del(`chat:${id}`, store);
  const next = (await listConversations()).filter((c) => c.id !== id);
  await set(INDEX, next, store);
  return next;
}

export function currentConversation(): Promise<string | undefined> {
  return get<string>(CURRENT, store);
}

export function setCurrentConversation(id: string): Promise<void> {
  return set(CURRENT, id, store);
}
