// The CLIP vision tower on the GPU (spec section 2), mirroring src/reference/clip.ts:
//   ClipEmbeddingKernel (patchify + patch linear + class/position embeddings + pre_layrnorm) -> hidden [T, D]
//   config.visionLayersUsed pre-LN encoder layers, each
//     x += out_proj(MHA(LN1(x)))            q, k, v, out with biases; no mask; scale 1/sqrt(head dim)
//     x += fc2(act(fc1(LN2(x))))            act = quick_gelu (or gelu, per config)
//   then the class token dropped ("patch") or kept ("cls_patch") -> clip [rows, D], copied into the caller's buffer.
// Only the used layers are loaded. Weights in any storage the policy picks (LinearKernels / NormKernels choose the
// kernel variant); all activations f32, allocated once at load (T = patches + 1 rows).
import { clipLayerPrefix, VISION_PREFIX } from '../checkpoint/expected-tensors.ts';
import { visionPatchCount } from '../checkpoint/config.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { createStorageBuffer, readF32, storageBufferFrom, totalBytes } from '../gpu/buffers.ts';
import { recordCompute, type GpuTarget } from '../gpu/dispatch.ts';
import { denseStorage, LinearKernels, loadF32Tensor, NormKernels, oneBlock } from '../gpu/gpu-linear.ts';
import { AttentionKernel } from '../gpu/kernels/attention.ts';
import { ActivationKernel } from '../gpu/kernels/elementwise.ts';
import { ClipEmbeddingKernel, type ClipEmbeddingGpuWeights } from './clip-embedding.ts';
import type { GpuTensor, GpuWeights } from '../weights/gpu-weights.ts';

/** Rows of the tower's output: the patches, plus the class token with visionSelectFeature "cls_patch". */
export function clipOutputRows(config: LlavaMiniConfig): number {
  return visionPatchCount(config.vision) + (config.visionSelectFeature === 'cls_patch' ? 1 : 0);
}

export interface ClipLayerGpuWeights {
  ln1w: GpuTensor;
  ln1b: GpuTensor;
  q: GpuTensor;
  qb: GpuTensor;
  k: GpuTensor;
  kb: GpuTensor;
  v: GpuTensor;
  vb: GpuTensor;
  o: GpuTensor;
  ob: GpuTensor;
  ln2w: GpuTensor;
  ln2b: GpuTensor;
  fc1: GpuTensor;
  fc1b: GpuTensor;
  fc2: GpuTensor;
  fc2b: GpuTensor;
}

async function loadLayer(weights: GpuWeights, i: number, owned: GPUBuffer[]): Promise<ClipLayerGpuWeights> {
  const p = clipLayerPrefix(i);
  const mat = (name: string) => weights.load(p + name);
  const bias = (name: string) => loadF32Tensor(weights, p + name, owned);
  return {
    ln1w: await mat('layer_norm1.weight'),
    ln1b: await mat('layer_norm1.bias'),
    q: await mat('self_attn.q_proj.weight'),
    qb: await bias('self_attn.q_proj.bias'),
    k: await mat('self_attn.k_proj.weight'),
    kb: await bias('self_attn.k_proj.bias'),
    v: await mat('self_attn.v_proj.weight'),
    vb: await bias('self_attn.v_proj.bias'),
    o: await mat('self_attn.out_proj.weight'),
    ob: await bias('self_attn.out_proj.bias'),
    ln2w: await mat('layer_norm2.weight'),
    ln2b: await mat('layer_norm2.bias'),
    fc1: await mat('mlp.fc1.weight'),
    fc1b: await bias('mlp.fc1.bias'),
    fc2: await mat('mlp.fc2.weight'),
    fc2b: await bias('mlp.fc2.bias'),
  };
}

/** Activations of one tower run: x is the residual stream; h, q, k, v, attn [T, D]; mlp [T, I]. */
interface ClipScratch {
  x: GPUBuffer;
  h: GPUBuffer;
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  attn: GPUBuffer;
  mlp: GPUBuffer;
}

export class ClipTower {
  /** Rows the layers run on: patches + the class token. */
  readonly tokens: number;
  /** Rows of the output (clipOutputRows). */
  readonly outputRows: number;

  private constructor(
    readonly device: GPUDevice,
    readonly config: LlavaMiniConfig,
    private readonly embedding: { kernel: ClipEmbeddingKernel; weights: ClipEmbeddingGpuWeights },
    readonly layers: readonly ClipLayerGpuWeights[],
    private readonly k: { linear: LinearKernels; norm: NormKernels; attention: AttentionKernel; act: ActivationKernel },
    private readonly s: ClipScratch,
    private readonly owned: GPUBuffer[],
  ) {
    this.tokens = visionPatchCount(config.vision) + 1;
    this.outputRows = clipOutputRows(config);
  }

