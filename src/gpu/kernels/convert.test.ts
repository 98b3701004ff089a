// ConvertRowsKernel (shaders/convert.wgsl) on Dawn (SwiftShader without a GPU): f32 rows copied exactly, f16
// output equal to src/checkpoint/dtype.ts's round-to-nearest-even (f16 subnormals may flush to zero), from and
// to offsets that are not aligned to minStorageBufferOffsetAlignment, with the 2D grid fold.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../node/gpu.ts';
import { f16BytesToF32, f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { mulberry32, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readBuffer, storageBufferFrom } from '../buffers.ts';
import type { GpuContext } from '../device.ts';
import { ConvertRowsKernel } from './convert.ts';
import type { DenseStorage } from '../storage.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

/** Runs the kernel on src[srcOffset, srcOffset + n) into a `dstBytes` buffer at `dstByteOffset`; returns the whole destination as bytes. */
async function convert(src: Float32Array, srcOffset: number, n: number, out: DenseStorage, dstBytes: number, dstByteOffset: number, maxWg?: number): Promise<Uint8Array> {
  const { device } = ctx;
  const kernel = await ConvertRowsKernel.create(device, { maxWorkgroupsPerDimension: maxWg });
  const sb = storageBufferFrom(device, src, 'convert src');
  const db = createStorageBuffer(device, dstBytes, 'convert dst');
  try {
    kernel.run(device, sb, srcOffset, db, dstByteOffset, n, out);
    return new Uint8Array(await readBuffer(device, db, dstBytes));
  } finally {
    sb.destroy();
    db.destroy();
    kernel.destroy();
  }
}

/** f16 bits equal to round-to-nearest-even, or 0 where the exact result is an f16 subnormal (flush allowed). */
function expectF16(actual: Uint8Array, src: Float32Array): void {
  const want = new Uint16Array(f32ToF16Bytes(src).buffer);
  const got = new Uint16Array(actual.buffer, actual.byteOffset, actual.byteLength / 2);
  expect(got.length).toBe(want.length);
  let bad = -1;
  for (let i = 0; i < want.length && bad < 0; i++) {
    const subnormal = (want[i]! & 0x7c00) === 0;
    if (got[i] !== want[i] && !(subnormal && (got[i]! & 0x7fff) === 0)) bad = i;
  }
  expect(bad, bad < 0 ? '' : `element ${bad}: got 0x${got[bad]!.toString(16)} for ${src[bad]}, want 0x${want[bad]!.toString(16)}`).toBe(-1);
}

describe('ConvertRowsKernel', () => {
  const H = 40;
  const src = randomF32(9 * H, mulberry32(5), 3);

  it('copies f32 rows exactly, from an unaligned source row into an unaligned destination offset', async () => {
    // rows 3..7 of src -> destination byte 4 * 13 (neither offset is 256-byte aligned).
    const n = 5 * H;
    const bytes = await convert(src, 3 * H, n, 'f32', (13 + n + 7) * 4, 13 * 4);
    const got = new Float32Array(bytes.buffer);
    expect(Array.from(got.subarray(13, 13 + n))).toEqual(Array.from(src.subarray(3 * H, 8 * H)));
    // Nothing outside the window is written.
    expect(Array.from(got.subarray(0, 13)).every((v) => v === 0)).toBe(true);
    expect(Array.from(got.subarray(13 + n)).every((v) => v === 0)).toBe(true);
  });

  it('writes f16 rounded to nearest even (ties, overflow clamped to the f16 range, signs, zero)', async () => {
    const special = new Float32Array([1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 65504, 65519, 1e6, -1e6, 0, -0, 2 ** -14, 0.1, -2.5]);
    const values = new Float32Array([...special, ...src.subarray(0, 4 * H)]);
    const bytes = await convert(values, 0, values.length, 'f16', values.length * 2, 0);
    const clamped = values.map((v) => Math.max(-65504, Math.min(65504, v)));
    expectF16(bytes, clamped);
    // The tie 1 + 2^-11 rounds to even (1.0) and 1 + 3 * 2^-11 up; 1e6 clamps to 65504 (not inf).
    expect(Array.from(f16BytesToF32(bytes.subarray(0, 14)))).toEqual([1, 1 + 2 ** -9, -1, 65504, 65504, 65504, -65504]);
  });

  it('writes f16 rows from an unaligned source offset at a word offset, with the 2D grid fold', async () => {
    const n = 6 * H;
    // maxWorkgroupsPerDimension 1: n / 2 = 120 words -> 1 workgroup; use a bigger n for the fold.
    const big = randomF32(2 * 300 * 2 + 2, mulberry32(9), 2);
    const bytes = await convert(big, 1, 1200, 'f16', 8 + 1200 * 2, 8, 2);
    expectF16(bytes.subarray(8), big.subarray(1, 1201));
    expect(Array.from(bytes.subarray(0, 8)).every((b) => b === 0)).toBe(true);
    const rows = await convert(src, 2 * H + 3, n, 'f16', 4 * 67 + n * 2, 4 * 67);
    expectF16(rows.subarray(4 * 67), src.subarray(2 * H + 3, 2 * H + 3 + n));
  });

  it('refuses bad arguments with clear errors', async () => {
    const { device } = ctx;
    const kernel = await ConvertRowsKernel.create(device);
    const sb = storageBufferFrom(device, src, 'convert src');
    const db = createStorageBuffer(device, 64, 'small dst');
    try {
      expect(() => kernel.run(device, sb, 0, db, 0, 3, 'f16')).toThrow(/4-byte words/);
      expect(() => kernel.run(device, sb, 0, db, 2, 4, 'f16')).toThrow(/4-byte words/);
      expect(() => kernel.run(device, sb, 0, db, 0, 17, 'f32')).toThrow(/"small dst" has 64 bytes, needs 68/);
      expect(() => kernel.run(device, sb, src.length - 2, db, 0, 4, 'f32')).toThrow(/buffer src/);
      expect(() => kernel.run(device, sb, 0, db, 0, 0, 'f32')).toThrow(/n must be a positive integer/);
    } finally {
      sb.destroy();
      db.destroy();
      kernel.destroy();
    }
  });
});
