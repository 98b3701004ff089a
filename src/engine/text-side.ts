// The checkpoint's text side (tokenizer, chat template, stop ids) as a Conversation needs it.
import type { Checkpoint } from '../checkpoint/index.ts';
import { resolveStopIds } from '../text/stop.ts';
import { loadTokenizer } from '../text/tokenizer.ts';
import type { TextSide } from './conversation.ts';

export function textSideOf(checkpoint: Checkpoint): TextSide {
  return {
    tokenizer: loadTokenizer(checkpoint.tokenizerJson, checkpoint.tokenizerConfigJson),
    tokenizerConfig: checkpoint.tokenizerConfigJson,
    stopIds: resolveStopIds(checkpoint.generationConfig, checkpoint.config.eosTokenIds),
  };
}
