// Dtype conversion of f32 rows into a buffer of another dtype (shaders/convert.wgsl):
//   ConvertRowsKernel   dst[i] = out(src[srcOffset + i]) for i < n, out = f32 (exact copy) or f16 (clamped to
//                       +-65504, rounded to nearest even; written as packed u32 words, so shader-f16 is not needed)
// Offsets may be anywhere: the bindings start at the offsets rounded down to minStorageBufferOffsetAlignment and
// the rest goes in the uniform. Used to hand our fused LLM input rows to WebLLM's prefill (its tensors are the
// model's dtype) on the GPU, src/llm/webllm/embedding-prefill.ts.
import convertWgsl from '../../../shaders/convert.wgsl?raw';
import { align4, bindBuffers } from '../buffers.ts';
import { checkBindingLimit, foldGrid, LazyPrograms, nonNegativeInt, positiveInt, recordDispatch, UniformCache, workgroupLimit, type GpuTarget } from '../dispatch.ts';
import { computeProgram, type ComputeProgram } from '../pipeline.ts';
import type { DenseStorage } from '../storage.ts';


/** Invocations per workgroup in convert.wgsl. */
export const CONVERT_WORKGROUP = 256;

/** Entry point, element size and elements per invocation of each output type. */
const OUTS: Record<DenseStorage, { entry: string; bytes: number; perInvocation: number }> = {
  f32: { entry: 'convert_rows', bytes: 4, perInvocation: 1 },
  f16: { entry: 'convert_rows_f16', bytes: 2, perInvocation: 2 },
};

export interface ConvertRowsKernelOptions {
  /** Lower the dispatch limit (tests use it to exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
}

export class ConvertRowsKernel {
  private readonly who = 'ConvertRowsKernel';
  private readonly programs = new LazyPrograms(async () => {
    const built = await Promise.all(
      (Object.keys(OUTS) as DenseStorage[]).map((out) =>
        computeProgram(this.device, {
          name: `convert.wgsl (${OUTS[out].entry})`,
          code: convertWgsl,
          entryPoint: OUTS[out].entry,
          bindings: ['uniform', 'read', 'storage'],
        }).then((p) => [out, p] as const),
      ),
    );
    return new Map<DenseStorage, ComputeProgram>(built);
  });
  private readonly uniforms: UniformCache;
  private readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    opts: ConvertRowsKernelOptions = {},
  ) {
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, 'convert params');
  }

  static create(device: GPUDevice, opts?: ConvertRowsKernelOptions): Promise<ConvertRowsKernel> {
    return new ConvertRowsKernel(device, opts).init();
  }

  init(): Promise<this> {
    return this.programs.ready(this);
  }

  /**
   * Records dst[i] = out(src[srcOffset + i]) for i < n, where dst starts at byte `dstByteOffset` of `dst`.
   * src is f32; offsets in elements (src) and bytes (dst). f16 writes whole u32 words: n even, dstByteOffset a
   * multiple of 4.
   */
  run(target: GpuTarget, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstByteOffset: number, n: number, out: DenseStorage): void {
    positiveInt(this.who, 'n', n);
    nonNegativeInt(this.who, 'srcOffset', srcOffset);
    nonNegativeInt(this.who, 'dstByteOffset', dstByteOffset);
    const spec = OUTS[out];
    if (!spec) throw new Error(`${this.who}: unknown output type "${out}"`);
    const word = 4;
    if (n % spec.perInvocation !== 0 || dstByteOffset % word !== 0) {
      throw new Error(`${this.who}: ${out} output is written in 4-byte words: n (${n}) must be a multiple of ${spec.perInvocation} and dstByteOffset (${dstByteOffset}) of 4`);
    }
    const program = this.programs.require(this.who).get(out)!;
    const x = this.window('src', src, srcOffset * 4, n * 4, `[${n}] f32 from element ${srcOffset}`);
    const y = this.window('dst', dst, dstByteOffset, n * spec.bytes, `[${n}] ${out} from byte ${dstByteOffset}`);
    const invocations = n / spec.perInvocation;
    const bindGroup = bindBuffers(this.device, program.layout, [this.uniforms.get([invocations, x.first, y.first, 0]), x.binding, y.binding], spec.entry);
    recordDispatch(target, spec.entry, program, bindGroup, foldGrid(Math.ceil(invocations / CONVERT_WORKGROUP), this.maxWg, this.who));
  }

  destroy(): void {
    this.uniforms.destroy();
  }

  /** A binding of `bytes` bytes of `buf` from byte `start` (a multiple of 4): aligned down to the offset alignment, with the 4-byte word index of `start` in it. */
  private window(label: string, buf: GPUBuffer, start: number, bytes: number, what: string): { binding: GPUBufferBinding; first: number } {
    const alignment = this.device.limits.minStorageBufferOffsetAlignment;
    const offset = Math.floor(start / alignment) * alignment;
    const size = align4(start - offset + bytes);
    checkBindingLimit(this.device, this.who, label, size, what);
    if (start + bytes > buf.size || offset + size > buf.size) {
      throw new Error(`${this.who}: buffer ${label} "${buf.label}" has ${buf.size} bytes, needs ${align4(start + bytes)} (${what})`);
    }
    return { binding: { buffer: buf, offset, size }, first: (start - offset) / 4 };
  }
}
