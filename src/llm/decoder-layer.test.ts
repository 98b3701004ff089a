// ONE full-size Llama-3.1-8B decoder layer on Dawn (SwiftShader without a GPU) against the reference
// llamaDecoderLayer: hidden 4096, 32 heads x 128, 8 KV heads, FFN 14336, llama3 RoPE (theta 500000, factor 8),
// seeded random f32 weights (218M parameters, 872 MB) uploaded through GpuWeights from a small in-memory
// WeightSource. 3 prefill rows, then 1 decode row attending to the KV cache; positions 600.. (large RoPE angles).
// Output rows and the cached K (after RoPE) and V rows within 1e-4 relative to each tensor's scale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { readF32, storageBufferFrom } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { llamaLayerPrefix } from '../checkpoint/expected-tensors.ts';
import { llamaDecoderLayer, type LlamaLayerWeights } from '../reference/llama.ts';
import { InMemoryWeights, randomUniform, tinyConfig } from '../reference/random-weights.testing.ts';
import { mulberry32, randomF32 } from '../util/seeded-random.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import { DecoderStack } from './decoder-layer.ts';
import { expectRelClose } from './llm.testing.ts';

/** InMemoryWeights that serves row ranges without copying whole tensors (GpuWeights streams rows). */
class RowWeights extends InMemoryWeights {
  async readRowsF32(name: string, start: number, count: number): Promise<Float32Array> {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`tensor not found: ${name}`);
    const cols = t.shape.length === 1 ? t.shape[0]! : t.shape[1]!;
    return t.data.subarray(start * cols, (start + count) * cols);
  }
}

function fullSizeConfig(): LlavaMiniConfig {
  const c = tinyConfig({ llmHidden: 4096, numHeads: 32, numKvHeads: 8, llmLayers: 1, vocabSize: 64 });
  return { ...c, llm: { ...c.llm, intermediateSize: 14336 } };
}

/** One layer's weights: matrices uniform in ±1.5/sqrt(fanIn) (as randomWeights), norm weights 0.8..1.2. */
function layerWeights(config: LlavaMiniConfig, seed: number): LlamaLayerWeights {
  const l = config.llm;
  const H = l.hiddenSize;
  const qd = l.numHeads * l.headDim;
  const kvd = l.numKvHeads * l.headDim;
  const I = l.intermediateSize;
  let s = seed;
  const mat = (out: number, inDim: number) => randomUniform(out * inDim, ++s, -1.5 / Math.sqrt(inDim), 1.5 / Math.sqrt(inDim));
  const norm = () => randomUniform(H, ++s, 0.8, 1.2);
  return { inputNorm: norm(), q: mat(qd, H), k: mat(kvd, H), v: mat(kvd, H), o: mat(H, qd), postNorm: norm(), gate: mat(I, H), up: mat(I, H), down: mat(H, I) };
}

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

