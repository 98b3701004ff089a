// The in-app self-test cases, run in Node/Dawn exactly as the page runs them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../node/gpu.ts';
import { compareArrays } from './compare.ts';
import type { GpuContext } from './device.ts';
import { CONVERT_SELF_TEST_CASES } from './kernels/convert.selftest.ts';
import { ATTENTION_SELF_TEST_CASES } from './kernels/attention.selftest.ts';
import { ELEMENTWISE_SELF_TEST_CASES } from './kernels/elementwise.selftest.ts';
import { EMBEDDING_SELF_TEST_CASES } from './kernels/embedding.selftest.ts';
import { LINEAR_Q4_SELF_TEST_CASES } from './kernels/linear-q4.selftest.ts';
import { LINEAR_SELF_TEST_CASES } from './kernels/linear.selftest.ts';
import { MATVEC_SELF_TEST_CASES } from './kernels/matvec.selftest.ts';
import { NORM_SELF_TEST_CASES } from './kernels/norm.selftest.ts';
import { PREPROCESS_SELF_TEST_CASES } from '../image/preprocess.selftest.ts';
import { CLIP_EMBEDDING_SELF_TEST_CASES } from '../vision/clip-embedding.selftest.ts';
import { ROPE_SELF_TEST_CASES } from './kernels/rope.selftest.ts';
import { SAMPLING_SELF_TEST_CASES } from './kernels/sampling.selftest.ts';
import { runSelfTests, SELF_TEST_CASES, SELF_TEST_GROUPS, type SelfTestCase } from './selftest.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

describe('self-test', () => {
  it('lists the cases of every kernel family once, with unique ids', () => {
    const families = [
      LINEAR_SELF_TEST_CASES,
      LINEAR_Q4_SELF_TEST_CASES,
      MATVEC_SELF_TEST_CASES,
      NORM_SELF_TEST_CASES,
      ELEMENTWISE_SELF_TEST_CASES,
      EMBEDDING_SELF_TEST_CASES,
      CLIP_EMBEDDING_SELF_TEST_CASES,
      ROPE_SELF_TEST_CASES,
      ATTENTION_SELF_TEST_CASES,
      PREPROCESS_SELF_TEST_CASES,
      SAMPLING_SELF_TEST_CASES,
      CONVERT_SELF_TEST_CASES,
    ];
    const ids = SELF_TEST_CASES.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(families.flat().map((c) => c.id).sort());
    expect(SELF_TEST_GROUPS.flatMap((g) => g.cases)).toEqual(SELF_TEST_CASES);
    // The only feature a case may need is shader-f16 (the e2e test expects exactly those to be skipped on SwiftShader).
    expect(new Set(SELF_TEST_CASES.flatMap((c) => c.requires ?? []))).toEqual(new Set(['shader-f16']));
  });

  it('every case passes, or is skipped for a missing feature', async () => {
    const seen: string[] = [];
    const results = await runSelfTests({ device: ctx.device }, SELF_TEST_CASES, (r) => seen.push(r.id));
    expect(seen).toEqual(SELF_TEST_CASES.map((c) => c.id));
    for (const r of results) {
      const c = SELF_TEST_CASES.find((k) => k.id === r.id)!;
      const runnable = (c.requires ?? []).every((f) => ctx.device.features.has(f));
      expect(r.status, r.detail).toBe(runnable ? 'pass' : 'skipped');
      if (runnable) {
        expect(r.maxAbs).toBeDefined();
        expect(r.gpuMs).toBeGreaterThan(0);
      } else {
        expect(r.detail).toMatch(/skipped: this GPU has no shader-f16/);
      }
    }
    const linearF32 = results.find((r) => r.id === 'linear-f32');
    expect(linearF32?.status).toBe('pass');
    expect(linearF32?.maxAbs).toBeLessThan(1e-4);
  });

  it('reports a wrong result as fail and a thrown error as error', async () => {
    const wrong: SelfTestCase = {
      id: 'wrong',
      name: 'Wrong',
      description: '',
      run: async () => ({ comparison: compareArrays([1, 2], [1, 2.5], { atol: 1e-4, rtol: 1e-4 }), shape: [1, 2], gpuMs: 1 }),
    };
    const throwing: SelfTestCase = {
      id: 'throws',
      name: 'Throws',
      description: '',
      run: async () => {
        throw new Error('boom');
      },
    };
    const [a, b] = await runSelfTests({ device: ctx.device }, [wrong, throwing]);
    expect(a.status).toBe('fail');
    expect(a.detail).toContain('worst [0, 1]');
    expect(b.status).toBe('error');
    expect(b.detail).toBe('boom');
  });
});
