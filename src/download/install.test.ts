import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../../scripts/tiny-checkpoint/test-http-server.ts';
import { convertDir, expectSameTree, readTree, tinyCheckpoint, tmp } from '../convert/convert.testing.ts';
import { openCheckpoint } from '../checkpoint/checkpoint.ts';
import { expectedTensorList, VISION_PREFIX } from '../checkpoint/expected-tensors.ts';
import { serializeSafetensors } from '../checkpoint/safetensors-write.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { NodeOutputDir } from '../node/output-dir.ts';
import { retryingFetch } from './fetch-retry.ts';
import { formatToInstall, INSTALL_INFO, installModel, MODEL_INFO, modelIdFor, type InstallProgress } from './install.ts';

const REPO = 'ICTNLP/llava-mini-tiny';
const plenty = async () => 1e12;
const quick = (onRetry?: () => void) => retryingFetch(undefined, { retries: 3, delayMs: 1, ...(onRetry ? { onRetry } : {}) });

/** Serves every file of `dir` under `prefix/` (hub URLs: ORG/REPO/resolve/main/FILE). */
async function serveFolder(dir: string, prefix: string, fault?: Parameters<typeof startTestServer>[2], patch?: (path: string, bytes: Buffer) => Buffer): Promise<TestServer> {
  const tree = await readTree(dir);
  return startTestServer(
    async (p) => {
      if (!p.startsWith(`${prefix}/`)) return null;
      const rel = p.slice(prefix.length + 1);
      const bytes = tree.get(rel);
      return bytes ? (patch ? patch(rel, bytes) : bytes) : null;
    },
    'honour',
    fault,
  );
}

/** The two outputs a q4f32_1 install keeps, converted straight from disk: what every install must equal. */
async function expected(ckpt: string): Promise<Map<string, Buffer>> {
  const out = join(await tmp(), 'direct');
  await convertDir(ckpt, out, { outputs: ['llm-q4f32_1', 'mm-q4'] });
  return readTree(out);
}

const withoutInfo = (tree: Map<string, Buffer>) => new Map([...tree].filter(([k]) => k !== MODEL_INFO));

