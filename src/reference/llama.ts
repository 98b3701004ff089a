// Llama decoder layer (HF LlamaDecoderLayer, spec section 4) and a causal LM with a KV cache.
//   h   = x + o_proj(attn(rope(q_proj(rms1(x))), rope(k_proj(rms1(x))), v_proj(rms1(x))))
//   out = h + down(silu(gate(rms2(h))) * up(rms2(h)))
// GQA (query head h reads KV head floor(h / (nH / nKV))), scale 1/sqrt(head_dim), llama3 RoPE at explicit
// per-row positions. The same layer serves model.prefusion_layers.{i} and model.layers.{i} (a name prefix).
import type { LlamaConfig, WeightSource } from '../checkpoint/types.ts';
import { attention, type AttentionMask } from './attention.ts';
import { linear } from './linear.ts';
import { add, argmax, mul, rmsNorm, silu } from './ops.ts';
import { applyRope, ropeInvFreqFromConfig } from './rope.ts';
import { readTensor } from './weights.ts';
import { llamaLayerPrefix } from '../checkpoint/expected-tensors.ts';

export interface LlamaLayerWeights {
  inputNorm: Float32Array;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  o: Float32Array;
  postNorm: Float32Array;
  gate: Float32Array;
  up: Float32Array;
  down: Float32Array;
}

/** Reads one decoder layer's nine tensors under `prefix` (e.g. "model.layers.3."). */
export async function loadLlamaLayer(src: WeightSource, prefix: string): Promise<LlamaLayerWeights> {
  const c = src.config.llm;
  const H = c.hiddenSize;
  const qd = c.numHeads * c.headDim;
  const kvd = c.numKvHeads * c.headDim;
  const I = c.intermediateSize;
  const r = (name: string, shape: number[]): Promise<Float32Array> => readTensor(src, prefix + name, shape);
  return {
    inputNorm: await r('input_layernorm.weight', [H]),
    q: await r('self_attn.q_proj.weight', [qd, H]),
    k: await r('self_attn.k_proj.weight', [kvd, H]),
    v: await r('self_attn.v_proj.weight', [kvd, H]),
    o: await r('self_attn.o_proj.weight', [H, qd]),
    postNorm: await r('post_attention_layernorm.weight', [H]),
    gate: await r('mlp.gate_proj.weight', [I, H]),
    up: await r('mlp.up_proj.weight', [I, H]),
    down: await r('mlp.down_proj.weight', [H, I]),
  };
}

/** Keys (after RoPE) and values of earlier rows: [rows, numKvHeads * headDim] each. */
export interface KvRows {
  k: Float32Array;
  v: Float32Array;
  rows: number;
}

export interface DecoderLayerResult {
  /** [rows, H] */
  out: Float32Array;
  /** This call's keys after RoPE, [rows, nKV * headDim] (to append to a cache). */
  k: Float32Array;
  /** This call's values, [rows, nKV * headDim]. */
  v: Float32Array;
}

/**
 * One decoder layer on x [rows, H] at the given positions. Keys are `past` rows (if any) followed by this call's
 * rows; mask(queryRow, keyRow) indexes query rows of this call and key rows of that concatenation. Without a mask
 * the attention is causal: query i sees keys 0 .. past.rows + i.
 */
export function llamaDecoderLayer(
  w: LlamaLayerWeights,
  cfg: LlamaConfig,
  x: Float32Array,
  rows: number,
  positions: ArrayLike<number>,
  mask?: AttentionMask,
  past?: KvRows,
  invFreq: Float32Array = ropeInvFreqFromConfig(cfg),
): DecoderLayerResult {
  const H = cfg.hiddenSize;
  const hd = cfg.headDim;
  const nH = cfg.numHeads;
  const nKV = cfg.numKvHeads;
  const qd = nH * hd;
  const kvd = nKV * hd;
  const I = cfg.intermediateSize;
  if (x.length !== rows * H) throw new Error(`llama layer: x has ${x.length} values, expected ${rows}x${H}`);
  if (positions.length !== rows) throw new Error(`llama layer: ${positions.length} positions for ${rows} rows`);
  const pastRows = past?.rows ?? 0;

  const h = rmsNorm(x, rows, H, w.inputNorm, cfg.rmsNormEps);
  const q = applyRope(linear(h, rows, H, w.q, qd), rows, nH, hd, positions, invFreq);
  const k = applyRope(linear(h, rows, H, w.k, kvd), rows, nKV, hd, positions, invFreq);
  const v = linear(h, rows, H, w.v, kvd);

  let keys = k;
  let vals = v;
  if (past && pastRows > 0) {
    keys = new Float32Array((pastRows + rows) * kvd);
    keys.set(past.k.subarray(0, pastRows * kvd));
    keys.set(k, pastRows * kvd);
    vals = new Float32Array((pastRows + rows) * kvd);
    vals.set(past.v.subarray(0, pastRows * kvd));
    vals.set(v, pastRows * kvd);
  }
  const a = attention({
    q,
    k: keys,
    v: vals,
    qRows: rows,
    kRows: pastRows + rows,
    numHeads: nH,
    numKvHeads: nKV,
    headDim: hd,
    scale: 1 / Math.sqrt(hd),
    mask: mask ?? ((i: number, j: number) => j <= pastRows + i),
  });
  const x1 = add(x, linear(a, rows, qd, w.o, H));
  const h2 = rmsNorm(x1, rows, H, w.postNorm, cfg.rmsNormEps);
  const m = mul(silu(linear(h2, rows, H, w.gate, I)), linear(h2, rows, H, w.up, I));
  return { out: add(x1, linear(m, rows, I, w.down, H)), k, v };
}

