// Reading named tensors for the reference model, with a shape check that names the tensor.
import type { WeightSource } from '../checkpoint/types.ts';

/** readF32(name), checking the stored shape when `shape` is given (and the element count in any case). */
export async function readTensor(src: WeightSource, name: string, shape?: readonly number[]): Promise<Float32Array> {
  if (shape) {
    const got = src.info(name).shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new Error(`${name}: shape [${got.join(',')}], expected [${shape.join(',')}]`);
    }
  }
  const data = await src.readF32(name);
  if (shape) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`${name}: ${data.length} values, expected ${n}`);
  }
  return data;
}
