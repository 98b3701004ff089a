// Modality pre-fusion (spec section 4): prefusionLayerNum Llama decoder layers over [G ; Vc ; T].
//   T    = embed_tokens(max(ids, 0))            (the whole prompt; the <image> slot(s) hold -200)
//   pad  = ids <= 0
//   keep = [ones(N + C^2), !pad];  mask = causal AND keep[key]
//   pos  = cumsum(keep) - 1, pos[!keep] = 1
//   F = x[-L:], F[pad] = T[pad];  V = x[N : N + C^2]   (no final norm)
import type { LlamaConfig, WeightSource } from '../checkpoint/types.ts';
import { prefusionLayerPrefix } from '../checkpoint/expected-tensors.ts';
import { embedRows, llamaDecoderLayer, loadLlamaLayer, type LlamaLayerWeights } from './llama.ts';
import { concatRows } from './ops.ts';
import { ropeInvFreqFromConfig } from './rope.ts';
import { readTensor } from './weights.ts';

/** The id that marks an <image> slot in prompt ids (LLaVA's IMAGE_TOKEN_INDEX). */
export const IMAGE_TOKEN_INDEX = -200;

export interface PrefusionLayout {
  /** numVisionRows + ids.length */
  rows: number;
  /** Per row of [vision ; text]: 1 = a real row (kept as a key), 0 = a pad row (ids <= 0). */
  keep: Uint8Array;
  /** Per row: RoPE position, cumsum(keep) - 1, and 1 at pad rows. */
  positions: Int32Array;
  /** Per text row (ids.length): 1 where ids <= 0. */
  pad: Uint8Array;
  /** The attention rule: query row q may read key row k iff k <= q and keep[k]. */
  allowed(q: number, k: number): boolean;
}

/**
 * The pre-fusion mask and position rule for prompt ids after `numVisionRows` = N + C^2 vision rows
 * (rows are indexed over the whole [vision ; text] sequence).
 */
export function prefusionMaskAndPositions(ids: ArrayLike<number>, numVisionRows: number): PrefusionLayout {
  const L = ids.length;
  const rows = numVisionRows + L;
  const keep = new Uint8Array(rows);
  const pad = new Uint8Array(L);
  keep.fill(1, 0, numVisionRows);
  for (let t = 0; t < L; t++) {
    pad[t] = ids[t]! <= 0 ? 1 : 0;
    keep[numVisionRows + t] = pad[t] ? 0 : 1;
  }
  const positions = new Int32Array(rows);
  let c = 0;
  for (let r = 0; r < rows; r++) {
    c += keep[r]!;
    positions[r] = keep[r] ? c - 1 : 1;
  }
  return { rows, keep, positions, pad, allowed: (q, k) => k <= q && keep[k] === 1 };
}

export interface PrefusionResult {
  /** F [L, H]: the fused text rows, with pad rows replaced by their plain embeddings. */
  fusedText: Float32Array;
  /** V [C^2, H]: the compressed rows after pre-fusion (what the LLM sees at the image slot). */
  visionToken: Float32Array;
}

/** The pre-fusion layers (and the token embedding table they need), loaded once. */
export class PrefusionReference {
  private readonly invFreq: Float32Array;

  constructor(
    readonly config: LlamaConfig,
    readonly layers: LlamaLayerWeights[],
    readonly embedTokens: Float32Array,
  ) {
    this.invFreq = ropeInvFreqFromConfig(config);
  }

  /** Loads model.prefusion_layers.{0..prefusionLayerNum-1}; pass embedTokens to share an already-read table. */
  static async load(src: WeightSource, embedTokens?: Float32Array): Promise<PrefusionReference> {
    const c = src.config.llm;
    const layers: LlamaLayerWeights[] = [];
    for (let i = 0; i < src.config.prefusionLayerNum; i++) layers.push(await loadLlamaLayer(src, prefusionLayerPrefix(i)));
    const table = embedTokens ?? (await readTensor(src, 'model.embed_tokens.weight', [c.vocabSize, c.hiddenSize]));
    return new PrefusionReference(c, layers, table);
  }

  /** T = embed_tokens(max(ids, 0)): [L, H]. */
  textEmbeddings(ids: ArrayLike<number>): Float32Array {
    return embedRows(
      this.embedTokens,
      this.config.vocabSize,
      this.config.hiddenSize,
      Array.from(ids, (id) => Math.max(id, 0)),
    );
  }

  /** G [N, H] (projected CLIP rows), Vc [C^2, H] (projected compressed rows), prompt ids -> F, V. */
  run(G: Float32Array, Vc: Float32Array, ids: ArrayLike<number>): PrefusionResult {
    const H = this.config.hiddenSize;
    const N = G.length / H;
    const C2 = Vc.length / H;
    if (!Number.isInteger(N) || !Number.isInteger(C2)) throw new Error(`prefusion: G or Vc is not a whole number of ${H}-wide rows`);
    const L = ids.length;
    const T = this.textEmbeddings(ids);
    const layout = prefusionMaskAndPositions(ids, N + C2);
    let x = concatRows([G, Vc, T]);
    for (const lw of this.layers) x = llamaDecoderLayer(lw, this.config, x, layout.rows, layout.positions, layout.allowed, undefined, this.invFreq).out;
    const fusedText = x.slice((N + C2) * H);
    for (let t = 0; t < L; t++) if (layout.pad[t]) fusedText.set(T.subarray(t * H, (t + 1) * H), t * H);
    return { fusedText, visionToken: x.slice(N * H, (N + C2) * H) };
  }
}

/** One-shot pre-fusion (loads the layers, then runs them). */
export async function prefusion(weights: WeightSource, G: Float32Array, Vc: Float32Array, ids: ArrayLike<number>): Promise<PrefusionResult> {
  return (await PrefusionReference.load(weights)).run(G, Vc, ids);
}
