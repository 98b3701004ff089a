// The KV cache of a stack of Llama decoder layers on the GPU: per layer one K and one V buffer of [capacity,
// numKvHeads * headDim] rows (keys stored after RoPE). Rows [0, length) are valid; a call appends rows at
// `length`, and rollback() forgets rows past a point (multi-turn: the next row is written there). Storage is
// f32, or f16 (half the bytes) with the f16-KV variants of the attention and RoPE kernels on shader-f16 devices.
import { createStorageBuffer } from '../gpu/buffers.ts';
import type { KvStorage } from '../gpu/storage.ts';

export interface KvCacheOptions {
  layers: number;
  /** Rows per layer (the context length this cache serves). */
  capacity: number;
  /** numKvHeads * headDim. */
  width: number;
  /** Default 'f32'. */
  storage?: KvStorage;
  label?: string;
}

export class KvCache {
  readonly k: GPUBuffer[] = [];
  readonly v: GPUBuffer[] = [];
  readonly capacity: number;
  readonly width: number;
  readonly storage: KvStorage;
  private rows = 0;

  constructor(
    readonly device: GPUDevice,
    opts: KvCacheOptions,
  ) {
    const { layers, capacity, width } = opts;
    for (const [name, v] of [['layers', layers], ['capacity', capacity], ['width', width]] as const) {
      if (!Number.isInteger(v) || v < 1) throw new Error(`KvCache: ${name} must be a positive integer, got ${v}`);
    }
    this.capacity = capacity;
    this.width = width;
    this.storage = opts.storage ?? 'f32';
    const bytes = this.layerBytes();
    const max = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    if (bytes > max) {
      throw new Error(`KvCache: ${capacity} rows x ${width} ${this.storage} is ${bytes} bytes per layer buffer, more than this device allows (${max}); use a shorter context`);
    }
    const label = opts.label ?? 'kv cache';
    for (let l = 0; l < layers; l++) {
      this.k.push(createStorageBuffer(device, bytes, `${label} K layer ${l}`));
      this.v.push(createStorageBuffer(device, bytes, `${label} V layer ${l}`));
    }
  }

  get layers(): number {
    return this.k.length;
  }

  /** Valid rows (the position of the next row in a plain causal sequence). */
  get length(): number {
    return this.rows;
  }

  /** Throws a clear error unless `n` more rows fit. */
  checkRoom(n: number): void {
    if (this.rows + n > this.capacity) {
      throw new Error(
        `KV cache full: ${this.rows} cached rows + ${n} new rows exceed its capacity of ${this.capacity} rows ` +
          '(the context length); start a new conversation, roll back, or create the runtime with a longer context',
      );
    }
  }

  /** Marks `n` rows written at the old length as valid. */
  advance(n: number): void {
    this.checkRoom(n);
    this.rows += n;
  }

  /** Forgets rows at and beyond `length`. */
  rollback(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.rows) throw new Error(`KvCache.rollback: ${length} outside 0..${this.rows}`);
    this.rows = length;
  }

  /** Bytes of one layer's K (or V) buffer. */
  layerBytes(): number {
    return this.capacity * this.width * (this.storage === 'f16' ? 2 : 4);
  }

  /** GPU bytes held (all layers, K and V). */
  bytes(): number {
    return this.k.reduce((s, b) => s + b.size, 0) + this.v.reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of [...this.k, ...this.v]) b.destroy();
    this.k.length = 0;
    this.v.length = 0;
    this.rows = 0;
  }
}
