// CLIP's patch embedding on the GPU (spec section 2), composed from model-free ops:
//   PatchifyKernel       pixel_values [C, S, S] -> patches [N, C*P*P] in (c, ky, kx) order, so the P x P stride-P
//                        conv is a LinearKernel (no bias) with the conv weight seen as [D, C*P*P].
//   ClipAssembleKernel   emb[0] = class_embedding + pos[0]; emb[1 + i] = patch_proj[i] + pos[1 + i].
//   ClipEmbeddingKernel  the whole hidden_states[0]: patchify -> linear -> assemble -> pre_layrnorm.
// Both small kernels are entry points of shaders/embedding.wgsl (one invocation per element).
import type { ClipVisionConfig } from '../checkpoint/types.ts';
import { bindBuffers, createStorageBuffer } from '../gpu/buffers.ts';
import { checkBinding, foldGrid, LazyPrograms, positiveInt, recordCompute, recordDispatch, UniformCache, workgroupLimit, type ComputePass, type GpuTarget } from '../gpu/dispatch.ts';
import { EMBEDDING_WORKGROUP, embeddingShaderSource, type EmbeddingKernelOptions } from '../gpu/kernels/embedding.ts';
import { LinearKernel } from '../gpu/kernels/linear.ts';
import { NormKernel } from '../gpu/kernels/norm.ts';
import { computeProgram, type BindingKind } from '../gpu/pipeline.ts';
import type { DenseStorage } from '../gpu/storage.ts';
import { firstRows } from '../gpu/tensor.ts';

/** Small base for the flat one-invocation-per-element CLIP kernels (one entry point, uniforms per shape). */
abstract class FlatKernel {
  private readonly programs = new LazyPrograms(() =>
    computeProgram(this.device, { name: `embedding.wgsl (${this.entry})`, code: embeddingShaderSource('f32'), entryPoint: this.entry, bindings: this.bindings }),
  );
  private readonly uniforms: UniformCache;
  protected readonly maxWg: number;

  constructor(
    readonly device: GPUDevice,
    private readonly entry: string,
    private readonly bindings: readonly BindingKind[],
    opts: EmbeddingKernelOptions = {},
  ) {
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.uniforms = new UniformCache(device, `${entry} dims`, 64);
  }

  init(): Promise<this> {
    return this.programs.ready(this);
  }

  protected dispatch(target: GpuTarget, who: string, n: number, dims: number[], data: GPUBufferBinding[]): void {
    const program = this.programs.require(who);
    const grid = foldGrid(Math.ceil(n / EMBEDDING_WORKGROUP), this.maxWg, who);
    const bindGroup = bindBuffers(this.device, program.layout, [this.uniforms.get(dims), ...data], this.entry);
    recordDispatch(target, this.entry, program, bindGroup, grid);
  }

  destroy(): void {
    this.uniforms.destroy();
  }
}

/** pixel_values [C, S, S] -> patches [(S/P)^2, C*P*P], each patch in (c, ky, kx) order (src/reference/clip.ts patchify). */
export class PatchifyKernel extends FlatKernel {
  constructor(device: GPUDevice, opts?: EmbeddingKernelOptions) {
    super(device, 'patchify', ['uniform', 'read', 'storage'], opts);
  }

  static create(device: GPUDevice, opts?: EmbeddingKernelOptions): Promise<PatchifyKernel> {
    return new PatchifyKernel(device, opts).init();
  }

  run(target: GpuTarget, pixels: GPUBuffer, patches: GPUBuffer, channels: number, size: number, patch: number): void {
    const who = 'PatchifyKernel';
    positiveInt(who, 'channels', channels);
    positiveInt(who, 'size', size);
    positiveInt(who, 'patch', patch);
    if (size % patch !== 0) throw new Error(`${who}: image size ${size} is not a multiple of the patch size ${patch}`);
    const g = size / patch;
    const K = channels * patch * patch;
    const total = g * g * K;
    checkBinding(this.device, who, 'pixels', pixels, channels * size * size * 4, `[${channels}, ${size}, ${size}] f32`);
    checkBinding(this.device, who, 'patches', patches, total * 4, `[${g * g}, ${K}] f32`);
    this.dispatch(target, who, total, [channels, size, patch, g, K, total, 0, 0], [
      { buffer: pixels, size: channels * size * size * 4 },
      { buffer: patches, size: total * 4 },
    ]);
  }
}

