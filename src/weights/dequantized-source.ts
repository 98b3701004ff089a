// The weights exactly as the GPU sees them under a precision policy (rounded to f16, or quantized to int4 and
// back), as a WeightSource: running the CPU reference on it isolates kernel error from quantization error.
import type { TensorInfo, WeightSource } from '../checkpoint/types.ts';
import { decodeRows, encodeRows } from '../gpu/storage.ts';
import { GpuWeightsPolicy } from '../precision/policy-table.ts';
import type { Precision } from '../precision/policy.ts';

export function dequantizedSource(source: WeightSource, precision: Precision, hasF16: boolean): WeightSource {
  const policy = new GpuWeightsPolicy(source.config, precision, hasF16);
  return {
    config: source.config,
    has: (name: string) => source.has(name),
    info: (name: string): TensorInfo => ({ ...source.info(name), dtype: 'F32' }),
    async readF32(name: string): Promise<Float32Array> {
      const values = await source.readF32(name);
      const { storage, rows, cols } = policy.plan(name);
      return decodeRows(storage, encodeRows(storage, values, rows, cols), rows, cols);
    },
  };
}
