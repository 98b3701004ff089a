// --dump: the engine's intermediates of the last question as f32 safetensors (prompt_ids as i32, -200 at image
// slots). After follow-up questions that turn's tensors cover the whole conversation: prompt_ids, fused_text and
// llm_input hold every earlier question and answer too, logits0 is the first answer token's.
// With several images or video frames, the image-side tensors are the first one's.
import { writeFile } from 'node:fs/promises';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { serializeSafetensors, type TensorToWrite } from '../checkpoint/safetensors-write.ts';
import type { TurnResult } from '../engine/conversation.ts';
import type { EncodedImage } from '../engine/engine.ts';

export interface DumpTensor {
  shape: number[];
  data: Float32Array;
}

/** The dumped tensors by name, in the order they are computed. */
export interface Dump {
  tensors: Record<'pixel_values' | 'clip' | 'compressed' | 'vision_token' | 'fused_text' | 'llm_input' | 'logits0', DumpTensor | null>;
  promptIds: number[];
}

export function collectDump(encoded: readonly EncodedImage[], turn: TurnResult, config: LlavaMiniConfig): Dump {
  if (!turn.captured) throw new Error('collectDump: the turn was not captured');
  const H = config.llm.hiddenSize;
  const S = config.vision.imageSize;
  const C2 = config.compressorSize ** 2;
  const first = encoded[0]?.intermediates ?? null;
  const D = config.vision.hiddenSize;
  const { fusedText, llmInput, logits0 } = turn.captured;
  return {
    tensors: {
      pixel_values: first && { shape: [3, S, S], data: first.pixelValues },
      clip: first && { shape: [first.clip.length / D, D], data: first.clip },
      compressed: first && { shape: [C2, H], data: first.compressed },
      vision_token: first && { shape: [C2, H], data: first.visionToken },
      fused_text: { shape: [fusedText.length / H, H], data: fusedText },
      llm_input: { shape: [llmInput.length / H, H], data: llmInput },
      logits0: { shape: [logits0.length], data: logits0 },
    },
    promptIds: turn.promptIds,
  };
}

export async function writeDump(path: string, dump: Dump): Promise<void> {
  const tensors: TensorToWrite[] = [];
  for (const [name, t] of Object.entries(dump.tensors)) if (t) tensors.push({ name, dtype: 'F32', shape: t.shape, data: t.data });
  tensors.push({ name: 'prompt_ids', dtype: 'I32', shape: [dump.promptIds.length], data: Int32Array.from(dump.promptIds) });
  try {
    await writeFile(path, serializeSafetensors(tensors, { format: 'pt', producer: 'llava-mini-web generate --dump' }));
  } catch (e) {
    throw new Error(`cannot write the dump to ${path}: ${(e as Error).message}`);
  }
}
