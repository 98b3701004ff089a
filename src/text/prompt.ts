// One place that turns a user's question about N images into LLM prompt ids the way the reference does:
// checkpoint chat template -> rendered text -> tokenizer_image_token (-200 at each image slot).
import { buildImagePrompt, renderChat } from './chat-template.ts';
import { tokenizerImageToken } from './image-tokens.ts';
import type { TextTokenizer } from './tokenizer.ts';

export interface ImagePromptArgs {
  tokenizer: TextTokenizer;
  tokenizerConfig: object;
  question: string;
  systemPrompt?: string;
  imageCount?: number;
}

export interface EncodedPrompt {
  text: string;
  ids: number[];
}

export function encodeImagePrompt(args: ImagePromptArgs): EncodedPrompt {
  const messages = buildImagePrompt({
    question: args.question,
    systemPrompt: args.systemPrompt,
    imageCount: args.imageCount,
  });
  // add_generation_prompt = False, as the reference (spec section 5).
  const text = renderChat(args.tokenizerConfig, messages, { addGenerationPrompt: false });
  return { text, ids: tokenizerImageToken(text, args.tokenizer) };
}
