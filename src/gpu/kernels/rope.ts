// RoPE on the GPU (shaders/rope.wgsl): rotate-half rotary embedding applied in place to q rows and k rows
// (k possibly rows of a KV cache, at a row offset), each row at its own position from an i32 buffer, cos/sin
// read from a CPU-built table (rope-table.ts). One dispatch handles q and k together.
//
// K cache storage: with `kv: 'f32'` (default) k is rotated in place, or read from a separate dense f32 buffer
// (`kSrc`) and written rotated into k. With `kv: 'f16'` (needs shader-f16) k is an f16 cache: the rotated
// f32 k from `kSrc` is rounded once into it. Either way `vSrc` + `v` copies the value rows into the cache at
// the same rows in the same dispatch.
import ropeWgsl from '../../../shaders/rope.wgsl?raw';
import { f16BytesToF32 } from '../../checkpoint/dtype.ts';
import { align4, createStorageBuffer, readBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkedBinding, foldGrid, intAtLeast, LazyPrograms, recordPrepared, requireShaderF16, StepTables, UniformCache, workgroupLimit, type GpuTarget, type PreparedRun, type RecordedPass } from '../dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind } from '../pipeline.ts';
import type { KvStorage } from '../storage.ts';
import { RopeTable } from './rope-table.ts';

/** Shared with the other kernel wrappers (src/gpu/dispatch.ts); re-exported here where it was first defined. */
export { recordCompute } from '../dispatch.ts';

const BINDINGS: readonly BindingKind[] = ['uniform-dynamic', 'read', 'read', 'storage', 'read', 'storage', 'read', 'storage'];
const WG = 64;

/** rope.wgsl as is for an f32 cache; for f16: `enable f16;` + `alias KT = f16;`. */
export function ropeShaderSource(kv: KvStorage): string {
  return kv === 'f16' ? specializeWgsl(ropeWgsl, { enable: ['f16'], aliases: { KT: 'f16' } }) : ropeWgsl;
}

export interface RopeKernelOptions {
  /** Storage type of k and v (default 'f32'); 'f16' needs shader-f16 and a kSrc for k. */
  kv?: KvStorage;
  /** Lower the dispatch limit (tests exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
}

export interface RopeBuffers {
  /** f32, rotated in place: row r at qColOffset + r * qRowStride. Null: no q. */
  q?: GPUBuffer | null;
  /** The k rows to write (a KV cache, row r at (kRowOffset + r) * kRowStride): rotated in place, or written from kSrc. */
  k?: GPUBuffer | null;
  /** Dense f32 [rows, numKvHeads * headDim] (row stride srcRowStride): k is written from it, rotated. Required with kv 'f16'. */
  kSrc?: GPUBuffer | null;
  /** Value cache rows (same offset/stride as k) and their dense f32 source: copied (and rounded for f16) when both are given. */
  v?: GPUBuffer | null;
  vSrc?: GPUBuffer | null;
}

export interface RopeDims {
  rows: number;
  headDim: number;
  /** Heads in a q row (used when q is given). */
  numHeads: number;
  /** Heads in a k row (used when k is given). */
  numKvHeads: number;
  /** Row r uses positions[positionOffset + r] (default 0). */
  positionOffset?: number;
  /** Element offset of q row 0 (default 0) and q row stride in elements (default numHeads * headDim). */
  qColOffset?: number;
  qRowStride?: number;
  /** First k row (cache row) written (default 0), and k/v row stride in elements (default numKvHeads * headDim). */
  kRowOffset?: number;
  kRowStride?: number;
  /** Row stride of kSrc / vSrc in elements (default numKvHeads * headDim). */
  srcRowStride?: number;
}

function checkInt(name: string, v: number, min: number): void {
  intAtLeast('RopeKernel.run', name, v, min);
}