/** Everything the causal LM reads, loaded once. */
export interface LlamaModelWeights {
  config: LlamaConfig;
  embedTokens: Float32Array;
  layers: LlamaLayerWeights[];
  norm: Float32Array;
  /** embed_tokens when tieWordEmbeddings. */
  lmHead: Float32Array;
}

export async function loadLlamaModel(src: WeightSource): Promise<LlamaModelWeights> {
  const c = src.config.llm;
  const H = c.hiddenSize;
  const embedTokens = await readTensor(src, 'model.embed_tokens.weight', [c.vocabSize, H]);
  const layers: LlamaLayerWeights[] = [];
  for (let i = 0; i < c.numLayers; i++) layers.push(await loadLlamaLayer(src, llamaLayerPrefix(i)));
  const norm = await readTensor(src, 'model.norm.weight', [H]);
  const lmHead = c.tieWordEmbeddings ? embedTokens : await readTensor(src, 'lm_head.weight', [c.vocabSize, H]);
  return { config: c, embedTokens, layers, norm, lmHead };
}

/** Rows of an embedding table [vocab, H] for the given ids. */
export function embedRows(table: Float32Array, vocab: number, H: number, ids: ArrayLike<number>): Float32Array {
  const out = new Float32Array(ids.length * H);
  for (let r = 0; r < ids.length; r++) {
    const id = ids[r]!;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`embed: token id ${id} outside 0..${vocab - 1}`);
    out.set(table.subarray(id * H, (id + 1) * H), r * H);
  }
  return out;
}

/** A growable [rows, width] f32 buffer. */
class RowBuffer {
  data: Float32Array;
  rows = 0;
  constructor(readonly width: number) {
    this.data = new Float32Array(width * 16);
  }
  append(x: Float32Array, rows: number): void {
    const need = (this.rows + rows) * this.width;
    if (need > this.data.length) {
      const next = new Float32Array(Math.max(need, this.data.length * 2));
      next.set(this.data.subarray(0, this.rows * this.width));
      this.data = next;
    }
    this.data.set(x.subarray(0, rows * this.width), this.rows * this.width);
    this.rows += rows;
  }
}

/**
 * The LLM as a causal LM with a KV cache. Positions continue from the cache length; each call appends its rows.
 * Build with `await LlamaReference.load(weightSource)` (the constructor takes preloaded weights).
 */
export class LlamaReference {
  readonly config: LlamaConfig;
  private readonly invFreq: Float32Array;
  private readonly kCache: RowBuffer[];
  private readonly vCache: RowBuffer[];

  constructor(readonly weights: LlamaModelWeights) {
    this.config = weights.config;
    this.invFreq = ropeInvFreqFromConfig(this.config);
    const kvd = this.config.numKvHeads * this.config.headDim;
    this.kCache = weights.layers.map(() => new RowBuffer(kvd));
    this.vCache = weights.layers.map(() => new RowBuffer(kvd));
  }

  static async load(src: WeightSource): Promise<LlamaReference> {
    return new LlamaReference(await loadLlamaModel(src));
  }

  /** Number of rows in the KV cache (the position of the next row). */
  get length(): number {
    return this.cacheRows;
  }
  private cacheRows = 0;

  /** embed_tokens rows for ids: [ids.length, H]. */
  embed(ids: ArrayLike<number>): Float32Array {
    return embedRows(this.weights.embedTokens, this.config.vocabSize, this.config.hiddenSize, ids);
  }

  /** Runs n rows of input embeddings [n, H] through every layer (appending to the cache); returns the final hidden [n, H] after model.norm. */
  forwardHidden(embeds: Float32Array, n: number): Float32Array {
    const c = this.config;
    const H = c.hiddenSize;
    if (n <= 0) throw new Error('LlamaReference: no rows');
    if (embeds.length !== n * H) throw new Error(`LlamaReference: embeds have ${embeds.length} values, expected ${n}x${H}`);
    const start = this.length;
    const positions = Array.from({ length: n }, (_, i) => start + i);
    let x = embeds;
    this.weights.layers.forEach((lw, li) => {
      const kc = this.kCache[li]!;
      const vc = this.vCache[li]!;
      const r = llamaDecoderLayer(lw, c, x, n, positions, undefined, { k: kc.data, v: vc.data, rows: kc.rows }, this.invFreq);
      kc.append(r.k, n);
      vc.append(r.v, n);
      x = r.out;
    });
    this.cacheRows += n;
    return rmsNorm(x, n, H, this.weights.norm, c.rmsNormEps);
  }

  /** lm_head on hidden rows [rows, H] -> [rows, vocab]. */
  logits(hidden: Float32Array, rows: number): Float32Array {
    return linear(hidden, rows, this.config.hiddenSize, this.weights.lmHead, this.config.vocabSize);
  }

  /** Prefill n rows [n, H]; returns the logits of the last row [vocab]. */
  prefill(embeds: Float32Array, n: number): Float32Array {
    const H = this.config.hiddenSize;
    const hidden = this.forwardHidden(embeds, n);
    return this.logits(hidden.subarray((n - 1) * H, n * H), 1);
  }

  /** One token through the LLM with its plain embedding; returns its logits [vocab]. */
  decode(tokenId: number): Float32Array {
    return this.prefill(this.embed([tokenId]), 1);
  }

  /** Drops cached rows beyond `length` (the next row will be at position `length`). */
  rollback(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.length) {
      throw new Error(`LlamaReference.rollback: ${length} outside 0..${this.length}`);
    }
    for (const b of [...this.kCache, ...this.vCache]) b.rows = length;
    this.cacheRows = length;
  }

  /** Clears the cache. */
  reset(): void {
    this.rollback(0);
  }
}

/** Greedy choice: argmax, the lowest index on ties. */
export function greedy(logits: Float32Array): number {
  return argmax(logits);
}
