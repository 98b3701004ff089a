// Shared by the converter tests: tiny checkpoints in temp folders, converting them, reading outputs back.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, expect } from 'vitest';
import { makeTinyCheckpoint, type TinyCheckpointOptions } from '../../scripts/tiny-checkpoint/generate.ts';
import type { TensorCacheFile } from '../format/tensor-cache.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { NodeOutputDir } from '../node/output-dir.ts';
import { convertCheckpoint, type ConvertOptions, type ConvertSummary } from './convert.ts';

/** Small enough to convert in well under a second; every LLM input width a multiple of 32 (MLC). */
export const TINY: Partial<TinyCheckpointOptions> = {
  imageSize: 56,
  patchSize: 14,
  clipHidden: 128,
  clipIntermediate: 256,
  clipLayers: 3,
  clipHeads: 2,
  hidden: 64,
  intermediate: 96,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 300,
  prefusionLayers: 2,
  compressorSize: 2,
};

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

export async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'llava-mini-convert-'));
  dirs.push(d);
  return d;
}

/** A tiny checkpoint (TINY + overrides) in a new temp folder. */
export async function tinyCheckpoint(o: Partial<TinyCheckpointOptions> = {}): Promise<string> {
  const dir = join(await tmp(), 'ckpt');
  await makeTinyCheckpoint({ ...TINY, ...o, out: dir });
  return dir;
}

export async function convertDir(ckpt: string, out: string, options: ConvertOptions = {}): Promise<ConvertSummary> {
  return convertCheckpoint(nodeCheckpointFiles(ckpt), new NodeOutputDir(out), options);
}

/** Every file under dir (relative path -> bytes). */
export async function readTree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(dir, p), await readFile(p));
    }
  };
  await walk(dir);
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b)));
}

/** The same files with the same bytes. Buffer.equals per file: toEqual walks a Map of Buffers byte by byte (minutes). */
export function expectSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  expect([...actual.keys()]).toEqual([...expected.keys()]);
  for (const [name, bytes] of expected) expect(actual.get(name)!.equals(bytes), `${name} differs`).toBe(true);
}

/** An MLC folder's ndarray-cache.json and each parameter's bytes. */
export async function readMlc(dir: string): Promise<{ cache: TensorCacheFile; bytes: (name: string) => Promise<Buffer> }> {
  const cache = JSON.parse(await readFile(join(dir, 'ndarray-cache.json'), 'utf8')) as TensorCacheFile;
  const where = new Map(cache.records.flatMap((s) => s.records.map((r) => [r.name, { s, r }] as const)));
  return {
    cache,
    bytes: async (name) => {
      const w = where.get(name);
      if (!w) throw new Error(`ndarray-cache.json has no "${name}"`);
      const file = await readFile(join(dir, w.s.dataPath));
      return file.subarray(w.r.byteOffset, w.r.byteOffset + w.r.nbytes);
    },
  };
}
