// Uploads a checkpoint's tensors to the GPU in the storage the precision policy picks, streaming row chunks
// (never a whole multi-GB tensor in memory), splitting any tensor whose binding would exceed the device's
// maxStorageBufferBindingSize into row blocks, and counting GPU bytes per model part.
import type { TensorPart } from '../checkpoint/expected-tensors.ts';
import type { WeightSource } from '../checkpoint/types.ts';
import type { Q4ScaleDType } from '../quant/q4.ts';
import { encodeRows, rowBytes, widenRows, type EncodedRows, type Storage } from '../gpu/storage.ts';
import { isEncodedSource, uploadStorage, type EncodedWeightSource } from './encoded-source.ts';
import type { Precision } from '../precision/policy.ts';
import { isGeneratedSource, type GeneratedWeightSource } from './synthetic-model.ts';
import { GpuWeightsPolicy, matrixShape, type TensorPlan } from '../precision/policy-table.ts';

/** Rows [rowStart, rowStart + rows) of a tensor in their own buffer(s). */
export interface GpuTensorBlock {
  rowStart: number;
  rows: number;
  data: GPUBuffer;
  /** q4 only. */
  scales?: GPUBuffer;
}

export interface GpuTensor {
  name: string;
  /** [rows, cols]; a 1-D tensor is [1, n]. */
  rows: number;
  cols: number;
  storage: Storage;
  part: TensorPart;
  blocks: GpuTensorBlock[];
  bytes: number;
}

export interface WeightReadSource {
  readRows(name: string, start: number, count: number): Promise<Float32Array>;
}

/** Rows read from a WeightSource, by row range when it supports that. */
export function rowReader(source: WeightSource): WeightReadSource {
  return {
    async readRows(name, start, count) {
      const shape = source.info(name).shape;
      // readRowsF32 counts rows along the first dimension: only for 2-D and larger tensors.
      if (source.readRowsF32 && shape.length >= 2) return source.readRowsF32(name, start, count);
      const [, cols] = matrixShape(shape);
      return (await source.readF32(name)).subarray(start * cols, (start + count) * cols);
    },
  };
}

/** CPU memory bound for one upload chunk (f32 values). */
const CHUNK_BYTES = 64 << 20;

export interface GpuWeightsOptions {
  /** Lower the per-binding limit (tests exercise row-block splitting with it); default: the device limit. */
  maxBindingBytes?: number;
  /**
   * The int4 arithmetic for tensors quantized here (MLC q4f16_1 = 'f16', q4f32_1 = 'f32'); default the storage's
   * scale dtype. Lets the raw checkpoint reproduce a converted folder's codes exactly (tests).
   */
  q4Quantizer?: (name: string) => Q4ScaleDType | undefined;
}

export class GpuWeights {
  private readonly tensors = new Map<string, GpuTensor>();
  private readonly reader: WeightReadSource;
  /** Set when the source holds its tensors already encoded (a converted folder). */
  private readonly encoded: EncodedWeightSource | null;
  /** Set when the source writes its tensors on the GPU (a synthetic model). */
  private readonly generated: GeneratedWeightSource | null;
  readonly policy: GpuWeightsPolicy;

  constructor(
    readonly device: GPUDevice,
    readonly source: WeightSource,
    precision: Precision,
    private readonly opts: GpuWeightsOptions = {},
  ) {
    this.policy = new GpuWeightsPolicy(source.config, precision, device.features.has('shader-f16'));
    this.reader = rowReader(source);
    this.encoded = isEncodedSource(source) ? source : null;
    this.generated = isGeneratedSource(source) ? source : null;
  }

  /** How a tensor is stored under this policy on this device (for a pre-encoded source: as stored, widened if needed). */
  plan(name: string): TensorPlan {
    const plan = this.policy.plan(name);
    if (!this.encoded) return plan;
    return { ...plan, storage: uploadStorage(name, plan.storage, this.encoded.storedAs(name), this.policy.hasF16) };
  }

