// Writes deterministic pseudo-random values straight into a GPU buffer in a weight storage format
// (shaders/synthetic-weights.wgsl): f32 values, f16 pairs, or int4 code words. Synthetic models use it so that an
// 8B-shaped model exists on the GPU without weight files and without a CPU copy of its weights.
import syntheticWgsl from '../../../shaders/synthetic-weights.wgsl?raw';
import { bindBuffers, uniformBufferFrom } from '../buffers.ts';
import { foldGrid, LazyPrograms, recordDispatch, workgroupLimit } from '../dispatch.ts';
import { computeProgram, type ComputeProgram } from '../pipeline.ts';

/** What one u32 word of the output holds: one f32 value, two f16 values, or eight int4 codes (0..14). */
export type SyntheticWordKind = 'f32' | 'f16x2' | 'q4x8';

const KIND_CODE: Record<SyntheticWordKind, number> = { f32: 0, f16x2: 1, q4x8: 2 };
export const ELEMENTS_PER_WORD: Record<SyntheticWordKind, number> = { f32: 1, f16x2: 2, q4x8: 8 };
const WORKGROUP = 256;

export interface SyntheticFill {
  kind: SyntheticWordKind;
  /** Per-tensor seed: element e's value depends on (seed, first + e) only. */
  seed: number;
  /** Global index of the first element written (a row block's offset in its tensor). */
  first: number;
  /** Elements to write (rounded up to whole words). */
  elements: number;
  /** Values uniform in [center - amp, center + amp] (ignored for int4 codes). */
  center: number;
  amp: number;
}

export class SyntheticWeightsKernel {
  private readonly programs = new LazyPrograms(async () => {
    const kinds = Object.keys(KIND_CODE) as SyntheticWordKind[];
    const built = await Promise.all(
      kinds.map((k) => computeProgram(this.device, { name: `synthetic-weights.wgsl (${k})`, code: syntheticWgsl, bindings: ['uniform', 'storage'], constants: { KIND: KIND_CODE[k] } })),
    );
    return new Map(kinds.map((k, i) => [k, built[i]!] as [SyntheticWordKind, ComputeProgram]));
  });

  private constructor(readonly device: GPUDevice) {}

  static create(device: GPUDevice): Promise<SyntheticWeightsKernel> {
    const k = new SyntheticWeightsKernel(device);
    return k.programs.ready(k);
  }

  /** Fills `out` from byte 0 with `fill.elements` values (submitted now). */
  run(out: GPUBuffer, fill: SyntheticFill): void {
    const words = Math.ceil(fill.elements / ELEMENTS_PER_WORD[fill.kind]);
    if (words * 4 > out.size) throw new Error(`SyntheticWeightsKernel: ${words} words exceed ${out.label || 'the buffer'} (${out.size} bytes)`);
    if (fill.first + fill.elements > 2 ** 32) throw new Error(`SyntheticWeightsKernel: element indices past 2^32 (${fill.first + fill.elements})`);
    const params = new Uint32Array([words, fill.seed >>> 0, fill.first, 0, 0, 0]);
    const f = new Float32Array(params.buffer);
    f[4] = fill.center;
    f[5] = fill.amp;
    const uniform = uniformBufferFrom(this.device, params, 'synthetic weights params');
    const program = this.programs.require('SyntheticWeightsKernel').get(fill.kind)!;
    const grid = foldGrid(Math.ceil(words / WORKGROUP), workgroupLimit(this.device), 'SyntheticWeightsKernel');
    recordDispatch(this.device, `synthetic ${out.label}`, program, bindBuffers(this.device, program.layout, [uniform, { buffer: out, size: words * 4 }]), grid);
    // Safe once submitted: the queue keeps what its work uses.
    uniform.destroy();
  }
}
