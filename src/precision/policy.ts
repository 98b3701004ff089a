// Precision policy: which storage each checkpoint tensor gets on the GPU. Explicit per tensor (by the part of
// the model and the tensor's role), resolved against the device: every f16 choice has an f32 fallback for
// adapters without `shader-f16`, and q4 scales are f16 (MLC q4f16_1) or f32 (q4f32_1) the same way.
import type { TensorPart, TensorRole } from '../checkpoint/expected-tensors.ts';
import type { Storage } from '../gpu/storage.ts';

/** The user-facing precision modes (spec: f32 = parity mode; q4 = the shipping mode for the 8B model). */
export type Precision = 'f32' | 'f16' | 'q4';

export const PRECISIONS: readonly Precision[] = ['f32', 'f16', 'q4'];

/**
 * q4 (issue spec): CLIP, projector and compressor f16; pre-fusion and LLM matrices and the token embedding /
 * lm_head int4 group-32; norms and everything else f16. f16 everywhere for 'f16', f32 everywhere for 'f32'.
 */
export function storageFor(precision: Precision, part: TensorPart, role: TensorRole, hasF16: boolean): Storage {
  const half: Storage = hasF16 ? 'f16' : 'f32';
  if (precision === 'f32') return 'f32';
  if (precision === 'f16') {
    if (!hasF16) throw new Error('precision f16 needs the WebGPU feature "shader-f16", which this GPU does not have: use f32 or q4');
    return 'f16';
  }
  const quantized = (part === 'prefusion' || part === 'llm') && (role === 'linear' || role === 'embedding');
  if (quantized) return hasF16 ? 'q4f16' : 'q4f32';
  return half;
}

export function parsePrecision(s: string): Precision {
  if ((PRECISIONS as readonly string[]).includes(s)) return s as Precision;
  throw new Error(`unknown precision "${s}": use ${PRECISIONS.join(', ')}`);
}
