// --check: the same input through the CPU reference (on the weights exactly as the GPU holds them, so q4 / f16
// storage is not counted as error) and one line per tensor: max |gpu - ref|, max |ref| and their ratio.
// Tolerance: 1e-4 relative with an f32 KV cache; an f16 KV cache rounds every cached key and value, so 1e-2 then.
// Greedy tokens must match too (with an f16 KV cache a near-tie may flip: reported, not failed).
// After follow-up questions the last turn is checked: the reference runs from scratch on that turn's prompt ids
// (the re-rendered conversation, earlier answers as text), where the engine reused its cached rows.
import { relativeError } from '../../gpu/compare.ts';
import type { KvStorage } from '../../gpu/storage.ts';
import type { DecodedVideo } from '../../node/video-file.ts';
import { generateReference, ReferenceLlavaMini, type ReferenceIntermediates } from '../pipeline.ts';
import { preprocessImage, preprocessVideoFrame } from '../preprocess.ts';
import type { RgbaImage } from '../../model/constants.ts';
import { dequantizedSource } from '../../weights/dequantized-source.ts';
import type { Precision } from '../../precision/policy.ts';
import type { Dump } from '../../cli/dump.ts';
import type { LoadedModel } from '../../cli/load-model.ts';

export interface CheckInput {
  model: LoadedModel;
  precision: Precision;
  hasF16: boolean;
  kv: KvStorage;
  images: readonly RgbaImage[];
  video: DecodedVideo | null;
  dump: Dump;
  tokens: readonly number[];
  log(line: string): void;
}

async function referenceRun(input: CheckInput, maxNewTokens: number): Promise<{ intermediates: ReferenceIntermediates; tokens: number[] }> {
  const { model, dump } = input;
  const cfg = model.checkpoint.config;
  const weights = dequantizedSource(model.checkpoint, input.precision, input.hasF16);
  const reference = await ReferenceLlavaMini.load(weights);
  const opts = { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio };
  const stopIds = model.text.stopIds;
  if (!input.video) {
    const r = await generateReference({ weights, model: reference, pixelValues: input.images.map((img) => preprocessImage(img, opts)), promptIds: dump.promptIds, maxNewTokens, stopIds });
    return r;
  }
  const frames = input.video.frames.map((f) => reference.encodeImage(preprocessVideoFrame(f, opts)));
  const fused = reference.fuseFrames(
    frames.map((e) => ({ G: e.G, Vc: e.compressed })),
    dump.promptIds,
  );
  const gen = reference.generateFromInput(fused.llmInput, fused.llmInputRows, { maxNewTokens, stopIds });
  const first = frames[0]!;
  return {
    tokens: gen.tokens,
    intermediates: {
      pixelValues: first.pixelValues,
      clip: first.clip,
      compressed: first.compressed,
      visionToken: fused.visionTokens[0]!,
      images: [],
      fusedText: fused.fusedText,
      llmInput: fused.llmInput,
      llmInputRows: fused.llmInputRows,
      logits0: gen.logits0,
    },
  };
}

/** Logs the comparison; true when every tensor is within tolerance (and the tokens match with an f32 KV cache). */
export async function runCheck(input: CheckInput): Promise<boolean> {
  const tol = input.kv === 'f32' ? 1e-4 : 1e-2;
  const t0 = performance.now();
  const ref = await referenceRun(input, input.tokens.length);
  const r = ref.intermediates;
  const expected: Record<keyof Dump['tensors'], Float32Array> = {
    pixel_values: r.pixelValues,
    clip: r.clip,
    compressed: r.compressed,
    vision_token: r.visionToken,
    fused_text: r.fusedText,
    llm_input: r.llmInput,
    logits0: r.logits0,
  };
  const weights = input.precision === 'f32' ? 'f32' : `the ${input.precision} weights as the GPU holds them`;
  input.log(`check: CPU reference on ${weights} (${((performance.now() - t0) / 1000).toFixed(1)} s), tolerance ${tol} of max|ref| (KV cache ${input.kv}):`);
  let ok = true;
  for (const [name, t] of Object.entries(input.dump.tensors) as [keyof Dump['tensors'], Dump['tensors'][keyof Dump['tensors']]][]) {
    if (!t) continue;
    const e = relativeError(t.data, expected[name]);
    const pass = e.rel <= tol;
    ok &&= pass;
    input.log(`  ${name.padEnd(13)} [${t.shape.join(', ')}]`.padEnd(36) + `max err ${e.maxErr.toExponential(2)}  max|ref| ${e.maxRef.toExponential(2)}  rel ${e.rel.toExponential(2)}  ${pass ? 'ok' : 'FAIL'}`);
  }
  const same = ref.tokens.length === input.tokens.length && ref.tokens.every((id, i) => id === input.tokens[i]);
  const firstDiff = same ? -1 : ref.tokens.findIndex((id, i) => id !== input.tokens[i]);
  input.log(`  tokens: ${same ? `all ${input.tokens.length} equal` : `differ from token ${firstDiff} (reference ${ref.tokens.slice(firstDiff, firstDiff + 4).join(' ')} …)`}`);
  if (!same && input.kv === 'f32') ok = false;
  input.log(`check: ${ok ? 'OK' : 'FAILED'}`);
  return ok;
}
