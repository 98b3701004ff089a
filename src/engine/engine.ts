// The LLaVA-Mini engine core: one GPUDevice, one WeightSource, every stage of the model on the GPU.
//   image -> ImageInput (preprocess) -> ImageEncoderGpu (CLIP, compressor, projector) -> PrefusionRuntime.fuseVision
//   (the vision rows' pre-fusion K/V and V, cached per image before any question) -> Conversation (text rows,
//   LLM input assembly, LlamaRuntime prefill/decode).
// It knows nothing of React, workers or Node: the CLI, the worker and the tests are shells around it.
import type { TensorPart } from '../checkpoint/expected-tensors.ts';
import type { LlavaMiniConfig, WeightSource } from '../checkpoint/types.ts';
import { readF32 } from '../gpu/buffers.ts';
import type { KvStorage } from '../gpu/storage.ts';
import { AddKernel } from '../gpu/kernels/elementwise.ts';
import { watchPipelineBuilds, type PipelineBuilds } from '../gpu/pipeline.ts';
import { ImageEncoderGpu, profileImageEncoder } from '../compress/image-encoder.ts';
import { readRows } from '../gpu/tensor.ts';
import { ImageInput, type BitmapSource, type ImageMode } from '../image/image-input.ts';
import type { LlmBackend } from '../llm/llm-backend.ts';
import { LlamaRuntime } from '../llm/llama-runtime.ts';
import { TokenEmbedding } from '../llm/token-embedding.ts';
import { PrefusionRuntime, type PrefusionState } from '../prefuse/prefusion.ts';
import type { RgbaImage } from '../model/constants.ts';
import { GpuWeights, type GpuWeightsOptions } from '../weights/gpu-weights.ts';
import { LlmInputAssembler } from './llm-input.ts';
import type { Precision } from '../precision/policy.ts';

export interface EngineOptions {
  /** Weight storage policy: 'f32' (parity), 'f16', 'q4' (int4 pre-fusion + LLM). */
  precision: Precision;
  /** LLM KV cache rows (prompt + answers over a conversation). Default min(4096, max_position_embeddings). */
  maxContext?: number;
  /** Text rows one image's pre-fusion state holds. Default min(maxContext, tokenizer_model_max_length). */
  maxTextRows?: number;
  /** KV cache storage of the LLM and pre-fusion. Default 'f16' with shader-f16, else 'f32'; 'f32' for precision f32. */
  kv?: KvStorage;
  /** Rows per prefill / pre-fusion command buffer. Default 128. */
  chunkSize?: number;
  /** Lower per-binding limit for weights (tests); default the device's maxStorageBufferBindingSize. */
  maxBindingBytes?: number;
  /** Called after each tensor upload. */
  onProgress?(tensor: string, done: number, total: number): void;
  /** Called as the stages' GPU pipelines are requested and built (after the uploads). */
  onPipelines?(builds: PipelineBuilds): void;
  /** The int4 arithmetic for tensors quantized at load (see GpuWeightsOptions; tests). */
  q4Quantizer?: GpuWeightsOptions['q4Quantizer'];
  /**
   * An LLM that runs elsewhere on this device (WebLLM's compiled Llama): its decoder layers, final norm and lm_head
   * are then not uploaded and no native runtime is built. The token embedding still is: text rows and pre-fusion
   * read it. The engine takes ownership (destroy()).
   */
  externalLlm?: LlmBackend;
}

/** Tensors only the LLM's own runtime reads (an external LLM brings its own). */
function llmRuntimeOnly(name: string): boolean {
  return name.startsWith('model.layers.') || name === 'model.norm.weight' || name === 'lm_head.weight';
}

/** An image (RGBA pixels, or in the browser an ImageBitmap / canvas / video frame). */
export type EngineImage = RgbaImage | BitmapSource;

export interface VisualTimings {
  /** Upload + preprocessing + CLIP + compressor + projector (one submit), GPU done. */
  imageMs: number;
  /** Pre-fusion of the vision rows (their K/V and V). */
  prefusionMs: number;
  /** With `profile`: each image-side stage submitted alone. */
  stages?: { name: string; ms: number }[];
}

