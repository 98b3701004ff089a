// Adapter/device setup and summaries (Node/Dawn; SwiftShader without a GPU).
import { describe, expect, it, vi } from 'vitest';
import { createNodeGpu, disabledFeatures, kernelShapesFromEnv } from '../node/gpu.ts';
import { formatAdapterSummary, GpuUnavailableError, isCpuAdapter, isCpuDevice, requestGpuDevice } from './device.ts';

describe("the kernels' shapes (isCpuDevice)", () => {
  it('LLAVA_KERNEL_SHAPES=gpu makes every device take the GPU shapes; unset, the adapter decides; anything else is refused', async () => {
    expect(kernelShapesFromEnv({})).toBe('adapter');
    expect(kernelShapesFromEnv({ LLAVA_KERNEL_SHAPES: 'gpu' })).toBe('gpu');
    expect(() => kernelShapesFromEnv({ LLAVA_KERNEL_SHAPES: 'GPU' })).toThrow(/LLAVA_KERNEL_SHAPES=GPU: use gpu .* or adapter/);
    const saved = process.env.LLAVA_KERNEL_SHAPES;
    process.env.LLAVA_KERNEL_SHAPES = 'gpu';
    const forced = await createNodeGpu().finally(() => {
      if (saved === undefined) delete process.env.LLAVA_KERNEL_SHAPES;
      else process.env.LLAVA_KERNEL_SHAPES = saved;
    });
    const own = await createNodeGpu();
    try {
      expect(isCpuDevice(forced.device)).toBe(false);
      if (saved !== 'gpu') expect(isCpuDevice(own.device)).toBe(isCpuAdapter(own.summary));
      expect(isCpuAdapter({ architecture: 'swiftshader', description: '' })).toBe(true);
      expect(isCpuAdapter({ architecture: '', description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe(true);
      expect(isCpuAdapter({ architecture: 'hopper', description: 'NVIDIA H200' })).toBe(false);
    } finally {
      forced.device.destroy();
      own.device.destroy();
    }
  });
});

describe('requestGpuDevice', () => {
  it('creates a device with the adapter maxima and summarises the adapter', async () => {
    const ctx = await createNodeGpu();
    try {
      const s = ctx.summary;
      expect(s.vendor).toBeTruthy();
      expect(s.features).toEqual([...s.features].sort());
      expect(s.shaderF16).toBe(ctx.adapter.features.has('shader-f16'));
      expect(ctx.features.has('shader-f16')).toBe(s.shaderF16 && !disabledFeatures().includes('shader-f16'));
      for (const k of ['maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup'] as const) {
        expect(ctx.device.limits[k], k).toBe(ctx.adapter.limits[k]);
        expect(s.limits[k]).toBe(ctx.adapter.limits[k]);
      }
      const text = formatAdapterSummary(s);
      expect(text).toContain(`shader-f16: ${s.shaderF16 ? 'yes' : 'no'}`);
      expect(text).toContain('maxStorageBufferBindingSize');
      if (process.env.VK_ICD_FILENAMES?.includes('swiftshader')) {
        expect(s.vendor).toBe('google');
        expect(s.architecture).toBe('swiftshader');
        expect(s.shaderF16).toBe(false);
        expect(s.limits.maxComputeWorkgroupStorageSize).toBe(32768);
      }
    } finally {
      ctx.device.destroy();
    }
  });

  it('leaves out the features it is told to (the f32 fallbacks on an adapter with shader-f16)', async () => {
    const ctx = await createNodeGpu({ withoutFeatures: ['shader-f16', 'timestamp-query'] });
    try {
      expect(ctx.features.has('shader-f16')).toBe(false);
      expect(ctx.features.has('timestamp-query')).toBe(false);
      expect(ctx.features.has('subgroups')).toBe(ctx.adapter.features.has('subgroups'));
    } finally {
      ctx.device.destroy();
    }
    expect(disabledFeatures({ LLAVA_DISABLE_FEATURES: ' shader-f16 ,subgroups,' })).toEqual(['shader-f16', 'subgroups']);
    expect(disabledFeatures({})).toEqual([]);
  });

  it('reports destroy() as reason "destroyed" without calling onLost', async () => {
    const onLost = vi.fn();
    const ctx = await createNodeGpu({ onLost });
    ctx.device.destroy();
    const report = await ctx.lost;
    expect(report.reason).toBe('destroyed');
    expect(report.text).toBe('The GPU device was released.');
    expect(onLost).not.toHaveBeenCalled();
  });

  it('throws GpuUnavailableError with help when WebGPU or an adapter is missing', async () => {
    const noGpu = await requestGpuDevice(undefined).catch((e: unknown) => e);
    expect(noGpu).toBeInstanceOf(GpuUnavailableError);
    expect((noGpu as GpuUnavailableError).kind).toBe('no-webgpu');
    expect((noGpu as GpuUnavailableError).message).toBe('WebGPU is not available in this browser.');
    expect((noGpu as GpuUnavailableError).help.join(' ')).toMatch(/113.*enable-unsafe-webgpu.*localhost/s);

    const fakeGpu = { requestAdapter: async () => null } as unknown as GPU;
    const noAdapter = await requestGpuDevice(fakeGpu).catch((e: unknown) => e);
    expect(noAdapter).toBeInstanceOf(GpuUnavailableError);
    expect((noAdapter as GpuUnavailableError).kind).toBe('no-adapter');
  });
});
