// In-app self-tests of the elementwise family: exact GELU (erf), quick_gelu, SiLU, SwiGLU on the fused
// gate|up layout, and the in-place residual add.
import { add, gelu, quickGelu, silu, siluScalar } from '../../reference/ops.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import type { SelfTestCase, SelfTestMeasurement } from '../selftest.ts';
import { ActivationKernel, AddKernel, SwiGluKernel, type ActivationKind } from './elementwise.ts';

/** A few f32 ulps plus WGSL's exp error (see elementwise.test.ts). */
const ACT_TOL: Tolerance = { atol: 1e-7, rtol: 2e-6 };

async function timed<T>(device: GPUDevice, f: () => void, read: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  f();
  await device.queue.onSubmittedWorkDone();
  const ms = performance.now() - t0;
  return [await read(), ms];
}

async function runOnce(device: GPUDevice, inputs: Float32Array[], outLength: number, record: (bufs: GPUBuffer[], out: GPUBuffer) => void): Promise<[Float32Array, number]> {
  const bufs = inputs.map((a, i) => storageBufferFrom(device, a, `selftest in ${i}`));
  const out = createStorageBuffer(device, outLength * 4, 'selftest out');
  try {
    return await timed(
      device,
      () => record(bufs, out),
      () => readF32(device, out, outLength),
    );
  } finally {
    for (const b of [...bufs, out]) b.destroy();
  }
}

const REFERENCE: Record<Exclude<ActivationKind, 'erf'>, (x: Float32Array) => Float32Array> = { gelu, quick_gelu: quickGelu, silu };

function activationCase(kind: Exclude<ActivationKind, 'erf'>, name: string, seed: number): SelfTestCase {
  const [rows, cols] = [16, 1000];
  return {
    id: `act-${kind}`,
    name,
    description: `${kind} over [${rows}×${cols}] values in [-10, 10], vec4 path`,
    async run({ device }): Promise<SelfTestMeasurement> {
      const x = randomF32(rows * cols, seededRandom(seed), 10);
      const kernel = await ActivationKernel.create(device, kind);
      try {
        const [y, gpuMs] = await runOnce(device, [x], x.length, ([xb], out) => kernel.run(device, xb!, out, x.length));
        return { comparison: compareArrays(y, REFERENCE[kind](x), ACT_TOL), shape: [rows, cols], gpuMs };
      } finally {
        kernel.destroy();
      }
    },
  };
}

function swigluCase(): SelfTestCase {
  const [rows, I] = [7, 1000];
  return {
    id: 'swiglu',
    name: 'SwiGLU (fused gate|up)',
    description: `silu(gate) * up from a [${rows}×${2 * I}] gate_up buffer into [${rows}×${I}]`,
    async run({ device }) {
      const gu = randomF32(rows * 2 * I, seededRandom(41), 8);
      const expected = new Float32Array(rows * I);
      for (let r = 0; r < rows; r++) for (let c = 0; c < I; c++) expected[r * I + c] = siluScalar(gu[r * 2 * I + c]!) * gu[r * 2 * I + I + c]!;
      const kernel = await SwiGluKernel.create(device);
      try {
        const [y, gpuMs] = await runOnce(device, [gu], rows * I, ([gb], out) => kernel.run(device, gb!, out, rows, I));
        return { comparison: compareArrays(y, expected, ACT_TOL), shape: [rows, I], gpuMs };
      } finally {
        kernel.destroy();
      }
    },
  };
}

function residualCase(): SelfTestCase {
  const [rows, cols] = [9, 4096];
  return {
    id: 'residual-add',
    name: 'Residual add (in place)',
    description: `y += x over [${rows}×${cols}]`,
    async run({ device }) {
      const rng = seededRandom(42);
      const x = randomF32(rows * cols, rng, 4);
      const y0 = randomF32(rows * cols, rng, 4);
      const kernel = await AddKernel.create(device);
      const xb = storageBufferFrom(device, x, 'selftest x');
      const yb = storageBufferFrom(device, y0, 'selftest y');
      try {
        const [y, gpuMs] = await timed(
          device,
          () => kernel.run(device, xb, yb, rows * cols),
          () => readF32(device, yb, rows * cols),
        );
        return { comparison: compareArrays(y, add(y0, x), { atol: 0, rtol: 0 }), shape: [rows, cols], gpuMs };
      } finally {
        xb.destroy();
        yb.destroy();
        kernel.destroy();
      }
    },
  };
}

export const ELEMENTWISE_SELF_TEST_CASES: SelfTestCase[] = [
  activationCase('gelu', 'GELU (exact, erf)', 43),
  activationCase('quick_gelu', 'quick_gelu (CLIP)', 44),
  activationCase('silu', 'SiLU', 45),
  swigluCase(),
  residualCase(),
];
