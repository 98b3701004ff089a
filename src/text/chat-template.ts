// Conversation rendering with the checkpoint's own Jinja `chat_template` (tokenizer_config.json), as
// transformers' `apply_chat_template(..., tokenize=False)` does. Browser-and-Node code.
//
// LLaVA-Mini's conversation `llava_llama_3_1` = [system, user, assistant, user, ...] rendered with
// add_generation_prompt = False: the model emits the assistant header itself (see stop.ts, which hides it).
// No template is special-cased: whatever the checkpoint carries is rendered as is (the early Llama-3 template
// appends the assistant header unconditionally; the Llama-3.1 one only when add_generation_prompt is true).

import { Template } from '@huggingface/jinja';
import { DEFAULT_IMAGE_TOKEN } from './image-tokens.ts';
import { specialTokenString } from './tokenizer.ts';

/** LLaVA-Mini's default system prompt (conversation template llava_llama_3_1). */
export const DEFAULT_SYSTEM_PROMPT =
  'You are a helpful language and vision assistant. You are able to understand the visual content that the user ' +
  'provides, and assist the user with a variety of tasks using natural language.';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface RenderOptions {
  bosToken: string;
  eosToken: string;
  /** Append the assistant header (if the template honours the flag). LLaVA-Mini's reference: false. Default false. */
  addGenerationPrompt?: boolean;
  /**
   * Further template variables (e.g. unk_token, pad_token, date_string, tools). They override the defaults.
   * Note: @huggingface/jinja defines `strftime_now` (today's date) and `raise_exception` as globals.
   */
  extra?: Record<string, unknown>;
}

const templateCache = new Map<string, Template>();

function parseTemplate(source: string): Template {
  let t = templateCache.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new Error(`chat_template: cannot parse the Jinja template (${(e as Error).message})`);
    }
    if (templateCache.size > 8) templateCache.clear();
    templateCache.set(source, t);
  }
  return t;
}

/** Render `messages` with a Jinja chat template. */
export function renderConversation(template: string, messages: readonly ChatMessage[], opts: RenderOptions): string {
  const t = parseTemplate(template);
  const context: Record<string, unknown> = {
    messages: messages.map((m) => ({ role: m.role, content: m.content })),
    bos_token: opts.bosToken,
    eos_token: opts.eosToken,
    add_generation_prompt: opts.addGenerationPrompt ?? false,
    ...opts.extra,
  };
  try {
    return t.render(context);
  } catch (e) {
    throw new Error(`chat_template: rendering failed (${(e as Error).message})`);
  }
}

/**
 * The chat template string of a tokenizer_config.json: `chat_template` as a string, or the entry called `name`
 * of a list of `{name, template}` (transformers' multi-template form).
 */
export function getChatTemplate(tokenizerConfig: object, name = 'default'): string {
  const raw = (tokenizerConfig as Record<string, unknown>).chat_template;
  if (typeof raw === 'string') return raw;
  if (Array.isArray(raw)) {
    for (const entry of raw as unknown[]) {
      const e = entry as { name?: unknown; template?: unknown };
      if (e && e.name === name && typeof e.template === 'string') return e.template;
    }
    throw new Error(`tokenizer_config.json: chat_template has no template named "${name}"`);
  }
  if (raw && typeof raw === 'object') {
    const t = (raw as Record<string, unknown>)[name];
    if (typeof t === 'string') return t;
    throw new Error(`tokenizer_config.json: chat_template has no template named "${name}"`);
  }
  throw new Error('tokenizer_config.json: no chat_template');
}

/**
 * Render with the template and special tokens of a tokenizer_config.json (bos_token, eos_token, and unk_token /
 * pad_token when present, as transformers passes its special-tokens map).
 */
export function renderChat(
  tokenizerConfig: object,
  messages: readonly ChatMessage[],
  opts: { addGenerationPrompt?: boolean; extra?: Record<string, unknown> } = {},
): string {
  const cfg = tokenizerConfig as Record<string, unknown>;
  const bosToken = specialTokenString(cfg.bos_token);
  const eosToken = specialTokenString(cfg.eos_token);
  if (bosToken === null) throw new Error('tokenizer_config.json: no bos_token');
  if (eosToken === null) throw new Error('tokenizer_config.json: no eos_token');
  const specials: Record<string, unknown> = {};
  for (const key of ['unk_token', 'pad_token']) {
    const s = specialTokenString(cfg[key]);
    if (s !== null) specials[key] = s;
  }
  return renderConversation(getChatTemplate(tokenizerConfig), messages, {
    bosToken,
    eosToken,
    addGenerationPrompt: opts.addGenerationPrompt ?? false,
    extra: { ...specials, ...opts.extra },
  });
}

/** Remove literal "<image>" placeholders from user-typed text, so that typing it cannot create an image slot. */
export function stripImagePlaceholders(text: string): string {
  return text.split(DEFAULT_IMAGE_TOKEN).join('');
}

/** The user-message content of an image turn: "<image>\n" once per image, then the question. */
export function imageTurnContent(question: string, imageCount = 1): string {
  if (!Number.isInteger(imageCount) || imageCount < 0) throw new Error(`imageCount must be a whole number >= 0, got ${imageCount}`);
  return `${DEFAULT_IMAGE_TOKEN}\n`.repeat(imageCount) + stripImagePlaceholders(question);
}

/**
 * The first turn of a LLaVA-Mini conversation: [system, user "<image>\n" + question]. Render it with
 * renderChat / renderConversation (add_generation_prompt = false), then tokenize with tokenizerImageToken.
 * imageCount (default 1) "<image>\n" lines are put before the question; 0 gives a text-only turn.
 */
export function buildImagePrompt(args: { question: string; systemPrompt?: string; imageCount?: number }): ChatMessage[] {
  return [
    { role: 'system', content: args.systemPrompt ?? DEFAULT_SYSTEM_PROMPT },
    { role: 'user', content: imageTurnContent(args.question, args.imageCount ?? 1) },
  ];
}
