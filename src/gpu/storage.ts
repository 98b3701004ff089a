// The one table of storage formats: how a tensor's rows are laid out in GPU buffers, for every kernel, the weight
// uploader, the converter and the capability check. Adding a format (q8 KV, zero points) starts with a row here.
//   f32 / f16    dense values
//   q4f32/q4f16  MLC int4 group-32 (q4f32_1 / q4f16_1, src/quant/q4.ts): 8 codes per u32 word in `data`, one f32 /
//                f16 scale per group of 32 in a second buffer, zero point 7
// Every f16 format has an exact f32 counterpart (`widened`) for adapters without `shader-f16`.
import { f16BytesToF32, f32ToF16Bytes } from '../checkpoint/dtype.ts';
import { dequantizeQ4, quantizeQ4, Q4_GROUP_SIZE, type Q4ScaleDType } from '../quant/q4.ts';

/** How one tensor is stored on the GPU. */
export type Storage = 'f32' | 'f16' | 'q4f32' | 'q4f16';
/** The dense formats: activations, KV caches, logits, norms, the f32 / f16 weight variants of a kernel. */
export type DenseStorage = Extract<Storage, 'f32' | 'f16'>;
export type Q4Storage = Extract<Storage, 'q4f32' | 'q4f16'>;
/** A KV cache's storage (f16 only on shader-f16 devices). */
export type KvStorage = DenseStorage;

export interface StorageFormat {
  /** int4 codes + per-group scales in a second buffer. */
  quantized: boolean;
  /** Bytes per value in the data buffer (1/2 for int4). */
  dataBytesPerValue: number;
  /** Bytes per scale and values per scale (q4 only; 0 for dense). */
  scaleBytes: number;
  group: number;
  /** Needs the WebGPU feature `shader-f16` where a kernel reads it as f16 (its f32 counterpart never does). */
  f16: boolean;
  /** The format holding exactly the same values with f32 in place of every f16 (itself for f32 formats). */
  widened: Storage;
}

export const STORAGE: Readonly<Record<Storage, StorageFormat>> = {
  f32: { quantized: false, dataBytesPerValue: 4, scaleBytes: 0, group: 0, f16: false, widened: 'f32' },
  f16: { quantized: false, dataBytesPerValue: 2, scaleBytes: 0, group: 0, f16: true, widened: 'f32' },
  q4f32: { quantized: true, dataBytesPerValue: 0.5, scaleBytes: 4, group: Q4_GROUP_SIZE, f16: false, widened: 'q4f32' },
  q4f16: { quantized: true, dataBytesPerValue: 0.5, scaleBytes: 2, group: Q4_GROUP_SIZE, f16: true, widened: 'q4f32' },
};

export function isQ4(s: Storage): s is Q4Storage {
  return STORAGE[s].quantized;
}

/** Bytes one row of `cols` values takes in `storage`: its data buffer and its scales buffer (0 when dense). */
export function rowBytes(storage: Storage, cols: number): { data: number; scales: number } {
  const f = STORAGE[storage];
  return { data: cols * f.dataBytesPerValue, scales: f.quantized ? (cols / f.group) * f.scaleBytes : 0 };
}

/** The int4 arithmetic a q4 format's own scales imply (MLC q4f16_1 = 'f16', q4f32_1 = 'f32'); undefined when dense. */
export function q4ScaleDType(storage: Storage): Q4ScaleDType | undefined {
  return isQ4(storage) ? (STORAGE[storage].scaleBytes === 2 ? 'f16' : 'f32') : undefined;
}

/** Rows of a tensor encoded in a storage format, as the CPU holds them before upload. */
export interface EncodedRows {
  /** f32 / f16 values, or the packed int4 words (u32, 8 per word) for q4. */
  data: Uint8Array;
  /** q4 only: per-group scales (f32 or f16). */
  scales?: Uint8Array;
}

const bytesOf = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const halfOrFull = (values: Float32Array, f16: boolean): Uint8Array => (f16 ? f32ToF16Bytes(values) : bytesOf(values));
const fromHalfOrFull = (bytes: Uint8Array, f16: boolean): Float32Array => (f16 ? f16BytesToF32(bytes) : new Float32Array(bytes.slice().buffer));

/**
 * f32 rows encoded in `storage`. `quantizer` (q4 only): whose arithmetic picks the int4 codes, MLC q4f16_1 ('f16')
 * or q4f32_1 ('f32'); default the storage's own scale dtype. q4f16_1 codes in q4f32 storage are exactly what a
 * converted q4f16_1 folder holds on a device without shader-f16 (its f16 scales widened); q4f32_1 codes cannot be
 * stored q4f16 (f32 scales).
 */
export function encodeRows(storage: Storage, values: Float32Array, rows: number, cols: number, quantizer?: Q4ScaleDType): EncodedRows {
  const f16 = STORAGE[storage].f16;
  if (!isQ4(storage)) return { data: halfOrFull(values, f16) };
  const scaleDType = quantizer ?? q4ScaleDType(storage)!;
  if (f16 && scaleDType === 'f32') throw new Error('encodeRows: q4f32_1 codes (f32 scales) cannot be stored q4f16');
  const q = quantizeQ4(values, rows, cols, { scaleDType });
  return { data: bytesOf(q.qWeight), scales: halfOrFull(q.qScale, f16) };
}

/** The exact inverse of encodeRows: the f32 values the GPU sees. */
export function decodeRows(storage: Storage, enc: EncodedRows, rows: number, cols: number): Float32Array {
  const f16 = STORAGE[storage].f16;
  if (!isQ4(storage)) return fromHalfOrFull(enc.data, f16);
  if (!enc.scales) throw new Error('decodeRows: q4 rows need scales');
  return dequantizeQ4(new Uint32Array(enc.data.slice().buffer), fromHalfOrFull(enc.scales, f16), rows, cols);
}

/**
 * Rows stored as `from` re-encoded as `to` without loss: the same bytes, or `to` = STORAGE[from].widened (f16
 * values widened to f32, or q4f16 scales widened to f32 with the int4 words unchanged). Any other pair would round.
 */
export function widenRows(from: Storage, to: Storage, enc: EncodedRows): EncodedRows {
  if (from === to) return enc;
  if (STORAGE[from].widened !== to) throw new Error(`widenRows: ${from} cannot be stored as ${to} without rounding`);
  const widen = (b: Uint8Array) => bytesOf(f16BytesToF32(b));
  if (!isQ4(from)) return { data: widen(enc.data) };
  if (!enc.scales) throw new Error('widenRows: q4 rows need scales');
  return { data: enc.data, scales: widen(enc.scales) };
}
