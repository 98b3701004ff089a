// A chat about images on the engine (spec sections 5-7). Every turn re-renders the whole conversation with the
// checkpoint's chat template, as the reference demo does, and then reuses what did not change:
//   - pre-fusion: each image's state keeps the fused text rows of the common prefix of the old and new prompt ids
//     and fuses only the rest (the previous answer, now as text, and the new user turn);
//   - LLM: the KV cache is rolled back to the row where the prompt first differs (the end of the previous prompt:
//     the generated tokens are dropped and re-enter as fused text) and only the new rows are prefilled.
// Exactly equal to running the whole conversation from scratch (a test proves it). A turn that brings a new image
// changes every text row (they are means over all images / frames), so the LLM re-prefills from row 0 then.
import { imageTurnContent, renderChat, stripImagePlaceholders, DEFAULT_SYSTEM_PROMPT, type ChatMessage } from '../text/chat-template.ts';
import { tokenizerImageToken } from '../text/image-tokens.ts';
import { StreamingDetokenizer } from '../text/stop.ts';
import type { TextTokenizer } from '../text/tokenizer.ts';
import { readF32 } from '../gpu/buffers.ts';
import type { LlmBackend, SamplingOptions } from '../llm/llm-backend.ts';
import { EncodedImage, type LlavaMiniEngine } from './engine.ts';
import type { LlmInputAssembler } from './llm-input.ts';
import { commonPrefix, llmLayout, llmRowOf } from './llm-layout.ts';

/** What the conversation needs of the checkpoint's text side. */
export interface TextSide {
  tokenizer: TextTokenizer;
  /** tokenizer_config.json (chat_template, special tokens). */
  tokenizerConfig: object;
  stopIds: readonly number[];
}

export interface AskOptions {
  /** Visuals this turn brings, each one <image> slot: an image, or a video's frames (encoded in 'video' mode). */
  images?: readonly (EncodedImage | readonly EncodedImage[])[];
  /** Default 512 (the reference). */
  maxNewTokens?: number;
  /** Default greedy. */
  sampling?: SamplingOptions;
  signal?: AbortSignal;
  /** Visible answer text as it grows (append-only deltas; the model's assistant header and stop token hidden). */
  onText?(delta: string): void;
  /**
   * Each generated token id as it is sampled, before detokenizing: also the tokens that show no text (whitespace,
   * held back until a character is complete), so a caller can tell that an answer has started.
   */
  onToken?(id: number): void;
  /** Read back fused_text, llm_input and logits0. */
  capture?: boolean;
  /** Report the k highest logits of the first answer token (logits0): comparing two engines on one input. */
  topLogits?: number;
}

/** One of the highest logits of logits0. */
export interface TopLogit {
  id: number;
  logit: number;
}

export interface TurnTimings {
  /** Pre-fusion of the new text rows (all images). */
  prefusionMs: number;
  /** LLM input assembly + prefill of the new rows. */
  prefillMs: number;
  /** From the start of the prefill to the first token read back. */
  firstTokenMs: number;
  decodeMs: number;
  tokensPerSecond: number;
}

export interface TurnResult {
  tokens: number[];
  text: string;
  stopped: 'eos' | 'length' | 'aborted';
  /** The whole conversation's prompt ids (-200 at each image slot). */
  promptIds: number[];
  /** LLM input rows of the prompt. */
  llmRows: number;
  /** Rows kept from the previous turn's LLM cache; llmRows - reusedRows were prefilled. */
  reusedRows: number;
  timings: TurnTimings;
  captured?: { fusedText: Float32Array; llmInput: Float32Array; logits0: Float32Array };
  /** With TurnOptions.topLogits: logits0's k highest, highest first. */
  topLogits0?: TopLogit[];
}

/** A saved turn, as the UI keeps it: the question, the answer text, the frame count of each visual it brought. */
export interface SavedTurn<Visual> {
  question: string;
  answer: string;
  images: readonly Visual[];
}

/** How long a conversation with one more question would be (LLM rows), and the most the model takes. */
export interface ContextUsage {
  rows: number;
  limit: number;
}

/** The rendered turns of a saved history after `systemPrompt` (what resume() and context measures start from). */
function historyMessages(systemPrompt: string | undefined, history: readonly SavedTurn<unknown>[]): ChatMessage[] {
  const turns: ChatMessage[] = [{ role: 'system', content: systemPrompt ?? DEFAULT_SYSTEM_PROMPT }];
  for (const h of history) turns.push({ role: 'user', content: imageTurnContent(h.question, h.images.length) }, { role: 'assistant', content: stripImagePlaceholders(h.answer) });
  return turns;
}

/** The LLM rows a conversation can take: the tokenizer's model_max_length and the context, one row for an answer. */
function contextLimit(engine: LlavaMiniEngine): number {
  return Math.min(engine.config.tokenizerModelMaxLength, engine.llm.capacity - 1);
}

