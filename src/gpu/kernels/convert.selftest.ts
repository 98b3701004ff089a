// In-app self-tests of the dtype conversion that hands our fused LLM rows to WebLLM: an exact f32 copy, and f16
// rounded to nearest even (GPUs' pack2x16float is where a driver may round differently).
import { f16BytesToF32, f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays, type Tolerance } from '../compare.ts';
import { timed, withGpuObjects, type SelfTestCase, type SelfTestMeasurement } from '../selftest-support.ts';
import { ConvertRowsKernel } from './convert.ts';
import type { DenseStorage } from '../storage.ts';

/** f32: exact. f16: exact away from f16 subnormals, which a GPU may flush to zero (|x| < 6.1e-5). */
const TOL: Record<DenseStorage, Tolerance> = { f32: { atol: 0, rtol: 0 }, f16: { atol: 6.2e-5, rtol: 0 } };

function convertCase(out: DenseStorage, seed: number): SelfTestCase {
  const [rows, H, offsetRows] = [5, 1024, 3];
  return {
    id: `convert-${out}`,
    name: `f32 rows -> ${out} (WebLLM input)`,
    description: `rows ${offsetRows}..${offsetRows + rows} of a [${rows + offsetRows}×${H}] f32 buffer into ${out}, values in [-8, 8]`,
    async run({ device }): Promise<SelfTestMeasurement> {
      const src = randomF32((rows + offsetRows) * H, seededRandom(seed), 8);
      const n = rows * H;
      const rowsIn = src.subarray(offsetRows * H);
      const expected = out === 'f32' ? rowsIn : f16BytesToF32(f32ToF16Bytes(rowsIn));
      const [got, gpuMs] = await withGpuObjects(device, async (gpu) => {
        const k = gpu.own(await ConvertRowsKernel.create(device));
        const sb = gpu.upload(src, 'selftest src');
        const db = gpu.alloc(n * 4, 'selftest dst');
        return timed(
          device,
          () => k.run(device, sb, offsetRows * H, db, 0, n, out),
          async () => {
            const words = await readF32(device, db, out === 'f32' ? n : n / 2);
            return out === 'f32' ? words : f16BytesToF32(new Uint8Array(words.buffer, words.byteOffset, n * 2));
          },
        );
      });
      return { comparison: compareArrays(got, expected, TOL[out]), shape: [rows, H], gpuMs };
    },
  };
}

export const CONVERT_SELF_TEST_CASES: readonly SelfTestCase[] = [convertCase('f32', 91), convertCase('f16', 92)];