  /**
   * Uploads (through `weights`) the embeddings and the first config.visionLayersUsed layers, builds the kernels and
   * allocates the activations. `linear` may be shared with other stages (it is not destroyed by destroy()).
   */
  static async load(weights: GpuWeights, linear: LinearKernels): Promise<ClipTower> {
    const device = weights.device;
    const config = weights.source.config;
    const v = config.vision;
    const D = v.hiddenSize;
    const T = visionPatchCount(v) + 1;
    if (D % v.numHeads !== 0) throw new Error(`CLIP: width ${D} is not divisible by ${v.numHeads} heads`);
    const owned: GPUBuffer[] = [];

    const e = VISION_PREFIX + 'embeddings.';
    const patch = await weights.load(`${e}patch_embedding.weight`);
    const preW = await weights.load(`${VISION_PREFIX}pre_layrnorm.weight`);
    const preB = await weights.load(`${VISION_PREFIX}pre_layrnorm.bias`);
    const embWeights: ClipEmbeddingGpuWeights = {
      patch: oneBlock(patch),
      cls: oneBlock(await loadF32Tensor(weights, `${e}class_embedding`, owned)),
      pos: oneBlock(await loadF32Tensor(weights, `${e}position_embedding.weight`, owned)),
      preW: oneBlock(preW),
      preB: oneBlock(preB),
    };
    const layers: ClipLayerGpuWeights[] = [];
    for (let i = 0; i < config.visionLayersUsed; i++) layers.push(await loadLayer(weights, i, owned));

    const norm = new NormKernels(device);
    const kernels = {
      linear,
      norm,
      // Every query of an image at once (T = 577 rows): only the path that shape takes.
      attention: new AttentionKernel(device, { headDim: D / v.numHeads, onlyFor: { nq: T, numHeads: v.numHeads } }),
      act: new ActivationKernel(device, v.hiddenAct),
    };
    const embKernel = new ClipEmbeddingKernel(device, { patchWeights: denseStorage(patch), normWeights: denseStorage(preW) });
    await Promise.all([
      embKernel.init(),
      linear.prepare(layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.fc1, l.fc2]), [T]),
      norm.prepare('layernorm', layers.flatMap((l) => [l.ln1w, l.ln2w])),
      kernels.attention.init(),
      kernels.act.init(),
    ]);

    const buf = (cols: number, name: string) => {
      const b = createStorageBuffer(device, T * cols * 4, `clip ${name} [${T}, ${cols}]`);
      owned.push(b);
      return b;
    };
    const scratch: ClipScratch = {
      x: buf(D, 'x'),
      h: buf(D, 'h'),
      q: buf(D, 'q'),
      k: buf(D, 'k'),
      v: buf(D, 'v'),
      attn: buf(D, 'attn'),
      mlp: buf(v.intermediateSize, 'mlp'),
    };
    return new ClipTower(device, config, { kernel: embKernel, weights: embWeights }, layers, kernels, scratch, owned);
  }

  /** The residual stream [T, D]: hidden_states[0] after recordEmbeddings, the last layer's output after the layers. */
  get hidden(): GPUBuffer {
    return this.s.x;
  }

  /** Records hidden = CLIP embeddings of pixel_values [3, S, S] f32. */
  recordEmbeddings(target: GpuTarget, pixels: GPUBuffer): void {
    this.embedding.kernel.run(target, pixels, this.embedding.weights, this.s.x, this.config.vision);
  }

  /** Records encoder layer i on x [T, D] in place (default: hidden; any other buffer but the tower's scratch). */
  recordLayer(target: GpuTarget, i: number, x: GPUBuffer = this.s.x): void {
    const w = this.layers[i];
    if (!w) throw new Error(`CLIP: layer ${i} is not loaded (${this.layers.length} used)`);
    const v = this.config.vision;
    const T = this.tokens;
    const { h, q, k, v: val, attn, mlp } = this.s;
    const { linear, norm, attention, act } = this.k;
    recordCompute(target, `clip layer ${i}`, (pass) => {
      norm.record(pass, 'layernorm', x, w.ln1w, w.ln1b, h, T, v.layerNormEps);
      linear.record(pass, h, w.q, w.qb, q, T);
      linear.record(pass, h, w.k, w.kb, k, T);
      linear.record(pass, h, w.v, w.vb, val, T);
      attention.run(pass, q, k, val, attn, { nq: T, nk: T, numHeads: v.numHeads });
      linear.record(pass, attn, w.o, w.ob, x, T, { residual: true });
      norm.record(pass, 'layernorm', x, w.ln2w, w.ln2b, h, T, v.layerNormEps);
      linear.record(pass, h, w.fc1, w.fc1b, mlp, T);
      act.run(pass, mlp, mlp, T * v.intermediateSize);
      linear.record(pass, mlp, w.fc2, w.fc2b, x, T, { residual: true });
    });
  }

  /** Records the copy of the selected rows of hidden into out (rows outRow ..). */
  recordOutputCopy(encoder: GPUCommandEncoder, out: GPUBuffer, outRow = 0): void {
    const D = this.config.vision.hiddenSize;
    const skip = this.tokens - this.outputRows; // the class token, when dropped
    encoder.copyBufferToBuffer(this.s.x, skip * D * 4, out, outRow * D * 4, this.outputRows * D * 4);
  }

  /** Frees the tower's own buffers and kernels (not the GpuWeights tensors, not the shared LinearKernels). */
  /** GPU bytes this stage owns: activations and f32 copies of its small tensors (weights count in GpuWeights). */
  bytes(): number {
    return totalBytes(this.owned);
  }

  destroy(): void {
    this.embedding.kernel.destroy();
    this.k.norm.destroy();
    this.k.attention.destroy();
    this.k.act.destroy();
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}

/** One-shot for tests: encoder layer `i` of a loaded tower on x [tower.tokens, D] (uploaded), read back. */
export async function clipLayerOnGpu(tower: ClipTower, i: number, x: Float32Array): Promise<Float32Array> {
  const D = tower.config.vision.hiddenSize;
  if (x.length !== tower.tokens * D) throw new Error(`clipLayerOnGpu: x has ${x.length} values, expected ${tower.tokens}x${D}`);
  const buf = storageBufferFrom(tower.device, x, 'clip layer x');
  try {
    tower.recordLayer(tower.device, i, buf);
    return await readF32(tower.device, buf, x.length);
  } finally {
    buf.destroy();
  }
}
