// Image preprocessing on the GPU (shaders/preprocess.wgsl): RGBA8 pixels (4 bytes a pixel, packed one u32 a
// pixel, R in the low byte) -> pixel_values [3, S, S] f32, bit-exact with src/reference/preprocess.ts:
//   image:  [expand2square with (122,116,104) when aspectRatio === 'pad'] -> Pillow BICUBIC shortest edge -> S
//           (8-bit fixed point, horizontal then vertical, a same-size pass skipped) -> center crop -> normalize;
//   video:  torch's nearest interpolate straight to S x S (the reference's load_video) -> normalize.
// The CPU computes every float-dependent quantity (preprocess-plan.ts: Pillow's coefficients, the normalize table,
// the nearest indices in ATen's float32 steps) and uploads them once per input shape (a cached "plan");
// the GPU does integer arithmetic only. Only the S x S crop is computed.
//
// Inputs: a storage buffer of packed RGBA rows (`rowStride` pixels apart, default `width`), e.g. from
// upload.ts: uploadRgba() (Node / ImageData) or uploadImageBitmap() (browser: ImageBitmap, canvas, video frame).
// Large images: a 12000 x 9000 image is 432 MB. The buffer itself must fit in maxBufferSize (checked by the
// upload helpers); the kernel binds it one band of rows at a time, so it may exceed maxStorageBufferBindingSize
// (128 MiB on some adapters): the horizontal pass is split into one dispatch per band. Errors name the sizes and
// the limit when even that cannot work (a single row wider than the binding limit, or a scratch too large).
import preprocessWgsl from '../../shaders/preprocess.wgsl?raw';
import { align4, bindBuffers, createStorageBuffer, readBuffer, storageBufferFrom, uniformBufferFrom } from '../gpu/buffers.ts';
import { checkBinding, checkBufferSize, foldGrid, LazyPrograms, nonNegativeInt, positiveInt, recordCompute, requireShaderF16, workgroupLimit, type GpuTarget } from '../gpu/dispatch.ts';
import { computeProgram, specializeWgsl, type BindingKind } from '../gpu/pipeline.ts';
import type { DenseStorage } from '../gpu/storage.ts';
import { CLIP_MEAN, CLIP_STD, type RgbaImage } from '../model/constants.ts';
import { checkI32Range, normalizeTable, planGeometry } from './preprocess-plan.ts';
import { uploadRgba } from './upload.ts';


const BINDINGS: readonly BindingKind[] = ['uniform', 'read', 'read', 'storage', 'storage'];
const WORKGROUP = 256;

/** preprocess.wgsl as is for f32 output; for f16 output, `enable f16;` + `alias OT = f16;`. */
export function preprocessShaderSource(output: DenseStorage): string {
  return output === 'f16' ? specializeWgsl(preprocessWgsl, { enable: ['f16'], aliases: { OT: 'f16' } }) : preprocessWgsl;
}

export interface PreprocessKernelOptions {
  /** Storage type of pixel_values: 'f32' (default; CLIP runs in f32) or 'f16' (needs shader-f16). */
  output?: DenseStorage;
  /**
   * Lower the binding limit used to split the SOURCE image into row bands (tests use this to exercise the banded
   * horizontal pass on small images). Default: the device's maxStorageBufferBindingSize.
   */
  maxSourceBindingBytes?: number;
  /** Lower the dispatch limit (tests use this to exercise the 2D fold). Default: the device's. */
  maxWorkgroupsPerDimension?: number;
}

export interface PreprocessRunOptions {
  /** Output side S (config.vision.imageSize: 336). */
  size: number;
  /** config.imageAspectRatio: 'pad' pads to a square first (image mode only). */
  aspectRatio?: string;
  /** 'image' (default): bicubic + crop. 'video': torch's nearest to S x S, no pad, no crop (spec sections 1, 7). */
  mode?: 'image' | 'video';
  /** Pixels between the starts of two rows in the buffer (default: width). */
  rowStride?: number;
  /** Element offset of pixel_values[0, 0, 0] in `out` (e.g. frame t of a batch: t * 3 * S * S). Default 0. */
  outOffset?: number;
  mean?: readonly [number, number, number];
  std?: readonly [number, number, number];
}