export class RopeKernel {
  readonly kv: KvStorage;
  /** Index (kFromSrc ? 1 : 0) + (copyV ? 2 : 0): k in place / from kSrc, without / with the v copy. */
  private readonly programs = new LazyPrograms(() => {
    const name = this.kv === 'f16' ? 'rope.wgsl (f16 cache)' : 'rope.wgsl';
    const code = ropeShaderSource(this.kv);
    const specs = [0, 1, 2, 3].map((m) => ({ name, code, bindings: BINDINGS, constants: { K_FROM_SRC: (m & 1) !== 0, COPY_V: (m & 2) !== 0 } }));
    return Promise.all(specs.map((s) => computeProgram(this.device, s)));
  });
  private readonly uniforms: UniformCache;
  private readonly stepTables: StepTables;
  private dummies: GPUBuffer[] = [];
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    opts: RopeKernelOptions = {},
  ) {
    this.kv = opts.kv ?? 'f32';
    requireShaderF16(device, this.kv === 'f16', 'RopeKernel: an f16 KV cache needs', 'kv "f32"');
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'rope dims');
    this.stepTables = new StepTables(device, 'rope dims per step');
  }

  /** Builds the four pipelines (k in place / from kSrc, with / without the v copy). Rejects with a ShaderError on a WGSL error. */
  init(): Promise<this> {
    return this.programs.ready(this);
  }

  static create(device: GPUDevice, opts?: RopeKernelOptions): Promise<RopeKernel> {
    return new RopeKernel(device, opts).init();
  }

  /** Workgroup grid for `pairs` (row, head, i) invocations, folded into 2D. */
  dispatchSize(pairs: number): [number, number] {
    return foldGrid(Math.max(1, Math.ceil(pairs / WG)), this.maxWg, 'RopeKernel', `${pairs} rotations need`);
  }

  /**
   * Records the rotation of `dims.rows` rows of q and/or k (positions[positionOffset + r] for row r, from an i32
   * buffer; every position must lie in [0, table.maxPositions), else the row becomes NaN). Optional v copy.
   */
  run(target: GpuTarget, table: RopeTable, positions: GPUBuffer, bufs: RopeBuffers, dims: RopeDims): void {
    const r = this.prepare(table, positions, bufs, dims);
    recordPrepared(target, 'rope', this.device, r, this.uniforms.get(r.words));
  }

  /**
   * Records into `rec` a rotation whose dims depend on the replay's step (a decode position: positionOffset and
   * kRowOffset = step): bind group and uniforms are made here once, for steps 0 .. rec.steps-1 (the bindings
   * cover the last step, the largest). Kernels recorded with the same dims per step share one uniform table.
   */
  recordSteps(rec: RecordedPass, table: RopeTable, positions: GPUBuffer, bufs: RopeBuffers, dimsAt: (step: number) => RopeDims): void {
    this.stepTables.record(rec, (s) => this.prepare(table, positions, bufs, dimsAt(s)));
  }

  /** Checks a run and returns its dispatch, bindings and uniform words. */
  private prepare(table: RopeTable, positions: GPUBuffer, bufs: RopeBuffers, dims: RopeDims): PreparedRun {
    const programs = this.programs.require('RopeKernel');
    const { rows, headDim: hd } = dims;
    checkInt('rows', rows, 1);
    checkInt('headDim', hd, 2);
    if (hd % 2 !== 0) throw new Error(`RopeKernel.run: headDim must be even, got ${hd}`);
    if (table.halfDim * 2 !== hd) throw new Error(`RopeKernel.run: the table is for head dim ${table.halfDim * 2}, not ${hd}`);
    const q = bufs.q ?? null;
    const k = bufs.k ?? null;
    const kSrc = bufs.kSrc ?? null;
    const v = bufs.v ?? null;
    const vSrc = bufs.vSrc ?? null;
    if (!q && !k) throw new Error('RopeKernel.run: neither q nor k given');
    if (kSrc && !k) throw new Error('RopeKernel.run: kSrc given without k (the destination)');
    if ((v === null) !== (vSrc === null)) throw new Error('RopeKernel.run: v and vSrc go together');
    if (v && !k) throw new Error('RopeKernel.run: the v copy runs with k; give k (and kSrc) too');
    if (this.kv === 'f16' && k && !kSrc) throw new Error('RopeKernel.run: an f16 k cache is written from an f32 kSrc (in-place f16 rotation would round twice)');
    const nH = q ? dims.numHeads : 0;
    const nKV = k ? dims.numKvHeads : 0;
    if (q) checkInt('numHeads', nH, 1);
    if (k) checkInt('numKvHeads', nKV, 1);
    const posOff = dims.positionOffset ?? 0;
    const qOff = dims.qColOffset ?? 0;
    const qStride = dims.qRowStride ?? nH * hd;
    const kStride = dims.kRowStride ?? nKV * hd;
    const kOff = (dims.kRowOffset ?? 0) * kStride;
    const srcStride = dims.srcRowStride ?? nKV * hd;
    checkInt('positionOffset', posOff, 0);
    checkInt('qColOffset', qOff, 0);
    checkInt('kRowOffset', dims.kRowOffset ?? 0, 0);
    if (q && qStride < nH * hd) throw new Error(`RopeKernel.run: qRowStride ${qStride} < numHeads * headDim = ${nH * hd}`);
    if (k && kStride < nKV * hd) throw new Error(`RopeKernel.run: kRowStride ${kStride} < numKvHeads * headDim = ${nKV * hd}`);
    if ((kSrc || vSrc) && srcStride < nKV * hd) throw new Error(`RopeKernel.run: srcRowStride ${srcStride} < numKvHeads * headDim = ${nKV * hd}`);

    const kvBytes = this.kv === 'f16' ? 2 : 4;
    const bind = (label: string, buf: GPUBuffer, bytes: number, what: string) => checkedBinding(this.device, 'RopeKernel', label, buf, bytes, what);
    const kExtent = kOff + (rows - 1) * kStride + nKV * hd;
    const srcExtent = (rows - 1) * srcStride + nKV * hd;
    const tableBinding = bind('table', table.buffer, table.maxPositions * table.halfDim * 8, `[${table.maxPositions}, ${table.halfDim}] (cos, sin)`);
    const posBinding = bind('positions', positions, (posOff + rows) * 4, `${posOff + rows} i32`);
    const qBinding = q ? bind('q', q, (qOff + (rows - 1) * qStride + nH * hd) * 4, `${rows} rows of ${nH}x${hd} f32, stride ${qStride}`) : this.dummy(0);
    const kBinding = k ? bind('k', k, kExtent * kvBytes, `rows ${dims.kRowOffset ?? 0}..+${rows} of ${nKV}x${hd} ${this.kv}, stride ${kStride}`) : this.dummy(1);
    const kSrcBinding = kSrc ? bind('kSrc', kSrc, srcExtent * 4, `${rows} rows of ${nKV}x${hd} f32`) : this.dummy(2);
    const vBinding = v ? bind('v', v, kExtent * kvBytes, `rows ${dims.kRowOffset ?? 0}..+${rows} of ${nKV}x${hd} ${this.kv}, stride ${kStride}`) : this.dummy(3);
    const vSrcBinding = vSrc ? bind('vSrc', vSrc, srcExtent * 4, `${rows} rows of ${nKV}x${hd} f32`) : this.dummy(2);
    const distinct = [q, k, kSrc, v, vSrc].filter((b): b is GPUBuffer => b !== null);
    if (new Set(distinct).size !== distinct.length) throw new Error('RopeKernel: q, k, kSrc, v and vSrc must be different buffers');

    const half = hd / 2;
    const total = rows * (nH + nKV) * half;
    const program = programs[(kSrc ? 1 : 0) + (v ? 2 : 0)]!;
    return {
      dispatches: [{ program, grid: this.dispatchSize(total) }],
      bindings: [tableBinding, posBinding, qBinding, kSrcBinding, kBinding, vSrcBinding, vBinding],
      words: [rows, half, nH, nKV, qOff, qStride, kOff, kStride, srcStride, posOff, table.maxPositions, total],
    };
  }

  destroy(): void {
    this.uniforms.destroy();
    this.stepTables.destroy();
    for (const d of this.dummies) d.destroy();
    this.dummies = [];
  }

  // Unused bindings get small placeholder buffers, a distinct one per writable slot.
  private dummy(i: number): GPUBuffer {
    while (this.dummies.length <= i) this.dummies.push(createStorageBuffer(this.device, 16, `rope: unused binding ${this.dummies.length}`));
    return this.dummies[i]!;
  }
}

