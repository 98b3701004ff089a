import { describe, expect, it } from 'vitest';
import { LlamaReference } from './llama.ts';
import { assembleLlmInput, generateReference, imageSlots, meanRows, ReferenceLlavaMini } from './pipeline.ts';
import { PrefusionReference } from './prefusion.ts';
import { randomPixelValues, randomWeights, tinyConfig } from './random-weights.testing.ts';

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('assembleLlmInput', () => {
  it('F[0:k] ++ V ++ F[k+1:], one block per slot, truncated', () => {
    const ids = [1, 5, -200, 7, -200, 9];
    expect(imageSlots(ids)).toEqual([2, 4]);
    const F = Float32Array.from([0, 1, 2, 3, 4, 5]); // H = 1
    const V1 = Float32Array.from([10, 11]);
    const V2 = Float32Array.from([20]);
    const a = assembleLlmInput(F, [V1, V2], ids);
    expect(a.rows).toBe(7);
    expect([...a.embeds]).toEqual([0, 1, 10, 11, 3, 20, 5]);
    const t = assembleLlmInput(F, [V1, V2], ids, 4);
    expect(t.rows).toBe(4);
    expect([...t.embeds]).toEqual([0, 1, 10, 11]);
    expect(() => assembleLlmInput(F, V1, ids)).toThrow(/2 image slots/);
    expect([...meanRows([Float32Array.from([1, 2]), Float32Array.from([2, 5])])]).toEqual([1.5, 3.5]);
  });
});

async function checkKvAgainstReprefill(w: ReturnType<typeof randomWeights>, llmInput: Float32Array, rows: number, tokens: number[], stepLogits: Float32Array[]): Promise<void> {
  const H = w.config.llm.hiddenSize;
  const llm = await LlamaReference.load(w);
  for (let s = 1; s < tokens.length; s++) {
    llm.reset();
    const full = new Float32Array((rows + s) * H);
    full.set(llmInput);
    full.set(llm.embed(tokens.slice(0, s)), rows * H);
    expect(maxAbsDiff(llm.prefill(full, rows + s), stepLogits[s]!)).toBeLessThan(1e-5);
  }
}

