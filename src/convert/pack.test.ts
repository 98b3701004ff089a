// The image-side pack read back through its manifest: the right tensors (only the CLIP layers that run), f16
// values = the f16 rounding of the source, q4 = quantizeQ4's output, sha256 per tensor and file; the CLIP tower
// from a separate CLIP folder gives the same pack.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { f16ToNumber, numberToF16 } from '../checkpoint/dtype.ts';
import { expectedTensorList, VISION_PREFIX } from '../checkpoint/expected-tensors.ts';
import { serializeSafetensors } from '../checkpoint/safetensors-write.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { quantizeQ4, q4ScalesToF16Bits } from '../quant/q4.ts';
import { convertDir, expectSameTree, readTree, tinyCheckpoint, tmp } from './convert.testing.ts';
import { openPack, type Pack } from '../format/pack.ts';

let ckptDir: string;
let ck: Checkpoint;
let out: string;
const packs = new Map<string, Pack>();

beforeAll(async () => {
  ckptDir = await tinyCheckpoint({ clipLayers: 3, visionSelectLayer: -2 }); // layers 0, 1 run; layer 2 does not
  ck = await openCheckpoint(nodeCheckpointFiles(ckptDir));
  out = await tmp();
  await convertDir(ckptDir, out, { outputs: ['mm-f16', 'mm-q4'], shardCapBytes: 64 << 10, blockElements: 1000 });
  for (const p of ['f16', 'q4']) packs.set(p, await openPack(nodeCheckpointFiles(join(out, `mm-${p}`))));
});

const f16Round = (v: Float32Array): Float32Array => Float32Array.from(v, (x) => f16ToNumber(numberToF16(x)));

describe('image-side pack', () => {
  it('holds exactly the CLIP layers that run, projector, compressor and pre-fusion (no LLM, no unused CLIP)', () => {
    expect(ck.config.visionLayersUsed).toBe(2);
    const want = expectedTensorList(ck.config)
      .filter((t) => t.part !== 'llm' && t.used)
      .map((t) => t.name)
      .sort();
    const names = packs.get('f16')!.manifest.tensors.map((t) => t.name).sort();
    expect(names).toEqual(want);
    expect(names.some((n) => n.includes('encoder.layers.2.') || n.includes('post_layernorm'))).toBe(false);
    expect(names.some((n) => n.startsWith('model.layers.') || n.startsWith('model.embed_tokens'))).toBe(false);
    expect(names.filter((n) => n.includes('encoder.layers.1.')).length).toBeGreaterThan(0);
  });

  it('f16 pack: every tensor is the f16 rounding of the checkpoint tensor', async () => {
    const pack = packs.get('f16')!;
    expect(pack.manifest.precision).toBe('f16');
    for (const t of pack.manifest.tensors) {
      expect(t.dtype).toBe('float16');
      expect(t.shape).toEqual(ck.info(t.source).shape);
      expect(await pack.read(t.name)).toEqual(f16Round(await ck.readF32(t.source)));
    }
  });

  it('q4 pack: pre-fusion matrices are quantizeQ4 (q4f16_1) output, everything else f16', async () => {
    const pack = packs.get('q4')!;
    const table = new Map(expectedTensorList(ck.config).map((t) => [t.name, t]));
    let quantized = 0;
    for (const t of pack.manifest.tensors) {
      const src = table.get(t.source)!;
      const q4 = src.part === 'prefusion' && src.role === 'linear';
      expect(t.storage, t.name).toBe(q4 ? 'q4f16' : 'f16');
      if (!q4) {
        expect(t.name).toBe(t.source);
        expect(await pack.read(t.name)).toEqual(f16Round(await ck.readF32(t.source)));
        continue;
      }
      const [N, K] = src.shape as [number, number];
      const ref = quantizeQ4(await ck.readF32(t.source), N, K, { scaleDType: 'f16' });
      if (t.name.endsWith('.q_weight')) {
        quantized++;
        expect(t.name).toBe(t.source.replace(/\.weight$/, '.q_weight'));
        expect(t.shape).toEqual([N, K / 8]);
        expect(await pack.read(t.name)).toEqual(ref.qWeight);
      } else {
        expect(t.name).toBe(t.source.replace(/\.weight$/, '.q_scale'));
        expect(t.shape).toEqual([N, K / 32]);
        expect(Buffer.from(await pack.readBytes(t.name)).equals(Buffer.from(q4ScalesToF16Bits(ref.qScale).buffer))).toBe(true);
      }
    }
    expect(quantized).toBe(2 * 7); // 2 pre-fusion layers x q, k, v, o, gate, up, down
  });

  it('manifest: sha256 of every tensor and file, byte ranges inside the files, the config', async () => {
    for (const pack of packs.values()) {
      const m = pack.manifest;
      expect(m.config).toEqual(ck.configJson);
      expect(m.visionLayersUsed).toBe(2);
      for (const f of m.files) {
        const bytes = await readFile(join(out, `mm-${m.precision}`, f.path));
        expect(bytes.byteLength).toBe(f.nbytes);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256);
      }
      for (const t of m.tensors) {
        const f = m.files.find((x) => x.path === t.file)!;
        expect(t.byteOffset + t.nbytes).toBeLessThanOrEqual(f.nbytes);
        expect(createHash('sha256').update(await pack.readBytes(t.name)).digest('hex'), t.name).toBe(t.sha256);
      }
      expect(m.files.length).toBeGreaterThan(1);
    }
  });

  it('a checkpoint without CLIP + a separate CLIP folder (vision_model.* names) gives the same pack', async () => {
    const noVision = await tinyCheckpoint({ clipLayers: 3, visionSelectLayer: -2, visionTower: false });
    const clipDir = await tmp();
    const tensors = [];
    for (const t of expectedTensorList(ck.config).filter((x) => x.part === 'vision')) {
      tensors.push({ name: 'vision_model.' + t.name.slice(VISION_PREFIX.length), dtype: 'F32' as const, shape: t.shape, data: await ck.readF32(t.name) });
    }
    await writeFile(join(clipDir, 'model.safetensors'), serializeSafetensors(tensors));
    const out2 = await tmp();
    await convertDir(noVision, out2, {
      outputs: ['mm-f16', 'mm-q4'],
      shardCapBytes: 64 << 10,
      clipFiles: nodeCheckpointFiles(clipDir),
    });
    const [a, b] = [await readTree(out), await readTree(out2)];
    expectSameTree(b, a);
  });
});
