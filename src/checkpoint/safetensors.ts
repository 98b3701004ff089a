// safetensors reader: validates the header, then reads single tensors by their byte range only.
// Format: u64 little-endian header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets: [a, b]},
// "__metadata__"?: {str: str}}, then the data; offsets are relative to the end of the header.
import type { ByteSource } from './byte-source.ts';
import { bf16BytesToF32, f16BytesToF32, f32BytesToF32 } from './dtype.ts';
import type { DType } from './types.ts';

/** Every dtype the safetensors format defines (the header may hold any; only some convert to f32). */
export type SafetensorsDType =
  | DType
  | 'F64'
  | 'I16'
  | 'U16'
  | 'U64'
  | 'BOOL'
  | 'F8_E4M3'
  | 'F8_E5M2';

export const DTYPE_BYTES: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  U64: 8,
  I32: 4,
  U32: 4,
  I16: 2,
  U16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The header may be large (a 100k-tensor model is a few MB); anything beyond this is corruption. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensor {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte range in the file: [begin, end). */
  begin: number;
  end: number;
}

export interface SafetensorsFile {
  /** For error messages. */
  name: string;
  source: ByteSource;
  size: number;
  /** Absolute offset of the data section (8 + header length). */
  dataOffset: number;
  metadata: Record<string, string> | null;
  tensors: Map<string, SafetensorsTensor>;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Read and validate a safetensors header. Errors are one line naming the file (and the tensor). */
export async function readSafetensorsHeader(source: ByteSource, name: string = source.name): Promise<SafetensorsFile> {
  const size = await source.size();
  if (size < 8) throw new Error(`${name}: ${size} bytes is too small to be a safetensors file (truncated download?)`);
  const lenBytes = await source.read(0, 8);
  const lenBig = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true);
  if (lenBig > BigInt(MAX_HEADER_BYTES)) {
    throw new Error(
      `${name}: header length ${lenBig} is implausible (over ${MAX_HEADER_BYTES} bytes): not a safetensors file, or corrupted`,
    );
  }
  const headerLen = Number(lenBig);
  if (headerLen < 2) throw new Error(`${name}: header length ${headerLen} is too small: not a safetensors file, or corrupted`);
  if (8 + headerLen > size) {
    throw new Error(
      `${name}: header length ${headerLen} runs past the end of the file (${size} bytes): truncated download or not a safetensors file`,
    );
  }
  const headerBytes = await source.read(8, headerLen);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new Error(`${name}: the safetensors header is not valid UTF-8 (corrupted file?)`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: the safetensors header is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`${name}: the safetensors header is not a JSON object`);
  }
  const dataOffset = 8 + headerLen;
  const dataSize = size - dataOffset;
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        throw new Error(`${name}: "__metadata__" in the safetensors header is not an object`);
      }
      metadata = {};
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) metadata[k] = String(v);
      continue;
    }
    const where = `${name}: tensor "${key}"`;
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${where}: header entry is not an object`);
    const e = raw as Record<string, unknown>;
    if (typeof e.dtype !== 'string') throw new Error(`${where}: missing "dtype" in the header`);
    if (!Object.hasOwn(DTYPE_BYTES, e.dtype)) throw new Error(`${where}: unknown dtype "${e.dtype}"`);
    const dtype = e.dtype as SafetensorsDType;
    if (!Array.isArray(e.shape) || !e.shape.every(isNonNegInt)) {
      throw new Error(`${where}: missing or invalid "shape" in the header (${JSON.stringify(e.shape)})`);
    }
    const shape = e.shape as number[];
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isNonNegInt(off[0]) || !isNonNegInt(off[1]) || off[1] < off[0]) {
      throw new Error(`${where}: missing or invalid "data_offsets" in the header (${JSON.stringify(off)})`);
    }
    const [start, stop] = off as [number, number];
    const expectBytes = numel(shape) * DTYPE_BYTES[dtype];
    if (stop - start !== expectBytes) {
      throw new Error(
        `${where}: data_offsets [${start}, ${stop}] span ${stop - start} bytes but ${dtype} ${formatShape(shape)} needs ${expectBytes}`,
      );
    }
    if (stop > dataSize) {
      throw new Error(`${where} ends at byte ${dataOffset + stop} but the file has ${size} bytes (truncated download?)`);
    }
    tensors.set(key, { name: key, dtype, shape, begin: dataOffset + start, end: dataOffset + stop });
  }
  const sorted = [...tensors.values()].filter((t) => t.end > t.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.begin < a.end) {
      throw new Error(`${name}: tensors "${a.name}" and "${b.name}" overlap in the file (corrupted header)`);
    }
  }
  return { name, source, size, dataOffset, metadata, tensors };
}

function getTensor(file: SafetensorsFile, tensor: string): SafetensorsTensor {
  const t = file.tensors.get(tensor);
  if (!t) throw new Error(`${file.name}: no tensor "${tensor}"`);
  return t;
}

/** The raw little-endian bytes of one tensor (reads only its byte range). */
export async function readTensorBytes(file: SafetensorsFile, tensor: string): Promise<Uint8Array<ArrayBuffer>> {
  const t = getTensor(file, tensor);
  try {
    return await file.source.read(t.begin, t.end - t.begin);
  } catch (e) {
    throw new Error(`${file.name}: tensor "${tensor}": ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Raw bytes of rows [rowStart, rowStart + rowCount) along the first dimension. */
