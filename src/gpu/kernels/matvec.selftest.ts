// In-app self-test cases for the decode matvec kernel (shaders/matvec.wgsl): one row of x (and cases with 3
// and 12 rows: the batched M classes) times W stored as f32, f16, int4 with f32 scales (q4f32_1) and int4 with f16 scales (q4f16_1); reference:
// linear() on the weights the GPU actually holds (f16-rounded / dequantized). Every case runs on every device
// (f16 is read through unpack2x16float, no shader-f16). Small sizes: the page may run on SwiftShader.
import { dequantizeQ4, quantizeQ4 } from '../../quant/q4.ts';
import { linear } from '../../reference/linear.ts';
import type { SelfTestCase } from '../selftest-support.ts';
import { roundToF16 } from './linear.ts';
import { q4ScaleData } from './linear-q4.ts';
import { measureLinearCase, randomLinearProblem } from './linear.selftest.ts';
import { MatvecKernel, toF16Bits } from './matvec.ts';
import type { Storage } from '../storage.ts';
import { firstRows } from '../tensor.ts';

const LABEL: Record<Storage, string> = { f32: 'f32', f16: 'f16', q4f32: 'int4, f32 scales', q4f16: 'int4, f16 scales' };

function matvecCase(opts: { id: string; weights: Storage; M: number; K: number; N: number; seed: number }): SelfTestCase {
  const { M, K, N, weights } = opts;
  return {
    id: opts.id,
    name: `Matvec ${LABEL[weights]} (decode${M > 1 ? `, ${M} rows` : ''})`,
    description: `y = W·x + b, x [${M}×${K}], W [${N}×${K}] ${LABEL[weights]}, f32 accumulation`,
    requires: [],
    async run({ device }) {
      const { x, w, b } = randomLinearProblem(M, K, N, opts.seed);
      // The weights as uploaded (f32 values, f16 bits, or int4 words + scales) and the f32 values they hold.
      let wData: ArrayBufferView;
      let sData: ArrayBufferView | null = null;
      let effective: Float32Array;
      if (weights === 'f32') {
        wData = effective = w;
      } else if (weights === 'f16') {
        wData = toF16Bits(w);
        effective = roundToF16(w);
      } else {
        const scaleDType = weights === 'q4f16' ? 'f16' : 'f32';
        const q = quantizeQ4(w, N, K, { scaleDType });
        wData = q.qWeight;
        sData = q4ScaleData(q.qScale, scaleDType);
        effective = dequantizeQ4(q.qWeight, q.qScale, N, K);
      }
      const expected = linear(x, M, K, effective, N, b);
      // f32 accumulation over K = 1024 terms of |x| <= 1, |w| <= 1/32 (outputs ~0.6): 1e-4 is ample.
      return measureLinearCase(device, MatvecKernel.create(device, { weights }), { x, w: wData, scales: sData, b }, [M, K, N], expected, (kernel, g) =>
        kernel.run(device, { x: firstRows(g.x, M, K), w: { name: 'w', buffer: g.w, scales: g.scales, rows: N, cols: K }, bias: g.b, y: g.y }),
      );
    },
  };
}

export const MATVEC_SELF_TEST_CASES: SelfTestCase[] = [
  matvecCase({ id: 'matvec-f32', weights: 'f32', M: 1, K: 1024, N: 200, seed: 51 }),
  matvecCase({ id: 'matvec-f16w', weights: 'f16', M: 1, K: 1024, N: 200, seed: 52 }),
  matvecCase({ id: 'matvec-q4f32', weights: 'q4f32', M: 1, K: 1024, N: 200, seed: 53 }),
  matvecCase({ id: 'matvec-q4f16', weights: 'q4f16', M: 1, K: 1024, N: 200, seed: 54 }),
  matvecCase({ id: 'matvec-q4f16-m3', weights: 'q4f16', M: 3, K: 512, N: 77, seed: 55 }),
  matvecCase({ id: 'matvec-q4f32-m12', weights: 'q4f32', M: 12, K: 512, N: 77, seed: 56 }),
];
