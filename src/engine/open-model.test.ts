// Opening a converted folder (engine/open-model.ts): the precision it loads at is the one it stores (q4 for an int4
// LLM, f32 for an unquantized q0f32 one), and who runs its LLM by default: WebLLM's stock library only for the 8B
// shapes in an int4 format; an unquantized model defaults to our kernels (WebLLM only when asked, with its library).
import { describe, expect, it } from 'vitest';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { convertDir, tinyCheckpoint, tmp } from '../convert/convert.testing.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { fitsStockLlamaLibrary, llmRuntimeFor, loadPrecision, openModel } from './open-model.ts';

const LLAMA_31_8B = { hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8, vocabSize: 128256, tieWordEmbeddings: false };

describe('open-model: converted folders', () => {
  it('an int4 folder loads at q4, an unquantized q0f32 one at f32 (with its f16 pack); WebLLM by default only for int4 8B shapes', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1, dtype: 'f32' });
    const int4 = await tmp();
    await convertDir(ckpt, int4, { outputs: ['llm-q4f32_1', 'mm-q4'] });
    const dense = await tmp();
    await convertDir(ckpt, dense, { outputs: ['llm-q0f32', 'mm-f16'] });

    const q4 = await openModel(nodeCheckpointFiles(int4), { hasF16: false });
    expect([q4.format, q4.precisions, loadPrecision(q4, 'f32')]).toEqual(['converted', ['q4'], 'q4']);
    const q0 = await openModel(nodeCheckpointFiles(dense), { hasF16: false });
    expect([q0.format, q0.precisions, loadPrecision(q0, 'q4')]).toEqual(['converted', ['f32'], 'f32']);
    // A stored model names its format.
    expect((await openModel(nodeCheckpointFiles(dense), { hasF16: true, llm: 'q0f32' })).precisions).toEqual(['f32']);

    // The tiny LLM fits no stock library: automatic picks our kernels, an explicit WebLLM choice is kept.
    for (const m of [q4, q0]) {
      expect(llmRuntimeFor(m, 'auto', true)).toBe('native');
      expect(llmRuntimeFor(m, 'webllm', true)).toBe('webllm');
      expect(llmRuntimeFor(m, 'webllm', false)).toBe('native'); // not in WebLLM's cache: only ours can read it
      expect(llmRuntimeFor(m, 'native', true)).toBe('native');
    }
  });

  it('fitsStockLlamaLibrary: Llama-3.1-8B shapes with an untied head, in q4f16_1 or q4f32_1 only', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1 });
    const { source } = await openModel(nodeCheckpointFiles(ckpt), { hasF16: false });
    const config = source.config;
    const with8B = (llm: Partial<LlavaMiniConfig['llm']>): LlavaMiniConfig => ({ ...config, llm: { ...config.llm, ...LLAMA_31_8B, ...llm } });
    expect(fitsStockLlamaLibrary(config, 'q4f16_1')).toBe(false);
    expect(fitsStockLlamaLibrary(with8B({}), 'q4f16_1')).toBe(true);
    expect(fitsStockLlamaLibrary(with8B({}), 'q4f32_1')).toBe(true);
    expect(fitsStockLlamaLibrary(with8B({}), 'q0f32')).toBe(false);
    expect(fitsStockLlamaLibrary(with8B({}), 'q0f16')).toBe(false);
    expect(fitsStockLlamaLibrary(with8B({ tieWordEmbeddings: true }), 'q4f16_1')).toBe(false);
    expect(fitsStockLlamaLibrary(with8B({ numLayers: 16 }), 'q4f16_1')).toBe(false);
  });
});
