// Generates the demo model served at /models/demo/ on first start: a tiny LLaVA-Mini checkpoint in the real
// Hugging Face layout with the real Llama-3 tokenizer and seeded RANDOM weights, so the whole pipeline can
// be tried with no network. Regenerated only when missing or made by an older generator version.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { makeTinyCheckpoint } from './tiny-checkpoint/generate.ts';

const DEMO_DIR = fileURLToPath(new URL('../public/models/demo/', import.meta.url));
const MARKER = 'demo-model.json';
// Bump when the generator's output changes, so stale demo folders are rebuilt.
const DEMO_VERSION = 1;

export const DEMO_MODEL_INFO = {
  version: DEMO_VERSION,
  name: 'LLaVA-Mini demo (tiny)',
  label: 'random weights, for trying the pipeline',
  note: 'A tiny LLaVA-Mini checkpoint with seeded random weights: it runs every stage of the real pipeline but its answers are meaningless.',
};

async function existingVersion(): Promise<number | null> {
  try {
    return JSON.parse(await readFile(DEMO_DIR + MARKER, 'utf8')).version ?? null;
  } catch {
    return null;
  }
}

if ((await existingVersion()) === DEMO_VERSION) {
  console.log(`demo model ready in ${DEMO_DIR}`);
} else {
  const summary = await makeTinyCheckpoint({ out: DEMO_DIR, seed: 1 });
  await writeFile(DEMO_DIR + MARKER, JSON.stringify({ ...DEMO_MODEL_INFO, files: summary.files }, null, 2) + '\n');
  console.log(`demo model (${DEMO_MODEL_INFO.label}) written to ${DEMO_DIR}: ${(summary.totalBytes / 1e6).toFixed(1)} MB`);
}
