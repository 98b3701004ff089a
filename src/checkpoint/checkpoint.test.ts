// Generator -> loader round trips on real files, and the loader's errors on broken folders.
import { mkdtemp, readFile, rm, truncate, unlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeTinyCheckpoint, tinyTensorValues, type TinyCheckpointOptions } from '../../scripts/tiny-checkpoint/generate.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { BlobCheckpointFiles, MemoryByteSource, UrlCheckpointFiles } from './byte-source.ts';
import { openCheckpoint, type Checkpoint } from './checkpoint.ts';
import { bf16BytesToF32, f16BytesToF32, f32ToBf16Bytes, f32ToF16Bytes } from './dtype.ts';
import { expectedTensorList, VISION_PREFIX } from './expected-tensors.ts';
import { readSafetensorsHeader } from './safetensors.ts';
import { serializeSafetensors } from './safetensors-write.ts';
import { startTestServer } from '../../scripts/tiny-checkpoint/test-http-server.ts';

const SMALL: Partial<TinyCheckpointOptions> = {
  imageSize: 56,
  patchSize: 14,
  clipHidden: 128,
  clipIntermediate: 256,
  clipLayers: 2,
  clipHeads: 2,
  hidden: 64,
  intermediate: 128,
  layers: 1,
  heads: 2,
  kvHeads: 1,
  vocab: 1000,
  prefusionLayers: 1,
  compressorSize: 2,
};

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'llava-mini-ckpt-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function small(extra: Partial<TinyCheckpointOptions> = {}): Promise<string> {
  const out = await tmp();
  await makeTinyCheckpoint({ ...SMALL, ...extra, out });
  return out;
}

function roundTo(dtype: 'f32' | 'f16' | 'bf16', v: Float32Array): Float32Array {
  if (dtype === 'f16') return f16BytesToF32(f32ToF16Bytes(v));
  if (dtype === 'bf16') return bf16BytesToF32(f32ToBf16Bytes(v));
  return v;
}

