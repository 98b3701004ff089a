import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../src/checkpoint/checkpoint.ts';
import { VISION_PREFIX } from '../../src/checkpoint/expected-tensors.ts';
import { nodeCheckpointFiles } from '../../src/node/file-source.ts';
import { parseArgs } from '../make-tiny-checkpoint.ts';
import { assignShards, makeTinyCheckpoint } from './generate.ts';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'llava-mini-tiny-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('makeTinyCheckpoint', () => {
  it('default sizes: real vocab, 576 vision tokens, bf16 LLM, f32 CLIP with every layer', async () => {
    const out = await tmp();
    const s = await makeTinyCheckpoint({ out });
    expect(s.tensorCount).toBeGreaterThan(100);
    expect(s.files.sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    const ck = await openCheckpoint(nodeCheckpointFiles(out));
    const c = ck.config;
    expect(c.llm.vocabSize).toBe(128256);
    expect(c.llm.ropeScaling).toEqual({ factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
    expect(c.llm.ropeTheta).toBe(500000);
    expect((c.vision.imageSize / c.vision.patchSize) ** 2).toBe(576);
    expect(c.visionLayersUsed).toBe(2);
    expect(c.compressorSize).toBe(1);
    expect(c.prefusionLayerNum).toBe(2);
    expect(c.eosTokenIds).toEqual([128001, 128008, 128009]);
    expect(ck.info('model.embed_tokens.weight')).toEqual({ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [128256, 128] });
    expect(ck.info('lm_head.weight').dtype).toBe('BF16');
    expect(ck.info(`${VISION_PREFIX}encoder.layers.2.mlp.fc2.weight`)).toMatchObject({ dtype: 'F32', shape: [256, 512] });
    expect(ck.has(`${VISION_PREFIX}post_layernorm.bias`)).toBe(true);
    expect(ck.info(`${VISION_PREFIX}embeddings.position_embedding.weight`).shape).toEqual([577, 256]);
    // weights are O(1)-scaled: unit embeddings, 1/sqrt(fan_in) matrices, norms near 1
    const row = await ck.readRowsF32('model.embed_tokens.weight', 128000, 1);
    const std = Math.sqrt(row.reduce((a, v) => a + v * v, 0) / row.length);
    expect(std).toBeGreaterThan(0.6);
    expect(std).toBeLessThan(1.5);
    const norm = await ck.readF32('model.norm.weight');
    expect(Math.min(...norm)).toBeGreaterThan(0.7);
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    expect(config).toMatchObject({
      architectures: ['LlavaMiniLlamaForCausalLM'],
      model_type: 'llava_mini_llama',
      mm_projector_type: 'mlp2x_gelu',
      mm_vision_select_layer: -2,
      mm_vision_select_feature: 'patch',
      mm_vision_tower: 'openai/clip-vit-large-patch14-336',
      mm_use_im_start_end: false,
      mm_use_im_patch_token: false,
      image_aspect_ratio: 'square',
      tokenizer_model_max_length: 2048,
      torch_dtype: 'bfloat16',
      vision_config: { hidden_size: 256, num_hidden_layers: 3, hidden_act: 'quick_gelu' },
    });
  });

  it('tokenEmbeddingStd scales embed_tokens only (a tied head with it); the default keeps unit scale', async () => {
    const out = await tmp();
    const small = { layers: 1, prefusionLayers: 1, clipLayers: 2, imageSize: 28, vocab: 512, tieWordEmbeddings: true };
    await makeTinyCheckpoint({ ...small, out, dtype: 'f32', tokenEmbeddingStd: 0.02 });
    const ck = await openCheckpoint(nodeCheckpointFiles(out));
    const rows = await ck.readRowsF32('model.embed_tokens.weight', 0, 64);
    const std = Math.sqrt(rows.reduce((a, v) => a + v * v, 0) / rows.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
    expect(ck.has('lm_head.weight')).toBe(false);
    // Same seed at unit scale: the same draws, 50 times larger; every other tensor byte-identical.
    const unit = await tmp();
    await makeTinyCheckpoint({ ...small, out: unit, dtype: 'f32' });
    const ref = await openCheckpoint(nodeCheckpointFiles(unit));
    const refRows = await ref.readRowsF32('model.embed_tokens.weight', 0, 64);
    for (let i = 0; i < 8; i++) expect(rows[i]!).toBeCloseTo(refRows[i]! * 0.02, 6);
    expect(await ck.readF32('model.layers.0.self_attn.q_proj.weight')).toEqual(await ref.readF32('model.layers.0.self_attn.q_proj.weight'));
    await expect(makeTinyCheckpoint({ ...small, out, tokenEmbeddingStd: 0 })).rejects.toThrow(/tokenEmbeddingStd must be a positive number/);
  });

  it('rejects impossible options', async () => {
    const out = await tmp();
    await expect(makeTinyCheckpoint({ out, clipHidden: 200 })).rejects.toThrow(/mm_hidden_size 200 is not divisible by 128/);
    await expect(makeTinyCheckpoint({ out, hidden: 100, heads: 3 })).rejects.toThrow(/hidden 100 is not divisible by heads 3/);
    await expect(makeTinyCheckpoint({ out, shards: 100000 })).rejects.toThrow(/--shards 100000 is more than the \d+ tensors/);
  });
});

describe('assignShards', () => {
  it('makes contiguous, non-empty, balanced shards', () => {
    const cases: Array<[number[], number]> = [
      [[1, 1, 100, 1, 100, 1], 3],
      [[5, 5, 5, 5], 4],
      [[100, 1, 1, 1], 3],
      [[1, 2, 3], 1],
      [[3, 3, 3, 3, 3, 3, 3, 3], 4],
    ];
    for (const [sizes, n] of cases) {
      const a = assignShards(sizes, n);
      expect(a[0]).toBe(0);
      expect(a[a.length - 1]).toBe(n - 1);
      for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBeGreaterThanOrEqual(0);
      for (let i = 1; i < a.length; i++) expect(a[i]! - a[i - 1]!).toBeLessThanOrEqual(1);
    }
    expect(assignShards([5, 5, 5, 5], 4)).toEqual([0, 1, 2, 3]);
    expect(assignShards([3, 3, 3, 3, 3, 3, 3, 3], 4)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
  });
});

describe('make-tiny-checkpoint CLI', () => {
  it('parses flags', () => {
    expect(parseArgs(['--out', 'x', '--hidden=64', '--dtype', 'f16', '--shards', '2', '--tie-word-embeddings', '--vision-select-layer', '-1'])).toEqual({
      out: 'x',
      hidden: 64,
      dtype: 'f16',
      shards: 2,
      tieWordEmbeddings: true,
      visionSelectLayer: -1,
    });
    expect(() => parseArgs(['--bogus'])).toThrow(/unknown argument "--bogus"/);
    expect(() => parseArgs(['--layers', 'two'])).toThrow(/--layers must be an integer/);
    expect(() => parseArgs(['--dtype', 'fp8'])).toThrow(/--dtype must be f32, f16 or bf16/);
    expect(parseArgs(['--token-embedding-std', '0.02'])).toEqual({ tokenEmbeddingStd: 0.02 });
    expect(() => parseArgs(['--token-embedding-std', '-1'])).toThrow(/--token-embedding-std must be a positive number/);
  });

  it('runs as `node scripts/make-tiny-checkpoint` from another folder', async () => {
    const out = await tmp();
    const bin = join(ROOT, 'scripts/make-tiny-checkpoint');
    const help = await run(process.execPath, [bin, '--help'], { cwd: tmpdir() });
    expect(help.stdout).toMatch(/--compressor-size N/);
    const r = await run(
      process.execPath,
      [bin, '--out', out, '--vocab', '500', '--hidden', '64', '--clip-hidden', '128', '--clip-intermediate', '128', '--image-size', '28', '--tie-word-embeddings'],
      { cwd: tmpdir() },
    );
    expect(r.stdout).toMatch(new RegExp(`^wrote ${out}: \\d+ bytes \\([\\d.]+ MB\\), \\d+ tensors, 5 files`));
    const ck = await openCheckpoint(nodeCheckpointFiles(out));
    expect(ck.has('lm_head.weight')).toBe(false);
    expect(ck.config.llm.tieWordEmbeddings).toBe(true);
    expect((await readdir(out)).length).toBe(5);
    await expect(run(process.execPath, [bin, '--vocab', '5'], { cwd: tmpdir() })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--out DIR is required/),
    });
  });
});
