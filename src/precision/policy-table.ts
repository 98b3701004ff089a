// The precision policy applied to one model: each checkpoint tensor's GPU storage and matrix view.
import { expectedTensorList, type ExpectedTensor } from '../checkpoint/expected-tensors.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import type { Storage } from '../gpu/storage.ts';
import { storageFor, type Precision } from './policy.ts';

export interface TensorPlan {
  tensor: ExpectedTensor;
  storage: Storage;
  /** The tensor as a matrix: [rows, cols]; 1-D tensors are one row, conv weights [out, in*kh*kw]. */
  rows: number;
  cols: number;
}

export function matrixShape(shape: readonly number[]): [number, number] {
  if (shape.length === 1) return [1, shape[0]!];
  return [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
}

export class GpuWeightsPolicy {
  private readonly table: Map<string, ExpectedTensor>;

  constructor(
    readonly config: LlavaMiniConfig,
    readonly precision: Precision,
    readonly hasF16: boolean,
  ) {
    this.table = new Map(expectedTensorList(config).map((t) => [t.name, t]));
  }

  /** Every tensor inference reads. */
  usedTensors(): ExpectedTensor[] {
    return [...this.table.values()].filter((t) => t.used);
  }

  plan(name: string): TensorPlan {
    const tensor = this.table.get(name);
    if (!tensor) throw new Error(`weights: "${name}" is not a tensor of this model`);
    const [rows, cols] = matrixShape(tensor.shape);
    let storage = storageFor(this.precision, tensor.part, tensor.role, this.hasF16);
    // int4 needs whole groups of 32 along the row; other widths keep the policy's half precision.
    if ((storage === 'q4f32' || storage === 'q4f16') && cols % 32 !== 0) storage = this.hasF16 ? 'f16' : 'f32';
    return { tensor, storage, rows, cols };
  }
}