/** The image side's tensors, read back when asked (dumps, --check). */
export interface VisualIntermediates {
  pixelValues: Float32Array;
  /** CLIP features [N, Dv]. */
  clip: Float32Array;
  /** Projected compressed rows Vc [C^2, H] before pre-fusion. */
  compressed: Float32Array;
  /** V [C^2, H] after pre-fusion. */
  visionToken: Float32Array;
}

/** One image or video frame after the image side and the vision rows' pre-fusion: ready for any question. */
export class EncodedImage {
  constructor(
    readonly state: PrefusionState,
    readonly timings: VisualTimings,
    readonly intermediates?: VisualIntermediates,
  ) {}

  get bytes(): number {
    return this.state.bytes();
  }

  destroy(): void {
    this.state.destroy();
  }
}

export interface EncodeOptions {
  /** 'image' (pad/resize/crop, spec section 1) or 'video' (a frame). Default 'image'. */
  mode?: ImageMode;
  /** Read the intermediates back. */
  capture?: boolean;
  /** Submit and time each image-side stage alone (bench). */
  profile?: boolean;
  signal?: AbortSignal;
  /** Called as each stage starts: the image side (one submit: preprocess, CLIP, projector, compressor), then the vision rows' pre-fusion. */
  onStage?(stage: EncodeStage): void;
}

export type EncodeStage = 'image side' | 'vision pre-fusion';

export interface EngineMemory {
  /** Weights per model part. */
  weights: Record<TensorPart, number>;
  /** Activations, caches and small f32 tensors per component. */
  imageSide: number;
  prefusion: number;
  llm: number;
  /** Encoded images' states (pre-fusion K/V of their vision rows), when the caller counts them (the worker does). */
  imageStates?: number;
  total: number;
}

function isRgba(x: EngineImage): x is RgbaImage {
  return typeof x === 'object' && x !== null && 'data' in x && 'width' in x && 'height' in x && !(typeof ImageBitmap !== 'undefined' && x instanceof ImageBitmap);
}

