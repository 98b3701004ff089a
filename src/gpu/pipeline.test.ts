// Pipeline building: WGSL errors become readable ShaderErrors; valid programs are cached.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../node/gpu.ts';
import type { GpuContext } from './device.ts';
import { computeProgram, ShaderError, specializeWgsl } from './pipeline.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const GOOD = `
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
override SCALE: f32 = 1.0;
@compute @workgroup_size(1) fn main() { out[0] = 2.0 * SCALE; }
`;

describe('computeProgram', () => {
  it('turns a WGSL syntax/type error into a ShaderError naming the shader and the line', async () => {
    const broken = GOOD.replace('out[0] = 2.0 * SCALE;', 'out[0] = 2.0 * undefined_thing;');
    const err = await computeProgram(ctx.device, { name: 'broken.wgsl', code: broken, bindings: ['storage'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    const e = err as ShaderError;
    expect(e.shader).toBe('broken.wgsl');
    expect(e.message).toMatch(/WebGPU shader "broken\.wgsl" \(entry point main\) failed to build/);
    expect(e.message).toMatch(/line 4:\d+: error: .*undefined_thing/);
    expect(e.message).toContain('| @compute @workgroup_size(1) fn main() { out[0] = 2.0 * undefined_thing; }');
    // the device stays usable afterwards
    await expect(computeProgram(ctx.device, { name: 'good.wgsl', code: GOOD, bindings: ['storage'] })).resolves.toBeTruthy();
  });

  it('reports a pipeline validation error (missing entry point, layout mismatch) as a ShaderError', async () => {
    const missing = await computeProgram(ctx.device, { name: 'good.wgsl', code: GOOD, entryPoint: 'nope', bindings: ['storage'] }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ShaderError);
    expect((missing as Error).message).toMatch(/"good\.wgsl" \(entry point nope\)/);
    const wrongLayout = await computeProgram(ctx.device, { name: 'good.wgsl', code: GOOD, bindings: ['read'] }).catch((e: unknown) => e);
    expect(wrongLayout).toBeInstanceOf(ShaderError);
    expect((wrongLayout as Error).message.split('\n').length).toBeLessThan(40); // no multi-page dump
  });

  it('caches a program per device and spec, overrides included', async () => {
    const spec = { name: 'good.wgsl', code: GOOD, bindings: ['storage'] as const, constants: { SCALE: 3 } };
    const a = await computeProgram(ctx.device, spec);
    const b = await computeProgram(ctx.device, { ...spec });
    const c = await computeProgram(ctx.device, { ...spec, constants: { SCALE: 4 } });
    expect(b.pipeline).toBe(a.pipeline);
    expect(c.pipeline).not.toBe(a.pipeline);
    expect(c.layout).toBe(a.layout);
  });

  it('does not cache failures', async () => {
    const bad = { name: 'bad.wgsl', code: 'fn oops(', bindings: [] as const };
    await expect(computeProgram(ctx.device, bad)).rejects.toBeInstanceOf(ShaderError);
    await expect(computeProgram(ctx.device, bad)).rejects.toBeInstanceOf(ShaderError);
  });
});

describe('specializeWgsl', () => {
  it('prepends enables and rebinds aliases, and refuses a missing alias', () => {
    const src = '// header\nalias T = f32;\nfn f(a: T) -> T { return a; }\n';
    const out = specializeWgsl(src, { enable: ['f16'], aliases: { T: 'f16' } });
    expect(out).toBe('enable f16;\n// header\nalias T = f16;\nfn f(a: T) -> T { return a; }\n');
    expect(() => specializeWgsl(src, { aliases: { U: 'f16' } })).toThrow(/alias U/);
  });

  it('sets u32 consts (what sizes a private array), and refuses a missing const or a value that is not a u32', () => {
    const src = 'const MAX_M: u32 = 1u;   // set by the host\nvar<private> acc: array<f32, MAX_M>;\n';
    expect(specializeWgsl(src, { u32Consts: { MAX_M: 16 } })).toBe('const MAX_M: u32 = 16u;   // set by the host\nvar<private> acc: array<f32, MAX_M>;\n');
    expect(() => specializeWgsl(src, { u32Consts: { MAX_N: 2 } })).toThrow(/const MAX_N: u32/);
    expect(() => specializeWgsl(src, { u32Consts: { MAX_M: -1 } })).toThrow(/not a u32/);
  });
});
