// CPU-side encoding of f32 rows into a GPU storage format, and the exact inverse. The engine uploads what
// encodeRows() makes; tests run the CPU reference on decodeRows(encodeRows(w)) so that GPU and reference
// see bit-identical weights.
import { f16BytesToF32, f32ToF16Bytes } from '../checkpoint/dtype.ts';
import { dequantizeQ4, quantizeQ4, type Q4ScaleDType } from '../quant/q4.ts';
import type { Storage } from './policy.ts';

export interface EncodedRows {
  /** f32 / f16 values, or the packed int4 words (u32, 8 per word) for q4. */
  data: Uint8Array;
  /** q4 only: per-group scales (f32 or f16). */
  scales?: Uint8Array;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Bytes one row of `cols` values takes in `storage` (data + scales). */
export function rowBytes(storage: Storage, cols: number): { data: number; scales: number } {
  switch (storage) {
    case 'f32':
      return { data: cols * 4, scales: 0 };
    case 'f16':
      return { data: cols * 2, scales: 0 };
    case 'q4f32':
      return { data: cols / 2, scales: (cols / 32) * 4 };
    case 'q4f16':
      return { data: cols / 2, scales: (cols / 32) * 2 };
  }
}

/**
 * `quantizer` (q4 only): whose arithmetic picks the int4 codes, MLC q4f16_1 ('f16') or q4f32_1 ('f32'); default the
 * storage's own scale dtype. q4f16_1 codes in q4f32 storage are exactly what a converted q4f16_1 folder holds on a
 * device without shader-f16 (its f16 scales widened); q4f32_1 codes cannot be stored q4f16 (f32 scales).
 */
export function encodeRows(storage: Storage, values: Float32Array, rows: number, cols: number, quantizer?: Q4ScaleDType): EncodedRows {
  switch (storage) {
    case 'f32':
      return { data: bytesOf(values) };
    case 'f16':
      return { data: f32ToF16Bytes(values) };
    case 'q4f32':
    case 'q4f16': {
      const scaleDType = quantizer ?? (storage === 'q4f16' ? 'f16' : 'f32');
      if (storage === 'q4f16' && scaleDType === 'f32') throw new Error('encodeRows: q4f32_1 codes (f32 scales) cannot be stored q4f16');
      const q = quantizeQ4(values, rows, cols, { scaleDType });
      const scales = storage === 'q4f16' ? f32ToF16Bytes(q.qScale) : bytesOf(q.qScale);
      return { data: bytesOf(q.qWeight), scales };
    }
  }
}

export function decodeRows(storage: Storage, enc: EncodedRows, rows: number, cols: number): Float32Array {
  switch (storage) {
    case 'f32':
      return new Float32Array(enc.data.slice().buffer);
    case 'f16':
      return f16BytesToF32(enc.data);
    case 'q4f32':
    case 'q4f16': {
      if (!enc.scales) throw new Error('decodeRows: q4 rows need scales');
      const qWeight = new Uint32Array(enc.data.slice().buffer);
      const qScale = storage === 'q4f16' ? f16BytesToF32(enc.scales) : new Float32Array(enc.scales.slice().buffer);
      return dequantizeQ4(qWeight, qScale, rows, cols);
    }
  }
}

/**
 * Rows stored as `from` re-encoded as `to` without loss: the same bytes, f16 values widened to f32, or q4f16 scales
 * widened to f32 (the int4 words unchanged). Any other pair would round and is refused.
 */
export function widenRows(from: Storage, to: Storage, enc: EncodedRows): EncodedRows {
  if (from === to) return enc;
  const widen = (b: Uint8Array) => bytesOf(f16BytesToF32(b));
  if (from === 'f16' && to === 'f32') return { data: widen(enc.data) };
  if (from === 'q4f16' && to === 'q4f32') {
    if (!enc.scales) throw new Error('widenRows: q4 rows need scales');
    return { data: enc.data, scales: widen(enc.scales) };
  }
  throw new Error(`widenRows: ${from} cannot be stored as ${to} without rounding`);
}