interface Band {
  jStart: number;
  jEnd: number;
  row0: number;
  /** Binding range of src (bytes) and the u32 index of pixel (0, row0) in it. */
  offset: number;
  size: number;
  shift: number;
  uniform: GPUBuffer;
}

interface Plan {
  S: number;
  midRows: number;
  table: GPUBuffer;
  mid: GPUBuffer;
  bands: Band[];
  vUniform: GPUBuffer;
  hGroups: number[];
  srcBytes: number;
}

export class PreprocessKernel {
  readonly output: DenseStorage;
  private readonly programs = new LazyPrograms(async () => {
    const name = this.output === 'f16' ? 'preprocess.wgsl (f16 output)' : 'preprocess.wgsl';
    const code = preprocessShaderSource(this.output);
    const [h, v] = await Promise.all([
      computeProgram(this.device, { name, code, entryPoint: 'hpass', bindings: BINDINGS }),
      computeProgram(this.device, { name, code, entryPoint: 'vpass', bindings: BINDINGS }),
    ]);
    return { h, v };
  });
  private readonly plans = new Map<string, Plan>();
  private readonly maxWg: number;
  private readonly maxBinding: number;
  private readonly maxSrcBinding: number;

  constructor(
    readonly device: GPUDevice,
    opts: PreprocessKernelOptions = {},
  ) {
    this.output = opts.output ?? 'f32';
    requireShaderF16(device, this.output === 'f16', 'PreprocessKernel: f16 output needs', 'f32 output');
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.maxBinding = device.limits.maxStorageBufferBindingSize;
    this.maxSrcBinding = Math.min(opts.maxSourceBindingBytes ?? Infinity, this.maxBinding);
  }

  init(): Promise<this> {
    return this.programs.ready(this);
  }

  static create(device: GPUDevice, opts?: PreprocessKernelOptions): Promise<PreprocessKernel> {
    return new PreprocessKernel(device, opts).init();
  }

  /**
   * Records pixel_values [3, S, S] of the RGBA image in `rgba` (packed, see PackedRgba) into `out` at
   * opts.outOffset: the reference's preprocessImage (mode 'image', default) or preprocessVideoFrame
   * (mode 'video'). With a device, encodes and submits at once; with an encoder or pass, only records.
   */
  preprocessRgba(target: GpuTarget, rgba: GPUBuffer, width: number, height: number, out: GPUBuffer, opts: PreprocessRunOptions): void {
    const who = 'PreprocessKernel';
    const { h, v } = this.programs.require(who, who);
    positiveInt(who, 'width', width);
    positiveInt(who, 'height', height);
    positiveInt(who, 'size', opts.size);
    const rowStride = opts.rowStride ?? width;
    const outOffset = opts.outOffset ?? 0;
    if (!Number.isInteger(rowStride) || rowStride < width) throw new Error(`${who}: rowStride ${rowStride} is smaller than the width ${width}`);
    nonNegativeInt(who, 'outOffset', outOffset);
    const S = opts.size;
    checkBufferSize(who, 'rgba', rgba, ((height - 1) * rowStride + width) * 4, `${width}x${height} RGBA, row stride ${rowStride}`);
    const outBytes = (outOffset + 3 * S * S) * (this.output === 'f16' ? 2 : 4);
    checkBinding(this.device, who, 'out', out, outBytes, `[3, ${S}, ${S}] ${this.output} at offset ${outOffset}`);
    if (out === rgba) throw new Error(`${who}: rgba and out must be different buffers`);

    const plan = this.planFor(width, height, rowStride, outOffset, opts);
    const outBinding: GPUBufferBinding = { buffer: out, offset: 0, size: align4(outBytes) };
    const fold = (groups: number) => foldGrid(groups, this.maxWg, who);
    const hGroups = plan.bands.map((b, k) => [bindBuffers(this.device, h.layout, [b.uniform, { buffer: rgba, offset: b.offset, size: b.size }, plan.table, plan.mid, outBinding], 'preprocess hpass'), fold(plan.hGroups[k]!)] as const);
    const first = plan.bands[0]!;
    const vGroup = bindBuffers(this.device, v.layout, [plan.vUniform, { buffer: rgba, offset: first.offset, size: first.size }, plan.table, plan.mid, outBinding], 'preprocess vpass');
    const [vx, vy] = fold(Math.ceil((S * S) / WORKGROUP));
    recordCompute(target, 'preprocess', (pass) => {
      pass.setPipeline(h.pipeline);
      for (const [group, [x, y]] of hGroups) {
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(x, y);
      }
      pass.setPipeline(v.pipeline);
      pass.setBindGroup(0, vGroup);
      pass.dispatchWorkgroups(vx, vy);
    });
  }

