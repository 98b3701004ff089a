// The compressor on the GPU (spec section 3), mirroring src/reference/compressor.ts:
//   x = LN_kv(clip); V = x Wv^T + bv; K = (x + pe_k) Wk^T + bk
//   O = softmax(Q K^T / sqrt(hd)) V over all N keys (compressorHeads heads, no mask); out = O Wo^T + bo  [C^2, D]
// Constants of the model, made once at load:
//   pe_k = bicubic resize of the stored pos_embed (C x C -> sqrt(N) x sqrt(N)), on the CPU (pos-embed.ts);
//   Q = (LN_q(query) + pe_q) Wq^T + bq, on the GPU (it does not depend on the image).
// in_proj_weight [3D, D] holds Wq; Wk; Wv: the kernels bind weights from offset 0, so Wk and Wv are row slices
// copied once on the GPU (sliceRows; Wq's slice is freed after Q is made) and the bias slices uploaded as f32.
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { createStorageBuffer, storageBufferFrom, totalBytes } from '../gpu/buffers.ts';
import { recordCompute, type GpuTarget } from '../gpu/dispatch.ts';
import { LinearKernels, loadF32Tensor, NormKernels, sliceRows, storedValues } from '../gpu/gpu-linear.ts';
import { AttentionKernel } from '../gpu/kernels/attention.ts';
import { AddKernel } from '../gpu/kernels/elementwise.ts';
import { COMPRESSOR_LN_EPS } from '../model/constants.ts';
import type { GpuTensor, GpuWeights } from '../weights/gpu-weights.ts';
import { resizePosEmbed } from './pos-embed.ts';

const P = 'model.compressor.';

export class CompressorGpu {
  /** C^2 output rows. */
  readonly queries: number;

  private constructor(
    readonly device: GPUDevice,
    readonly config: LlavaMiniConfig,
    /** CLIP rows attended to (a square grid). */
    readonly keys: number,
    private readonly w: { lnKvW: GpuTensor; lnKvB: GpuTensor; k: GpuTensor; kb: GpuTensor; v: GpuTensor; vb: GpuTensor; o: GpuTensor; ob: GpuTensor },
    /** Q [C^2, D], pe_k [N, D]; scratch x [N, D], K, V [N, D], O [C^2, D]. */
    private readonly b: { Q: GPUBuffer; peK: GPUBuffer; x: GPUBuffer; K: GPUBuffer; V: GPUBuffer; O: GPUBuffer },
    private readonly k: { linear: LinearKernels; norm: NormKernels; attention: AttentionKernel; add: AddKernel },
    private readonly owned: GPUBuffer[],
  ) {
    this.queries = config.compressorSize ** 2;
  }

