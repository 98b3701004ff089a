// In-app self-tests of the elementwise family: exact GELU (erf), quick_gelu, SiLU, SwiGLU on the fused
// gate|up layout, and the in-place residual add.
import { add, gelu, quickGelu, silu, siluScalar } from '../../reference/ops.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import { timed, withGpuObjects, type SelfTestCase, type SelfTestMeasurement } from '../selftest-support.ts';
import { ActivationKernel, AddKernel, SwiGluKernel, type ActivationKind } from './elementwise.ts';

/** A few f32 ulps plus WGSL's exp error (see elementwise.test.ts). */
const ACT_TOL: Tolerance = { atol: 1e-7, rtol: 2e-6 };

/** Uploads `input`, records `record(kernel, input, out)` into a fresh [outLength] f32 buffer, times it, reads `out`. */
async function runOnce<K extends { destroy(): void }>(
  device: GPUDevice,
  kernel: Promise<K>,
  input: Float32Array,
  outLength: number,
  record: (kernel: K, input: GPUBuffer, out: GPUBuffer) => void,
): Promise<[Float32Array, number]> {
  return withGpuObjects(device, async (gpu) => {
    const k = gpu.own(await kernel);
    const inb = gpu.upload(input, 'selftest in');
    const out = gpu.alloc(outLength * 4, 'selftest out');
    return timed(
      device,
      () => record(k, inb, out),
      () => readF32(device, out, outLength),
    );
  });
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
      const [y, gpuMs] = await runOnce(device, ActivationKernel.create(device, kind), x, x.length, (k, xb, out) => k.run(device, xb, out, x.length));
      return { comparison: compareArrays(y, REFERENCE[kind](x), ACT_TOL), shape: [rows, cols], gpuMs };
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
      const [y, gpuMs] = await runOnce(device, SwiGluKernel.create(device), gu, rows * I, (k, gb, out) => k.run(device, gb, out, rows, I));
      return { comparison: compareArrays(y, expected, ACT_TOL), shape: [rows, I], gpuMs };
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
      return withGpuObjects(device, async (gpu) => {
        const kernel = gpu.own(await AddKernel.create(device));
        const xb = gpu.upload(x, 'selftest x');
        const yb = gpu.upload(y0, 'selftest y');
        const [y, gpuMs] = await timed(
          device,
          () => kernel.run(device, xb, yb, rows * cols),
          () => readF32(device, yb, rows * cols),
        );
        return { comparison: compareArrays(y, add(y0, x), { atol: 0, rtol: 0 }), shape: [rows, cols], gpuMs };
      });
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