describe('DecoderStack: one full-size Llama-3.1-8B layer vs llamaDecoderLayer', () => {
  it('3 prefill rows, then 1 decode row over the KV cache (f32)', async () => {
    const config = fullSizeConfig();
    const c = config.llm;
    expect(c.headDim).toBe(128);
    const H = c.hiddenSize;
    const kvd = c.numKvHeads * c.headDim;
    let t = performance.now();
    const w = layerWeights(config, 4242);
    const source = new RowWeights(config);
    const p = llamaLayerPrefix(0);
    const shapes = { q: [c.numHeads * c.headDim, H], k: [kvd, H], v: [kvd, H], o: [H, c.numHeads * c.headDim], gate: [c.intermediateSize, H], up: [c.intermediateSize, H], down: [H, c.intermediateSize] };
    source.set(`${p}input_layernorm.weight`, [H], w.inputNorm);
    source.set(`${p}post_attention_layernorm.weight`, [H], w.postNorm);
    for (const [k, name] of [['q', 'self_attn.q_proj'], ['k', 'self_attn.k_proj'], ['v', 'self_attn.v_proj'], ['o', 'self_attn.o_proj'], ['gate', 'mlp.gate_proj'], ['up', 'mlp.up_proj'], ['down', 'mlp.down_proj']] as const) {
      source.set(`${p}${name}.weight`, shapes[k], w[k]);
    }
    const genMs = performance.now() - t;

    t = performance.now();
    const weights = new GpuWeights(ctx.device, source, 'f32');
    const stack = await DecoderStack.create(weights, [p], { maxRows: 3, maxPositions: 1024 });
    const uploadMs = performance.now() - t;
    const cache = stack.createCache(8, 'test kv');
    const P0 = 600;
    const positions = storageBufferFrom(ctx.device, Int32Array.from({ length: 4 }, (_, i) => P0 + i), 'positions');
    const rng = mulberry32(7);
    const x1 = randomF32(3 * H, rng, 1);
    const x2 = randomF32(H, rng, 1);
    try {
      const run = async (x: Float32Array, rows: number, positionOffset: number) => {
        ctx.device.queue.writeBuffer(stack.scratch.x, 0, x);
        const encoder = ctx.device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        stack.record(pass, cache, { rows, positions, positionOffset, keep: null });
        pass.end();
        const t0 = performance.now();
        ctx.device.queue.submit([encoder.finish()]);
        const out = await readF32(ctx.device, stack.scratch.x, rows * H);
        return { out, ms: performance.now() - t0 };
      };

      const g1 = await run(x1, 3, 0);
      t = performance.now();
      const r1 = llamaDecoderLayer(w, c, x1, 3, [P0, P0 + 1, P0 + 2]);
      const ref1Ms = performance.now() - t;
      const c1 = expectRelClose(g1.out, r1.out, 'layer out, 3 prefill rows', [3, H]);
      expectRelClose(await readF32(ctx.device, cache.k[0]!, 3 * kvd), r1.k, 'cached K (after RoPE), rows 0..2', [3, kvd]);
      expectRelClose(await readF32(ctx.device, cache.v[0]!, 3 * kvd), r1.v, 'cached V, rows 0..2', [3, kvd]);
      expect(cache.length).toBe(3);

      const g2 = await run(x2, 1, 3);
      t = performance.now();
      const r2 = llamaDecoderLayer(w, c, x2, 1, [P0 + 3], undefined, { k: r1.k, v: r1.v, rows: 3 });
      const ref2Ms = performance.now() - t;
      const c2 = expectRelClose(g2.out, r2.out, 'layer out, decode row over the cache', [1, H]);
      expectRelClose(await readF32(ctx.device, cache.k[0]!, kvd, 3 * kvd), r2.k, 'cached K, row 3', [1, kvd]);
      expectRelClose(await readF32(ctx.device, cache.v[0]!, kvd, 3 * kvd), r2.v, 'cached V, row 3', [1, kvd]);
      expect(cache.length).toBe(4);

      const blocks = weights.get(`${p}mlp.gate_proj.weight`).blocks.length;
      console.log(
        `[full-size layer] weights: generate ${genMs.toFixed(0)} ms, upload + kernels ${uploadMs.toFixed(0)} ms (gate_proj in ${blocks} block(s), ` +
          `maxStorageBufferBindingSize ${ctx.device.limits.maxStorageBufferBindingSize}); GPU: 3 prefill rows ${g1.ms.toFixed(0)} ms, ` +
          `1 decode row ${g2.ms.toFixed(0)} ms; CPU reference: ${ref1Ms.toFixed(0)} ms, ${ref2Ms.toFixed(0)} ms; ` +
          `max abs error of the outputs ${c1.maxAbs.toExponential(2)}, ${c2.maxAbs.toExponential(2)}`,
      );
    } finally {
      positions.destroy();
      cache.destroy();
      stack.destroy();
      weights.destroy();
    }
  });
});
