// Opens a model folder from disk with its tokenizer: what every CLI command starts from. A Hugging Face LLaVA-Mini
// checkpoint, (generate) a converted folder (`npm run convert` output: MLC LLM + our pack), or (generate, benches) a
// synthetic model (`synthetic:<name>`: the released shapes, weights generated on the GPU, the real Llama-3 tokenizer).
import { openCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import type { WeightSource } from '../checkpoint/types.ts';
import type { TextSide } from '../engine/conversation.ts';
import { modelFormatOf, openModel, precisionsFor, type ModelFormat } from '../engine/open-model.ts';
import { textSideOf } from '../engine/text-side.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { readLlama3TokenizerFiles } from '../node/llama3-tokenizer.ts';
import { ConvertedModel } from '../weights/converted-model.ts';
import type { Precision } from '../precision/policy.ts';
import { SyntheticModel, type SyntheticDepth } from '../weights/synthetic-model.ts';

export interface LoadedModel {
  checkpoint: Checkpoint;
  text: TextSide;
}

/** A Hugging Face checkpoint folder (the CPU reference and the parity checks need its f32 weights). */
export async function loadModelDir(dir: string): Promise<LoadedModel> {
  const files = nodeCheckpointFiles(dir);
  if ((await modelFormatOf(files)) === 'converted') throw new Error(`${dir} is a converted folder: this needs the Hugging Face checkpoint folder it was converted from`);
  const checkpoint = await openCheckpoint(files);
  return { checkpoint, text: textSideOf(checkpoint) };
}

/**
 * What `dir` holds, checked against the precision asked for before any GPU work: a converted folder loads at q4 only
 * (its LLM is int4), anything else is refused with the way out.
 */
export async function modelDirFormat(dir: string, precision: Precision): Promise<ModelFormat> {
  const format = await modelFormatOf(nodeCheckpointFiles(dir));
  if (format === 'converted' && !precisionsFor(format, true).includes(precision)) {
    throw new Error(`${dir} is a converted folder (int4 LLM in MLC format): it loads at --precision q4 only; for ${precision} give the Hugging Face checkpoint folder`);
  }
  return format;
}

/** Either kind of folder as the engine's weight source and text side (`checkpoint` only for a Hugging Face folder). */
export type EngineModel = { source: WeightSource; text: TextSide; checkpoint: Checkpoint | null };

/** A folder opened for this device (engine/open-model.ts) as an EngineModel. */
export async function loadEngineModel(dir: string, hasF16: boolean): Promise<EngineModel> {
  const opened = await openModel(nodeCheckpointFiles(dir), { hasF16 });
  return { source: opened.source, text: opened.text, checkpoint: opened.source instanceof ConvertedModel ? null : opened.source };
}

/** The depth overrides of a synthetic model, as parseArgs options (`--llm-layers N --clip-layers N --prefusion-layers N`). */
export const SYNTHETIC_DEPTH_OPTIONS = {
  'llm-layers': { type: 'string' },
  'clip-layers': { type: 'string' },
  'prefusion-layers': { type: 'string' },
} as const;

/** The parsed depth overrides (whole numbers; their ranges are checked against the model by syntheticConfig). */
export function syntheticDepthOf(values: { 'llm-layers'?: string; 'clip-layers'?: string; 'prefusion-layers'?: string }): SyntheticDepth {
  const num = (flag: string, s: string | undefined) => {
    if (s === undefined) return undefined;
    if (!/^\d+$/.test(s)) throw new Error(`--${flag} must be a whole number, got "${s}"`);
    return Number(s);
  };
  return { llmLayers: num('llm-layers', values['llm-layers']), clipLayers: num('clip-layers', values['clip-layers']), prefusionLayers: num('prefusion-layers', values['prefusion-layers']) };
}

/** `synthetic:<name>` as the engine's weight source, with the real Llama-3 tokenizer and chat template. */
export async function loadSyntheticModel(spec: string, depth: SyntheticDepth): Promise<EngineModel> {
  const source = SyntheticModel.open(spec, depth, await readLlama3TokenizerFiles());
  return { source, text: textSideOf(source), checkpoint: null };
}
