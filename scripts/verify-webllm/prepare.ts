// The verification model of `npm run verify:webllm`: a LLaVA-Mini checkpoint with seeded random weights whose LLM
// and pre-fusion layers have Llama-3.2-1B-Instruct's exact shapes (what the v0_2_48 Llama-3.2-1B q0f32 library is
// compiled for) and a small vision side, converted to llm-q0f32 (WebLLM's format, unquantized) + mm-f16 (our
// pack; f16 values widen exactly to f32, so both engines run at f32). Reused when already there.
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { convertCheckpoint, type ConvertOutput } from '../../src/convert/index.ts';
import { nodeCheckpointFiles } from '../../src/node/file-source.ts';
import { NodeOutputDir } from '../../src/node/output-dir.ts';
import { makeTinyCheckpoint, stableJson, tinyConfigJson, TINY_DEFAULTS, type TinyCheckpointOptions } from '../tiny-checkpoint/generate.ts';

/** Llama-3.2-1B-Instruct (its config.json; the library bakes the same values in). */
export const LLAMA_32_1B = {
  hidden: 2048,
  intermediate: 8192,
  layers: 16,
  heads: 32,
  kvHeads: 8,
  headDim: 64,
  vocab: 128256,
  tieWordEmbeddings: true,
  ropeScalingFactor: 32,
} as const;

/** The verification checkpoint: the 1B LLM and pre-fusion, a small CLIP (64 patches) so the image side is cheap. */
export const VERIFY_CHECKPOINT: Omit<TinyCheckpointOptions, 'out'> = {
  ...TINY_DEFAULTS,
  ...LLAMA_32_1B,
  imageSize: 112,
  patchSize: 14,
  clipHidden: 128,
  clipIntermediate: 256,
  clipLayers: 2,
  clipHeads: 2,
  prefusionLayers: 2,
  compressorSize: 1,
  // f16 storage halves the files; q0f32 widens it exactly, so both engines see the same f32 values.
  dtype: 'f16',
  // Tied embeddings at unit scale swamp the residual stream (|x| ~ sqrt(2048) against O(1) layer outputs), so the
  // random model repeats the prompt's last token and every turn's tokens are the same: Hugging Face's 0.02 instead.
  tokenEmbeddingStd: 0.02,
  visionDtype: 'f16',
  seed: 13,
};

/** The same layout with tiny LLM shapes: installs and runs in a minute (the bad-input check: a library of other shapes). */
export const TINY_VERIFY_CHECKPOINT: Omit<TinyCheckpointOptions, 'out'> = {
  ...VERIFY_CHECKPOINT,
  hidden: TINY_DEFAULTS.hidden,
  intermediate: TINY_DEFAULTS.intermediate,
  layers: TINY_DEFAULTS.layers,
  heads: TINY_DEFAULTS.heads,
  kvHeads: TINY_DEFAULTS.kvHeads,
  headDim: TINY_DEFAULTS.hidden / TINY_DEFAULTS.heads,
};

export const VERIFY_OUTPUTS: readonly ConvertOutput[] = ['llm-q0f32', 'mm-f16'];

const exists = (p: string) => stat(p).then(() => true, () => false);

/**
 * What the files are made from: the config and the generator options that change the weights but not the config
 * (the token embedding's scale), so a checkpoint written by an earlier version of this script is not reused.
 */
function generatorKey(model: Omit<TinyCheckpointOptions, 'out'>): string {
  return stableJson({ config: tinyConfigJson(model), seed: model.seed, dtype: model.dtype, visionDtype: model.visionDtype, tokenEmbeddingStd: model.tokenEmbeddingStd });
}

/**
 * Writes (or reuses) the checkpoint under `<dir>/checkpoint` and its conversion under `<dir>/converted`; `key` says
 * what they were made from (a browser profile that installed other weights under the same URL must not be reused).
 */
export async function prepareVerifyModel(dir: string, log: (line: string) => void, model: Omit<TinyCheckpointOptions, 'out'> = VERIFY_CHECKPOINT): Promise<{ checkpoint: string; converted: string; key: string }> {
  const checkpoint = join(dir, 'checkpoint');
  const converted = join(dir, 'converted');
  const wantConfig = generatorKey(model);
  const generatorFile = join(checkpoint, 'verify-generator.json');
  const haveConfig = await readFile(generatorFile, 'utf8').catch(() => null);
  if (haveConfig !== wantConfig || !(await exists(join(checkpoint, 'model.safetensors')))) {
    const t0 = performance.now();
    log(`writing the checkpoint (random weights, LLM hidden ${model.hidden} x ${model.layers} layers) to ${checkpoint} ...`);
    const s = await makeTinyCheckpoint({ ...model, out: checkpoint });
    log(`  ${(s.totalBytes / 1e9).toFixed(2)} GB, ${s.tensorCount} tensors in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    await writeFile(generatorFile, wantConfig);
    // A conversion (or a cut-off one's journal) of the earlier weights must not be reused or resumed.
    await rm(converted, { recursive: true, force: true });
  } else log(`reusing the checkpoint in ${checkpoint}`);
  const marker = join(converted, 'source-config.json');
  if ((await readFile(marker, 'utf8').catch(() => null)) === wantConfig) {
    log(`reusing the conversion in ${converted}`);
    return { checkpoint, converted, key: wantConfig };
  }
  const t0 = performance.now();
  log(`converting to ${VERIFY_OUTPUTS.join(' + ')} in ${converted} (resumes / reuses what is there) ...`);
  const summary = await convertCheckpoint(nodeCheckpointFiles(checkpoint), new NodeOutputDir(converted), { outputs: VERIFY_OUTPUTS });
  for (const o of summary.outputs) log(`  ${o.dir}: ${o.shards} shards, ${(o.bytes / 1e9).toFixed(2)} GB, ${o.tensors} tensors`);
  log(`  ${((performance.now() - t0) / 1000).toFixed(0)} s (${(summary.resumedBytes / 1e9).toFixed(2)} GB already there)`);
  await writeFile(marker, wantConfig);
  return { checkpoint, converted, key: wantConfig };
}
