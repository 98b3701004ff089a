// The shard plan at the real model's shapes (no data: Llama-3.1-8B + CLIP ViT-L/336 + 4 pre-fusion layers):
// MLC's parameter count and size, the 32 MiB cap, big tensors alone in their shard, and planShards' own rules.
import { describe, expect, it } from 'vitest';
import { TINY_DEFAULTS, tinyConfigJson } from '../../scripts/tiny-checkpoint/generate.ts';
import { parseLlavaMiniConfig } from '../checkpoint/config.ts';
import { jobParams } from './jobs.ts';
import { mlcJobs } from './mlc.ts';
import { packJobs } from './pack.ts';
import { DEFAULT_SHARD_CAP_BYTES, outParam, planShards, type ShardPlan } from './tensor-cache.ts';

const MiB = 1 << 20;
const real = parseLlavaMiniConfig(
  tinyConfigJson({
    ...TINY_DEFAULTS,
    ...{ hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, vocab: 128256 },
    ...{ clipHidden: 1024, clipIntermediate: 4096, clipLayers: 24, clipHeads: 16, prefusionLayers: 4, compressorSize: 1 },
  }),
);

function checkLayout(shards: ShardPlan[], prefix: string, bigAlone: boolean): void {
  shards.forEach((s, k) => {
    expect(s.dataPath).toBe(`${prefix}_${k}.bin`);
    let off = 0;
    for (const r of s.records) {
      expect(r.byteOffset).toBe(off);
      off += r.nbytes;
      // MLC at these shapes: every tensor of 16 MiB or more sits alone in its shard
      if (bigAlone && r.nbytes >= 16 * MiB) expect(s.records, r.name).toHaveLength(1);
    }
    expect(s.nbytes).toBe(off);
    if (s.records.length > 1) expect(s.nbytes).toBeLessThanOrEqual(32 * MiB);
  });
}

describe('shard plan at the real shapes', () => {
  it.each(['q4f16_1', 'q4f32_1'] as const)('MLC %s: 325 parameters, the 32 MiB rules', (q) => {
    const params = mlcJobs(real, q).flatMap(jobParams);
    expect(params).toHaveLength(2 + 32 * 10 + 1 + 2);
    const shards = planShards(params, DEFAULT_SHARD_CAP_BYTES, 'params_shard');
    checkLayout(shards, 'params_shard', true);
    expect(shards[0]!.records.map((r) => [r.name, r.shape])).toEqual([['model.embed_tokens.q_weight', [128256, 512]]]);
    const bytes = shards.reduce((a, s) => a + s.nbytes, 0);
    // 4-bit weights + one scale per 32 + norms: ~4.5 GB (f16 scales) / ~5.0 GB (f32 scales)
    expect(bytes / 1e9).toBeCloseTo(q === 'q4f16_1' ? 4.517 : 5.02, 2);
  });

  it.each(['f16', 'q4'] as const)('pack %s: the 32 MiB cap', (p) => {
    // (the tvmjs rule lets a big tensor join a shard while the total stays under the cap: at q4 the pack has
    // shards of a pre-fusion up_proj.q_scale (3.5 MiB) + the next down_proj.q_weight (28 MiB))
    checkLayout(planShards(packJobs(real, p).flatMap(jobParams), DEFAULT_SHARD_CAP_BYTES, 'pack_shard'), 'pack_shard', false);
  });
});

describe('planShards', () => {
  const p = (name: string, bytes: number) => outParam(name, [bytes / 4], 'float32');

  it('fills a shard until the next tensor would reach the cap, then starts the next', () => {
    const shards = planShards([p('a', 40), p('b', 40), p('c', 20)], 100, 'x');
    expect(shards.map((s) => s.records.map((r) => `${r.name}@${r.byteOffset}`))).toEqual([['a@0', 'b@40'], ['c@0']]);
  });

  it('a tensor of half the cap or more that does not fit gets its own shard, numbered before the open one', () => {
    const shards = planShards([p('a', 20), p('big', 120), p('b', 20), p('half', 60), p('c', 8)], 100, 'x');
    expect(shards.map((s) => s.records.map((r) => r.name))).toEqual([['big'], ['half'], ['a', 'b', 'c']]);
  });

  it('refuses duplicate names', () => {
    expect(() => planShards([p('a', 4), p('a', 4)], 100, 'x')).toThrow(/duplicate parameter name "a"/);
  });
});
