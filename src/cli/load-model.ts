// Opens a Hugging Face LLaVA-Mini folder from disk with its tokenizer: what every CLI command starts from.
import { openCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import type { TextSide } from '../engine/conversation.ts';
import { textSideOf } from '../engine/text-side.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';

export interface LoadedModel {
  checkpoint: Checkpoint;
  text: TextSide;
}

export async function loadModelDir(dir: string): Promise<LoadedModel> {
  const checkpoint = await openCheckpoint(nodeCheckpointFiles(dir));
  return { checkpoint, text: textSideOf(checkpoint) };
}
