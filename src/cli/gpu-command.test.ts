// `npm run cli -- gpu`: the adapter and the device features the engine gets, as a user (and scripts/test.sh) runs it.
import { describe, expect, it } from 'vitest';
import { OPTIONAL_FEATURES } from '../gpu/device.ts';
import { disabledFeatures } from '../node/gpu.ts';
import { cli } from './cli.testing.ts';

describe('cli gpu', () => {
  it('--json: the adapter summary and the device features (less LLAVA_DISABLE_FEATURES)', async () => {
    const r = await cli(['gpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { vendor: string; features: string[]; shaderF16: boolean; deviceFeatures: string[] };
    expect(out.vendor).toBeTruthy();
    expect(out.shaderF16).toBe(out.features.includes('shader-f16'));
    const expected = OPTIONAL_FEATURES.filter((f) => out.features.includes(f) && !disabledFeatures().includes(f));
    expect(out.deviceFeatures.filter((f) => (OPTIONAL_FEATURES as readonly string[]).includes(f))).toEqual(expected);
  });

  it('--require names the missing feature in one line and exits 1', async () => {
    const r = await cli(['gpu', '--require', 'no-such-feature']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('error:'))).toEqual([expect.stringMatching(/^error: the GPU device lacks no-such-feature \(adapter: /)]);
  });
});