  /** The video-frame path: preprocessRgba with mode 'video' (torch's nearest to S x S, no pad, no crop). */
  preprocessVideoFrame(target: GpuTarget, rgba: GPUBuffer, width: number, height: number, out: GPUBuffer, opts: Omit<PreprocessRunOptions, 'mode' | 'aspectRatio'>): void {
    this.preprocessRgba(target, rgba, width, height, out, { ...opts, mode: 'video' });
  }

  /** Number of horizontal-pass dispatches (row bands) an input of this shape needs; for tests and diagnostics. */
  bandCount(width: number, height: number, opts: PreprocessRunOptions): number {
    return this.planFor(width, height, opts.rowStride ?? width, opts.outOffset ?? 0, opts).bands.length;
  }

  destroy(): void {
    for (const p of this.plans.values()) {
      p.table.destroy();
      p.mid.destroy();
      p.vUniform.destroy();
      for (const b of p.bands) b.uniform.destroy();
    }
    this.plans.clear();
  }

  private planFor(width: number, height: number, rowStride: number, outOffset: number, opts: PreprocessRunOptions): Plan {
    const mean = opts.mean ?? CLIP_MEAN;
    const std = opts.std ?? CLIP_STD;
    const mode = opts.mode ?? 'image';
    const key = JSON.stringify([width, height, rowStride, outOffset, opts.size, mode, mode === 'image' && opts.aspectRatio === 'pad', mean, std]);
    let plan = this.plans.get(key);
    if (plan) return plan;
    const S = opts.size;
    const geo = planGeometry(width, height, { size: S, aspectRatio: opts.aspectRatio, mode });
    checkI32Range(geo.h, 'horizontal');
    checkI32Range(geo.v, 'vertical');
    const midRows = geo.rowSrc.length;
    const midBytes = midRows * S * 4;
    if (midBytes > this.maxBinding) {
      throw new Error(
        `PreprocessKernel: the intermediate of a ${width}x${height} image (${midRows} rows x ${S} columns, ${midBytes} bytes) is more than this device's maxStorageBufferBindingSize (${this.maxBinding}); the image's aspect ratio is too extreme`,
      );
    }

    // Table: hMin, hCount, hW, vMin, vCount, vW, rowSrc, LUT (f32 bits).
    const sections: ArrayLike<number>[] = [geo.h.min, geo.h.count, geo.h.weights, geo.v.min, geo.v.count, geo.v.weights, geo.rowSrc];
    const offsets: number[] = [];
    let words = 0;
    for (const s of sections) {
      offsets.push(words);
      words += s.length;
    }
    const offLut = words;
    words += 768;
    const tableData = new Uint32Array(words);
    const asI32 = new Int32Array(tableData.buffer);
    sections.forEach((s, k) => asI32.set(s, offsets[k]!));
    new Float32Array(tableData.buffer, offLut * 4, 768).set(normalizeTable(mean, std));
    if (tableData.byteLength > this.maxBinding) throw new Error(`PreprocessKernel: filter table of ${tableData.byteLength} bytes exceeds this device's maxStorageBufferBindingSize (${this.maxBinding})`);

    // Row bands: consecutive mid rows whose image rows fit in one binding of src.
    const align = this.device.limits.minStorageBufferOffsetAlignment;
    const rowBytes = rowStride * 4;
    const rowsPerBand = Math.floor((this.maxSrcBinding - align - width * 4) / rowBytes) + 1;
    if (rowsPerBand < 1) {
      throw new Error(
        `PreprocessKernel: one row of a ${width}-pixel-wide image (${width * 4} bytes) does not fit in a storage binding of at most ${this.maxSrcBinding} bytes (maxStorageBufferBindingSize)`,
      );
    }
    const spans: { jStart: number; row0: number; rowMax: number }[] = [];
    for (let j = 0; j < midRows; j++) {
      const r = geo.rowSrc[j]! - geo.padTop;
      if (r < 0 || r >= height) continue; // a pad row: reads no pixel, any band computes it
      const cur = spans[spans.length - 1];
      if (!cur || r >= cur.row0 + rowsPerBand) spans.push({ jStart: spans.length === 0 ? 0 : j, row0: r, rowMax: r });
      else cur.rowMax = Math.max(cur.rowMax, r);
    }
    if (spans.length === 0) spans.push({ jStart: 0, row0: 0, rowMax: 0 });
    const base = (b: { jStart: number; jEnd: number; row0: number; shift: number }) =>
      new Uint32Array([
        width, height, rowStride, geo.padColor, geo.padLeft, geo.padTop, S, midRows,
        b.jStart, b.jEnd, b.row0, b.shift, geo.h.k, geo.v.k, outOffset, 0,
        ...offsets.slice(0, 7), offLut,
      ]);
    const bands: Band[] = spans.map((sp, k) => {
      const jEnd = k + 1 < spans.length ? spans[k + 1]!.jStart : midRows;
      const start = sp.row0 * rowBytes;
      const offset = Math.floor(start / align) * align;
      const shift = (start - offset) / 4;
      const size = align4((start - offset) + (sp.rowMax - sp.row0) * rowBytes + width * 4);
      const b = { jStart: sp.jStart, jEnd, row0: sp.row0, shift };
      return { ...b, offset, size, uniform: uniformBufferFrom(this.device, base(b), `preprocess band ${k}`) };
    });
    const table = storageBufferFrom(this.device, tableData, `preprocess table ${width}x${height}->${S}`);
    const vUniform = uniformBufferFrom(this.device, base({ jStart: 0, jEnd: 0, row0: 0, shift: 0 }), 'preprocess vpass');
    const mid = createStorageBuffer(this.device, midBytes, `preprocess mid ${midRows}x${S}`);
    plan = {
      S,
      midRows,
      table,
      mid,
      bands,
      vUniform,
      hGroups: bands.map((b) => Math.ceil(((b.jEnd - b.jStart) * S) / WORKGROUP)),
      srcBytes: ((height - 1) * rowStride + width) * 4,
    };
    // Bounded: forget (not destroy: a recorded, unsubmitted run may still use them) and let GC free.
    if (this.plans.size >= 8) this.plans.clear();
    this.plans.set(key, plan);
    return plan;
  }
}

/**
 * One-shot convenience for tests and self-tests: uploads an RGBA image, preprocesses it, reads back
 * pixel_values [3, S, S] (f32 kernels only).
 */
export async function preprocessOnGpu(
  device: GPUDevice,
  img: RgbaImage,
  opts: PreprocessRunOptions & { kernel?: PreprocessKernel; kernelOptions?: PreprocessKernelOptions },
): Promise<Float32Array> {
  const kernel = opts.kernel ?? (await PreprocessKernel.create(device, opts.kernelOptions));
  if (kernel.output !== 'f32') throw new Error('preprocessOnGpu: f32 output only');
  const src = uploadRgba(device, img);
  const n = 3 * opts.size * opts.size;
  const out = createStorageBuffer(device, n * 4, 'pixel_values');
  try {
    kernel.preprocessRgba(device, src.buffer, src.width, src.height, out, { ...opts, rowStride: src.rowStride, outOffset: 0 });
    return new Float32Array(await readBuffer(device, out, n * 4));
  } finally {
    src.buffer.destroy();
    out.destroy();
    if (!opts.kernel) kernel.destroy();
  }
}
