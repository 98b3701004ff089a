// The f16-weight linear variant cannot run here (SwiftShader has no shader-f16), but Dawn's Null backend has
// the feature and validates WGSL and pipelines like a real device: this checks that the f16 source compiles,
// its pipelines build, and a dispatch records without validation errors. Results are checked on GPUs with
// shader-f16 by linear.test.ts ('matches the reference on f16-rounded weights'); so are the tiled kernels' f16
// arithmetic variants, checked for results by linear-f16-arithmetic.test.ts where the adapter has shader-f16.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createValidationOnlyGpu } from '../../node/gpu.ts';
import { createStorageBuffer } from '../buffers.ts';
import type { GpuContext } from '../device.ts';
import { ShaderError } from '../pipeline.ts';
import { LinearQ4Kernel } from './linear-q4.ts';
import { LinearKernel, linearShaderSource } from './linear.ts';
import { firstRows } from '../tensor.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createValidationOnlyGpu();
});
afterAll(() => ctx?.device.destroy());

describe('f16-weight linear on a validating (Null) device', () => {
  it('has shader-f16 on that device', () => {
    expect(ctx.device.features.has('shader-f16')).toBe(true);
  });

  for (const form of ['tiled', 'direct'] as const) {
    it(`the f16 ${form} shaders compile and their pipelines build; dispatches validate`, async () => {
      const kernel = await LinearKernel.create(ctx.device, { weights: 'f16', form });
      // odd N*K: the f16 weight buffer is padded to 4 bytes (scalar loads); K = 36: whole vec4 rows
      for (const [M, K, N] of [[7, 33, 51], [7, 36, 51]] as const) {
        const x = createStorageBuffer(ctx.device, M * K * 4);
        const w = createStorageBuffer(ctx.device, N * K * 2);
        const b = createStorageBuffer(ctx.device, N * 4);
        const y = createStorageBuffer(ctx.device, M * N * 4);
        ctx.device.pushErrorScope('validation');
        kernel.run(ctx.device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, rows: N, cols: K }, bias: b, y: y });
        kernel.run(ctx.device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, rows: N, cols: K }, bias: null, y: y });
        const error = await ctx.device.popErrorScope();
        expect(error?.message ?? null).toBeNull();
      }
      kernel.destroy();
    });
  }

  it('the tiled f16-arithmetic shaders (f16 / f32 weights, int4 with either scales) compile and their dispatches validate', async () => {
    const [M, K, N] = [70, 96, 72];
    const x = createStorageBuffer(ctx.device, M * K * 4);
    const y = createStorageBuffer(ctx.device, M * N * 4);
    const dense = await Promise.all((['f16', 'f32'] as const).map((weights) => LinearKernel.create(ctx.device, { form: 'tiled', weights, arithmetic: 'f16' })));
    const q4 = await Promise.all((['f16', 'f32'] as const).map((scales) => LinearQ4Kernel.create(ctx.device, { form: 'tiled', scales, arithmetic: 'f16' })));
    ctx.device.pushErrorScope('validation');
    for (const kernel of dense) {
      const w = createStorageBuffer(ctx.device, N * K * (kernel.weights === 'f16' ? 2 : 4));
      kernel.run(ctx.device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, rows: N, cols: K }, bias: null, y }, { residual: true });
    }
    for (const kernel of q4) {
      const w = createStorageBuffer(ctx.device, (N * K) / 2);
      const s = createStorageBuffer(ctx.device, (N * K) / 32 * (kernel.scales === 'f16' ? 2 : 4));
      kernel.run(ctx.device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, scales: s, rows: N, cols: K }, bias: null, y });
    }
    expect((await ctx.device.popErrorScope())?.message ?? null).toBeNull();
    for (const kernel of [...dense, ...q4]) kernel.destroy();
  });

  it('the f32 shader also builds there, and a broken f16 edit is caught with its line', async () => {
    await expect(LinearKernel.create(ctx.device, { weights: 'f32' })).resolves.toBeTruthy();
    const broken = linearShaderSource('f16').replace('wv[i] = f32(w[(c + i) * K + k]);', 'wv[i] = w[(c + i) * K + k];');
    const err = await LinearKernel.create(ctx.device, { weights: 'f16', shader: { name: 'matmul.wgsl (f16, broken)', code: broken } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    expect((err as Error).message).toMatch(/matmul\.wgsl \(f16, broken\).*\n.*line \d+:\d+: error/);
  });
});
