// The residual epilogue (LinearRunOptions.residual: y += x W^T + b, the residual stream updated in place by the
// projection that feeds it) of every linear kernel, form and weight storage this adapter runs, against y0 + the
// f64 CPU reference linear(). y is a column window (yColOffset, yRowStride) inside a buffer filled with y0, so a
// read of the wrong element, a missing add or a write outside the window fails.
// Tolerance: the kernels' own, atol 1e-4 + rtol 1e-4 (f32 accumulation over K = 64 terms of |x| <= 1,
// |w| <= 1/8, plus one f32 add of |y0| <= 2); elements outside the window must keep y0 (within the same tolerance).
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createNodeGpu } from '../../node/gpu.ts';
import { linear } from '../../reference/linear.ts';
import { mulberry32, randomF32 } from '../../util/seeded-random.ts';
import { readF32, storageBufferFrom } from '../buffers.ts';
import type { GpuContext } from '../device.ts';
import { expectCloseWith } from '../gpu.testing.ts';
import { decodeRows, encodeRows, type Storage } from '../storage.ts';
import { firstRows, type WeightRows } from '../tensor.ts';
import { LinearQ4Kernel } from './linear-q4.ts';
import { LinearKernel, type LinearForm, type LinearOperands, type LinearRunOptions } from './linear.ts';
import { MatvecKernel } from './matvec.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const expectClose = expectCloseWith({ atol: 1e-4, rtol: 1e-4 });
const K = 64;
const N = 40;
const LDY = N + 9;
const Y_OFF = 5;

interface Runner {
  run(target: GPUDevice, op: LinearOperands, opts: LinearRunOptions): void;
  destroy(): void;
}

/** Runs `kernel` with the residual epilogue over M rows and compares the whole y buffer with y0 + x W^T + b. */
async function checkResidual(kernel: Runner, storage: Storage, M: number, label: string): Promise<void> {
  const { device } = ctx;
  const rng = mulberry32(M * 7 + K);
  const x = randomF32(M * K, rng, 1);
  const w = randomF32(N * K, rng, 1 / Math.sqrt(K));
  const b = randomF32(N, rng, 0.5);
  const size = Y_OFF + (M - 1) * LDY + N + 3;
  const y0 = randomF32(size, rng, 2);
  const owned: GPUBuffer[] = [];
  const upload = (data: ArrayBufferView, name: string) => {
    const buf = storageBufferFrom(device, data, name);
    owned.push(buf);
    return buf;
  };
  // W as the storage table encodes it, and the f32 values the GPU then holds (the reference's weights).
  const enc = encodeRows(storage, w, N, K);
  const weights: WeightRows = { name: 'w', buffer: upload(enc.data, 'w'), ...(enc.scales ? { scales: upload(enc.scales, 'w scales') } : {}), rows: N, cols: K };
  const effective = decodeRows(storage, enc, N, K);
  const y = upload(y0, 'y');
  try {
    kernel.run(device, { x: firstRows(upload(x, 'x'), M, K), w: weights, bias: upload(b, 'b'), y }, { yRowStride: LDY, yColOffset: Y_OFF, residual: true });
    const got = await readF32(device, y, size);
    const product = linear(x, M, K, effective, N, b);
    const expected = Float32Array.from(y0);
    for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expected[Y_OFF + m * LDY + n] += product[m * N + n]!;
    expectClose(got, expected, `${label} residual`, [size]);
  } finally {
    for (const buf of owned) buf.destroy();
    kernel.destroy();
  }
}

describe('residual epilogue: y += x W^T + b in a y window', () => {
  const forms: readonly LinearForm[] = ['tiled', 'direct'];
  for (const form of forms) {
    for (const M of [7, 65]) {
      it(`LinearKernel f32 (${form}), M=${M}`, async () => {
        await checkResidual(await LinearKernel.create(ctx.device, { form }), 'f32', M, `linear f32 ${form}`);
      });
      it(`LinearKernel f16 (${form}), M=${M}, where the adapter has shader-f16`, async (t) => {
        if (!ctx.device.features.has('shader-f16')) return t.skip();
        await checkResidual(await LinearKernel.create(ctx.device, { form, weights: 'f16' }), 'f16', M, `linear f16 ${form}`);
      });
      for (const scales of ['f32', 'f16'] as const) {
        it(`LinearQ4Kernel ${scales} scales (${form}), M=${M}`, async () => {
          await checkResidual(await LinearQ4Kernel.create(ctx.device, { form, scales }), scales === 'f16' ? 'q4f16' : 'q4f32', M, `linear-q4 ${scales} ${form}`);
        });
      }
    }
  }
  for (const storage of ['f32', 'f16', 'q4f32', 'q4f16'] as const) {
    for (const cpu of [false, true]) {
      for (const M of [1, 7]) {
        it(`MatvecKernel ${storage}, ${cpu ? 'CPU' : 'GPU'} lane shape, M=${M}`, async () => {
          await checkResidual(await MatvecKernel.create(ctx.device, { weights: storage, cpu }), storage, M, `matvec ${storage}`);
        });
      }
    }
  }
});