describe('installModel', () => {
  it('from the hub: converts as it streams (one dropped connection retried), stores only q4f32_1 + mm-q4', async () => {
    const ckpt = await tinyCheckpoint();
    let dropped = 0;
    const server = await serveFolder(ckpt, `${REPO}/resolve/main`, (r) => (r.path.endsWith('model.safetensors') && r.range && dropped++ === 0 ? 'drop' : null));
    try {
      const out = join(await tmp(), 'installed');
      const stages = new Set<string>();
      let retries = 0;
      const info = await installModel({ kind: 'hub', hubUrl: server.url, repo: REPO }, 'q4f32_1', new NodeOutputDir(out), {
        freeBytes: plenty,
        fetch: quick(() => retries++),
        onProgress: (p: InstallProgress) => stages.add(p.stage),
      });
      expect(retries).toBe(1);
      expect(info).toMatchObject({ id: modelIdFor({ kind: 'hub', hubUrl: server.url, repo: REPO }, 'q4f32_1'), name: REPO, format: 'q4f32_1', outputs: ['llm-q4f32_1', 'mm-q4'] });
      expect([...stages]).toEqual(['checking', 'converting', 'done']);
      const tree = await readTree(out);
      expectSameTree(withoutInfo(tree), await expected(ckpt));
      expect(JSON.parse(tree.get(MODEL_INFO)!.toString()).bytes).toBe(info.bytes);
      expect([...tree.keys()].some((k) => k.startsWith('llm-q4f16_1'))).toBe(false);
      // Only byte ranges of the checkpoint were read, never a whole shard in one request.
      expect(server.requests.filter((r) => r.path.endsWith('.safetensors') && r.method === 'GET' && !r.range)).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('refuses before writing a shard when the storage cannot take the model', async () => {
    const ckpt = await tinyCheckpoint();
    const out = join(await tmp(), 'installed');
    await expect(installModel({ kind: 'folder', name: 'tiny', files: nodeCheckpointFiles(ckpt) }, 'q4f32_1', new NodeOutputDir(out), { freeBytes: async () => 1000 })).rejects.toThrow(
      /^Not enough storage: the model needs 0\.\d+ GB more and the browser lets this site store 0\.00 GB more\./,
    );
    expect([...(await readTree(out)).keys()]).toEqual([INSTALL_INFO]);
  });

  it('a converted folder at a URL: a corrupted shard is refused and never stored; the retry resumes and completes', async () => {
    const ckpt = await tinyCheckpoint();
    const converted = join(await tmp(), 'converted');
    await convertDir(ckpt, converted, { shardCapBytes: 64 * 1024 }); // several shards per output
    let corrupt = true;
    const server = await serveFolder(converted, 'models/tiny', undefined, (path, bytes) => {
      if (!corrupt || path !== 'mm-q4/pack_shard_3.bin') return bytes;
      const bad = Buffer.from(bytes);
      bad[10] ^= 0xff;
      return bad;
    });
    try {
      const out = join(await tmp(), 'installed');
      const source = { kind: 'url' as const, url: `${server.url}/models/tiny` };
      await expect(installModel(source, 'q4f32_1', new NodeOutputDir(out), { freeBytes: plenty, fetch: quick() })).rejects.toThrow(
        /^mm-q4\/pack_shard_3\.bin arrived corrupted \(sha256 [0-9a-f]{64}, the index says [0-9a-f]{64}\); nothing of it was stored\./,
      );
      let tree = await readTree(out);
      expect(tree.has(MODEL_INFO)).toBe(false);
      expect(tree.has('mm-q4/pack_shard_3.bin')).toBe(false);
      expect(tree.has('mm-q4/manifest.json')).toBe(false);
      expect(tree.has('llm-q4f32_1/ndarray-cache.json')).toBe(false);

      corrupt = false;
      const before = server.requests.length;
      await installModel(source, 'q4f32_1', new NodeOutputDir(out), { freeBytes: plenty, fetch: quick() });
      tree = await readTree(out);
      const hosted = [...(await readTree(converted))].filter(([k]) => k.startsWith('llm-q4f32_1/') || k.startsWith('mm-q4/'));
      expect(hosted.length).toBeGreaterThan(8);
      expectSameTree(withoutInfo(tree), new Map(hosted));
      // the shard verified in the first try was not fetched again
      expect(server.requests.slice(before).some((r) => r.path.endsWith('pack_shard_1.bin') && r.method === 'GET')).toBe(false);
    } finally {
      await server.close();
    }
  });

  it('an install cut off half way resumes and ends byte-identical', async () => {
    const ckpt = await tinyCheckpoint();
    const out = join(await tmp(), 'installed');
    const source = { kind: 'folder' as const, name: 'tiny', files: nodeCheckpointFiles(ckpt) };
    const abort = new AbortController();
    let converting = 0;
    await expect(
      installModel(source, 'q4f32_1', new NodeOutputDir(out), {
        freeBytes: plenty,
        signal: abort.signal,
        onProgress: (p) => {
          if (p.stage === 'converting' && ++converting === 12) abort.abort(new Error('cut off'));
        },
      }),
    ).rejects.toThrow('cut off');
    expect((await readTree(out)).has(MODEL_INFO)).toBe(false);
    await installModel(source, 'q4f32_1', new NodeOutputDir(out), { freeBytes: plenty });
    const tree = await readTree(out);
    expectSameTree(withoutInfo(tree), await expected(ckpt));
    expect(tree.has(INSTALL_INFO)).toBe(false);
    expect(JSON.parse(await readFile(join(out, MODEL_INFO), 'utf8')).source).toBe('folder tiny');
  });

  it('a local checkpoint without the CLIP tower installs with a separate CLIP folder, and says what is missing without one', async () => {
    const full = await tinyCheckpoint();
    const noVision = await tinyCheckpoint({ visionTower: false });
    const ck = await openCheckpoint(nodeCheckpointFiles(full));
    const clipDir = await tmp();
    const tensors = [];
    for (const t of expectedTensorList(ck.config).filter((x) => x.part === 'vision')) {
      tensors.push({ name: 'vision_model.' + t.name.slice(VISION_PREFIX.length), dtype: 'F32' as const, shape: t.shape, data: await ck.readF32(t.name) });
    }
    await writeFile(join(clipDir, 'model.safetensors'), serializeSafetensors(tensors));
    const source = { kind: 'folder' as const, name: 'tiny', files: nodeCheckpointFiles(noVision) };
    await expect(installModel(source, 'q4f32_1', new NodeOutputDir(join(await tmp(), 'a')), { freeBytes: plenty })).rejects.toThrow(/has no CLIP vision tower/);
    const out = join(await tmp(), 'b');
    await installModel({ ...source, clipFiles: nodeCheckpointFiles(clipDir) }, 'q4f32_1', new NodeOutputDir(out), { freeBytes: plenty });
    const [got, want] = [withoutInfo(await readTree(out)), await expected(full)];
    // The pack is the same; the LLM's mlc-chat-config and shards too (the tower never reaches the LLM).
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) if (k.startsWith('mm-q4/')) expect(got.get(k)!.equals(v), k).toBe(true);
  });
});

describe('formatToInstall', () => {
  it('a converted folder with only unquantized q0f32 installs that (with mm-f16) on a device that runs q4f32_1', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1, tieWordEmbeddings: true });
    const out = join(await tmp(), 'q0');
    await convertDir(ckpt, out, { outputs: ['llm-q0f32', 'mm-f16'] });
    const source = { kind: 'url' as const, url: '' };
    const server = await serveFolder(out, 'q0');
    try {
      source.url = `${server.url}/q0/`;
      expect(await formatToInstall(source, 'q4f32_1', quick())).toBe('q0f32');
      expect(await formatToInstall(source, 'q4f16_1', quick())).toBe('q0f32');
      const sink = new NodeOutputDir(join(await tmp(), 'stored'));
      const info = await installModel(source, 'q0f32', sink, { freeBytes: plenty, fetch: quick() });
      expect(info.outputs).toEqual(['llm-q0f32', 'mm-f16']);
      expect(withoutInfo(await readTree(sink.dir))).toEqual(await readTree(out));
    } finally {
      await server.close();
    }
    // A folder with the device's int4 format keeps it; the hub always converts to it.
    expect(await formatToInstall({ kind: 'hub', hubUrl: 'http://127.0.0.1:1', repo: REPO }, 'q4f16_1')).toBe('q4f16_1');
  });
});
