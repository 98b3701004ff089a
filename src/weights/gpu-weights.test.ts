// Weight upload: every tensor lands on the GPU bit-identical to the CPU encoding of its policy, big tensors
// are split into row blocks under the binding limit, and bytes are counted per model part.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBuffer } from '../gpu/buffers.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { randomWeights, tinyConfig } from '../reference/random-weights.testing.ts';
import { encodeRows } from '../gpu/storage.ts';
import { GpuWeights } from './gpu-weights.ts';
import { dequantizedSource } from './dequantized-source.ts';
import type { Precision } from '../precision/policy.ts';

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('GpuWeights', () => {
  let device: GPUDevice;
  beforeAll(async () => {
    device = (await createNodeGpu()).device;
  });
  afterAll(() => device.destroy());

  const source = randomWeights(tinyConfig({ llmHidden: 64 }), 3);

  async function expectUploaded(w: GpuWeights, name: string): Promise<void> {
    const t = w.get(name);
    const values = await source.readF32(name);
    for (const block of t.blocks) {
      const rows = values.subarray(block.rowStart * t.cols, (block.rowStart + block.rows) * t.cols);
      const enc = encodeRows(t.storage, rows, block.rows, t.cols);
      const data = new Uint8Array(await readBuffer(device, block.data, Math.ceil(enc.data.byteLength / 4) * 4)).subarray(0, enc.data.byteLength);
      expect({ name, block: block.rowStart, first: firstDiff(data, enc.data) }).toEqual({ name, block: block.rowStart, first: -1 });
      if (enc.scales) {
        const scales = new Uint8Array(await readBuffer(device, block.scales!, Math.ceil(enc.scales.byteLength / 4) * 4)).subarray(0, enc.scales.byteLength);
        expect(firstDiff(scales, enc.scales)).toBe(-1);
      }
    }
  }

  for (const precision of ['f32', 'q4'] as Precision[]) {
    it(`uploads every used tensor at ${precision} exactly as encoded, and counts bytes per part`, async () => {
      const w = new GpuWeights(device, source, precision);
      await w.loadAll();
      for (const name of ['model.embed_tokens.weight', 'model.layers.0.mlp.down_proj.weight', 'model.compressor.query', 'model.norm.weight']) {
        await expectUploaded(w, name);
      }
      const down = w.plan('model.layers.0.mlp.down_proj.weight');
      // int4 scales are f16 where the device has shader-f16 (q4f16_1), else f32 (q4f32_1).
      expect(down.storage).toBe(precision === 'f32' ? 'f32' : device.features.has('shader-f16') ? 'q4f16' : 'q4f32');
      const parts = w.bytesByPart();
      for (const part of ['vision', 'projector', 'compressor', 'prefusion', 'llm'] as const) expect(parts[part]).toBeGreaterThan(0);
      w.destroy();
    });
  }

  it('splits a tensor over the binding limit into row blocks', async () => {
    const w = new GpuWeights(device, source, 'f32', { maxBindingBytes: 4096 });
    const t = await w.load('model.embed_tokens.weight');
    const rowsPerBlock = Math.floor(4096 / (t.cols * 4));
    expect(t.blocks.length).toBe(Math.ceil(t.rows / rowsPerBlock));
    expect(t.blocks.every((b) => b.data.size <= 4096)).toBe(true);
    await expectUploaded(w, 'model.embed_tokens.weight');
    w.destroy();
  });

  it('the dequantized source equals what the GPU holds, decoded', async () => {
    const deq = dequantizedSource(source, 'q4', false);
    const name = 'model.layers.1.self_attn.q_proj.weight';
    const exact = await source.readF32(name);
    const approx = await deq.readF32(name);
    expect(approx).not.toEqual(exact);
    let worst = 0;
    for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs(exact[i]! - approx[i]!));
    // int4 with a zero point of 7: at most half a step, max|w| / 7 / 2, per group.
    const maxAbs = exact.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(worst).toBeLessThanOrEqual(maxAbs / 14 + 1e-7);
  });
});
