// In-app self-test cases for the int4 linear kernel in the form and arithmetic this device runs (tiled
// shaders/matmul-q4.wgsl on a GPU, in f16 for q4f16 with shader-f16; direct matmul-q4-direct.wgsl on a CPU
// adapter): random x, W quantized with
// quantizeQ4 (q4f32_1 and q4f16_1 layouts), bias; reference: linear() on the dequantized W. Both cases run on
// every device: the f16 scales are read through unpack2x16float (no shader-f16). Small sizes: the page may run
// on SwiftShader.
import { dequantizeQ4, quantizeQ4, type Q4ScaleDType } from '../../quant/q4.ts';
import { linear } from '../../reference/linear.ts';
import type { SelfTestCase } from '../selftest-support.ts';
import { LinearQ4Kernel, q4ScaleData } from './linear-q4.ts';
import { tiledArithmetic } from './linear.ts';
import { arithmeticTolerance, F16_MATH, measureLinearCase, randomLinearProblem, residualStream } from './linear.selftest.ts';
import { firstRows } from '../tensor.ts';

function linearQ4Case(opts: { id: string; name: string; scales: Q4ScaleDType; M: number; K: number; N: number; seed: number; residual?: boolean }): SelfTestCase {
  const { M, K, N, scales, residual = false } = opts;
  return {
    id: opts.id,
    name: opts.name,
    description: `y ${residual ? '+=' : '='} x·deq(W)ᵀ + b, x [${M}×${K}], W [${N}×${K}] int4 (groups of 32, ${scales} scales), ${scales === 'f16' ? F16_MATH : 'f32 accumulation'}`,
    requires: [],
    async run({ device }) {
      const { x, w, b } = randomLinearProblem(M, K, N, opts.seed);
      const q = quantizeQ4(w, N, K, { scaleDType: scales });
      const product = linear(x, M, K, dequantizeQ4(q.qWeight, q.qScale, N, K), N, b);
      const stream = residual ? residualStream(product, opts.seed + 1) : null;
      const data = { x, w: q.qWeight, scales: q4ScaleData(q.qScale, scales), b, y0: stream?.y0 };
      const arithmetic = tiledArithmetic(scales === 'f16' ? 'q4f16' : 'q4f32', device);
      return measureLinearCase(
        device,
        LinearQ4Kernel.create(device, { scales, arithmetic }),
        data,
        [M, K, N],
        stream?.expected ?? product,
        (kernel, g) => kernel.run(device, { x: firstRows(g.x, M, K), w: { name: 'w', buffer: g.w, scales: g.scales!, rows: N, cols: K }, bias: g.b, y: g.y }, { residual }),
        arithmeticTolerance(arithmetic),
      );
    },
  };
}

export const LINEAR_Q4_SELF_TEST_CASES: SelfTestCase[] = [
  linearQ4Case({ id: 'linear-q4f32', name: 'Linear int4, f32 scales (q4f32_1, tiled)', scales: 'f32', M: 77, K: 160, N: 96, seed: 41 }),
  linearQ4Case({ id: 'linear-q4f16', name: 'Linear int4, f16 scales (q4f16_1, tiled)', scales: 'f16', M: 77, K: 160, N: 96, seed: 42 }),
  linearQ4Case({ id: 'linear-q4f16-residual', name: 'Linear int4 into a residual stream (y +=)', scales: 'f16', M: 77, K: 160, N: 96, seed: 43, residual: true }),
];
