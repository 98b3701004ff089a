// Bad input is refused before anything is written, with a message that names the problem.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { convertDir, tinyCheckpoint, tmp } from './convert.testing.ts';

async function isEmpty(dir: string): Promise<boolean> {
  return (await readdir(dir)).length === 0;
}

async function editConfig(dir: string, patch: Record<string, unknown>): Promise<void> {
  const p = join(dir, 'config.json');
  await writeFile(p, JSON.stringify({ ...JSON.parse(await readFile(p, 'utf8')), ...patch }));
}

describe('converter input errors', () => {
  it('config.json disagreeing with a tensor: names the tensor, the expected and the found shape', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1 });
    await editConfig(ckpt, { intermediate_size: 128 }); // the weights are 96 wide
    const out = await tmp();
    await expect(convertDir(ckpt, out)).rejects.toThrow(
      /tensor "model\.prefusion_layers\.0\.mlp\.gate_proj\.weight" has shape \[96, 64\].*implies \[128, 64\]/,
    );
    expect(await isEmpty(out)).toBe(true);
  });

  it('an LLM width that MLC cannot quantize (K % 32 != 0) names the tensor', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1, intermediate: 80 });
    const out = await tmp();
    await expect(convertDir(ckpt, out)).rejects.toThrow(/tensor "model\.layers\.0\.mlp\.down_proj\.weight": its input width 80 is not a multiple of 32/);
    expect(await isEmpty(out)).toBe(true);
    // the image-side pack alone does not need it (pre-fusion falls back to f16 per the policy)
    await convertDir(ckpt, out, { outputs: ['mm-q4'] });
    expect((await readdir(out)).sort()).toEqual(['mm-q4']);
  });

  it('no CLIP tower in the checkpoint and no CLIP folder: says so and how to give one', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1, visionTower: false });
    const out = await tmp();
    await expect(convertDir(ckpt, out, { clipOptionName: '--clip DIR' })).rejects.toThrow(
      /has no CLIP vision tower .*openai\/clip-vit-large-patch14-336 folder \(--clip DIR\)/,
    );
    expect(await isEmpty(out)).toBe(true);
  });

  it('a missing tensor is named', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1, shards: 2 });
    const index = join(ckpt, 'model.safetensors.index.json');
    const json = JSON.parse(await readFile(index, 'utf8'));
    delete json.weight_map['model.layers.0.mlp.up_proj.weight'];
    await writeFile(index, JSON.stringify(json));
    const out = await tmp();
    await expect(convertDir(ckpt, out)).rejects.toThrow(/missing tensor "model\.layers\.0\.mlp\.up_proj\.weight"/);
    expect(await isEmpty(out)).toBe(true);
  });
});
