import { describe, expect, it } from 'vitest';
import { prefusionLayerPrefix } from '../checkpoint/expected-tensors.ts';
import { LlamaReference, llamaDecoderLayer, loadLlamaLayer } from './llama.ts';
import { randomUniform, randomWeights, tinyConfig } from './random-weights.testing.ts';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('Llama decoder layer', () => {
  it('a past KV block + new rows equals running all rows at once (default causal mask)', async () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 5);
    const lw = await loadLlamaLayer(w, prefusionLayerPrefix(0));
    const H = cfg.llm.hiddenSize;
    const x = randomUniform(5 * H, 17);
    const all = llamaDecoderLayer(lw, cfg.llm, x, 5, [0, 1, 2, 3, 4]);
    const first = llamaDecoderLayer(lw, cfg.llm, x.subarray(0, 3 * H), 3, [0, 1, 2]);
    const rest = llamaDecoderLayer(lw, cfg.llm, x.slice(3 * H), 2, [3, 4], undefined, { k: first.k, v: first.v, rows: 3 });
    expect(maxAbsDiff(all.out.subarray(0, 3 * H), first.out)).toBe(0);
    expect(maxAbsDiff(all.out.subarray(3 * H), rest.out)).toBeLessThan(1e-6);
  });

  it('a row that sees only itself: attention output is its own V (positions do not matter)', async () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 6);
    const lw = await loadLlamaLayer(w, prefusionLayerPrefix(1));
    const H = cfg.llm.hiddenSize;
    const x = randomUniform(2 * H, 4);
    const onlySelf = (i: number, j: number): boolean => i === j;
    const a = llamaDecoderLayer(lw, cfg.llm, x, 2, [0, 1], onlySelf);
    const b = llamaDecoderLayer(lw, cfg.llm, x, 2, [7, 300], onlySelf);
    expect(maxAbsDiff(a.out, b.out)).toBeLessThan(1e-6);
  });
});

describe('LlamaReference (KV cache)', () => {
  it('cached decode logits equal a full re-prefill; rollback replays exactly', async () => {
    const cfg = tinyConfig({ tieWordEmbeddings: true });
    const w = randomWeights(cfg, 8);
    const llm = await LlamaReference.load(w);
    const H = cfg.llm.hiddenSize;
    const prompt = randomUniform(6 * H, 23);
    const l0 = llm.prefill(prompt, 6);
    expect(l0.length).toBe(cfg.llm.vocabSize);
    expect(llm.length).toBe(6);
    const la = llm.decode(17);
    const lb = llm.decode(250);
    expect(llm.length).toBe(8);

    const fresh = await LlamaReference.load(w);
    const full = new Float32Array(8 * H);
    full.set(prompt);
    full.set(fresh.embed([17, 250]), 6 * H);
    expect(maxAbsDiff(fresh.prefill(full, 8), lb)).toBeLessThan(1e-5);
    fresh.reset();
    expect(maxAbsDiff(fresh.prefill(full.subarray(0, 7 * H), 7), la)).toBeLessThan(1e-5);

    llm.rollback(6);
    expect(llm.length).toBe(6);
    expect([...llm.decode(17)]).toEqual([...la]);
    expect(() => llm.rollback(9)).toThrow();
    expect(() => llm.embed([300])).toThrow(/token id 300/);
  });
});
