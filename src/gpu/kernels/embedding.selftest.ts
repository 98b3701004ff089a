// In-app self-tests of the embedding family (token gather in every table format), plus
// the small MLC q4 packer / dequantizer they and embedding.test.ts use as the CPU side (test-only: the engine's
// own q4 code lives elsewhere).
import { f16BytesToF32 } from '../../checkpoint/dtype.ts';
import { embedRows } from '../../reference/llama.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { readF32 } from '../buffers.ts';
import { compareArrays } from '../compare.ts';
import { shaderF16If, timed, withGpuObjects, type SelfTestCase, type SelfTestMeasurement } from '../selftest-support.ts';
import { createEmbeddingTable, destroyEmbeddingTable, EmbeddingKernel, type EmbeddingTableData } from './embedding.ts';
import type { Storage } from '../storage.ts';
import { roundToF16, toF16Weights } from './linear.ts';

/**
 * MLC q4 packing of rows [rows, H] (H a multiple of 32): per group of 32 along a row, scale = max|w| / 7,
 * q = clamp(round(w / scale + 7), 0, 14) (half away from zero), element j*8 + r in bits 4r..4r+3 of word j.
 * All-zero groups get scale 0 (q = 7). Scales are stored as f32 values or f16 bits; q is computed from the
 * stored scale, so dequantization reproduces the stored values exactly.
 */
export function quantizeQ4Rows(w: Float32Array, rows: number, H: number, scales: 'f32' | 'f16'): { qWeight: Uint32Array; qScale: Float32Array | Uint16Array } {
  if (H % 32 !== 0) throw new Error(`quantizeQ4Rows: H = ${H} is not a multiple of 32`);
  if (w.length !== rows * H) throw new Error(`quantizeQ4Rows: ${w.length} values, expected ${rows}x${H}`);
  const groups = rows * (H / 32);
  const raw = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    let m = 0;
    for (let i = 0; i < 32; i++) m = Math.max(m, Math.abs(w[g * 32 + i]!));
    raw[g] = m / 7;
  }
  const stored = scales === 'f16' ? roundToF16(raw) : raw;
  const qWeight = new Uint32Array((rows * H) / 8);
  for (let g = 0; g < groups; g++) {
    const s = stored[g]!;
    for (let i = 0; i < 32; i++) {
      const e = g * 32 + i;
      const t = s === 0 ? 7 : w[e]! / s + 7;
      const q = Math.min(14, Math.max(0, Math.sign(t) * Math.round(Math.abs(t))));
      qWeight[e >> 3] = (qWeight[e >> 3]! | (q << (4 * (e & 7)))) >>> 0;
    }
  }
  return { qWeight, qScale: scales === 'f16' ? toF16Weights(raw) : stored };
}

/** (q - 7) * scale as f32, for q4 rows packed as above (scales as f32 values or f16 bits). */
export function dequantizeQ4Rows(qWeight: Uint32Array, qScale: Float32Array | Uint16Array, rows: number, H: number): Float32Array {
  const scale = qScale instanceof Uint16Array ? f16BytesToF32(new Uint8Array(qScale.buffer, qScale.byteOffset, qScale.byteLength)) : qScale;
  const out = new Float32Array(rows * H);
  for (let e = 0; e < rows * H; e++) {
    const q = (qWeight[e >> 3]! >>> (4 * (e & 7))) & 15;
    out[e] = (q - 7) * scale[e >> 5]!;
  }
  return out;
}

/** Table data in `format` for f32 values, and the f32 values the GPU should return. */
export function embeddingTableFor(format: Storage, values: Float32Array, vocab: number, H: number): { data: EmbeddingTableData; expected: Float32Array } {
  switch (format) {
    case 'f32':
      return { data: values, expected: values };
    case 'f16':
      return { data: toF16Weights(values), expected: roundToF16(values) };
    case 'q4f32':
    case 'q4f16': {
      const q = quantizeQ4Rows(values, vocab, H, format === 'q4f16' ? 'f16' : 'f32');
      return { data: q, expected: dequantizeQ4Rows(q.qWeight, q.qScale, vocab, H) };
    }
  }
}

function embeddingCase(format: Storage, seed: number): SelfTestCase {
  const [vocab, H, blockRows] = [300, 128, 64]; // 5 row blocks: exercises the split-table path
  const ids = Int32Array.from([5, -200, 0, 299, 64, 63, 128, 200, 1, 299, 17]);
  return {
    id: `embedding-${format}`,
    name: `Token embedding (${format} table)`,
    description: `gather ${ids.length} rows (one -200 image slot) from a [${vocab}×${H}] ${format} table in ${Math.ceil(vocab / blockRows)} row blocks`,
    requires: shaderF16If(format === 'f16' || format === 'q4f16'),
    async run({ device }): Promise<SelfTestMeasurement> {
      const values = randomF32(vocab * H, seededRandom(seed), 1);
      const { data, expected: table } = embeddingTableFor(format, values, vocab, H);
      const expected = embedRows(table, vocab, H, Array.from(ids, (i) => Math.max(i, 0)));
      return withGpuObjects(device, async (gpu) => {
        const kernel = gpu.own(await EmbeddingKernel.create(device, format));
        const t = createEmbeddingTable(device, format, vocab, H, data, { maxBlockRows: blockRows });
        gpu.own({ destroy: () => destroyEmbeddingTable(t) });
        const idsBuf = gpu.upload(ids, 'selftest ids');
        const out = gpu.alloc(ids.length * H * 4, 'selftest embedding');
        const [y, gpuMs] = await timed(
          device,
          () => kernel.run(device, idsBuf, t, out, ids.length),
          () => readF32(device, out, ids.length * H),
        );
        // A gather copies (or dequantizes exactly, (q - 7) * scale in f32): bit-exact.
        return { comparison: compareArrays(y, expected, { atol: 0, rtol: 0 }), shape: [ids.length, H], gpuMs };
      });
    },
  };
}

export const EMBEDDING_SELF_TEST_CASES: SelfTestCase[] = [
  embeddingCase('f32', 21),
  embeddingCase('f16', 22),
  embeddingCase('q4f32', 23),
  embeddingCase('q4f16', 24),
];