/** A one-line refusal that gives the limit and what to do. */
export function overContextMessage(rows: number, limit: number, firstTurn: boolean): string {
  const over = rows - limit;
  return firstTurn
    ? `This message is ${rows} tokens long and the model's context holds ${limit}: shorten it by at least ${over} tokens (about ${over * 4} characters), or split it over several questions.`
    : `With this message the conversation would be ${rows} tokens long and the model's context holds ${limit}: start a new chat, or shorten the message by at least ${over} tokens.`;
}

/**
 * The context a conversation saved as `history` would use with `question` and new visuals of `newFrames` frames
 * each (no GPU work: the chat template, the tokenizer and the layout only). The composer shows it before sending.
 */
export function measureContext(
  engine: LlavaMiniEngine,
  text: TextSide,
  opts: { systemPrompt?: string },
  history: readonly SavedTurn<number>[],
  question: string,
  newFrames: readonly number[],
): ContextUsage {
  const messages: ChatMessage[] = [...historyMessages(opts.systemPrompt, history), { role: 'user', content: imageTurnContent(question, newFrames.length) }];
  const ids = tokenizerImageToken(renderChat(text.tokenizerConfig, messages, { addGenerationPrompt: false }), text.tokenizer);
  const frames = [...history.flatMap((h) => h.images), ...newFrames];
  return { rows: llmLayout(ids, frames.map((n) => n * engine.visionTokenRows)).rows, limit: contextLimit(engine) };
}

export class Conversation {
  private turns: ChatMessage[];
  /** Per <image> slot so far: its frames (an image: one). */
  private slots: EncodedImage[][] = [];
  /** Prompt ids whose LLM rows are in the engine's cache (valid while this conversation owns it). */
  private llmIds: number[] = [];
  private llmSlotCount = 0;
  /** The conversation before each turn (undoLastTurn). */
  private readonly history: { turns: ChatMessage[]; slots: EncodedImage[][] }[] = [];

  constructor(
    readonly engine: LlavaMiniEngine,
    readonly text: TextSide,
    opts: { systemPrompt?: string } = {},
  ) {
    this.turns = [{ role: 'system', content: opts.systemPrompt ?? DEFAULT_SYSTEM_PROMPT }];
  }

  /**
   * A conversation continued from saved history (after a reload): earlier questions and answers as text, and the
   * images each question brought, re-encoded. Nothing runs until the next ask(), which fuses and prefills it all.
   */
  static resume(
    engine: LlavaMiniEngine,
    text: TextSide,
    opts: { systemPrompt?: string },
    history: readonly SavedTurn<EncodedImage | readonly EncodedImage[]>[],
  ): Conversation {
    const conv = new Conversation(engine, text, opts);
    const turns = historyMessages(opts.systemPrompt, history);
    history.forEach((h, i) => {
      conv.history.push({ turns: conv.turns, slots: conv.slots });
      conv.turns = turns.slice(0, 3 + 2 * i);
      conv.slots = [...conv.slots, ...h.images.map((v) => (v instanceof EncodedImage ? [v] : [...v]))];
    });
    return conv;
  }

  /** The context this conversation would use with `question` and new visuals of `newFrames` frames each. */
  measure(question: string, newFrames: readonly number[] = []): ContextUsage {
    const messages: ChatMessage[] = [...this.turns, { role: 'user', content: imageTurnContent(question, newFrames.length) }];
    const ids = tokenizerImageToken(renderChat(this.text.tokenizerConfig, messages, { addGenerationPrompt: false }), this.text.tokenizer);
    const frames = [...this.slots.map((s) => s.length), ...newFrames];
    return { rows: llmLayout(ids, frames.map((n) => n * this.engine.visionTokenRows)).rows, limit: contextLimit(this.engine) };
  }

  /** The conversation as rendered: system, then user / assistant turns. */
  get messages(): readonly ChatMessage[] {
    return this.turns;
  }

  /** Every frame of every image, in slot order. */
  get images(): readonly (readonly EncodedImage[])[] {
    return this.slots;
  }

  /** Asks `question` (about `opts.images`, if any, and everything before); streams and returns the answer. */
  ask(question: string, opts: AskOptions = {}): Promise<TurnResult> {
    return this.engine.exclusive(() => this.askNow(question, opts));
  }