/**
 * emb [N+1, D]: row 0 = cls + pos[0], row 1 + i = proj[i] + pos[1 + i]. With proj = null the projections are
 * already in rows 1..N of emb (a LinearKernel run with yColOffset = D) and the kernel adds in place.
 */
export class ClipAssembleKernel {
  private readonly outOfPlace: FlatAssemble;
  private readonly inPlace: FlatAssemble;

  constructor(
    readonly device: GPUDevice,
    opts?: EmbeddingKernelOptions,
  ) {
    this.outOfPlace = new FlatAssemble(device, 'clip_assemble', ['uniform', 'read', 'read', 'read', 'storage'], opts);
    this.inPlace = new FlatAssemble(device, 'clip_assemble_inplace', ['uniform', 'read', 'read', 'storage'], opts);
  }

  async init(): Promise<this> {
    await Promise.all([this.outOfPlace.init(), this.inPlace.init()]);
    return this;
  }

  static create(device: GPUDevice, opts?: EmbeddingKernelOptions): Promise<ClipAssembleKernel> {
    return new ClipAssembleKernel(device, opts).init();
  }

  run(target: GpuTarget, proj: GPUBuffer | null, cls: GPUBuffer, pos: GPUBuffer, emb: GPUBuffer, patches: number, width: number): void {
    const who = 'ClipAssembleKernel';
    positiveInt(who, 'patches', patches);
    positiveInt(who, 'width', width);
    const total = (patches + 1) * width;
    if (proj === emb) throw new Error(`${who}: pass proj = null to assemble in place`);
    checkBinding(this.device, who, 'cls', cls, width * 4, `[${width}] f32`);
    checkBinding(this.device, who, 'pos', pos, total * 4, `[${patches + 1}, ${width}] f32`);
    checkBinding(this.device, who, 'emb', emb, total * 4, `[${patches + 1}, ${width}] f32`);
    const common: GPUBufferBinding[] = [
      { buffer: cls, size: width * 4 },
      { buffer: pos, size: total * 4 },
      { buffer: emb, size: total * 4 },
    ];
    if (proj) {
      checkBinding(this.device, who, 'proj', proj, patches * width * 4, `[${patches}, ${width}] f32`);
      this.outOfPlace.record(target, who, total, [width, total, 0, 0], [{ buffer: proj, size: patches * width * 4 }, ...common]);
    } else {
      this.inPlace.record(target, who, total, [width, total, 0, 0], common);
    }
  }

  destroy(): void {
    this.outOfPlace.destroy();
    this.inPlace.destroy();
  }
}

class FlatAssemble extends FlatKernel {
  record(target: GpuTarget, who: string, n: number, dims: number[], data: GPUBufferBinding[]): void {
    this.dispatch(target, who, n, dims, data);
  }
}

/** CLIP embedding weights on the GPU (names as in loadClipEmbeddings). */
export interface ClipEmbeddingGpuWeights {
  /** Conv weight [D, C, P, P] = [D, C*P*P], f32 (or f16 with `patchWeights: 'f16'`). */
  patch: GPUBuffer;
  /** class_embedding [D] f32. */
  cls: GPUBuffer;
  /** position_embedding [N+1, D] f32. */
  pos: GPUBuffer;
  /** pre_layrnorm weight and bias [D] (f32, or f16 with `normWeights: 'f16'`). */
  preW: GPUBuffer;
  preB: GPUBuffer;
}

export type ClipEmbeddingShape = Pick<ClipVisionConfig, 'numChannels' | 'imageSize' | 'patchSize' | 'hiddenSize' | 'layerNormEps'>;

export interface ClipEmbeddingKernelOptions {
  patchWeights?: DenseStorage;
  normWeights?: DenseStorage;
}

/**
 * CLIP hidden_states[0] ([N+1, D], spec section 2): patchify -> patch conv as LinearKernel (no bias), written
 * straight into rows 1..N of a scratch [N+1, D] -> class token + position embeddings in place -> pre_layrnorm
 * into `out`. The two scratch buffers (patches [N, C*P*P], pre-norm [N+1, D]) are allocated once per shape and
 * kept until destroy().
 */