  get(name: string): GpuTensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`weights: "${name}" was not loaded`);
    return t;
  }

  /** Upload one tensor (once). */
  async load(name: string): Promise<GpuTensor> {
    const have = this.tensors.get(name);
    if (have) return have;
    const { tensor: t, storage, rows, cols } = this.plan(name);
    const per = rowBytes(storage, cols);
    const maxBinding = Math.min(this.opts.maxBindingBytes ?? Infinity, this.device.limits.maxStorageBufferBindingSize);
    const rowsPerBlock = Math.floor(maxBinding / Math.max(per.data, 1));
    if (rowsPerBlock < 1) throw new Error(`weights: one row of "${name}" (${per.data} bytes) exceeds maxStorageBufferBindingSize (${maxBinding})`);
    // Even chunk sizes keep every f16 / q4-scale chunk offset 4-byte aligned.
    const rowsPerChunk = Math.max(2, Math.floor(CHUNK_BYTES / (cols * 4)) & ~1);

    // A pre-encoded tensor whose stored format converts to `storage` without loss goes up as stored.
    const stored = this.encoded?.storedAs(name);
    const asStored = stored !== undefined && stored.startsWith('q4') === storage.startsWith('q4');
    const quantizer = this.opts.q4Quantizer?.(name);
    const readChunk = async (start: number, m: number): Promise<EncodedRows> =>
      asStored
        ? widenRows(stored, storage, await this.encoded!.readEncodedRows(name, start, m))
        : encodeRows(storage, await this.reader.readRows(name, start, m), m, cols, quantizer);

    const blocks: GpuTensorBlock[] = [];
    let bytes = 0;
    for (let rowStart = 0; rowStart < rows; rowStart += rowsPerBlock) {
      const n = Math.min(rowsPerBlock, rows - rowStart);
      const block = this.createBlock(name, storage, rowStart, n, per);
      if (this.generated) await this.generated.generateRows(this.device, name, storage, block, rowStart, n, cols);
      else for (let r = 0; r < n; r += rowsPerChunk) {
        const m = Math.min(rowsPerChunk, n - r);
        this.write(block, await readChunk(rowStart + r, m), r, per);
      }
      bytes += block.data.size + (block.scales?.size ?? 0);
      blocks.push(block);
    }
    const tensor: GpuTensor = { name, rows, cols, storage, part: t.part, blocks, bytes };
    this.tensors.set(name, tensor);
    return tensor;
  }

  private createBlock(name: string, storage: Storage, rowStart: number, rows: number, per: { data: number; scales: number }): GpuTensorBlock {
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const size = (b: number) => Math.max(4, Math.ceil(b / 4) * 4);
    const label = `${name} [${rowStart}, ${rowStart + rows}) ${storage}`;
    const data = this.device.createBuffer({ label, size: size(rows * per.data), usage });
    if (!per.scales) return { rowStart, rows, data };
    const scales = this.device.createBuffer({ label: `${label} scales`, size: size(rows * per.scales), usage });
    return { rowStart, rows, data, scales };
  }

  private write(block: GpuTensorBlock, enc: EncodedRows, rowOffset: number, per: { data: number; scales: number }): void {
    // writeBuffer needs 4-byte multiples: f16 rows of odd width are padded (the tail is never read).
    const pad = (b: Uint8Array) => (b.byteLength % 4 === 0 ? b : Uint8Array.from({ length: Math.ceil(b.byteLength / 4) * 4 }, (_, i) => b[i] ?? 0));
    // Pass (ArrayBuffer, byteOffset, byteLength): views into a larger buffer are not honoured by every binding.
    const put = (dst: GPUBuffer, offset: number, b: Uint8Array) => {
      if (offset % 4 !== 0) throw new Error(`weights: row chunk offset ${offset} of "${dst.label}" is not 4-byte aligned`);
      const p = pad(b);
      this.device.queue.writeBuffer(dst, offset, p.buffer, p.byteOffset, p.byteLength);
    };
    put(block.data, rowOffset * per.data, enc.data);
    if (block.scales && enc.scales) put(block.scales, rowOffset * per.scales, enc.scales);
  }

  /** Uploads every tensor inference reads (`only`: those it keeps, e.g. all but an external LLM's). */
  async loadAll(onTensor?: (name: string, done: number, total: number) => void, only: (name: string) => boolean = () => true): Promise<void> {
    const names = this.policy.usedTensors().map((t) => t.name).filter(only);
    for (let i = 0; i < names.length; i++) {
      await this.load(names[i]!);
      // The last report means every tensor is on the GPU (generated sources write there asynchronously).
      if (i === names.length - 1) await this.device.queue.onSubmittedWorkDone();
      onTensor?.(names[i]!, i + 1, names.length);
    }
  }

  /** GPU bytes held per model part. */
  bytesByPart(): Record<TensorPart, number> {
    const out: Record<TensorPart, number> = { vision: 0, projector: 0, compressor: 0, prefusion: 0, llm: 0 };
    for (const t of this.tensors.values()) out[t.part] += t.bytes;
    return out;
  }

  destroy(): void {
    for (const t of this.tensors.values()) {
      for (const b of t.blocks) {
        b.data.destroy();
        b.scales?.destroy();
      }
    }
    this.tensors.clear();
  }
}
