// A conversion cut off half way (abort signal after N tensors, a killed process's half-written and damaged files)
// resumes and ends byte-identical to an uninterrupted run; a finished run leaves no journal.
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONVERT_OUTPUTS, type ConvertOptions, type ConvertProgress } from './convert.ts';
import { convertDir, expectSameTree, readTree, tinyCheckpoint, tmp } from './convert.testing.ts';
import { JOURNAL_FILE, type Journal } from './shard-writer.ts';

const OPTS: ConvertOptions = { shardCapBytes: 16 << 10, blockElements: 2048 };

let ckpt: string;
let reference: Map<string, Buffer>;
const progress: ConvertProgress[] = [];

beforeAll(async () => {
  ckpt = await tinyCheckpoint({ shards: 3 });
  const out = await tmp();
  await convertDir(ckpt, out, { ...OPTS, onProgress: (p) => progress.push(p) });
  reference = await readTree(out);
});

/** Converts into `out`, aborting once `n` tensors are done; returns the progress seen. */
async function convertAbortingAfter(out: string, n: number): Promise<ConvertProgress[]> {
  const controller = new AbortController();
  const seen: ConvertProgress[] = [];
  const run = convertDir(ckpt, out, {
    ...OPTS,
    signal: controller.signal,
    onProgress: (p) => {
      seen.push(p);
      if (p.tensorsDone >= n) controller.abort(new Error('test abort'));
    },
  });
  await expect(run).rejects.toThrow('test abort');
  return seen;
}

describe('resume', () => {
  it('the uninterrupted run writes all four outputs and removes its journal', () => {
    for (const o of DEFAULT_CONVERT_OUTPUTS) expect([...reference.keys()].some((k) => k.startsWith(`${o}/`)), o).toBe(true);
    expect(reference.has(JOURNAL_FILE)).toBe(false);
    expect(reference.has('llm-q4f16_1/ndarray-cache.json')).toBe(true);
    expect(reference.has('mm-q4/manifest.json')).toBe(true);
  });

  it('reports progress: stages in order, current tensor, bytes and tensors up to the totals', () => {
    const stages = [...new Set(progress.map((p) => p.stage))];
    expect(stages).toEqual(['open', 'resume', ...DEFAULT_CONVERT_OUTPUTS, 'done']);
    const shardBytes = [...reference].filter(([k]) => k.endsWith('.bin')).reduce((a, [, b]) => a + b.byteLength, 0);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.bytesDone).toBeGreaterThanOrEqual(progress[i - 1]!.bytesDone);
      expect(progress[i]!.tensorsDone).toBeGreaterThanOrEqual(progress[i - 1]!.tensorsDone);
    }
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ stage: 'done', bytesDone: shardBytes, bytesTotal: shardBytes, tensorsDone: last.tensorsTotal });
    expect(progress.some((p) => p.stage === 'llm-q4f32_1' && p.tensor === 'model.layers.1.mlp.gate_up_proj')).toBe(true);
    expect(progress.some((p) => p.stage === 'mm-q4' && p.tensor === 'model.prefusion_layers.0.self_attn.q_proj')).toBe(true);
  });

  it.each([5, 40, 90])('aborted after %i tensors, then resumed: byte-identical output, finished shards not redone', async (n) => {
    const out = await tmp();
    const seen = await convertAbortingAfter(out, n);
    const total = seen.at(-1)!.tensorsTotal;
    expect(n).toBeLessThan(total);
    const journal = JSON.parse(await readFile(join(out, JOURNAL_FILE), 'utf8')) as Journal;
    const completed = Object.keys(journal.shards);
    // an output folder without its index file is unfinished: none has one yet except those already complete
    const tree = await readTree(out);
    for (const o of DEFAULT_CONVERT_OUTPUTS) {
      const index = `${o}/${o.startsWith('llm-') ? 'ndarray-cache.json' : 'manifest.json'}`;
      const complete = [...reference.keys()].filter((k) => k.startsWith(`${o}/`) && k.endsWith('.bin')).every((k) => completed.includes(k));
      expect(tree.has(index), index).toBe(complete);
    }
    expect(completed.length).toBeGreaterThan(0);

    const resumed: ConvertProgress[] = [];
    const summary = await convertDir(ckpt, out, { ...OPTS, onProgress: (p) => resumed.push(p) });
    const doneBytes = completed.reduce((a, k) => a + journal.shards[k]!.nbytes, 0);
    expect(summary.resumedBytes).toBe(doneBytes);
    // the resumed run starts its progress at the bytes already done
    expect(resumed.find((p) => p.stage !== 'open' && p.stage !== 'resume')!.bytesDone).toBeGreaterThanOrEqual(doneBytes);
    expectSameTree(await readTree(out), reference);
  });

  it('a killed run: damaged and half-written shards are detected by size + md5 and written again', async () => {
    const out = await tmp();
    await convertAbortingAfter(out, 60);
    const journal = JSON.parse(await readFile(join(out, JOURNAL_FILE), 'utf8')) as Journal;
    const [first, second] = Object.keys(journal.shards);
    // same size, different bytes (md5 catches it) and a truncated file (size catches it)
    const bytes = await readFile(join(out, first!));
    bytes[0] ^= 0xff;
    await writeFile(join(out, first!), bytes);
    await truncate(join(out, second!), 10);
    const summary = await convertDir(ckpt, out, OPTS);
    const kept = Object.keys(journal.shards).slice(2).reduce((a, k) => a + journal.shards[k]!.nbytes, 0);
    expect(summary.resumedBytes).toBe(kept);
    expectSameTree(await readTree(out), reference);
  });

  it('a journal of other options is ignored (everything is written again), stale shard files are removed', async () => {
    const out = await tmp();
    await convertDir(ckpt, out, OPTS);
    await convertAbortingAfter(out, 60); // a journal of the 16 KiB layout
    const summary = await convertDir(ckpt, out, { ...OPTS, shardCapBytes: 24 << 10 }); // fewer shards than before
    expect(summary.resumedBytes).toBe(0);
    const again = await tmp();
    await convertDir(ckpt, again, { ...OPTS, shardCapBytes: 24 << 10 });
    const [a, b] = [await readTree(out), await readTree(again)];
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [name, bytes] of b) expect(a.get(name)!.equals(bytes), name).toBe(true);
  });
});
