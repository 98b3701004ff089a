// CLIP vision tower (spec section 2): patch embedding, class token, position embedding, pre_layrnorm, the first
// config.visionLayersUsed pre-LN encoder layers, then drop the class token (select feature "patch").
// No post_layernorm. Everything in f32 storage with f64 accumulation.
import type { ClipVisionConfig, WeightSource } from '../checkpoint/types.ts';
import { attention } from './attention.ts';
import { linear } from './linear.ts';
import { activation, add, layerNorm } from './ops.ts';
import { readTensor } from './weights.ts';
import { clipLayerPrefix, VISION_PREFIX } from '../checkpoint/expected-tensors.ts';

/** Number of patch tokens N = (S / P)^2. */
export function clipPatchCount(v: ClipVisionConfig): number {
  const g = v.imageSize / v.patchSize;
  if (!Number.isInteger(g)) throw new Error(`CLIP: image size ${v.imageSize} not a multiple of patch ${v.patchSize}`);
  return g * g;
}

export interface ClipLayerWeights {
  ln1w: Float32Array;
  ln1b: Float32Array;
  qw: Float32Array;
  qb: Float32Array;
  kw: Float32Array;
  kb: Float32Array;
  vw: Float32Array;
  vb: Float32Array;
  ow: Float32Array;
  ob: Float32Array;
  ln2w: Float32Array;
  ln2b: Float32Array;
  fc1w: Float32Array;
  fc1b: Float32Array;
  fc2w: Float32Array;
  fc2b: Float32Array;
}

export async function loadClipLayer(src: WeightSource, i: number): Promise<ClipLayerWeights> {
  const v = src.config.vision;
  const D = v.hiddenSize;
  const I = v.intermediateSize;
  const p = clipLayerPrefix(i);
  const r = (name: string, shape: number[]): Promise<Float32Array> => readTensor(src, p + name, shape);
  return {
    ln1w: await r('layer_norm1.weight', [D]),
    ln1b: await r('layer_norm1.bias', [D]),
    qw: await r('self_attn.q_proj.weight', [D, D]),
    qb: await r('self_attn.q_proj.bias', [D]),
    kw: await r('self_attn.k_proj.weight', [D, D]),
    kb: await r('self_attn.k_proj.bias', [D]),
    vw: await r('self_attn.v_proj.weight', [D, D]),
    vb: await r('self_attn.v_proj.bias', [D]),
    ow: await r('self_attn.out_proj.weight', [D, D]),
    ob: await r('self_attn.out_proj.bias', [D]),
    ln2w: await r('layer_norm2.weight', [D]),
    ln2b: await r('layer_norm2.bias', [D]),
    fc1w: await r('mlp.fc1.weight', [I, D]),
    fc1b: await r('mlp.fc1.bias', [I]),
    fc2w: await r('mlp.fc2.weight', [D, I]),
    fc2b: await r('mlp.fc2.bias', [D]),
  };
}

/**
 * One CLIP encoder layer on x [tokens, D] with preloaded weights:
 * x += out_proj(MHA(LN1(x))) (scale head_dim^-0.5, no mask); x += fc2(act(fc1(LN2(x)))).
 */
export function clipEncoderLayerWith(w: ClipLayerWeights, v: ClipVisionConfig, x: Float32Array, tokens: number): Float32Array {
  const D = v.hiddenSize;
  const I = v.intermediateSize;
  const headDim = D / v.numHeads;
  if (!Number.isInteger(headDim)) throw new Error(`CLIP: width ${D} not divisible by ${v.numHeads} heads`);
  if (x.length !== tokens * D) throw new Error(`CLIP layer: x has ${x.length} values, expected ${tokens}x${D}`);
  const h = layerNorm(x, tokens, D, w.ln1w, w.ln1b, v.layerNormEps);
  const q = linear(h, tokens, D, w.qw, D, w.qb);
  const k = linear(h, tokens, D, w.kw, D, w.kb);
  const val = linear(h, tokens, D, w.vw, D, w.vb);
  const a = attention({ q, k, v: val, qRows: tokens, kRows: tokens, numHeads: v.numHeads, headDim, scale: 1 / Math.sqrt(headDim) });
  const x1 = add(x, linear(a, tokens, D, w.ow, D, w.ob));
  const h2 = layerNorm(x1, tokens, D, w.ln2w, w.ln2b, v.layerNormEps);
  const f = activation(v.hiddenAct, linear(h2, tokens, D, w.fc1w, I, w.fc1b));
  return add(x1, linear(f, tokens, I, w.fc2w, D, w.fc2b));
}

