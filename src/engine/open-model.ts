// Opening a model, the one way every shell does it (the CLI, the engine worker, the benches): given the files of a
// folder, what it holds (a Hugging Face checkpoint or a converted folder), the precisions it can load at on this
// device, which LLM runtime runs it, and its text side (tokenizer, chat template, stop ids).
import type { CheckpointFiles } from '../checkpoint/byte-source.ts';
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { isMlcQ4, type MlcQuantization } from '../format/mlc.ts';
import { ConvertedModel, convertedLayout, openModelFolder } from '../weights/converted-model.ts';
import { PRECISIONS, type Precision } from '../precision/policy.ts';
import type { TextSide } from './conversation.ts';
import { textSideOf } from './text-side.ts';

/** A Hugging Face checkpoint (any precision) or our converter's output (an LLM in MLC format + the image-side pack). */
export type ModelFormat = 'checkpoint' | 'converted';

/** Our WGSL Llama, or WebLLM's compiled library on the same device (src/llm/webllm/). */
export type LlmRuntime = 'native' | 'webllm';

export interface OpenedModel {
  source: Checkpoint | ConvertedModel;
  format: ModelFormat;
  /**
   * The precisions it loads at on this device: a converted folder only at its stored one (q4 for an int4 LLM, f32 /
   * f16 for an unquantized q0f32 / q0f16 one), f16 only with shader-f16.
   */
  precisions: readonly Precision[];
  text: TextSide;
}

/** What a folder holds, without opening it (a converted folder has an llm-* or mm-* output). */
export async function modelFormatOf(files: CheckpointFiles): Promise<ModelFormat> {
  return (await convertedLayout(files)) ? 'converted' : 'checkpoint';
}

export function precisionsFor(format: ModelFormat, hasF16: boolean): readonly Precision[] {
  if (format === 'converted') return ['q4'];
  return hasF16 ? PRECISIONS : PRECISIONS.filter((p) => p !== 'f16');
}

/**
 * Opens a folder; a converted one in the LLM format this device runs (q4f16_1 with shader-f16, else q4f32_1; an
 * unquantized q0 format when the folder has no int4 one), or in `device.llm` when given (a stored model holds one).
 */
export async function openModel(files: CheckpointFiles, device: { hasF16: boolean; llm?: MlcQuantization }): Promise<OpenedModel> {
  const source = await openModelFolder(files, device);
  if (source instanceof ConvertedModel) return { source, format: 'converted', precisions: [source.precision], text: textSideOf(source) };
  return { source, format: 'checkpoint', precisions: precisionsFor('checkpoint', device.hasF16), text: textSideOf(source) };
}

/**
 * The precision a model loads at when `requested` is picked: a converted model at its one precision, a
 * checkpoint as asked (f16 without shader-f16 is refused by the precision policy, with the way out).
 */
export function loadPrecision(model: OpenedModel, requested: Precision): Precision {
  return model.format === 'converted' ? model.precisions[0]! : requested;
}

/**
 * WebLLM's stock library is compiled for Llama-3.1-8B's shapes (untied lm_head): only such an LLM can run on it,
 * and only in an int4 format (the stock libraries exist in q4f16_1 and q4f32_1).
 */
export function fitsStockLlamaLibrary(config: LlavaMiniConfig, format: MlcQuantization): boolean {
  const l = config.llm;
  const shapes = l.hiddenSize === 4096 && l.intermediateSize === 14336 && l.numLayers === 32 && l.numHeads === 32 && l.numKvHeads === 8 && l.vocabSize === 128256 && !l.tieWordEmbeddings;
  return shapes && isMlcQ4(format);
}

/**
 * The LLM runtime for a model: WebLLM only for a converted model whose LLM sits in WebLLM's cache (a stored model),
 * when asked for (with the stock library or a given one) or ('auto') when the stock library fits its shapes and
 * format (an unquantized q0 model defaults to ours); otherwise ours.
 */
export function llmRuntimeFor(model: OpenedModel, choice: 'auto' | LlmRuntime, inWebLlmCache: boolean): LlmRuntime {
  if (model.format !== 'converted' || !inWebLlmCache || !(model.source instanceof ConvertedModel)) return 'native';
  return choice === 'webllm' || (choice === 'auto' && fitsStockLlamaLibrary(model.source.config, model.source.llm)) ? 'webllm' : 'native';
}
