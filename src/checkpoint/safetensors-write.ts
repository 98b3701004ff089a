// safetensors writer (browser-safe): header building, tensor encoding, and whole-file serialization.
import { f32ToBf16Bytes, f32ToF16Bytes } from './dtype.ts';
import { formatShape, numel } from './safetensors.ts';

export type WritableDType = 'F32' | 'F16' | 'BF16' | 'I32';

const WRITE_BYTES: Record<WritableDType, number> = { F32: 4, F16: 2, BF16: 2, I32: 4 };

export interface TensorSpec {
  name: string;
  dtype: WritableDType;
  shape: number[];
}

export interface TensorToWrite extends TensorSpec {
  /** F32/F16/BF16 take f32 values (rounded to nearest even for F16/BF16); I32 takes Int32Array. */
  data: Float32Array | Int32Array;
}

export interface SafetensorsLayout {
  /** 8-byte length + JSON header padded with spaces to a multiple of 8. */
  header: Uint8Array<ArrayBuffer>;
  /** Absolute [begin, end) of each tensor in the file, in the order given. */
  ranges: Array<{ name: string; begin: number; end: number }>;
  /** Total file size. */
  size: number;
}

export function tensorByteLength(spec: TensorSpec): number {
  return numel(spec.shape) * WRITE_BYTES[spec.dtype];
}

/**
 * The header for tensors stored back to back in the given order. JSON keys follow that order,
 * after "__metadata__" (string values only, as the format requires).
 */
export function buildSafetensorsHeader(specs: readonly TensorSpec[], metadata?: Record<string, string>): SafetensorsLayout {
  const obj: Record<string, unknown> = {};
  if (metadata) obj['__metadata__'] = metadata;
  const seen = new Set<string>();
  let off = 0;
  const rel: Array<{ name: string; start: number; stop: number }> = [];
  for (const s of specs) {
    if (s.name === '__metadata__' || seen.has(s.name)) throw new Error(`safetensors writer: duplicate or reserved tensor name "${s.name}"`);
    seen.add(s.name);
    if (!Object.hasOwn(WRITE_BYTES, s.dtype)) throw new Error(`safetensors writer: tensor "${s.name}": unsupported dtype ${s.dtype}`);
    if (!s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`safetensors writer: tensor "${s.name}": invalid shape ${formatShape(s.shape)}`);
    }
    const n = tensorByteLength(s);
    obj[s.name] = { dtype: s.dtype, shape: s.shape, data_offsets: [off, off + n] };
    rel.push({ name: s.name, start: off, stop: off + n });
    off += n;
  }
  const json = new TextEncoder().encode(JSON.stringify(obj));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  header.fill(0x20, 8 + json.byteLength);
  const base = header.byteLength;
  return {
    header,
    ranges: rel.map((r) => ({ name: r.name, begin: base + r.start, end: base + r.stop })),
    size: base + off,
  };
}

/** Little-endian bytes of one tensor in its storage dtype. */
export function encodeTensor(t: TensorToWrite): Uint8Array {
  const n = numel(t.shape);
  if (t.data.length !== n) {
    throw new Error(`safetensors writer: tensor "${t.name}" has ${t.data.length} values but shape ${formatShape(t.shape)} needs ${n}`);
  }
  if (t.dtype === 'I32') {
    if (!(t.data instanceof Int32Array)) throw new Error(`safetensors writer: tensor "${t.name}": I32 needs an Int32Array`);
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  if (!(t.data instanceof Float32Array)) throw new Error(`safetensors writer: tensor "${t.name}": ${t.dtype} needs a Float32Array`);
  switch (t.dtype) {
    case 'F32':
      return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    case 'F16':
      return f32ToF16Bytes(t.data);
    case 'BF16':
      return f32ToBf16Bytes(t.data);
  }
}

/** A complete safetensors file in memory. */
export function serializeSafetensors(tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Uint8Array<ArrayBuffer> {
  const layout = buildSafetensorsHeader(tensors, metadata);
  const out = new Uint8Array(layout.size);
  out.set(layout.header, 0);
  tensors.forEach((t, i) => out.set(encodeTensor(t), layout.ranges[i]!.begin));
  return out;
}
