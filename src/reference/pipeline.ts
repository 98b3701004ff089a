// The whole reference model (spec sections 2-7): pixel values -> CLIP -> projector (G) and compressor -> projector
// (Vc) -> pre-fusion with the prompt ids (F, V) -> LLM input F[0:k] ++ V ++ F[k+1:] -> greedy decoding.
//
// More than one image (spec section 7): the prompt holds one -200 slot per image, in order. Pre-fusion runs once
// per image over the whole prompt (every slot is a pad row); every text row of the LLM input is the mean of its
// per-image fused rows (accumulated in f64), and image i's V stands at slot i. With one image this is exactly the
// single-image path (the mean of one is the row itself).
//
// Video: ReferenceLlavaMini.fuseFrames (one slot holding V_1 .. V_T, text rows averaged over frames).
//
// Decoding: greedy (argmax, lowest index on ties). `tokens` includes the stop token when generation stopped on one
// (stopped: 'eos'); with stopped: 'length' it holds maxNewTokens tokens.
import type { LlavaMiniConfig, WeightSource } from '../checkpoint/types.ts';
import { clipEmbeddingsWith, clipEncoderLayerWith, clipPatchCount, loadClipEmbeddings, loadClipLayer, type ClipEmbeddingWeights, type ClipLayerWeights } from './clip.ts';
import { compressWith, loadCompressor, type CompressorWeights } from './compressor.ts';
import { LlamaReference, greedy, loadLlamaModel } from './llama.ts';
import { concatRows } from './ops.ts';
import { IMAGE_TOKEN_INDEX, PrefusionReference } from './prefusion.ts';
import { loadProjector, projectWith, type ProjectorWeights } from './projector.ts';

/** Indices of the <image> slots (ids === -200), in order. */
export function imageSlots(ids: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) if (ids[i] === IMAGE_TOKEN_INDEX) out.push(i);
  return out;
}

/**
 * LLM input rows (spec section 5): text rows of F in order, with slot s (the s-th -200 in ids) replaced by the rows
 * of V[s]. F: [L, H] (L = ids.length); V: one [C^2, H] block (one slot) or one block per slot.
 * Truncated to maxLength rows when given (tokenizer_model_max_length).
 */
export function assembleLlmInput(
  F: Float32Array,
  V: Float32Array | readonly Float32Array[],
  ids: ArrayLike<number>,
  maxLength?: number,
): { embeds: Float32Array; rows: number } {
  const L = ids.length;
  if (L === 0) throw new Error('assembleLlmInput: no ids');
  const H = F.length / L;
  if (!Number.isInteger(H)) throw new Error(`assembleLlmInput: F has ${F.length} values for ${L} ids`);
  const blocks = V instanceof Float32Array ? [V] : V;
  const slots = imageSlots(ids);
  if (slots.length !== blocks.length) throw new Error(`assembleLlmInput: ${slots.length} image slots for ${blocks.length} vision blocks`);
  const parts: Float32Array[] = [];
  let from = 0;
  slots.forEach((k, s) => {
    parts.push(F.subarray(from * H, k * H));
    const b = blocks[s]!;
    if (b.length % H !== 0) throw new Error(`assembleLlmInput: vision block ${s} is not a whole number of ${H}-wide rows`);
    parts.push(b);
    from = k + 1;
  });
  parts.push(F.subarray(from * H, L * H));
  let rows = parts.reduce((n, p) => n + p.length / H, 0);
  const embeds = new Float32Array(rows * H);
  let o = 0;
  for (const p of parts) {
    embeds.set(p, o);
    o += p.length;
  }
  if (maxLength !== undefined && rows > maxLength) {
    rows = maxLength;
    return { embeds: embeds.slice(0, rows * H), rows };
  }
  return { embeds, rows };
}

