// One image through the vision side on the GPU: pixel_values [3, S, S] -> CLIP -> compressor -> projector.
// Layout (one copy: the selected CLIP rows out of the tower's residual stream):
//   features  [N + C^2, D] = [clip ; compressedRaw]   (the compressor reads the CLIP rows and writes after them)
//   projected [N + C^2, H] = [G ; Vc]                 (one projector run over all rows: the rows are independent)
// [G ; Vc] is exactly the vision prefix of the pre-fusion input concat(G, Vc, T) (spec section 4).
// encodeImageGpu records every stage into one command encoder and submits once; the outputs live in buffers
// owned by the encoder and are overwritten by the next image (copy them out first if they must survive).
import { createStorageBuffer } from '../gpu/buffers.ts';
import { LinearKernels } from '../gpu/gpu-linear.ts';
import { readRows, type GpuRows } from '../gpu/tensor.ts';
import type { GpuWeights } from '../weights/gpu-weights.ts';
import { ClipTower } from '../vision/clip-tower.ts';
import { CompressorGpu } from './compressor.ts';
import { ProjectorGpu } from './projector.ts';

export interface ImageEncodingGpu {
  /** CLIP features [N, D] (N + 1 rows with visionSelectFeature "cls_patch"). */
  clip: GpuRows;
  /** Compressor output before the projector [C^2, D]. */
  compressedRaw: GpuRows;
  /** projector(clip) [N, H]. */
  G: GpuRows;
  /** projector(compressedRaw) [C^2, H]. */
  Vc: GpuRows;
  /** [G ; Vc] [N + C^2, H]: the vision rows of the pre-fusion input. */
  visionRows: GpuRows;
}

/** One stage of the encoding, for profiling: its work recorded into an encoder. */
export interface ImageEncoderStage {
  name: string;
  record(encoder: GPUCommandEncoder, pixels: GPUBuffer): void;
}

export class ImageEncoderGpu {
  readonly output: ImageEncodingGpu;
  readonly stages: readonly ImageEncoderStage[];

  private constructor(
    readonly device: GPUDevice,
    readonly tower: ClipTower,
    readonly compressor: CompressorGpu,
    readonly projector: ProjectorGpu,
    private readonly linear: LinearKernels,
    private readonly buffers: { features: GPUBuffer; projected: GPUBuffer },
  ) {
    const config = tower.config;
    const N = tower.outputRows;
    const C2 = compressor.queries;
    const D = config.mmHiddenSize;
    const H = config.llm.hiddenSize;
    const { features, projected } = buffers;
    this.output = {
      clip: { buffer: features, rowStart: 0, rows: N, cols: D },
      compressedRaw: { buffer: features, rowStart: N, rows: C2, cols: D },
      G: { buffer: projected, rowStart: 0, rows: N, cols: H },
      Vc: { buffer: projected, rowStart: N, rows: C2, cols: H },
      visionRows: { buffer: projected, rowStart: 0, rows: N + C2, cols: H },
    };
    this.stages = [
      { name: 'clip embeddings', record: (e, pixels) => tower.recordEmbeddings(e, pixels) },
      ...tower.layers.map((_, i) => ({ name: `clip layer ${i}`, record: (e: GPUCommandEncoder) => tower.recordLayer(e, i) })),
      {
        name: 'compressor',
        record: (e) => {
          tower.recordOutputCopy(e, features, 0);
          compressor.record(e, features, features, N);
        },
      },
      { name: 'projector', record: (e) => projector.record(e, features, N + C2, projected) },
    ];
  }

  /** Loads CLIP, compressor and projector through `weights` (tensors upload once; a loadAll() before is fine). */
  static async load(weights: GpuWeights): Promise<ImageEncoderGpu> {
    const device = weights.device;
    const config = weights.source.config;
    if (config.mmHiddenSize !== config.vision.hiddenSize) {
      throw new Error(`image encoder: mm_hidden_size ${config.mmHiddenSize} differs from the CLIP width ${config.vision.hiddenSize}`);
    }
    const linear = new LinearKernels(device);
    const tower = await ClipTower.load(weights, linear);
    const N = tower.outputRows;
    const C2 = config.compressorSize ** 2;
    const compressor = await CompressorGpu.load(weights, linear, N);
    const projector = await ProjectorGpu.load(weights, linear, N + C2);
    const features = createStorageBuffer(device, (N + C2) * config.mmHiddenSize * 4, 'image features [clip ; compressed]');
    const projected = createStorageBuffer(device, (N + C2) * config.llm.hiddenSize * 4, 'image projected [G ; Vc]');
    return new ImageEncoderGpu(device, tower, compressor, projector, linear, { features, projected });
  }

  /** Records the whole encoding of pixel_values [3, S, S] f32 into `encoder` (the caller submits). */
  record(encoder: GPUCommandEncoder, pixels: GPUBuffer): ImageEncodingGpu {
    for (const s of this.stages) s.record(encoder, pixels);
    return this.output;
  }

  /** GPU bytes of the image side besides the weights. */
  bytes(): number {
    return this.tower.bytes() + this.compressor.bytes() + this.projector.bytes() + this.buffers.features.size + this.buffers.projected.size;
  }

  destroy(): void {
    this.tower.destroy();
    this.compressor.destroy();
    this.projector.destroy();
    this.linear.destroy();
    this.buffers.features.destroy();
    this.buffers.projected.destroy();
  }
}

/** Encodes one image: every stage in one command encoder, one submit. Returns views of the encoder's buffers. */
export function encodeImageGpu(encoder: ImageEncoderGpu, pixels: GPUBuffer): ImageEncodingGpu {
  const cmd = encoder.device.createCommandEncoder({ label: 'encode image' });
  const out = encoder.record(cmd, pixels);
  encoder.device.queue.submit([cmd.finish()]);
  return out;
}

/** The encoding read back (for dumps and tests). */
export async function readImageEncoding(device: GPUDevice, e: ImageEncodingGpu): Promise<{ clip: Float32Array; compressedRaw: Float32Array; G: Float32Array; Vc: Float32Array }> {
  return { clip: await readRows(device, e.clip), compressedRaw: await readRows(device, e.compressedRaw), G: await readRows(device, e.G), Vc: await readRows(device, e.Vc) };
}

/** Wall time of each stage submitted on its own and waited for (on SwiftShader this is the compute time). */
export async function profileImageEncoder(encoder: ImageEncoderGpu, pixels: GPUBuffer): Promise<{ name: string; ms: number }[]> {
  const { device } = encoder;
  await device.queue.onSubmittedWorkDone();
  const out: { name: string; ms: number }[] = [];
  for (const s of encoder.stages) {
    const t0 = performance.now();
    const cmd = device.createCommandEncoder({ label: s.name });
    s.record(cmd, pixels);
    device.queue.submit([cmd.finish()]);
    await device.queue.onSubmittedWorkDone();
    out.push({ name: s.name, ms: performance.now() - t0 });
  }
  return out;
}