describe('end-to-end on a tiny random model', () => {
  for (const C of [1, 2]) {
    it(`C = ${C}: deterministic, shapes, KV-cached decode = full re-prefill`, async () => {
      const cfg = tinyConfig({ compressorSize: C });
      const w = randomWeights(cfg, 10 + C);
      const pv = randomPixelValues(cfg, 3);
      const ids = [1, 1, 5, -200, 7, 8, 9];
      const H = cfg.llm.hiddenSize;
      const run = () => generateReference({ weights: w, pixelValues: pv, promptIds: ids, maxNewTokens: 6, stopIds: [], keepAllLogits: true });
      const r1 = await run();
      const r2 = await run();
      expect(r1.tokens).toEqual(r2.tokens);
      expect([...r1.intermediates.logits0]).toEqual([...r2.intermediates.logits0]);
      expect(r1.tokens.length).toBe(6);
      expect(r1.stopped).toBe('length');
      const im = r1.intermediates;
      expect(im.clip.length).toBe(4 * cfg.vision.hiddenSize);
      expect(im.compressed.length).toBe(C * C * H);
      expect(im.visionToken.length).toBe(C * C * H);
      expect(im.fusedText.length).toBe(ids.length * H);
      expect(im.llmInputRows).toBe(ids.length - 1 + C * C);
      // the vision token(s) replace the slot; text rows are the fused ones
      expect([...im.llmInput.subarray(3 * H, (3 + C * C) * H)]).toEqual([...im.visionToken]);
      expect([...im.llmInput.subarray(0, 3 * H)]).toEqual([...im.fusedText.subarray(0, 3 * H)]);
      expect([...im.llmInput.subarray((3 + C * C) * H)]).toEqual([...im.fusedText.subarray(4 * H)]);
      // the pad row of F is the plain embedding of max(-200, 0) = 0
      const pre = await PrefusionReference.load(w);
      expect([...im.fusedText.subarray(3 * H, 4 * H)]).toEqual([...pre.textEmbeddings([0])]);
      await checkKvAgainstReprefill(w, im.llmInput, im.llmInputRows, r1.tokens, r1.stepLogits!);
    });
  }

  it('stops on a stop id and includes it; truncation to tokenizerModelMaxLength', async () => {
    const cfg = tinyConfig({ compressorSize: 1 });
    const w = randomWeights(cfg, 21);
    const model = await ReferenceLlavaMini.load(w);
    const pv = randomPixelValues(cfg, 1);
    const ids = [1, 1, 5, -200, 7, 8, 9];
    const free = await generateReference({ weights: w, model, pixelValues: pv, promptIds: ids, maxNewTokens: 8, stopIds: [] });
    const i = free.tokens.findIndex((t, n) => free.tokens.indexOf(t) === n && n > 0);
    const stop = free.tokens[i]!;
    const r = await generateReference({ weights: w, model, pixelValues: pv, promptIds: ids, maxNewTokens: 8, stopIds: [stop] });
    expect(r.stopped).toBe('eos');
    expect(r.tokens).toEqual(free.tokens.slice(0, free.tokens.indexOf(stop) + 1));
    const none = await generateReference({ weights: w, model, pixelValues: pv, promptIds: ids, maxNewTokens: 0 });
    expect(none.tokens).toEqual([]);

    const short = randomWeights(tinyConfig({ compressorSize: 1, tokenizerModelMaxLength: 4 }), 21);
    const t = await generateReference({ weights: short, pixelValues: pv, promptIds: ids, maxNewTokens: 1, stopIds: [] });
    expect(t.intermediates.llmInputRows).toBe(4);
    expect([...t.intermediates.llmInput]).toEqual([...free.intermediates.llmInput.subarray(0, 4 * cfg.llm.hiddenSize)]);
  });

  it('two images: text rows are the mean of per-image fused rows, each V at its own slot', async () => {
    const cfg = tinyConfig({ compressorSize: 2 });
    const w = randomWeights(cfg, 31);
    const H = cfg.llm.hiddenSize;
    const pvs = [randomPixelValues(cfg, 100), randomPixelValues(cfg, 200)];
    const ids = [1, 1, 5, -200, 7, -200, 8, 9];
    const r = await generateReference({ weights: w, pixelValues: pvs, promptIds: ids, maxNewTokens: 4, stopIds: [], keepAllLogits: true });
    const im = r.intermediates;
    expect(im.images.length).toBe(2);
    const model = await ReferenceLlavaMini.load(w);
    const per = pvs.map((p) => {
      const e = model.encodeImage(p);
      return model.prefusion.run(e.G, e.compressed, ids);
    });
    expect([...im.images[1]!.visionToken]).toEqual([...per[1]!.visionToken]);
    const mean = meanRows([per[0]!.fusedText, per[1]!.fusedText]);
    expect([...im.fusedText]).toEqual([...mean]);
    // layout: F0 F1 F2 | V_a (4 rows) | F4 | V_b (4 rows) | F6 F7
    expect(im.llmInputRows).toBe(6 + 8);
    expect([...im.llmInput.subarray(3 * H, 7 * H)]).toEqual([...per[0]!.visionToken]);
    expect([...im.llmInput.subarray(7 * H, 8 * H)]).toEqual([...mean.subarray(4 * H, 5 * H)]);
    expect([...im.llmInput.subarray(8 * H, 12 * H)]).toEqual([...per[1]!.visionToken]);
    await checkKvAgainstReprefill(w, im.llmInput, im.llmInputRows, r.tokens, r.stepLogits!);

    // video: both frames' V at the one slot, text rows averaged
    const frames = pvs.map((p) => {
      const e = model.encodeImage(p);
      return { G: e.G, Vc: e.compressed };
    });
    const vid = model.fuseFrames(frames, [1, 1, 5, -200, 7, 8, 9]);
    const perV = frames.map((f) => model.prefusion.run(f.G, f.Vc, [1, 1, 5, -200, 7, 8, 9]));
    expect(vid.llmInputRows).toBe(6 + 8);
    expect([...vid.llmInput.subarray(3 * H, 7 * H)]).toEqual([...perV[0]!.visionToken]);
    expect([...vid.llmInput.subarray(7 * H, 11 * H)]).toEqual([...perV[1]!.visionToken]);
    expect([...vid.llmInput.subarray(11 * H)]).toEqual([...meanRows(perV.map((x) => x.fusedText)).subarray(4 * H)]);

    // one image through the multi-image path is exactly the single-image path
    const single = await generateReference({ weights: w, pixelValues: [pvs[0]!], promptIds: [1, 1, 5, -200, 7, 8, 9], maxNewTokens: 4, stopIds: [] });
    const direct = await generateReference({ weights: w, pixelValues: pvs[0]!, promptIds: [1, 1, 5, -200, 7, 8, 9], maxNewTokens: 4, stopIds: [] });
    expect([...single.intermediates.llmInput]).toEqual([...direct.intermediates.llmInput]);
    expect(single.tokens).toEqual(direct.tokens);
  });
});