export async function readTensorRowBytes(
  file: SafetensorsFile,
  tensor: string,
  rowStart: number,
  rowCount: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const t = getTensor(file, tensor);
  const rows = t.shape.length === 0 ? 1 : t.shape[0]!;
  if (!isNonNegInt(rowStart) || !isNonNegInt(rowCount) || rowStart + rowCount > rows) {
    throw new Error(`${file.name}: tensor "${tensor}": rows ${rowStart}..${rowStart + rowCount} out of range (it has ${rows})`);
  }
  const rowBytes = rows === 0 ? 0 : (t.end - t.begin) / rows;
  try {
    return await file.source.read(t.begin + rowStart * rowBytes, rowCount * rowBytes);
  } catch (e) {
    throw new Error(`${file.name}: tensor "${tensor}": ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Convert little-endian tensor bytes to f32 (F32, F16, BF16 exactly; F64/I32/... by value). */
export function bytesToF32(bytes: Uint8Array, dtype: SafetensorsDType, what = 'tensor'): Float32Array {
  switch (dtype) {
    case 'F32':
      return f32BytesToF32(bytes);
    case 'F16':
      return f16BytesToF32(bytes);
    case 'BF16':
      return bf16BytesToF32(bytes);
    default:
      break;
  }
  const copy = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  const buf = copy.buffer;
  const o = copy.byteOffset;
  const n = copy.byteLength / DTYPE_BYTES[dtype];
  let src: ArrayLike<number | bigint>;
  switch (dtype) {
    case 'F64':
      src = new Float64Array(buf, o, n);
      break;
    case 'I32':
      src = new Int32Array(buf, o, n);
      break;
    case 'U32':
      src = new Uint32Array(buf, o, n);
      break;
    case 'I16':
      src = new Int16Array(buf, o, n);
      break;
    case 'U16':
      src = new Uint16Array(buf, o, n);
      break;
    case 'I8':
      src = new Int8Array(buf, o, n);
      break;
    case 'U8':
    case 'BOOL':
      src = new Uint8Array(buf, o, n);
      break;
    case 'I64':
      src = new BigInt64Array(buf, o, n);
      break;
    case 'U64':
      src = new BigUint64Array(buf, o, n);
      break;
    default:
      throw new Error(`${what}: cannot convert dtype ${dtype} to f32`);
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Number(src[i]!);
  return out;
}

/** One tensor as f32 (reads only its byte range). */
export async function readTensorF32(file: SafetensorsFile, tensor: string): Promise<Float32Array> {
  const t = getTensor(file, tensor);
  return bytesToF32(await readTensorBytes(file, tensor), t.dtype, `${file.name}: tensor "${tensor}"`);
}