function sameF32(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Every tensor read back equals the generator's values rounded to the storage dtype. */
async function checkAllTensors(ck: Checkpoint, dtype: 'f32' | 'f16' | 'bf16', visionDtype: 'f32' | 'f16' | 'bf16', seed = 0) {
  const list = expectedTensorList(ck.config);
  expect(ck.tensorNames().sort()).toEqual(list.map((t) => t.name).sort());
  const bad: string[] = [];
  for (const t of list) {
    const dt = t.part === 'vision' ? visionDtype : dtype;
    expect(ck.info(t.name)).toEqual({ name: t.name, dtype: dt.toUpperCase(), shape: t.shape });
    const want = roundTo(dt, tinyTensorValues(t, ck.config, seed));
    if (!sameF32(await ck.readF32(t.name), want)) bad.push(t.name);
  }
  expect(bad).toEqual([]);
}

describe('tiny checkpoint round trip', () => {
  for (const dtype of ['f32', 'f16', 'bf16'] as const) {
    it(`${dtype} weights, single file`, async () => {
      const out = await small({ dtype, visionDtype: dtype === 'f32' ? 'bf16' : 'f32' });
      const ck = await openCheckpoint(nodeCheckpointFiles(out));
      expect(ck.config.llm.hiddenSize).toBe(64);
      expect(ck.config.vision.imageSize).toBe(56);
      expect(ck.config.visionLayersUsed).toBe(1);
      expect(ck.config.compressorHeads).toBe(1);
      expect(ck.config.compressorSize).toBe(2);
      expect((ck.tokenizerConfigJson as { bos_token?: string }).bos_token).toBe('<|begin_of_text|>');
      expect((ck.tokenizerJson as { model?: { type?: string } }).model?.type).toBe('BPE');
      expect(ck.generationConfig).toMatchObject({ bos_token_id: 128000, eos_token_id: [128001, 128008, 128009] });
      await checkAllTensors(ck, dtype, dtype === 'f32' ? 'bf16' : 'f32');
      // the compressor position table is the fixed sin-cos one: C = 2 -> token (i, j) = (0, 1) has sin(1 * w_0) first
      const pe = await ck.readF32('model.compressor.pos_embed');
      expect(pe[0]).toBe(0);
      expect(pe[32]).toBe(1);
      expect(pe[128]).toBeCloseTo(Math.sin(1), 2);
      const rows = await ck.readRowsF32('model.embed_tokens.weight', 10, 2);
      expect(sameF32(rows, (await ck.readF32('model.embed_tokens.weight')).subarray(640, 768))).toBe(true);
    });
  }

  it('sharded (3 shards, f16)', async () => {
    const out = await small({ shards: 3, dtype: 'f16', seed: 7 });
    const files = (await readdir(out)).sort();
    expect(files).toEqual([
      'config.json',
      'generation_config.json',
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const index = JSON.parse(await readFile(join(out, 'model.safetensors.index.json'), 'utf8'));
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(files.filter((f) => f.startsWith('model-'))));
    const ck = await openCheckpoint(nodeCheckpointFiles(out));
    expect(index.metadata.total_size).toBe(ck.totalBytes());
    await checkAllTensors(ck, 'f16', 'f32', 7);
  });

  it('same seed -> byte-identical files; another seed -> other weights', async () => {
    const a = await small({ seed: 3, shards: 2 });
    const b = await small({ seed: 3, shards: 2 });
    const c = await small({ seed: 4, shards: 2 });
    for (const f of await readdir(a)) expect((await readFile(join(a, f))).equals(await readFile(join(b, f)))).toBe(true);
    expect((await readFile(join(a, 'model-00001-of-00002.safetensors'))).equals(await readFile(join(c, 'model-00001-of-00002.safetensors')))).toBe(false);
  });

  it('reads through Blob and HTTP range sources too', async () => {
    const out = await small({ shards: 2 });
    const names = await readdir(out);
    const blobs = new Map<string, Blob>();
    for (const n of names) blobs.set(n, new Blob([await readFile(join(out, n))]));
    const viaBlob = await openCheckpoint(new BlobCheckpointFiles(blobs, 'dropped'));
    const ref = await openCheckpoint(nodeCheckpointFiles(out));
    const server = await startTestServer(async (p) => (p.startsWith('m/') && names.includes(p.slice(2)) ? readFile(join(out, p.slice(2))) : null));
    try {
      const viaUrl = await openCheckpoint(new UrlCheckpointFiles(`${server.url}/m`));
      for (const name of ['lm_head.weight', `${VISION_PREFIX}encoder.layers.0.mlp.fc1.bias`, 'model.compressor.query']) {
        const want = await ref.readF32(name);
        expect(sameF32(await viaBlob.readF32(name), want)).toBe(true);
        expect(sameF32(await viaUrl.readF32(name), want)).toBe(true);
      }
      // weights are fetched by range, never whole
      const ranges = server.requests.filter((r) => r.path.endsWith('.safetensors') && r.method === 'GET');
      expect(ranges.every((r) => r.range !== undefined)).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('takes the CLIP tower from a separate openai/clip-vit-large-patch14-336 style folder', async () => {
    const full = await openCheckpoint(nodeCheckpointFiles(await small()));
    const noVision = await small({ visionTower: false });
    await expect(openCheckpoint(nodeCheckpointFiles(noVision))).rejects.toThrow(
      /the checkpoint has no CLIP vision tower .*clipFiles/,
    );
    // CLIP folder: vision_model.* names, only the layers that run (no last layer, no post_layernorm), plus text junk
    const clipDir = await tmp();
    const used = expectedTensorList(full.config).filter((t) => t.part === 'vision' && t.used);
    const tensors = [];
    for (const t of used) {
      tensors.push({ name: 'vision_model.' + t.name.slice(VISION_PREFIX.length), dtype: 'F32' as const, shape: t.shape, data: await full.readF32(t.name) });
    }
    tensors.push({ name: 'text_model.embeddings.token_embedding.weight', dtype: 'F32' as const, shape: [4, 2], data: new Float32Array(8) });
    await writeFile(join(clipDir, 'model.safetensors'), serializeSafetensors(tensors));
    const cfg = JSON.parse(await readFile(join(noVision, 'config.json'), 'utf8'));
    await writeFile(join(clipDir, 'config.json'), JSON.stringify({ model_type: 'clip', vision_config: cfg.vision_config }));
    const ck = await openCheckpoint(nodeCheckpointFiles(noVision), { clipFiles: nodeCheckpointFiles(clipDir) });
    const name = `${VISION_PREFIX}encoder.layers.0.self_attn.q_proj.weight`;
    expect(sameF32(await ck.readF32(name), await full.readF32(name))).toBe(true);
    expect(ck.has(`${VISION_PREFIX}encoder.layers.1.self_attn.q_proj.weight`)).toBe(false);
    expect(ck.has(`${VISION_PREFIX}post_layernorm.weight`)).toBe(false);

    // a CLIP folder whose config disagrees with config.json's vision_config
    await writeFile(join(clipDir, 'config.json'), JSON.stringify({ vision_config: { ...cfg.vision_config, num_hidden_layers: 5 } }));
    await expect(openCheckpoint(nodeCheckpointFiles(noVision), { clipFiles: nodeCheckpointFiles(clipDir) })).rejects.toThrow(
      /vision_config numLayers = 2 disagrees with the separate CLIP folder's config \(5\)/,
    );
  });
});

describe('broken checkpoints', () => {
  it('corrupted header: garbage length / invalid JSON name the file', async () => {
    const out = await small();
    const p = join(out, 'model.safetensors');
    const orig = await readFile(p);
    const garbage = Buffer.from(orig);
    garbage.write('PK\x03\x04zip!', 0, 'latin1');
    await writeFile(p, garbage);
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(/^model\.safetensors: header length \d+ is implausible/);
    const badJson = Buffer.from(orig);
    badJson[8] = 'x'.charCodeAt(0);
    await writeFile(p, badJson);
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(/^model\.safetensors: the safetensors header is not valid JSON/);
  });

  it('truncated shard: names the tensor', async () => {
    const out = await small({ shards: 2 });
    const shard = 'model-00002-of-00002.safetensors';
    const header = await readSafetensorsHeader(nodeCheckpointFiles(out).open(shard));
    const last = [...header.tensors.values()].sort((a, b) => b.end - a.end)[0]!;
    await truncate(join(out, shard), header.size - 100);
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(
      `${shard}: tensor "${last.name}" ends at byte ${last.end} but the file has ${header.size - 100} bytes (truncated download?)`,
    );
  });

  it('config.json disagreeing with the weights names the tensor and both shapes', async () => {
    const out = await small();
    const cfgPath = join(out, 'config.json');
    const cfg = JSON.parse(await readFile(cfgPath, 'utf8'));
    await writeFile(cfgPath, JSON.stringify({ ...cfg, hidden_size: 32, head_dim: 16 }));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(
      'config.json disagrees with the weights: tensor "model.mm_projector.0.weight" has shape [64, 128] in model.safetensors but config.json implies [32, 128]',
    );
    await writeFile(cfgPath, JSON.stringify({ ...cfg, num_hidden_layers: 3 }));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(
      /missing tensor "model\.layers\.1\.self_attn\.q_proj\.weight" \(and 17 more\): the weights do not match config\.json/,
    );
    await writeFile(cfgPath, JSON.stringify({ ...cfg, mm_projector_type: 'resampler' }));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(/config\.json: mm_projector_type "resampler" is not supported/);
  });

  it('index naming a missing shard, or a tensor missing from its shard', async () => {
    const out = await small({ shards: 3 });
    const idxPath = join(out, 'model.safetensors.index.json');
    const idx = JSON.parse(await readFile(idxPath, 'utf8'));
    idx.weight_map['model.norm.weight'] = 'model-00001-of-00003.safetensors';
    await writeFile(idxPath, JSON.stringify(idx));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(
      /model-00001-of-00003\.safetensors: tensor "model\.norm\.weight" is listed in model\.safetensors\.index\.json but missing from the shard/,
    );
    await unlink(join(out, 'model-00002-of-00003.safetensors'));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(
      /model\.safetensors\.index\.json names shard "model-00002-of-00003\.safetensors", which is missing/,
    );
    idx.weight_map['model.norm.weight'] = '../../etc/passwd';
    await writeFile(idxPath, JSON.stringify(idx));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(/invalid shard file name/);
  });

  it('missing tokenizer or weights', async () => {
    const out = await small();
    await unlink(join(out, 'tokenizer.json'));
    await expect(openCheckpoint(nodeCheckpointFiles(out))).rejects.toThrow(/: missing tokenizer\.json$/);
    await expect(
      openCheckpoint(new BlobCheckpointFiles(new Map([['config.json', new Blob(['{}'])], ['tokenizer.json', new Blob(['{}'])], ['tokenizer_config.json', new Blob(['{}'])]]), 'x')),
    ).rejects.toThrow(/x: no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('in-memory source reads are bounds-checked', async () => {
    await expect(new MemoryByteSource(new Uint8Array(4), 'm').read(2, 4)).rejects.toThrow(/m: read of bytes 2\.\.6 is past the end/);
  });
});
