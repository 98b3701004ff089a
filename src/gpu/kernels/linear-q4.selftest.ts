// In-app self-test cases for the int4 tiled linear kernel (shaders/matmul-q4.wgsl): random x, W quantized with
// quantizeQ4 (q4f32_1 and q4f16_1 layouts), bias; reference: linear() on the dequantized W. Both cases run on
// every device: the f16 scales are read through unpack2x16float (no shader-f16). Small sizes: the page may run
// on SwiftShader.
import { dequantizeQ4, quantizeQ4, type Q4ScaleDType } from '../../quant/q4.ts';
import { linear } from '../../reference/linear.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import type { SelfTestCase } from '../selftest.ts';
import { LinearQ4Kernel, q4ScaleData } from './linear-q4.ts';

function linearQ4Case(opts: { id: string; name: string; scales: Q4ScaleDType; M: number; K: number; N: number; seed: number }): SelfTestCase {
  const { M, K, N, scales } = opts;
  return {
    id: opts.id,
    name: opts.name,
    description: `y = x·deq(W)ᵀ + b, x [${M}×${K}], W [${N}×${K}] int4 (groups of 32, ${scales} scales), f32 accumulation`,
    requires: [],
    async run({ device }) {
      const rng = seededRandom(opts.seed);
      const x = randomF32(M * K, rng);
      const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
      const b = randomF32(N, rng, 0.5);
      const q = quantizeQ4(w, N, K, { scaleDType: scales });
      const expected = linear(x, M, K, dequantizeQ4(q.qWeight, q.qScale, N, K), N, b);
      const kernel = await LinearQ4Kernel.create(device, { scales });
      const bufs = [
        storageBufferFrom(device, x, 'selftest x'),
        storageBufferFrom(device, q.qWeight, 'selftest qWeight'),
        storageBufferFrom(device, q4ScaleData(q.qScale, scales), 'selftest qScale'),
        storageBufferFrom(device, b, 'selftest b'),
        createStorageBuffer(device, M * N * 4, 'selftest y'),
      ];
      const [xb, wb, sb, bb, yb] = bufs as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
      try {
        const t0 = performance.now();
        kernel.run(device, xb, wb, sb, bb, yb, M, K, N);
        await device.queue.onSubmittedWorkDone();
        const gpuMs = performance.now() - t0;
        const y = await readF32(device, yb, M * N);
        // The dequantized W is exact in f32: only the f32 accumulation differs from the f64 reference.
        return { comparison: compareArrays(y, expected, { atol: 1e-4, rtol: 1e-4 }), shape: [M, N], gpuMs, flops: 2 * M * K * N };
      } finally {
        for (const buf of bufs) buf.destroy();
        kernel.destroy();
      }
    },
  };
}

export const LINEAR_Q4_SELF_TEST_CASES: SelfTestCase[] = [
  linearQ4Case({ id: 'linear-q4f32', name: 'Linear int4, f32 scales (q4f32_1, tiled)', scales: 'f32', M: 77, K: 160, N: 96, seed: 41 }),
  linearQ4Case({ id: 'linear-q4f16', name: 'Linear int4, f16 scales (q4f16_1, tiled)', scales: 'f16', M: 77, K: 160, N: 96, seed: 42 }),
];
