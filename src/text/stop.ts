// Stop ids and the streaming detokenizer. Browser-and-Node code.

import type { TextTokenizer } from './tokenizer.ts';

/** Llama-3.x stop ids: <|end_of_text|> 128001, <|eom_id|> 128008, <|eot_id|> 128009 (spec section 5). */
export const DEFAULT_STOP_IDS: readonly number[] = Object.freeze([128001, 128008, 128009]);

function collectIds(v: unknown, out: Set<number>, what: string): void {
  if (v === null || v === undefined) return;
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new Error(`${what}: bad token id ${JSON.stringify(id)}`);
    out.add(id);
  }
}

/**
 * The ids generation stops on: DEFAULT_STOP_IDS, merged with generation_config.json's `eos_token_id`
 * (a number or a list) and any `extra` ids (e.g. config.json's eos_token_id). Sorted, without repeats.
 */
export function resolveStopIds(generationConfig?: object | null, extra: Iterable<number> = []): number[] {
  const out = new Set<number>(DEFAULT_STOP_IDS);
  if (generationConfig) collectIds((generationConfig as Record<string, unknown>).eos_token_id, out, 'generation_config.json eos_token_id');
  collectIds([...extra], out, 'stop ids');
  return [...out].sort((a, b) => a - b);
}

export interface StreamingDetokenizerOptions {
  /** Generation stops on these; they never appear in the text, and ids pushed after one are ignored. */
  stopIds: Iterable<number>;
  /**
   * Hide a header the model emits itself at the start of its answer (`<|start_header_id|>assistant<|end_header_id|>`
   * and the "\n\n" after it). Default true. Needs `<|start_header_id|>`/`<|end_header_id|>` in the vocabulary.
   */
  hideHeader?: boolean;
  /** Hide leading and trailing whitespace, as the reference's `decode(...).strip()`. Default true. */
  trim?: boolean;
  /** clean_up_tokenization_spaces; default: the tokenizer's (tokenizer_config.json). */
  cleanUpSpaces?: boolean;
  /** A header longer than this many tokens without <|end_header_id|> is treated as text. Default 16. */
  maxHeaderTokens?: number;
}

// Proper prefixes of the clean_up_tokenization_spaces patterns (" .", " ?", " !", " ,", " ' ", " n't", " 'm",
// " 's", " 've", " 're"), longest first: a text ending in one of them may still be rewritten by the next token.
const CLEANUP_PENDING = [" n'", " 'v", " 'r", " '", ' n', ' '];
const REPLACEMENT_CHAR = '\uFFFD';

/**
 * Turns a growing list of generated ids into user-visible text deltas. Each step decodes the whole list and
 * emits the new suffix, holding back what the next token may still change: a trailing U+FFFD (a multi-byte
 * UTF-8 character split across tokens), trailing whitespace (when trimming), and a tail that clean-up may
 * rewrite. The model's own assistant header and stop tokens are hidden; special tokens are skipped.
 *
 * Deltas are append-only: `text` always equals the concatenation of the deltas returned so far.
 */
export class StreamingDetokenizer {
  private readonly tok: Pick<TextTokenizer, 'decode' | 'tokenToId' | 'isSpecial' | 'cleanUpSpaces'>;
  private readonly stop: Set<number>;
  private readonly trim: boolean;
  private readonly cleanUp: boolean;
  private readonly maxHeaderTokens: number;
  private readonly startHeaderId: number | undefined;
  private readonly endHeaderId: number | undefined;

  private state: 'start' | 'header' | 'body' = 'start';
  private headerIds: number[] = [];
  private afterHeader = false;
  private readonly bodyIds: number[] = [];
  private readonly allIds: number[] = [];
  private emitted = '';
  private isStopped = false;
  private isFinished = false;