export class LlavaMiniEngine {
  readonly config: LlavaMiniConfig;
  /** The LLM cache's current owner (a Conversation); another owner re-prefills from row 0. */
  llmOwner: object | null = null;
  /** Tail of the queue of GPU work that uses the shared stage buffers (see exclusive()). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly device: GPUDevice,
    readonly weights: GpuWeights,
    readonly input: ImageInput,
    readonly encoder: ImageEncoderGpu,
    readonly prefusion: PrefusionRuntime,
    readonly llm: LlmBackend,
    private readonly embedding: TokenEmbedding,
    private readonly add: AddKernel,
    /** The LLM input rows (fused text and vision tokens) the prefill reads. */
    readonly assembler: LlmInputAssembler,
  ) {
    this.config = weights.source.config;
  }

  /** Uploads every tensor by the precision policy, builds every stage and allocates caches. */
  static async load(device: GPUDevice, source: WeightSource, opts: EngineOptions): Promise<LlavaMiniEngine> {
    const config = source.config;
    const weights = new GpuWeights(device, source, opts.precision, { maxBindingBytes: opts.maxBindingBytes, q4Quantizer: opts.q4Quantizer });
    try {
      await weights.loadAll(opts.onProgress, opts.externalLlm ? (name) => !llmRuntimeOnly(name) : undefined);
      const maxContext = opts.maxContext ?? Math.min(4096, config.llm.maxPositionEmbeddings);
      const maxTextRows = opts.maxTextRows ?? Math.min(maxContext, config.tokenizerModelMaxLength);
      const hasF16 = device.features.has('shader-f16');
      const kv: KvStorage = opts.kv ?? (hasF16 && opts.precision !== 'f32' ? 'f16' : 'f32');
      const chunkSize = opts.chunkSize ?? 128;
      const unwatch = opts.onPipelines ? watchPipelineBuilds(device, opts.onPipelines) : () => undefined;
      const [input, encoder, prefusion, llm, embedding, add] = await Promise.all([
        ImageInput.create(device, config),
        ImageEncoderGpu.load(weights),
        PrefusionRuntime.create(weights, { maxTextRows, chunkSize, kv }),
        opts.externalLlm ?? LlamaRuntime.create(weights, { maxContext, prefillChunkSize: chunkSize, kv }),
        TokenEmbedding.create(weights),
        AddKernel.create(device),
      ]).finally(unwatch);
      // Plain embeddings serve text-only prompts; the add kernel averages several images' fused text.
      const assembler = new LlmInputAssembler(device, config.llm.hiddenSize, llm.capacity, prefusion.maxTextRows, embedding, add);
      return new LlavaMiniEngine(device, weights, input, encoder, prefusion, llm, embedding, add, assembler);
    } catch (e) {
      weights.destroy();
      throw e;
    }
  }

  get hidden(): number {
    return this.config.llm.hiddenSize;
  }

  /** C^2: vision rows one image (or frame) puts into the LLM input. */
  get visionTokenRows(): number {
    return this.prefusion.compressedRows;
  }

  /**
   * One image through preprocessing, CLIP, compressor, projector and the vision rows' pre-fusion. The result holds
   * the image's pre-fusion K/V and V: questions about it then cost only their text rows.
   */
  encodeImage(image: EngineImage, opts: EncodeOptions = {}): Promise<EncodedImage> {
    return this.exclusive(() => this.encodeImageNow(image, opts));
  }

  /**
   * Runs `work` after every earlier exclusive call has settled. The stages' activation buffers are shared (one
   * image side, one pre-fusion scratch, one LLM cache): two images encoded at once, or an image during an answer,
   * would overwrite each other's rows. Callers from a worker or UI may overlap freely; the engine serializes.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async encodeImageNow(image: EngineImage, opts: EncodeOptions): Promise<EncodedImage> {
    opts.signal?.throwIfAborted();
    const { device } = this;
    const mode = opts.mode ?? 'image';
    const t0 = performance.now();
    opts.onStage?.('image side');
    const upload = isRgba(image) ? this.input.upload(image) : this.input.uploadBitmap(image);
    let stages: VisualTimings['stages'];
    try {
      if (opts.profile) {
        const t = performance.now();
        this.input.record(device, upload, mode);
        await device.queue.onSubmittedWorkDone();
        stages = [{ name: 'preprocess', ms: performance.now() - t }, ...(await profileImageEncoder(this.encoder, this.input.pixelValues))];
      } else {
        const cmd = device.createCommandEncoder({ label: 'image side' });
        this.encoder.record(cmd, this.input.record(cmd, upload, mode));
        device.queue.submit([cmd.finish()]);
      }
      await device.queue.onSubmittedWorkDone();
    } finally {
      upload.buffer.destroy();
    }
    const tImage = performance.now();
    const out = this.encoder.output;
    const captured = opts.capture
      ? {
          pixelValues: await readF32(device, this.input.pixelValues, 3 * this.input.size * this.input.size),
          clip: await readRows(device, out.clip),
          compressed: await readRows(device, out.Vc),
        }
      : null;
    const t1 = performance.now();
    opts.onStage?.('vision pre-fusion');
    const state = await this.prefusion.fuseVision(out.G, out.Vc, { signal: opts.signal });
    const prefusionMs = performance.now() - t1;
    const timings: VisualTimings = { imageMs: tImage - t0, prefusionMs, ...(stages ? { stages } : {}) };
    if (!captured) return new EncodedImage(state, timings);
    return new EncodedImage(state, timings, { ...captured, visionToken: await state.readVisionToken() });
  }

  /** GPU bytes per component (states of encoded images count on their own: EncodedImage.bytes). */
  memory(): EngineMemory {
    const weights = this.weights.bytesByPart();
    const imageSide = this.encoder.bytes() + this.input.pixelValues.size;
    const prefusion = this.prefusion.bytes();
    const llm = this.llm.bytes() + this.assembler.bytes();
    const total = Object.values(weights).reduce((s, b) => s + b, 0) + imageSide + prefusion + llm;
    return { weights, imageSide, prefusion, llm, total };
  }

  destroy(): void {
    this.input.destroy();
    this.encoder.destroy();
    this.prefusion.destroy();
    this.llm.destroy();
    this.embedding.destroy();
    this.add.destroy();
    this.assembler.destroy();
    this.weights.destroy();
  }
}
