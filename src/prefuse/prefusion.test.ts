// Pre-fusion on Dawn (SwiftShader without a GPU) with the vision rows' K/V cached, against the reference's full,
// uncached PrefusionReference.run over [G ; Vc ; T] (tiny random model: width 32, 4 heads x 8, 2 KV heads,
// 2 pre-fusion layers, llama3 RoPE). C = 1 with 4 patch rows (chunks of 4 rows: the vision and the text runs
// are both split), and C = 2 with the real 576 patch rows (336 px / 14). One <image> slot (-200) in the prompt.
// V, F and F after appendText within 1e-4 relative to the tensor's scale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBufferFrom } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import { allRows } from '../gpu/tensor.ts';
import { expectRelClose } from '../llm/llm.testing.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { IMAGE_TOKEN_INDEX, PrefusionReference } from '../reference/prefusion.ts';
import { randomWeights, tinyConfig } from '../reference/random-weights.testing.ts';
import { mulberry32, randomF32 } from '../util/seeded-random.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import { PrefusionRuntime } from './prefusion.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

// BOS BOS, a header, the image slot, a question, eot (ids of a vocab of 300).
const PROMPT = [1, 1, 17, 42, 5, IMAGE_TOKEN_INDEX, 9, 250, 31, 77, 2];
const ANSWER_AND_NEXT_TURN = [120, 121, 2, 17, 43, 99];

describe('PrefusionRuntime (vision rows cached) vs PrefusionReference.run', () => {
  for (const { C, imageSize, chunkSize } of [
    { C: 1, imageSize: 28, chunkSize: 4 },
    { C: 2, imageSize: 336, chunkSize: 128 },
  ]) {
    it(`C = ${C}, ${(imageSize / 14) ** 2} patch rows, chunks of ${chunkSize}: V, F, appendText, re-fused text`, async () => {
      const config = tinyConfig({ compressorSize: C, imageSize });
      const H = config.llm.hiddenSize;
      const N = (imageSize / 14) ** 2;
      const source = randomWeights(config, 21 + C);
      const rng = mulberry32(99 + C);
      const G = randomF32(N * H, rng, 1);
      const Vc = randomF32(C * C * H, rng, 1);
      const ref = await PrefusionReference.load(source);

      const weights = new GpuWeights(ctx.device, source, 'f32');
      const pf = await PrefusionRuntime.create(weights, { maxTextRows: 32, chunkSize });
      const gBuf = storageBufferFrom(ctx.device, G, 'G');
      const vcBuf = storageBufferFrom(ctx.device, Vc, 'Vc');
      try {
        let t = performance.now();
        const state = await pf.fuseVision(allRows(gBuf, H), allRows(vcBuf, H));
        const visionMs = performance.now() - t;
        const expected = ref.run(G, Vc, PROMPT);
        expectRelClose(await state.readVisionToken(), expected.visionToken, `V (C=${C})`, [C * C, H]);

        t = performance.now();
        const fused = await pf.fuseText(state, PROMPT);
        const textMs = performance.now() - t;
        expect(fused).toEqual({ buffer: state.fusedText, rowStart: 0, rows: PROMPT.length, cols: H });
        expectRelClose(await state.readFusedText(), expected.fusedText, `F (C=${C})`, [PROMPT.length, H]);

        // Multi-turn: appended rows equal the reference on the concatenated ids; earlier rows unchanged.
        const all = [...PROMPT, ...ANSWER_AND_NEXT_TURN];
        const appended = await pf.appendText(state, ANSWER_AND_NEXT_TURN);
        expect(appended.rowStart).toBe(PROMPT.length);
        expectRelClose(await state.readFusedText(), ref.run(G, Vc, all).fusedText, `F after appendText (C=${C})`, [all.length, H]);

        // A new prompt on the same image reuses the cached vision rows.
        const other = [1, 1, 60, IMAGE_TOKEN_INDEX, 61, 62, 2];
        await pf.fuseText(state, other);
        expectRelClose(await state.readFusedText(), ref.run(G, Vc, other).fusedText, `F of another prompt (C=${C})`, [other.length, H]);

        await expect(pf.appendText(state, new Array(40).fill(5))).rejects.toThrow(/exceed the 32 text rows/);
        console.log(
          `[prefusion C=${C}] vision ${N + C * C} rows ${visionMs.toFixed(1)} ms, text ${PROMPT.length} rows ${textMs.toFixed(1)} ms; ` +
            `state bytes ${state.bytes()}, runtime bytes ${pf.bytes()}`,
        );
        state.destroy();
      } finally {
        gBuf.destroy();
        vcBuf.destroy();
        pf.destroy();
        weights.destroy();
      }
    });
  }
});