  constructor(
    tokenizer: Pick<TextTokenizer, 'decode' | 'tokenToId' | 'isSpecial' | 'cleanUpSpaces'>,
    opts: StreamingDetokenizerOptions,
  ) {
    this.tok = tokenizer;
    this.stop = new Set(opts.stopIds);
    this.trim = opts.trim ?? true;
    this.cleanUp = opts.cleanUpSpaces ?? tokenizer.cleanUpSpaces;
    this.maxHeaderTokens = opts.maxHeaderTokens ?? 16;
    const hide = opts.hideHeader ?? true;
    this.startHeaderId = hide ? tokenizer.tokenToId('<|start_header_id|>') : undefined;
    this.endHeaderId = hide ? tokenizer.tokenToId('<|end_header_id|>') : undefined;
  }

  /** Whether a stop id has been pushed. */
  get stopped(): boolean {
    return this.isStopped;
  }

  /** The visible text emitted so far (the concatenation of all deltas). */
  get text(): string {
    return this.emitted;
  }

  /** Every id pushed before the stop id (header included, stop id excluded). */
  get ids(): readonly number[] {
    return this.allIds;
  }

  /** Add one or more generated ids; returns the new visible text (possibly ""). */
  push(ids: number | readonly number[]): string {
    if (this.isFinished) throw new Error('StreamingDetokenizer: push after finish');
    const list = typeof ids === 'number' ? [ids] : ids;
    let changed = false;
    for (const id of list) {
      if (this.isStopped) break;
      if (this.stop.has(id)) {
        this.isStopped = true;
        break;
      }
      this.allIds.push(id);
      changed = this.accept(id) || changed;
    }
    return changed ? this.emit(this.holdBack(this.visible())) : '';
  }

  /** End of generation: emits what was held back (except trailing whitespace when trimming). */
  finish(): string {
    if (this.isFinished) return '';
    this.isFinished = true;
    if (this.state === 'header') {
      // Never closed: it was not a header after all.
      this.bodyIds.unshift(...this.headerIds);
      this.headerIds = [];
      this.state = 'body';
    }
    let full = this.visible();
    if (this.trim) full = full.trimEnd();
    return this.emit(full);
  }

  /** Returns true when the body (the visible part) changed. */
  private accept(id: number): boolean {
    if (this.state === 'start') {
      if (this.startHeaderId !== undefined && this.endHeaderId !== undefined && id === this.startHeaderId) {
        this.state = 'header';
        this.headerIds = [id];
        return false;
      }
      this.state = 'body';
    } else if (this.state === 'header') {
      this.headerIds.push(id);
      if (id === this.endHeaderId) {
        this.state = 'body';
        this.afterHeader = true;
        this.headerIds = [];
        return false;
      }
      if (this.headerIds.length > this.maxHeaderTokens) {
        this.bodyIds.push(...this.headerIds);
        this.headerIds = [];
        this.state = 'body';
        return true;
      }
      return false;
    }
    this.bodyIds.push(id);
    return true;
  }

  /** The whole visible text for the ids so far (nothing held back yet). */
  private visible(): string {
    let s = this.tok.decode(this.bodyIds, { skipSpecial: true, cleanUpSpaces: this.cleanUp });
    if (this.afterHeader) {
      if (s.startsWith('\n\n')) s = s.slice(2);
      else if ('\n\n'.startsWith(s)) s = '';
    }
    if (this.trim) s = s.trimStart();
    return s;
  }

  /** Drop the tail that a later token may still change. */
  private holdBack(s: string): string {
    for (;;) {
      const before = s;
      while (s.endsWith(REPLACEMENT_CHAR)) s = s.slice(0, -1);
      if (this.trim) s = s.trimEnd();
      if (this.cleanUp) {
        for (const p of CLEANUP_PENDING) {
          if (s.endsWith(p)) {
            s = s.slice(0, -p.length);
            break;
          }
        }
      }
      if (s === before) return s;
    }
  }

  private emit(candidate: string): string {
    // Clean-up may in principle rewrite text already shown; deltas are append-only, so wait until the text
    // extends what was emitted again (never observed with the hold-back above).
    if (!candidate.startsWith(this.emitted)) return '';
    const delta = candidate.slice(this.emitted.length);
    this.emitted = candidate;
    return delta;
  }
}
