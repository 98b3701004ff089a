// CPU-side encoding of f32 rows into a GPU storage format, and the exact inverse. The engine uploads what
// encodeRows() makes; tests run the CPU reference on decodeRows(encodeRows(w)) so that GPU and reference
// see bit-identical weights.
import { f16BytesToF32, f32ToF16Bytes } from '../checkpoint/dtype.ts';
import { dequantizeQ4, quantizeQ4 } from '../quant/q4.ts';
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

export function encodeRows(storage: Storage, values: Float32Array, rows: number, cols: number): EncodedRows {
  switch (storage) {
    case 'f32':
      return { data: bytesOf(values) };
    case 'f16':
      return { data: f32ToF16Bytes(values) };
    case 'q4f32':
    case 'q4f16': {
      const q = quantizeQ4(values, rows, cols, { scaleDType: storage === 'q4f16' ? 'f16' : 'f32' });
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