/** Element-wise mean of same-length arrays, accumulated in f64. */
export function meanRows(xs: readonly Float32Array[]): Float32Array {
  if (xs.length === 0) throw new Error('meanRows: nothing to average');
  const n = xs[0]!.length;
  const acc = new Float64Array(n);
  for (const x of xs) {
    if (x.length !== n) throw new Error('meanRows: lengths differ');
    for (let i = 0; i < n; i++) acc[i] += x[i]!;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = acc[i]! / xs.length;
  return out;
}

/** One image through the vision side. */
export interface ImageEncoding {
  pixelValues: Float32Array;
  /** CLIP features [N, D]. */
  clip: Float32Array;
  /** G = projector(clip) [N, H]. */
  G: Float32Array;
  /** Compressor output before the projector [C^2, D]. */
  compressedRaw: Float32Array;
  /** Vc = projector(compressor(clip)) [C^2, H] (before pre-fusion). */
  compressed: Float32Array;
}

/** The projected vision rows of one image, the input of pre-fusion. */
export interface ImageFeatures {
  G: Float32Array;
  Vc: Float32Array;
}

export interface FusionResult {
  /** Per image: F_i [L, H]. */
  fusedPerImage: Float32Array[];
  /** Per image: V_i [C^2, H] after pre-fusion. */
  visionTokens: Float32Array[];
  /** mean_i F_i [L, H]. */
  fusedText: Float32Array;
  /** The LLM input rows (after truncation). */
  llmInput: Float32Array;
  llmInputRows: number;
}

export interface GenerateOptions {
  /** Generation stops after this many new tokens. */
  maxNewTokens: number;
  /** Defaults to config.eosTokenIds. */
  stopIds?: readonly number[];
  /** Keep the logits of every step (stepLogits[i] produced tokens[i]). */
  keepAllLogits?: boolean;
}

export interface GenerateResult {
  /** Generated ids; includes the stop token when stopped === 'eos'. */
  tokens: number[];
  stopped: 'eos' | 'length';
  /** Logits of the last prompt row (they choose tokens[0]). */
  logits0: Float32Array;
  stepLogits?: Float32Array[];
}

/** Greedy decoding from LLM input rows on a fresh cache. */
export function greedyGenerate(llm: LlamaReference, embeds: Float32Array, rows: number, opts: GenerateOptions & { stopIds: readonly number[] }): GenerateResult {
  llm.reset();
  let logits = llm.prefill(embeds, rows);
  const logits0 = logits;
  const stepLogits: Float32Array[] = [];
  const tokens: number[] = [];
  const stops = new Set(opts.stopIds);
  let stopped: 'eos' | 'length' = 'length';
  while (tokens.length < opts.maxNewTokens) {
    if (opts.keepAllLogits) stepLogits.push(logits);
    const t = greedy(logits);
    tokens.push(t);
    if (stops.has(t)) {
      stopped = 'eos';
      break;
    }
    if (tokens.length >= opts.maxNewTokens) break;
    logits = llm.decode(t);
  }
  return opts.keepAllLogits ? { tokens, stopped, logits0, stepLogits } : { tokens, stopped, logits0 };
}

/** The whole reference model with every weight it reads loaded once. */
export class ReferenceLlavaMini {
  private constructor(
    readonly config: LlavaMiniConfig,
    readonly clipEmbeddings: ClipEmbeddingWeights,
    readonly clipLayers: ClipLayerWeights[],
    readonly projector: ProjectorWeights,
    readonly compressor: CompressorWeights,
    readonly prefusion: PrefusionReference,
    readonly llm: LlamaReference,
  ) {}

  static async load(weights: WeightSource): Promise<ReferenceLlavaMini> {
    const cfg = weights.config;
    const clipLayers: ClipLayerWeights[] = [];
    for (let i = 0; i < cfg.visionLayersUsed; i++) clipLayers.push(await loadClipLayer(weights, i));
    const llmWeights = await loadLlamaModel(weights);
    return new ReferenceLlavaMini(
      cfg,
      await loadClipEmbeddings(weights),
      clipLayers,
      await loadProjector(weights),
      await loadCompressor(weights),
      await PrefusionReference.load(weights, llmWeights.embedTokens),
      new LlamaReference(llmWeights),
    );
  }

  /** CLIP features [N, D] ("patch") or [N+1, D] ("cls_patch"). */
  clipFeatures(pixelValues: Float32Array): Float32Array {
    const v = this.config.vision;
    const tokens = clipPatchCount(v) + 1;
    let x = clipEmbeddingsWith(this.clipEmbeddings, v, pixelValues);
    for (const lw of this.clipLayers) x = clipEncoderLayerWith(lw, v, x, tokens);
    return this.config.visionSelectFeature === 'patch' ? x.slice(v.hiddenSize) : x;
  }

  /** pixel values [3, S, S] -> CLIP, G, compressed (raw and projected). */
  encodeImage(pixelValues: Float32Array): ImageEncoding {
    const D = this.config.mmHiddenSize;
    const clip = this.clipFeatures(pixelValues);
    const rows = clip.length / D;
    const G = projectWith(this.projector, clip, rows);
    const compressedRaw = compressWith(this.compressor, clip);
    const compressed = projectWith(this.projector, compressedRaw, compressedRaw.length / D);
    return { pixelValues, clip, G, compressedRaw, compressed };
  }

  /** Pre-fusion per image, the mean fused text, and the LLM input rows. */
  fuse(images: readonly ImageFeatures[], ids: ArrayLike<number>): FusionResult {
    const slots = imageSlots(ids);
    if (slots.length !== images.length) throw new Error(`fuse: ${slots.length} image slots in the prompt for ${images.length} images`);
    const H = this.config.llm.hiddenSize;
    let fusedPerImage: Float32Array[];
    let visionTokens: Float32Array[];
    let fusedText: Float32Array;
    if (images.length === 0) {
      // Text only: the reference skips the multimodal path; the LLM sees plain embeddings.
      fusedText = this.llm.embed(ids);
      fusedPerImage = [];
      visionTokens = [];
    } else {
      const results = images.map((im) => this.prefusion.run(im.G, im.Vc, ids));
      fusedPerImage = results.map((r) => r.fusedText);
      visionTokens = results.map((r) => r.visionToken);
      fusedText = images.length === 1 ? fusedPerImage[0]! : meanRows(fusedPerImage);
    }
    const { embeds, rows } = assembleLlmInput(fusedText, visionTokens, ids, this.config.tokenizerModelMaxLength);
    if (rows * H !== embeds.length) throw new Error('fuse: internal size mismatch');
    return { fusedPerImage, visionTokens, fusedText, llmInput: embeds, llmInputRows: rows };
  }

  /**
   * Video (spec section 7): every frame is fused with the whole prompt, which has exactly one <image> slot;
   * text rows are the mean over frames and the slot holds V_1 .. V_T in frame order.
   */
  fuseFrames(frames: readonly ImageFeatures[], ids: ArrayLike<number>): FusionResult {
    if (imageSlots(ids).length !== 1) throw new Error('fuseFrames: the prompt must have exactly one <image> slot');
    if (frames.length === 0) throw new Error('fuseFrames: no frames');
    const results = frames.map((f) => this.prefusion.run(f.G, f.Vc, ids));
    const fusedPerImage = results.map((r) => r.fusedText);
    const visionTokens = results.map((r) => r.visionToken);
    const fusedText = frames.length === 1 ? fusedPerImage[0]! : meanRows(fusedPerImage);
    const { embeds, rows } = assembleLlmInput(fusedText, concatRows(visionTokens), ids, this.config.tokenizerModelMaxLength);
    return { fusedPerImage, visionTokens, fusedText, llmInput: embeds, llmInputRows: rows };
  }

  /** Greedy decoding from prepared LLM input rows (fresh KV cache). */
  generateFromInput(llmInput: Float32Array, rows: number, opts: GenerateOptions): GenerateResult {
    return greedyGenerate(this.llm, llmInput, rows, { ...opts, stopIds: opts.stopIds ?? this.config.eosTokenIds });
  }
}

export interface ReferenceImageIntermediates extends ImageEncoding {
  /** V [C^2, H] after pre-fusion. */
  visionToken: Float32Array;
  /** This image's F [L, H] (before averaging over images). */
  fusedText: Float32Array;
}

export interface ReferenceIntermediates {
  /** The first image's stages (convenience for the single-image case). */
  pixelValues: Float32Array;
  clip: Float32Array;
  /** Projected Vc, before pre-fusion. */
  compressed: Float32Array;
  visionToken: Float32Array;
  /** Every image's stages, in slot order. */
  images: ReferenceImageIntermediates[];
  /** The fused text rows the LLM sees (mean over images) [L, H]. */
  fusedText: Float32Array;
  llmInput: Float32Array;
  llmInputRows: number;
  logits0: Float32Array;
}

export interface GenerateReferenceOptions {
  weights: WeightSource;
  /** One image's pixel values [3, S, S], or one per <image> slot. */
  pixelValues: Float32Array | readonly Float32Array[];
  promptIds: readonly number[];
  maxNewTokens: number;
  /** Defaults to config.eosTokenIds. */
  stopIds?: readonly number[];
  keepAllLogits?: boolean;
  /** Reuse a loaded model (else it is loaded from `weights`). */
  model?: ReferenceLlavaMini;
}

export interface GenerateReferenceResult extends GenerateResult {
  intermediates: ReferenceIntermediates;
}

/** The reference end to end: images + prompt ids -> greedy tokens, with every intermediate. */
export async function generateReference(opts: GenerateReferenceOptions): Promise<GenerateReferenceResult> {
  const model = opts.model ?? (await ReferenceLlavaMini.load(opts.weights));
  const pixels = opts.pixelValues instanceof Float32Array ? [opts.pixelValues] : [...opts.pixelValues];
  if (pixels.length === 0) throw new Error('generateReference: no image');
  const enc = pixels.map((p) => model.encodeImage(p));
  const fused = model.fuse(
    enc.map((e) => ({ G: e.G, Vc: e.compressed })),
    opts.promptIds,
  );
  const gen = model.generateFromInput(fused.llmInput, fused.llmInputRows, {
    maxNewTokens: opts.maxNewTokens,
    ...(opts.stopIds ? { stopIds: opts.stopIds } : {}),
    ...(opts.keepAllLogits ? { keepAllLogits: true } : {}),
  });
  const images = enc.map((e, i) => ({ ...e, visionToken: fused.visionTokens[i]!, fusedText: fused.fusedPerImage[i]! }));
  const first = images[0]!;
  return {
    ...gen,
    intermediates: {
      pixelValues: first.pixelValues,
      clip: first.clip,
      compressed: first.compressed,
      visionToken: first.visionToken,
      images,
      fusedText: fused.fusedText,
      llmInput: fused.llmInput,
      llmInputRows: fused.llmInputRows,
      logits0: gen.logits0,
    },
  };
}
