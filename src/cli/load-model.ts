// Opens a Hugging Face LLaVA-Mini folder from disk with its tokenizer: what every CLI command starts from.
import { openCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { resolveStopIds } from '../text/stop.ts';
import { loadTokenizer, type TextTokenizer } from '../text/tokenizer.ts';

export interface LoadedModel {
  checkpoint: Checkpoint;
  tokenizer: TextTokenizer;
  stopIds: number[];
}

export async function loadModelDir(dir: string): Promise<LoadedModel> {
  const checkpoint = await openCheckpoint(nodeCheckpointFiles(dir));
  const tokenizer = loadTokenizer(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson);
  const stopIds = resolveStopIds(checkpoint.generationConfig, checkpoint.config.eosTokenIds);
  return { checkpoint, tokenizer, stopIds };
}
