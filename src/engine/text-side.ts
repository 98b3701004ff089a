// The checkpoint's text side (tokenizer, chat template, stop ids) as a Conversation needs it.
import type { Checkpoint } from '../checkpoint/index.ts';
import { resolveStopIds } from '../text/stop.ts';
import { loadTokenizer } from '../text/tokenizer.ts';
import type { TextSide } from './conversation.ts';

/** What a model folder (a Checkpoint, or a ConvertedModel) carries for the text side. */
export type TextSideFiles = Pick<Checkpoint, 'config' | 'tokenizerJson' | 'tokenizerConfigJson' | 'generationConfig'>;

export function textSideOf(checkpoint: TextSideFiles): TextSide {
  return {
    tokenizer: loadTokenizer(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson),
    tokenizerConfig: checkpoint.tokenizerConfigJson,
    stopIds: resolveStopIds(checkpoint.generationConfig, checkpoint.config.eosTokenIds),
  };
}