export class ClipEmbeddingKernel {
  private readonly patchify: PatchifyKernel;
  private readonly linear: LinearKernel;
  private readonly assemble: ClipAssembleKernel;
  private readonly norm: NormKernel;
  private scratch: { key: string; patches: GPUBuffer; pre: GPUBuffer } | null = null;

  constructor(
    readonly device: GPUDevice,
    opts: ClipEmbeddingKernelOptions = {},
  ) {
    this.patchify = new PatchifyKernel(device);
    this.linear = new LinearKernel(device, { weights: opts.patchWeights ?? 'f32' });
    this.assemble = new ClipAssembleKernel(device);
    this.norm = new NormKernel(device, 'layernorm', { weights: opts.normWeights ?? 'f32' });
  }

  async init(): Promise<this> {
    await Promise.all([this.patchify.init(), this.linear.init(), this.assemble.init(), this.norm.init()]);
    return this;
  }

  static create(device: GPUDevice, opts?: ClipEmbeddingKernelOptions): Promise<ClipEmbeddingKernel> {
    return new ClipEmbeddingKernel(device, opts).init();
  }

  /** Records out [N+1, D] f32 = hidden_states[0] of CLIP for pixels [C, S, S] f32. */
  run(target: GpuTarget, pixels: GPUBuffer, w: ClipEmbeddingGpuWeights, out: GPUBuffer, v: ClipEmbeddingShape): void {
    const { numChannels: C, imageSize: S, patchSize: P, hiddenSize: D } = v;
    positiveInt('ClipEmbeddingKernel', 'patchSize', P);
    if (S % P !== 0) throw new Error(`ClipEmbeddingKernel: image size ${S} is not a multiple of the patch size ${P}`);
    positiveInt('ClipEmbeddingKernel', 'hiddenSize', D);
    positiveInt('ClipEmbeddingKernel', 'numChannels', C);
    const N = (S / P) ** 2;
    const K = C * P * P;
    // Check every caller buffer before recording anything, so a bad call leaves the caller's pass untouched.
    const who = 'ClipEmbeddingKernel';
    const wb = (t: DenseStorage) => (t === 'f16' ? 2 : 4);
    checkBinding(this.device, who, 'pixels', pixels, C * S * S * 4, `[${C}, ${S}, ${S}] f32`);
    checkBinding(this.device, who, 'patch weight', w.patch, D * K * wb(this.linear.weights), `[${D}, ${K}] ${this.linear.weights}`);
    checkBinding(this.device, who, 'class embedding', w.cls, D * 4, `[${D}] f32`);
    checkBinding(this.device, who, 'position embedding', w.pos, (N + 1) * D * 4, `[${N + 1}, ${D}] f32`);
    checkBinding(this.device, who, 'pre_layrnorm weight', w.preW, D * wb(this.norm.weights), `[${D}] ${this.norm.weights}`);
    checkBinding(this.device, who, 'pre_layrnorm bias', w.preB, D * wb(this.norm.weights), `[${D}] ${this.norm.weights}`);
    checkBinding(this.device, who, 'out', out, (N + 1) * D * 4, `[${N + 1}, ${D}] f32`);
    const key = `${N},${K},${D}`;
    if (this.scratch?.key !== key) {
      // A new shape: the previous scratch may still be used by recorded, unsubmitted work, so let GC free it.
      this.scratch = {
        key,
        patches: createStorageBuffer(this.device, N * K * 4, 'clip patches'),
        pre: createStorageBuffer(this.device, (N + 1) * D * 4, 'clip embeddings (pre-norm)'),
      };
    }
    const { patches, pre } = this.scratch;
    const body = (pass: ComputePass) => {
      this.patchify.run(pass, pixels, patches, C, S, P);
      this.linear.run(pass, { x: firstRows(patches, N, K), w: { name: 'patch weight', buffer: w.patch, rows: D, cols: K }, bias: null, y: pre }, { yColOffset: D, yRowStride: D });
      this.assemble.run(pass, null, w.cls, w.pos, pre, N, D);
      this.norm.run(pass, pre, w.preW, w.preB, out, N + 1, D, v.layerNormEps);
    };
    recordCompute(target, 'clip embeddings', body);
  }

  destroy(): void {
    this.patchify.destroy();
    this.linear.destroy();
    this.assemble.destroy();
    this.norm.destroy();
    if (this.scratch) {
      this.scratch.patches.destroy();
      this.scratch.pre.destroy();
      this.scratch = null;
    }
  }
}
