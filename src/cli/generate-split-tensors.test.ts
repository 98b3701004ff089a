// The row-block splitting path end to end: a tiny checkpoint whose token embedding and lm_head are larger than
// a real GPU's 128 MiB storage-buffer binding (vocab 128256 x hidden 576: 295 MB in f32, 148 MB in f16), through
// `generate --check` (the same greedy tokens as the CPU reference on the weights as the GPU holds them) at every
// precision this device runs. The test says which stored tensors exceed this adapter's binding limit: on lavapipe
// (128 MiB) f32 and f16 are split into row blocks; on an adapter with 1 GiB bindings nothing is, and the check
// still has to agree.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTinyCheckpoint } from '../../scripts/tiny-checkpoint/generate.ts';
import { rowBytes } from '../gpu/storage.ts';
import { cli, cliDeviceHasF16, gradientPng } from './cli.testing.ts';

const VOCAB = 128256;
const HIDDEN = 576;

describe('generate --check with an embedding and lm_head over 128 MiB', () => {
  let dir: string;
  let model: string;
  let image: string;
  let hasF16: boolean;
  let bindingLimit: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llava-split-'));
    model = join(dir, 'model');
    // Every other width stays tiny: the vocabulary x hidden tensors are what this test is about.
    await makeTinyCheckpoint({ out: model, seed: 11, hidden: HIDDEN, heads: 9, kvHeads: 3, intermediate: 256, layers: 1, prefusionLayers: 1, clipLayers: 1, dtype: 'f32' });
    image = join(dir, 'photo.png');
    await writeFile(image, gradientPng(120, 90));
    hasF16 = await cliDeviceHasF16();
    const gpu = await cli(['gpu', '--json']);
    bindingLimit = (JSON.parse(gpu.stdout) as { limits: { maxStorageBufferBindingSize: number } }).limits.maxStorageBufferBindingSize;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  for (const precision of ['f32', 'f16', 'q4'] as const) {
    it(`${precision}: --check agrees with the CPU reference`, async ({ skip }) => {
      if (precision === 'f16' && !hasF16) skip('the device has no shader-f16 (f16 is refused there: linear-f16 tests)');
      const storage = precision === 'q4' ? (hasF16 ? 'q4f16' : 'q4f32') : precision;
      const tensorBytes = rowBytes(storage, HIDDEN).data * VOCAB;
      console.info(`${precision}: embedding / lm_head stored ${storage}, ${tensorBytes} bytes each; binding limit ${bindingLimit}: ${tensorBytes > bindingLimit ? 'split into row blocks' : 'one binding'}`);
      const r = await cli(['generate', '--model', model, '--image', image, '--prompt', 'What is this?', '--precision', precision, '--max-new-tokens', '4', '--check']);
      expect(r.code, r.stderr).toBe(0);
      for (const name of ['fused_text', 'llm_input', 'logits0']) expect(r.stderr).toMatch(new RegExp(`${name} .* ok`));
      expect(r.stderr).toMatch(/check: OK/);
    });
  }
});
