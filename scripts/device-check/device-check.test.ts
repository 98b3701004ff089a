// scripts/device-check.sh --local: every step of the GPU check on this machine's adapter with the scaled-down
// synthetic model; results.json and results.md are written and every step passed or was skipped for a reason the
// adapter gives (no shader-f16). Slow on a CPU adapter (the whole path, several processes): one run.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { isCpuAdapter } from '../../src/gpu/device.ts';
import type { CheckResults } from './results.ts';

const run = promisify(execFile);

describe('device-check.sh --local', () => {
  let out = '';
  afterAll(() => rm(out, { recursive: true, force: true }));

  it('runs the check and writes results.json and results.md', { timeout: 1_500_000 }, async () => {
    out = await mkdtemp(join(tmpdir(), 'device-check-'));
    await run('bash', ['scripts/device-check.sh', '--local', out], { maxBuffer: 64 << 20 });
    const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as CheckResults;
    const f16 = results.adapter.shaderF16;
    for (const s of results.steps) {
      const expected = s.name.includes('f16') && !f16 ? 'skipped' : 'passed';
      expect(`${s.name}: ${s.status}`).toBe(`${s.name}: ${expected}`);
    }
    expect(results.steps.map((s) => s.name)).toEqual([
      'tiny checkpoint',
      'generate --check f16 (tiny checkpoint)',
      'generate --check q4 (tiny checkpoint)',
      'kernel bench (real shapes)',
      'decode bench (plan, gated MLP, residual epilogue)',
      'attention bench (every path)',
      'bench:e2e synthetic:llava-mini-tiny q4',
      'bench:e2e synthetic:llava-mini-tiny f16',
    ]);
    expect(results.e2e).toHaveLength(f16 ? 2 : 1);
    for (const e of results.e2e) {
      expect(e.stages.map((s) => s.name).join('; ')).toMatch(/^preprocess; CLIP .*; compressor; projector; pre-fusion, vision rows .*; pre-fusion, text rows .*; LLM prefill .*; LLM decode, per token .*$/);
      for (const s of e.stages) expect(s.ms).toBeGreaterThan(0);
      expect(e.decode.tokens).toBe(16);
      expect(e.baselines.llava15!.rows).toBeGreaterThan(576);
      expect(e.baselines.limits!.copyGBps).toBeGreaterThan(0);
      expect(e.ratios!.ttftFlopsRatio).toBeGreaterThan(0);
      expect(e.ratios!.ttftFlopsRatio).toBeLessThan(1);
    }
    expect(results.kernels).toMatch(/clip\.qkv/);
    expect(results.kernels).toMatch(/device limits: copy [\d.]+ GB\/s, peak FMA f32 [\d.]+ GFLOP\/s/);
    // With shader-f16: the tiled kernel's f32 and f16 arithmetic, timed against each other.
    if (f16) expect(results.kernels).toMatch(/tiled kernel, f32 against f16 arithmetic[^\n]*\n[^\n]*\nclip\.qkv [^\n]* [\d.]+x +[\d.]+ +[\d.]+%/);
    // The stages are measured against the f16 peak where the linears compute in f16: a GPU with shader-f16 (a CPU
    // adapter's direct form computes in f32).
    for (const e of results.e2e) expect(e.peakKind).toBe(f16 && !isCpuAdapter(results.adapter) ? 'f16' : 'f32');
    expect(results.decode).toMatch(/re-recorded \/ replayed: [\d.]+x/);
    expect(results.decode).toMatch(/separate \/ gated: [\d.]+x; max \|diff\|/);
    expect(results.decode).toMatch(/separate \/ epilogue: [\d.]+x; max \|diff\|/);
    expect(results.attention).toMatch(/\| compressor \(C = 1\) \| 1 x 576, 32 x 128 \|/);
    // With subgroups, tiled attention runs in both forms (a slot on 4 lanes at head dim 128, and on one).
    if (results.adapter.subgroups) expect(results.attention).toMatch(/tiled 1 lane \/ (splitk|direct) [\d.]+/);
    const md = await readFile(join(out, 'results.md'), 'utf8');
    expect(md).toContain(`Adapter: ${results.adapter.vendor}`);
    expect(md).toMatch(/LLaVA-v1\.5 way \(a\)/);
    expect(md).toContain('## Decode bench');
    expect(md).toContain('## Attention bench');
  });
});
