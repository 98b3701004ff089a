// In-app self-test cases for next-token selection (shaders/sampling.wgsl) vs the f64 CPU reference
// (src/reference/sampling.ts). Token ids must be equal (tolerance 0). For sampling, draws whose decision lies
// within 1e-5 (relative) of a boundary per the reference are left out: f32 vs f64 may legitimately differ there.
import { argmaxRef, sampleTopPDetails } from '../../reference/sampling.ts';
import { mulberry32 } from '../../util/seeded-random.ts';
import { readBuffer } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import { timed, withGpuObjects, type SelfTestCase } from '../selftest-support.ts';
import { PARAMS_RING, SamplingKernel, type SampleParams } from './sampling.ts';

function seededLogits(V: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const out = new Float32Array(V);
  for (let i = 0; i < V; i++) out[i] = (rng() + rng() + rng() - 1.5) * 4;
  for (let k = 0; k < 20; k++) out[Math.floor(rng() * V)] = 6 + rng() * 4;
  return out;
}

const argmaxCase: SelfTestCase = {
  id: 'argmax',
  name: 'Argmax (greedy token)',
  description: 'argmax over 128256 logits (the real vocabulary) with a tie, lowest index wins',
  async run({ device }) {
    const V = 128256;
    const logits = seededLogits(V, 11);
    logits[70001] = 50;
    logits[90002] = 50;
    const expected = [argmaxRef(logits)];
    return withGpuObjects(device, async (gpu) => {
      const kernel = gpu.own(await SamplingKernel.create(device));
      const lb = gpu.upload(logits, 'selftest logits');
      const rb = gpu.alloc(4, 'selftest token');
      const [got, gpuMs] = await timed(
        device,
        () => kernel.argmax(device, lb, rb, V),
        async () => [...new Uint32Array(await readBuffer(device, rb, 4))],
      );
      return { comparison: compareArrays(got, expected, { atol: 0, rtol: 0 }), shape: [1], gpuMs };
    });
  },
};

const topPCase: SelfTestCase = {
  id: 'sample-top-p',
  name: 'Top-p sampling (T 0.8, p 0.9)',
  description: `${PARAMS_RING} seeded draws over 5000 logits, temperature 0.8, top-p 0.9; same token ids as the CPU reference`,
  async run({ device }) {
    const V = 5000;
    const logits = seededLogits(V, 12);
    const rng = mulberry32(13);
    const draws: SampleParams[] = Array.from({ length: PARAMS_RING }, () => ({ temperature: 0.8, topP: 0.9, u: rng() }));
    return withGpuObjects(device, async (gpu) => {
      const kernel = gpu.own(await new SamplingKernel(device).initTopP());
      const lb = gpu.upload(logits, 'selftest logits');
      const rb = gpu.alloc(PARAMS_RING * 4, 'selftest tokens');
      const [got, gpuMs] = await timed(
        device,
        () => {
          const encoder = device.createCommandEncoder({ label: 'selftest sampling' });
          draws.forEach((d, j) => kernel.sample(encoder, lb, rb, V, d, { outIndex: j }));
          device.queue.submit([encoder.finish()]);
        },
        async () => new Uint32Array(await readBuffer(device, rb, PARAMS_RING * 4)),
      );
      const actual: number[] = [];
      const expected: number[] = [];
      draws.forEach((d, j) => {
        const r = sampleTopPDetails(logits, d);
        if (r.pickMargin < 1e-5 || r.thresholdMargin < 1e-5) return;
        actual.push(got[j]!);
        expected.push(r.token);
      });
      return { comparison: compareArrays(actual, expected, { atol: 0, rtol: 0 }), shape: [actual.length], gpuMs };
    });
  },
};

export const SAMPLING_SELF_TEST_CASES: SelfTestCase[] = [argmaxCase, topPCase];