  /** Loads the compressor for `keys` CLIP rows; `linear` may be shared (destroy() leaves it alone). */
  static async load(weights: GpuWeights, linear: LinearKernels, keys: number): Promise<CompressorGpu> {
    const device = weights.device;
    const config = weights.source.config;
    const D = config.mmHiddenSize;
    const C = config.compressorSize;
    const C2 = C * C;
    const heads = config.compressorHeads;
    const grid = Math.round(Math.sqrt(keys));
    if (grid * grid !== keys) throw new Error(`compressor: ${keys} CLIP rows do not form a square grid (visionSelectFeature "cls_patch" keeps the class token)`);
    if (D % heads !== 0) throw new Error(`compressor: width ${D} is not divisible by ${heads} heads`);
    const owned: GPUBuffer[] = [];
    const buf = (rows: number, name: string, data?: Float32Array) => {
      const b = data ? storageBufferFrom(device, data, `compressor ${name}`) : createStorageBuffer(device, rows * D * 4, `compressor ${name} [${rows}, ${D}]`);
      owned.push(b);
      return b;
    };

    const inProj = await weights.load(`${P}attn.in_proj_weight`);
    const bias = (start: number) => loadF32Tensor(weights, `${P}attn.in_proj_bias`, owned, { start, count: D });
    const temp: GPUBuffer[] = [];
    const w = {
      lnKvW: await weights.load(`${P}ln_kv.weight`),
      lnKvB: await weights.load(`${P}ln_kv.bias`),
      k: sliceRows(device, inProj, D, D, owned),
      kb: await bias(D),
      v: sliceRows(device, inProj, 2 * D, D, owned),
      vb: await bias(2 * D),
      o: await weights.load(`${P}attn.out_proj.weight`),
      ob: await loadF32Tensor(weights, `${P}attn.out_proj.bias`, owned),
    };
    const q = { w: sliceRows(device, inProj, 0, D, temp), b: await loadF32Tensor(weights, `${P}attn.in_proj_bias`, temp, { start: 0, count: D }) };
    const lnQW = await weights.load(`${P}ln_q.weight`);
    const lnQB = await weights.load(`${P}ln_q.bias`);

    const norm = new NormKernels(device);
    // Its shape never changes (C^2 queries over the CLIP grid): only the attention path that shape takes.
    const attention = new AttentionKernel(device, { headDim: D / heads, onlyFor: { nq: C2, numHeads: heads } });
    const kernels = { linear, norm, attention, add: new AddKernel(device) };
    await Promise.all([
      linear.prepare([w.k, w.v], [keys]),
      linear.prepare([q.w, w.o], [C2]),
      norm.prepare('layernorm', [w.lnKvW, lnQW]),
      kernels.attention.init(),
      kernels.add.init(),
    ]);

    // The stored pos_embed (as the policy holds it) is pe_q; pe_k is its bicubic resize to the CLIP grid.
    const peQ = await storedValues(weights, `${P}pos_embed`);
    const peK = buf(keys, 'pe_k', resizePosEmbed(peQ, C, grid, D));
    const Q = buf(C2, 'Q');
    const query = storageBufferFrom(device, await storedValues(weights, `${P}query`), 'compressor query');
    const qIn = storageBufferFrom(device, peQ, 'compressor q_in');
    temp.push(query, qIn);
    // q_in = pe_q + LN_q(query): the norm goes to Q (free until the projection), then is added into q_in.
    recordCompute(device, 'compressor Q', (pass) => {
      norm.record(pass, 'layernorm', query, lnQW, lnQB, Q, C2, COMPRESSOR_LN_EPS);
      kernels.add.run(pass, Q, qIn, C2 * D);
      linear.record(pass, qIn, q.w, q.b, Q, C2);
    });
    for (const t of temp) t.destroy(); // deferred by WebGPU until the submitted work is done

    const b = { Q, peK, x: buf(keys, 'x'), K: buf(keys, 'K'), V: buf(keys, 'V'), O: buf(C2, 'O') };
    return new CompressorGpu(device, config, keys, w, b, kernels, owned);
  }

  /**
   * Records out rows [outRow, outRow + C^2) (width D) = the compressor over clip rows [0, N) of `clip`.
   * `out` may be `clip` itself (rows after the CLIP rows).
   */
  record(target: GpuTarget, clip: GPUBuffer, out: GPUBuffer, outRow: number): void {
    const D = this.config.mmHiddenSize;
    const N = this.keys;
    const C2 = this.queries;
    const { w, b } = this;
    const { linear, norm, attention, add } = this.k;
    recordCompute(target, 'compressor', (pass) => {
      norm.record(pass, 'layernorm', clip, w.lnKvW, w.lnKvB, b.x, N, COMPRESSOR_LN_EPS);
      linear.record(pass, b.x, w.v, w.vb, b.V, N);
      add.run(pass, b.peK, b.x, N * D); // x becomes k_in = x + pe_k
      linear.record(pass, b.x, w.k, w.kb, b.K, N);
      attention.run(pass, b.Q, b.K, b.V, b.O, { nq: C2, nk: N, numHeads: this.config.compressorHeads });
      linear.record(pass, b.O, w.o, w.ob, out, C2, { yColOffset: outRow * D, yRowStride: D });
    });
  }

  /** GPU bytes this stage owns: activations and f32 copies of its small tensors (weights count in GpuWeights). */
  bytes(): number {
    return totalBytes(this.owned);
  }

  destroy(): void {
    this.k.norm.destroy();
    this.k.attention.destroy();
    this.k.add.destroy();
    for (const buf of this.owned) buf.destroy();
    this.owned.length = 0;
  }
}
