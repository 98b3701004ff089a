// LLaVA's `tokenizer_image_token` (llava/mm_utils.py, identical in LLaVA-Mini), reproduced exactly.
// Browser-and-Node code.
//
//   prompt_chunks = [tokenizer(chunk).input_ids for chunk in prompt.split('<image>')]
//   offset = 0
//   if prompt_chunks and prompt_chunks[0] and prompt_chunks[0][0] == bos: offset = 1; input_ids.append(bos)
//   for x in insert_separator(prompt_chunks, [IMAGE_TOKEN_INDEX] * (offset + 1)):
//       input_ids.extend(x[offset:])
//
// Every chunk (and every separator) loses its first `offset` ids: with a BOS-adding tokenizer that is each
// chunk's added BOS, the first chunk's BOS being put back once; the separators [-200, -200][1:] = [-200].
// LLaVA-Mini's variant tokenizes an empty chunk as [bos] (its transformers-4.32 workaround); with a
// BOS-adding tokenizer that is exactly what tokenizing "" gives, so both variants agree.
//
// On the Llama-3 chat template the rendered prompt itself starts with "<|begin_of_text|>", so the result starts
// [128000, 128000, ...]: the added BOS kept from the first chunk, then the template's own. This is what the
// reference feeds the model; reproduce it, do not "fix" it.

import type { TextTokenizer } from './tokenizer.ts';

/** The id that marks an image slot in the token list (LLaVA's IMAGE_TOKEN_INDEX). */
export const IMAGE_TOKEN_INDEX = -200;
/** The placeholder that marks an image in the rendered prompt text. */
export const DEFAULT_IMAGE_TOKEN = '<image>';

/**
 * The id rule on already-tokenized chunks: `chunks[i]` = `tokenizer(prompt.split('<image>')[i]).input_ids`
 * (with the tokenizer's special tokens, i.e. its BOS, added). Pure function, mirrors the Python line by line.
 */
export function joinImageChunks(
  chunks: readonly (readonly number[])[],
  bosId: number,
  imageTokenIndex: number = IMAGE_TOKEN_INDEX,
): number[] {
  const inputIds: number[] = [];
  let offset = 0;
  if (chunks.length > 0 && chunks[0].length > 0 && chunks[0][0] === bosId) {
    offset = 1;
    inputIds.push(chunks[0][0]);
  }
  const sep: number[] = new Array<number>(offset + 1).fill(imageTokenIndex);
  // insert_separator(X, sep) = [X0, sep, X1, sep, ..., X_{n-1}]
  for (let i = 0; i < chunks.length; i++) {
    if (i > 0) inputIds.push(...sep.slice(offset));
    const x = chunks[i];
    for (let j = offset; j < x.length; j++) inputIds.push(x[j]);
  }
  return inputIds;
}

/**
 * `tokenizer_image_token(prompt, tokenizer)`: split the rendered prompt on "<image>", tokenize each chunk with
 * BOS added, and join with IMAGE_TOKEN_INDEX (-200) per the rule above. "<image>" at the very start or end,
 * several images and adjacent images (empty chunks) all follow the Python behaviour.
 */
export function tokenizerImageToken(
  prompt: string,
  tokenizer: Pick<TextTokenizer, 'encode' | 'bosId'>,
  imageTokenIndex: number = IMAGE_TOKEN_INDEX,
): number[] {
  const chunks = prompt.split(DEFAULT_IMAGE_TOKEN).map((chunk) => tokenizer.encode(chunk, { addBos: true }));
  return joinImageChunks(chunks, tokenizer.bosId, imageTokenIndex);
}

/** Indices of the image slots (ids equal to imageTokenIndex), in order. */
export function imageSlotIndices(ids: readonly number[], imageTokenIndex: number = IMAGE_TOKEN_INDEX): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) if (ids[i] === imageTokenIndex) out.push(i);
  return out;
}
