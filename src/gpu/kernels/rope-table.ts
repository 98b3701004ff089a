// The RoPE cos/sin table that shaders/rope.wgsl reads, built on the CPU.
//
// WGSL sin/cos are only accurate on [-pi, pi], while RoPE angles reach thousands of radians (position 4000 x
// inv_freq 1), so the angles are never evaluated on the GPU. The table holds, for every position p <
// maxPositions and frequency i < headDim/2, the pair (cos, sin) of the f32 angle Math.fround(p * invFreq[i]),
// evaluated in f64 and stored as f32: exactly what src/reference/rope.ts (ropeCosSin) uses before rounding.
//
// Layout: [maxPositions, headDim/2] pairs, interleaved (cos, sin) -> one vec2<f32> per (position, frequency).
// Size: maxPositions * headDim * 4 bytes (4096 positions x head dim 128: 2 MiB).
import { storageBufferFrom } from '../buffers.ts';

/** Interleaved (cos, sin) pairs, [maxPositions, invFreq.length, 2] f32. */
export function buildRopeTable(invFreq: Float32Array, maxPositions: number): Float32Array {
  if (!Number.isInteger(maxPositions) || maxPositions < 1) throw new Error(`buildRopeTable: maxPositions must be a positive integer, got ${maxPositions}`);
  const half = invFreq.length;
  if (half < 1) throw new Error('buildRopeTable: no frequencies');
  const out = new Float32Array(maxPositions * half * 2);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround(p * invFreq[i]!);
      const o = (p * half + i) * 2;
      out[o] = Math.cos(a);
      out[o + 1] = Math.sin(a);
    }
  }
  return out;
}

/** A RoPE table uploaded to the GPU. */
export class RopeTable {
  private constructor(
    readonly buffer: GPUBuffer,
    /** Positions 0 .. maxPositions-1 are covered. */
    readonly maxPositions: number,
    /** Head dim / 2: frequencies per position. */
    readonly halfDim: number,
  ) {}

  /**
   * Builds and uploads the table for inv_freq (src/reference/rope.ts `ropeInvFreq`, f32) and positions
   * 0 .. maxPositions-1 (size it to the context length).
   */
  static create(device: GPUDevice, invFreq: Float32Array, maxPositions: number, label = 'rope table'): RopeTable {
    const data = buildRopeTable(invFreq, maxPositions);
    const max = device.limits.maxStorageBufferBindingSize;
    if (data.byteLength > max) {
      throw new Error(
        `RopeTable: ${maxPositions} positions x ${invFreq.length} frequencies is ${data.byteLength} bytes, more than this device's ` +
          `maxStorageBufferBindingSize (${max}); use fewer positions`,
      );
    }
    return new RopeTable(storageBufferFrom(device, data, label), maxPositions, invFreq.length);
  }

  get headDim(): number {
    return this.halfDim * 2;
  }

  destroy(): void {
    this.buffer.destroy();
  }
}
