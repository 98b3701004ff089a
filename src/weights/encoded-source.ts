// A weight source whose tensors are already encoded in a GPU storage format (a converted folder: int4 words and
// scales, f16 values): GpuWeights uploads their bytes as stored instead of quantizing f32 values again.
import type { WeightSource } from '../checkpoint/types.ts';
import { isQ4, type EncodedRows, type Storage } from '../gpu/storage.ts';

export interface EncodedWeightSource extends WeightSource {
  /** The storage a tensor is held in by the source. */
  storedAs(name: string): Storage;
  /** Rows [start, start + count) of a tensor (1-D: row 0 = the whole tensor), bytes exactly as stored. */
  readEncodedRows(name: string, start: number, count: number): Promise<EncodedRows>;
}

export function isEncodedSource(source: WeightSource): source is EncodedWeightSource {
  return typeof (source as Partial<EncodedWeightSource>).readEncodedRows === 'function';
}

/**
 * The storage a pre-encoded tensor is uploaded in, given the policy's plan: the stored format itself, widened
 * where the device lacks shader-f16 (q4f16 -> q4f32 scales, f16 -> f32) or the plan is f32. A dense tensor the plan
 * wants int4 keeps the plan (GpuWeights quantizes its values); an int4 tensor never becomes dense.
 */
export function uploadStorage(name: string, planned: Storage, stored: Storage, hasF16: boolean): Storage {
  if (isQ4(stored)) {
    if (!isQ4(planned)) {
      throw new Error(`weights: "${name}" is stored int4 (${stored}) by the source, the precision policy wants ${planned}: load a converted folder at precision q4`);
    }
    return stored === 'q4f16' && !hasF16 ? 'q4f32' : stored;
  }
  if (isQ4(planned)) return planned;
  return planned === 'f32' || !hasF16 ? 'f32' : stored;
}
