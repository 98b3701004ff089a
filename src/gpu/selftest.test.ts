// The in-app self-test cases, run in Node/Dawn exactly as the page runs them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../node/gpu.ts';
import { compareArrays } from './compare.ts';
import type { GpuContext } from './device.ts';
import { runSelfTests, SELF_TEST_CASES, type SelfTestCase } from './selftest.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

describe('self-test', () => {
  it('every case passes, or is skipped for a missing feature', async () => {
    const seen: string[] = [];
    const results = await runSelfTests({ device: ctx.device }, SELF_TEST_CASES, (r) => seen.push(r.id));
    expect(seen).toEqual(SELF_TEST_CASES.map((c) => c.id));
    for (const r of results) {
      const c = SELF_TEST_CASES.find((k) => k.id === r.id)!;
      const runnable = (c.requires ?? []).every((f) => ctx.device.features.has(f));
      expect(r.status, r.detail).toBe(runnable ? 'pass' : 'skipped');
      if (runnable) {
        expect(r.maxAbs).toBeLessThan(1e-4);
        expect(r.gpuMs).toBeGreaterThan(0);
      } else {
        expect(r.detail).toMatch(/skipped: this GPU has no shader-f16/);
      }
    }
    expect(results.find((r) => r.id === 'linear-f32')?.status).toBe('pass');
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