/** f32 values -> f16 bits; the f32 values an f16 buffer holds. Re-exported for callers of the f16 cache. */
export { roundToF16, toF16Weights as toF16Bits } from './linear.ts';

/**
 * One-shot convenience for tests and self-tests: rotates q [rows, nH*hd] and k [rows, nKV*hd] (f32) at the given
 * positions with a table for invFreq covering maxPositions, returns the rotated copies.
 */
export async function ropeOnGpu(
  device: GPUDevice,
  args: { q: Float32Array | null; k: Float32Array | null; rows: number; numHeads: number; numKvHeads: number; headDim: number; positions: Int32Array; invFreq: Float32Array; maxPositions: number },
): Promise<{ q: Float32Array | null; k: Float32Array | null }> {
  const { rows, numHeads, numKvHeads, headDim } = args;
  const kernel = await RopeKernel.create(device);
  const table = RopeTable.create(device, args.invFreq, args.maxPositions);
  const posBuf = storageBufferFrom(device, args.positions, 'rope positions');
  const qBuf = args.q ? storageBufferFrom(device, args.q, 'rope q') : null;
  const kBuf = args.k ? storageBufferFrom(device, args.k, 'rope k') : null;
  try {
    kernel.run(device, table, posBuf, { q: qBuf, k: kBuf }, { rows, headDim, numHeads, numKvHeads });
    return {
      q: qBuf ? await readF32(device, qBuf, rows * numHeads * headDim) : null,
      k: kBuf ? await readF32(device, kBuf, rows * numKvHeads * headDim) : null,
    };
  } finally {
    for (const b of [posBuf, qBuf, kBuf]) b?.destroy();
    table.destroy();
    kernel.destroy();
  }
}

/** Reads `count` f16 values of a buffer back as f32, starting at element `offset` (even: reads start at 4-byte boundaries). */
export async function readF16(device: GPUDevice, buffer: GPUBuffer, count: number, offset = 0): Promise<Float32Array> {
  const bytes = await readBuffer(device, buffer, align4(count * 2), offset * 2);
  return f16BytesToF32(new Uint8Array(bytes, 0, count * 2));
}