/** One CLIP encoder layer (weights read from the source): for comparing a full-size layer with the GPU. */
export async function clipEncoderLayer(weights: WeightSource, layerIndex: number, x: Float32Array, tokens: number): Promise<Float32Array> {
  return clipEncoderLayerWith(await loadClipLayer(weights, layerIndex), weights.config.vision, x, tokens);
}

/**
 * pixel_values [C, S, S] -> patch vectors [N, C*P*P], patch n = gy * (S/P) + gx, each vector in (c, ky, kx) order
 * (the order of the flattened conv weight [D, C, P, P]).
 */
export function patchify(pixelValues: Float32Array, channels: number, size: number, patch: number): Float32Array {
  if (pixelValues.length !== channels * size * size) {
    throw new Error(`patchify: pixel values have ${pixelValues.length} values, expected ${channels}x${size}x${size}`);
  }
  const g = size / patch;
  const K = channels * patch * patch;
  const out = new Float32Array(g * g * K);
  for (let gy = 0; gy < g; gy++) {
    for (let gx = 0; gx < g; gx++) {
      const o = (gy * g + gx) * K;
      for (let c = 0; c < channels; c++) {
        for (let ky = 0; ky < patch; ky++) {
          for (let kx = 0; kx < patch; kx++) {
            out[o + (c * patch + ky) * patch + kx] = pixelValues[(c * size + gy * patch + ky) * size + gx * patch + kx]!;
          }
        }
      }
    }
  }
  return out;
}

export interface ClipEmbeddingWeights {
  /** Conv weight [D, C, P, P] = a [D, C*P*P] matrix. */
  patch: Float32Array;
  cls: Float32Array;
  /** [N+1, D] */
  pos: Float32Array;
  preW: Float32Array;
  preB: Float32Array;
}

export async function loadClipEmbeddings(src: WeightSource): Promise<ClipEmbeddingWeights> {
  const v = src.config.vision;
  const D = v.hiddenSize;
  const P = v.patchSize;
  const N = clipPatchCount(v);
  return {
    patch: await readTensor(src, `${VISION_PREFIX}embeddings.patch_embedding.weight`, [D, v.numChannels, P, P]),
    cls: await readTensor(src, `${VISION_PREFIX}embeddings.class_embedding`, [D]),
    pos: await readTensor(src, `${VISION_PREFIX}embeddings.position_embedding.weight`, [N + 1, D]),
    preW: await readTensor(src, `${VISION_PREFIX}pre_layrnorm.weight`, [D]),
    preB: await readTensor(src, `${VISION_PREFIX}pre_layrnorm.bias`, [D]),
  };
}

/** hidden_states[0]: [class ; patches] embeddings + position embeddings, then pre_layrnorm. [N+1, D]. */
export function clipEmbeddingsWith(w: ClipEmbeddingWeights, v: ClipVisionConfig, pixelValues: Float32Array): Float32Array {
  const D = v.hiddenSize;
  const P = v.patchSize;
  const N = clipPatchCount(v);
  const K = v.numChannels * P * P;
  const patches = linear(patchify(pixelValues, v.numChannels, v.imageSize, P), N, K, w.patch, D);
  const x = new Float32Array((N + 1) * D);
  for (let d = 0; d < D; d++) x[d] = w.cls[d]! + w.pos[d]!;
  for (let i = 0; i < N * D; i++) x[D + i] = patches[i]! + w.pos[D + i]!;
  return layerNorm(x, N + 1, D, w.preW, w.preB, v.layerNormEps);
}

/** hidden_states[0] (weights read from the source). */
export async function clipEmbeddings(weights: WeightSource, pixelValues: Float32Array): Promise<Float32Array> {
  return clipEmbeddingsWith(await loadClipEmbeddings(weights), weights.config.vision, pixelValues);
}

/**
 * CLIP features fed to the projector and the compressor: run config.visionLayersUsed layers on the embeddings and
 * drop the class token ("patch": [N, D]) or keep it ("cls_patch": [N+1, D]).
 */
export async function clipVisionFeatures(weights: WeightSource, pixelValues: Float32Array): Promise<Float32Array> {
  const cfg = weights.config;
  const D = cfg.vision.hiddenSize;
  const tokens = clipPatchCount(cfg.vision) + 1;
  let x = await clipEmbeddings(weights, pixelValues);
  for (let i = 0; i < cfg.visionLayersUsed; i++) x = clipEncoderLayerWith(await loadClipLayer(weights, i), cfg.vision, x, tokens);
  return cfg.visionSelectFeature === 'patch' ? x.slice(D) : x;
}
