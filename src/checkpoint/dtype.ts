// Exact conversions between the checkpoint storage types (F16, BF16) and f32.
// Little-endian byte order throughout (safetensors is little-endian; so is every WebGPU platform).

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('checkpoint reader: big-endian platforms are not supported');
}

/** f16 bits -> f32 bits, exact (subnormals, infinities, NaN payloads kept). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0; // normal: 127 - 15 = 112
  if (mant === 0) return sign >>> 0; // +-0
  // subnormal: mant * 2^-24; normalize
  let e = 113; // exponent of 2^-14 is -14 -> biased 113, decremented per shift
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

let f16Table: Uint32Array | null = null;
/** All 65536 f16 values as f32 bit patterns (256 KiB, built once). */
function f16ToF32Table(): Uint32Array {
  if (!f16Table) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32Bits(h);
  }
  return f16Table;
}

const cvtBuf = new ArrayBuffer(4);
const cvtF32 = new Float32Array(cvtBuf);
const cvtU32 = new Uint32Array(cvtBuf);

/** One f16 value (given as its 16 bits) as a JS number. */
export function f16ToNumber(h: number): number {
  cvtU32[0] = f16BitsToF32Bits(h & 0xffff);
  return cvtF32[0]!;
}
/** One bf16 value (given as its 16 bits) as a JS number. */
export function bf16ToNumber(b: number): number {
  cvtU32[0] = (b & 0xffff) << 16;
  return cvtF32[0]!;
}

/** f32 bits -> f16 bits, round to nearest even; overflow -> inf; NaN stays NaN (quiet, sign kept). */
export function f32BitsToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return mant ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 112; // biased f16 exponent
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to 0
    mant |= 0x800000;
    const shift = 14 - e; // 14..24
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    const r = rem > halfway || (rem === halfway && (half & 1) === 1) ? half + 1 : half;
    return sign | r; // r == 0x400 is the smallest normal: still the right encoding
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++; // a carry into the exponent (even to inf) is right
  return sign | h;
}

/** f32 bits -> bf16 bits, round to nearest even; NaN stays NaN (quiet, sign kept). */
export function f32BitsToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** One JS number -> f16 bits (via f32 rounding first, like torch's float -> half on an f32 tensor). */
export function numberToF16(v: number): number {
  cvtF32[0] = v;
  return f32BitsToF16Bits(cvtU32[0]!);
}
/** One JS number -> bf16 bits (via f32). */
export function numberToBf16(v: number): number {
  cvtF32[0] = v;
  return f32BitsToBf16Bits(cvtU32[0]!);
}

/** Little-endian bytes -> a Uint16Array view, copying only when the bytes are misaligned. */
function u16View(bytes: Uint8Array): Uint16Array {
  if (bytes.byteLength % 2 !== 0) throw new Error(`16-bit tensor data has an odd byte length ${bytes.byteLength}`);
  if (bytes.byteOffset % 2 !== 0) bytes = bytes.slice();
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
}

export function f16BytesToF32(bytes: Uint8Array): Float32Array {
  const src = u16View(bytes);
  const table = f16ToF32Table();
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return new Float32Array(out.buffer);
}

export function bf16BytesToF32(bytes: Uint8Array): Float32Array {
  const src = u16View(bytes);
  const out = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return new Float32Array(out.buffer);
}

export function f32BytesToF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new Error(`F32 tensor data has byte length ${bytes.byteLength}, not a multiple of 4`);
  // Own the memory exactly (callers may keep or transfer the result).
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return new Float32Array(bytes.buffer);
  }
  const copy = bytes.slice();
  return new Float32Array(copy.buffer);
}

/** f32 values -> f16 little-endian bytes, round to nearest even. */
export function f32ToF16Bytes(src: Float32Array): Uint8Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return new Uint8Array(out.buffer);
}

/** f32 values -> bf16 little-endian bytes, round to nearest even. */
export function f32ToBf16Bytes(src: Float32Array): Uint8Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
  return new Uint8Array(out.buffer);
}
