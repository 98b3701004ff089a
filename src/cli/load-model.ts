// Opens a model folder from disk with its tokenizer: what every CLI command starts from. A Hugging Face LLaVA-Mini
// checkpoint, or (generate) a converted folder (`npm run convert` output: MLC LLM + our pack).
import { openCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import type { WeightSource } from '../checkpoint/types.ts';
import type { TextSide } from '../engine/conversation.ts';
import { textSideOf } from '../engine/text-side.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { convertedLayout, openConvertedModel, type ConvertedModel } from '../weights/converted-model.ts';
import type { Precision } from '../weights/policy.ts';

export interface LoadedModel {
  checkpoint: Checkpoint;
  text: TextSide;
}

export async function loadModelDir(dir: string): Promise<LoadedModel> {
  if (await isConvertedDir(dir)) throw new Error(`${dir} is a converted folder: this needs the Hugging Face checkpoint folder it was converted from`);
  const checkpoint = await openCheckpoint(nodeCheckpointFiles(dir));
  return { checkpoint, text: textSideOf(checkpoint) };
}

/** Whether `dir` is a converted folder (it has an llm-q4f16_1, llm-q4f32_1, mm-q4 or mm-f16 output). */
export async function isConvertedDir(dir: string): Promise<boolean> {
  return (await convertedLayout(nodeCheckpointFiles(dir))) !== null;
}

/** A converted folder loads at q4 only (its LLM is int4): anything else is refused with the way out. */
export function checkConvertedPrecision(dir: string, precision: Precision): void {
  if (precision !== 'q4') {
    throw new Error(`${dir} is a converted folder (int4 LLM in MLC format): it loads at --precision q4 only; for ${precision} give the Hugging Face checkpoint folder`);
  }
}

/** A converted folder for the GPU engine: its LLM format picked for the device (q4f16_1 with shader-f16, else q4f32_1). */
export async function loadConvertedDir(dir: string, hasF16: boolean): Promise<{ source: ConvertedModel; text: TextSide }> {
  const source = await openConvertedModel(nodeCheckpointFiles(dir), { hasF16 });
  return { source, text: textSideOf(source) };
}

/** Either kind of folder as the engine's weight source and text side (`checkpoint` only for a Hugging Face folder). */
export type EngineModel = { source: WeightSource; text: TextSide; checkpoint: Checkpoint | null };