  private async askNow(question: string, opts: AskOptions): Promise<TurnResult> {
    const { engine } = this;
    const { prefusion } = engine;
    const llm: LlmBackend = engine.llm;
    const newSlots = (opts.images ?? []).map((v) => (v instanceof EncodedImage ? [v] : [...v]));
    for (const s of newSlots) if (s.length === 0) throw new Error('Conversation.ask: a video with no frames');
    const messages: ChatMessage[] = [...this.turns, { role: 'user', content: imageTurnContent(question, newSlots.length) }];
    const ids = tokenizerImageToken(renderChat(this.text.tokenizerConfig, messages, { addGenerationPrompt: false }), this.text.tokenizer);
    const slots = [...this.slots, ...newSlots];
    const layout = llmLayout(ids, slots.map((frames) => frames.length * engine.visionTokenRows));
    // Too long: refused with the limit and what to do (truncating would drop the question).
    const limit = contextLimit(engine);
    if (layout.rows > limit) throw new Error(overContextMessage(layout.rows, limit, this.turns.length === 1));
    const rows = layout.rows;
    const maxNewTokens = Math.min(opts.maxNewTokens ?? 512, llm.capacity - rows + 1);

    // Pre-fusion: every frame's state fuses the new text rows (its vision rows are cached).
    const t0 = performance.now();
    for (const state of slots.flat().map((f) => f.state)) {
      const p = commonPrefix(state.ids, ids);
      prefusion.rollbackText(state, p);
      if (p < ids.length) await prefusion.appendText(state, ids.slice(p), { signal: opts.signal });
    }
    const t1 = performance.now();

    // LLM: keep the cached rows of the unchanged prefix, assemble and prefill the rest.
    const reuse = engine.llmOwner === this && slots.length === this.llmSlotCount;
    const keptIds = reuse ? commonPrefix(this.llmIds, ids) : 0;
    const unchanged = llmRowOf(layout, keptIds);
    const fromRow = Math.min(llm.keptRows ? llm.keptRows(unchanged, rows) : unchanged, rows - 1);
    llm.rollback(fromRow);
    engine.llmOwner = this;
    // Until the prefill completes, the cache holds the kept rows only (none known, when fewer than the unchanged ones).
    this.llmIds = ids.slice(0, fromRow < unchanged ? 0 : keptIds);
    this.llmSlotCount = slots.length;
    const { assembler } = engine;
    engine.device.queue.submit([assembler.assemble(ids, layout, slots.map((f) => f.map((x) => x.state)), fromRow, rows)]);
    await llm.prefill(assembler.input, rows - fromRow, { inputRowOffset: fromRow, signal: opts.signal });
    this.llmIds = ids;
    const t2 = performance.now();
    const captured = opts.capture ? await this.capture(assembler, slots, ids.length, rows) : undefined;
    const topLogits0 = opts.topLogits ? highest(captured?.logits0 ?? (await llm.logitsOfLastPrefill()), opts.topLogits) : undefined;

    const detok = new StreamingDetokenizer(this.text.tokenizer, { stopIds: this.text.stopIds });
    const emit = (delta: string) => {
      if (delta) opts.onText?.(delta);
    };
    const gen = await llm.generate({
      maxNewTokens,
      stopIds: this.text.stopIds,
      sampling: opts.sampling,
      signal: opts.signal,
      onToken: (id) => {
        opts.onToken?.(id);
        emit(detok.push(id));
      },
    });
    emit(detok.finish());
    this.history.push({ turns: this.turns, slots: this.slots });
    this.turns = [...messages, { role: 'assistant', content: stripImagePlaceholders(detok.text) }];
    this.slots = slots;
    return {
      tokens: gen.tokens,
      text: detok.text,
      stopped: gen.stopped,
      promptIds: ids,
      llmRows: rows,
      reusedRows: fromRow,
      timings: {
        prefusionMs: t1 - t0,
        prefillMs: t2 - t1,
        firstTokenMs: gen.timings.firstTokenMs,
        decodeMs: gen.timings.decodeMs,
        tokensPerSecond: gen.timings.tokensPerSecond,
      },
      ...(captured ? { captured } : {}),
      ...(topLogits0 ? { topLogits0 } : {}),
    };
  }

  /**
   * Forgets the last question and its answer (to regenerate or edit it) and returns the images that turn brought,
   * still encoded (the caller owns them again). The next ask() reuses every cached row before that turn.
   */
  undoLastTurn(): EncodedImage[][] {
    const before = this.history.pop();
    if (!before) throw new Error('Conversation.undoLastTurn: no turn to undo');
    const brought = this.slots.slice(before.slots.length);
    this.turns = before.turns;
    this.slots = before.slots;
    return brought;
  }

  /** Frees every image state of the conversation (the engine stays loaded). */
  destroy(): void {
    for (const f of this.slots.flat()) f.destroy();
    this.slots = [];
    if (this.engine.llmOwner === this) this.engine.llmOwner = null;
  }

  private async capture(assembler: LlmInputAssembler, slots: readonly EncodedImage[][], L: number, rows: number): Promise<TurnResult['captured']> {
    const { device, hidden } = this.engine;
    const states = slots.flat().map((f) => f.state);
    const llmInput = await readF32(device, assembler.input, rows * hidden);
    const fusedText =
      states.length === 0 ? llmInput.slice(0, L * hidden) : states.length === 1 ? await states[0]!.readFusedText() : await assembler.readMean(L);
    return { fusedText, llmInput, logits0: await this.engine.llm.logitsOfLastPrefill() };
  }
}

/** The k highest values of `logits` with their ids, highest first. */
export function highest(logits: Float32Array, k: number): TopLogit[] {
  const top: TopLogit[] = [];
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id]!;
    if (top.length === k && logit <= top[k - 1]!.logit) continue;
    let i = top.length - (top.length === k ? 1 : 0);
    while (i > 0 && top[i - 1]!.logit < logit) i--;
    top.splice(i, 0, { id, logit });
    if (top.length > k) top.pop();
  }
  return top;
}
