// In-app self-test cases for the decode matvec kernel (shaders/matvec.wgsl): one row of x (and cases with 3
// and 12 rows: the batched M classes, and the gated form of the MLP input) times W stored as f32, f16, int4 with f32 scales (q4f32_1) and int4 with f16 scales (q4f16_1); reference:
// linear() on the weights the GPU actually holds (f16-rounded / dequantized). Every case runs on every device
// (f16 is read through unpack2x16float, no shader-f16). Small sizes: the page may run on SwiftShader.
import { linear } from '../../reference/linear.ts';
import type { SelfTestCase } from '../selftest-support.ts';
import { measureLinearCase, randomLinearProblem, residualStream } from './linear.selftest.ts';
import { MatvecKernel } from './matvec.ts';
import { decodeRows, encodeRows, type Storage } from '../storage.ts';
import { firstRows } from '../tensor.ts';

const LABEL: Record<Storage, string> = { f32: 'f32', f16: 'f16', q4f32: 'int4, f32 scales', q4f16: 'int4, f16 scales' };

/** W as the storage table encodes it (f32 / f16 values, or int4 words + scales) and the f32 values it holds. */
function stored(weights: Storage, w: Float32Array, N: number, K: number): { data: ArrayBufferView; scales: ArrayBufferView | null; effective: Float32Array } {
  const enc = encodeRows(weights, w, N, K);
  return { data: enc.data, scales: enc.scales ?? null, effective: decodeRows(weights, enc, N, K) };
}

function matvecCase(opts: { id: string; weights: Storage; M: number; K: number; N: number; seed: number; residual?: boolean }): SelfTestCase {
  const { M, K, N, weights, residual = false } = opts;
  return {
    id: opts.id,
    name: `Matvec ${LABEL[weights]} (decode${M > 1 ? `, ${M} rows` : ''}${residual ? ', into a residual stream' : ''})`,
    description: `y ${residual ? '+=' : '='} W·x + b, x [${M}×${K}], W [${N}×${K}] ${LABEL[weights]}, f32 accumulation`,
    requires: [],
    async run({ device }) {
      const { x, w, b } = randomLinearProblem(M, K, N, opts.seed);
      const s = stored(weights, w, N, K);
      const product = linear(x, M, K, s.effective, N, b);
      const stream = residual ? residualStream(product, opts.seed + 1) : null;
      // f32 accumulation over K = 1024 terms of |x| <= 1, |w| <= 1/32 (outputs ~0.6): 1e-4 is ample.
      const data = { x, w: s.data, scales: s.scales, b, y0: stream?.y0 };
      return measureLinearCase(device, MatvecKernel.create(device, { weights }), data, [M, K, N], stream?.expected ?? product, (kernel, g) =>
        kernel.run(device, { x: firstRows(g.x, M, K), w: { name: 'w', buffer: g.w, scales: g.scales, rows: N, cols: K }, bias: g.b, y: g.y }, { residual }),
      );
    },
  };
}

/** The gated form (a decode step's MLP input): y = silu(W_gate·x) * (W_up·x) in one pass. */
function gatedMatvecCase(opts: { id: string; weights: Storage; K: number; N: number; seed: number }): SelfTestCase {
  const { K, N, weights } = opts;
  return {
    id: opts.id,
    name: `Matvec ${LABEL[weights]}, gated (decode MLP)`,
    description: `y = silu(W_gate·x) · (W_up·x), x [1×${K}], W_gate, W_up [${N}×${K}] ${LABEL[weights]}, f32 accumulation`,
    requires: [],
    async run({ device }) {
      const { x, w, b } = randomLinearProblem(1, K, N, opts.seed);
      const up = randomLinearProblem(1, K, N, opts.seed + 1).w;
      const [sg, su] = [stored(weights, w, N, K), stored(weights, up, N, K)];
      const g = linear(x, 1, K, sg.effective, N);
      const u = linear(x, 1, K, su.effective, N);
      const expected = g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!);
      const extra = su.scales ? [su.data, su.scales] : [su.data];
      return measureLinearCase(device, MatvecKernel.create(device, { weights }), { x, w: sg.data, scales: sg.scales, b, extra }, [1, K, N], expected, (kernel, bufs) =>
        kernel.run(device, {
          x: firstRows(bufs.x, 1, K),
          w: { name: 'gate', buffer: bufs.w, scales: bufs.scales, rows: N, cols: K },
          up: { name: 'up', buffer: bufs.extra[0]!, scales: bufs.extra[1] ?? null, rows: N, cols: K },
          bias: null,
          y: bufs.y,
        }),
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
  matvecCase({ id: 'matvec-q4f16-residual', weights: 'q4f16', M: 1, K: 1024, N: 200, seed: 58, residual: true }),
  gatedMatvecCase({ id: 'matvec-q4f16-gated', weights: 'q4f16', K: 1024, N: 150, seed: 57 }),
  gatedMatvecCase({ id: 'matvec-f32-gated', weights: 'f32', K: 512, N: 77, seed: 59 }),
];
