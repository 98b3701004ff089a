// Synthetic models: a released model's exact configuration with deterministic pseudo-random weights of realistic
// scale, generated on the GPU directly in each tensor's storage format (src/gpu/kernels/synthetic-weights.ts).
// No weight files and no CPU copy of the weights: speed, memory and adapter limits at full size can be measured
// on machines that cannot download the real checkpoint. Depth can be scaled down (widths stay real).
import type { ExpectedTensor } from '../checkpoint/expected-tensors.ts';
import { expectedTensorList } from '../checkpoint/expected-tensors.ts';
import { CLIP_VIT_L_336, parseLlavaMiniConfig } from '../checkpoint/config.ts';
import { RELEASED_8B_CONFIG_JSON } from '../checkpoint/released-config.ts';
import { sincos2dPosEmbed } from '../checkpoint/sincos.ts';
import type { LlavaMiniConfig, TensorInfo, WeightSource } from '../checkpoint/types.ts';
import { SyntheticWeightsKernel, type SyntheticFill } from '../gpu/kernels/synthetic-weights.ts';
import { Q4_GROUP_SIZE } from '../quant/q4.ts';
import { encodeRows, type Storage } from '../gpu/storage.ts';

export const SYNTHETIC_PREFIX = 'synthetic:';

/** Depth overrides (widths always stay the released model's). */
export interface SyntheticDepth {
  llmLayers?: number;
  clipLayers?: number;
  prefusionLayers?: number;
}

interface SyntheticModelSpec {
  configJson: Readonly<Record<string, unknown>>;
  /** Released depths, the maxima of the overrides. */
  llmLayers: number;
  clipLayers: number;
  prefusionLayers: number;
}

const CLIP_L_336_JSON = {
  hidden_size: CLIP_VIT_L_336.hiddenSize,
  intermediate_size: CLIP_VIT_L_336.intermediateSize,
  num_attention_heads: CLIP_VIT_L_336.numHeads,
  image_size: CLIP_VIT_L_336.imageSize,
  patch_size: CLIP_VIT_L_336.patchSize,
  hidden_act: CLIP_VIT_L_336.hiddenAct,
};

/**
 * llava-mini-8b: ICTNLP/llava-mini-llama-3.1-8b (CLIP ViT-L/336 with 23 of 24 layers run, mlp2x_gelu projector,
 * C = 1, 4 pre-fusion layers, Llama-3.1-8B). llava-mini-tiny: the same architecture and token counts (336 px,
 * 576 patches, the real vocabulary) at the tiny test checkpoint's widths, for quick checks of the whole path.
 */
export const SYNTHETIC_MODELS: Readonly<Record<string, SyntheticModelSpec>> = {
  'llava-mini-8b': { configJson: { ...RELEASED_8B_CONFIG_JSON, vision_config: CLIP_L_336_JSON }, llmLayers: 32, clipLayers: 23, prefusionLayers: 4 },
  'llava-mini-tiny': {
    configJson: {
      ...RELEASED_8B_CONFIG_JSON,
      hidden_size: 128,
      intermediate_size: 256,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      mm_hidden_size: 256,
      vision_config: { ...CLIP_L_336_JSON, hidden_size: 256, intermediate_size: 512, num_attention_heads: 4 },
    },
    llmLayers: 2,
    clipLayers: 2,
    prefusionLayers: 2,
  },
};

export function isSyntheticSpec(model: string): boolean {
  return model.startsWith(SYNTHETIC_PREFIX);
}

function depth(flag: string, value: number | undefined, max: number, min: number, name: string): number {
  if (value === undefined) return max;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${flag} ${value}: ${SYNTHETIC_PREFIX}${name} has ${max}; give a whole number from ${min} to ${max} (widths stay real, only depth scales)`);
  }
  return value;
}

/** The configuration of `synthetic:<name>` with depth overrides; unknown names and shape-breaking depths throw one line. */
export function syntheticConfig(spec: string, overrides: SyntheticDepth = {}): LlavaMiniConfig {
  const name = spec.slice(SYNTHETIC_PREFIX.length);
  const m = SYNTHETIC_MODELS[name];
  if (!m) throw new Error(`unknown synthetic model "${spec}": known are ${Object.keys(SYNTHETIC_MODELS).map((k) => SYNTHETIC_PREFIX + k).join(', ')}`);
  const llm = depth('--llm-layers', overrides.llmLayers, m.llmLayers, 1, name);
  const clip = depth('--clip-layers', overrides.clipLayers, m.clipLayers, 1, name);
  const prefusion = depth('--prefusion-layers', overrides.prefusionLayers, m.prefusionLayers, 0, name);
  // mm_vision_select_layer -2: the tower has one layer more than runs.
  const json = { ...m.configJson, num_hidden_layers: llm, prefusion_layer_num: prefusion, vision_config: { ...(m.configJson.vision_config as object), num_hidden_layers: clip + 1 } };
  return parseLlavaMiniConfig(json, { where: spec });
}

/** A weight source whose tensors are written on the GPU, in the storage asked for, instead of read. */
export interface GeneratedWeightSource extends WeightSource {
  /** Writes rows [rowStart, rowStart + rows) of `name` (a matrix of `cols` columns) into `data` (and `scales` for int4). */
  generateRows(device: GPUDevice, name: string, storage: Storage, target: { data: GPUBuffer; scales?: GPUBuffer }, rowStart: number, rows: number, cols: number): Promise<void>;
}

export function isGeneratedSource(source: WeightSource): source is GeneratedWeightSource {
  return typeof (source as Partial<GeneratedWeightSource>).generateRows === 'function';
}

/** Center and half-width of a tensor's uniform values: std 1/sqrt(fan-in) for matrices, 0.02 for embeddings. */
function valueRange(t: ExpectedTensor): { center: number; amp: number } {
  const uniform = (std: number) => Math.sqrt(3) * std;
  switch (t.role) {
    case 'linear':
      return { center: 0, amp: uniform(1 / Math.sqrt(t.fanIn ?? t.shape.at(-1)!)) };
    case 'norm_weight':
      return { center: 1, amp: uniform(0.05) };
    case 'bias':
    case 'norm_bias':
      return { center: 0, amp: uniform(0.01) };
    default:
      return { center: 0, amp: uniform(0.02) };
  }
}

/** FNV-1a of the tensor name mixed with the model seed. */
function tensorSeed(name: string, seed: number): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The largest tensor readF32 computes on the CPU (values). */
const CPU_VALUES_MAX = 1 << 22;

/** shaders/synthetic-weights.wgsl's pcg(). */
function pcg(v: number): number {
  const s = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

/** The f32 values the GPU generator writes for elements [first, first + n) (KIND 0), up to a possible fma rounding. */
export function syntheticValues(seed: number, first: number, n: number, center: number, amp: number): Float32Array {
  const f = Math.fround;
  const key = pcg(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = (pcg(((first + i) ^ key) >>> 0) >>> 8) / 16777216;
    out[i] = f(f(center) + f(f(amp) * (2 * u - 1)));
  }
  return out;
}

export interface SyntheticTextFiles {
  tokenizerJson: object;
  tokenizerConfigJson: object;
}

export class SyntheticModel implements GeneratedWeightSource {
  private readonly table: Map<string, ExpectedTensor>;
  private readonly kernels = new WeakMap<GPUDevice, Promise<SyntheticWeightsKernel>>();
  readonly generationConfig: object;
  readonly tokenizerJson: object;
  readonly tokenizerConfigJson: object;

  constructor(
    /** e.g. "synthetic:llava-mini-8b". */
    readonly name: string,
    readonly config: LlavaMiniConfig,
    text: SyntheticTextFiles,
    private readonly seed = 1,
  ) {
    this.table = new Map(expectedTensorList(config).filter((t) => t.used).map((t) => [t.name, t]));
    this.tokenizerJson = text.tokenizerJson;
    this.tokenizerConfigJson = text.tokenizerConfigJson;
    this.generationConfig = { bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenIds };
  }

  static open(spec: string, depth: SyntheticDepth, text: SyntheticTextFiles): SyntheticModel {
    return new SyntheticModel(spec, syntheticConfig(spec, depth), text);
  }

  has(name: string): boolean {
    return this.table.has(name);
  }

  info(name: string): TensorInfo {
    return { name, dtype: 'F32', shape: this.tensor(name).shape };
  }

  /**
   * Small tensors only (biases, norms, embeddings tables of the image side: the kernels hold them as f32 buffers),
   * computed here with the GPU generator's arithmetic; a matrix exists on the GPU only.
   */
  readF32(name: string): Promise<Float32Array> {
    const t = this.tensor(name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (t.role === 'sincos') return Promise.resolve(sincos2dPosEmbed(this.config.mmHiddenSize, this.config.compressorSize));
    if (n > CPU_VALUES_MAX) return Promise.reject(new Error(`${this.name}: "${name}" (${n} values) exists only on the GPU: synthetic matrices are generated there, never read back`));
    const { center, amp } = valueRange(t);
    return Promise.resolve(syntheticValues(tensorSeed(name, this.seed), 0, n, center, amp));
  }

  private tensor(name: string): ExpectedTensor {
    const t = this.table.get(name);
    if (!t) throw new Error(`${this.name} has no tensor "${name}"`);
    return t;
  }

  private kernel(device: GPUDevice): Promise<SyntheticWeightsKernel> {
    let k = this.kernels.get(device);
    if (!k) this.kernels.set(device, (k = SyntheticWeightsKernel.create(device)));
    return k;
  }

  async generateRows(device: GPUDevice, name: string, storage: Storage, target: { data: GPUBuffer; scales?: GPUBuffer }, rowStart: number, rows: number, cols: number): Promise<void> {
    const t = this.tensor(name);
    if (t.role === 'sincos') {
      // A fixed table, not a random one (and tiny): computed here, as the checkpoint stores it.
      const [grid, dim] = [this.config.compressorSize, this.config.mmHiddenSize];
      const table = sincos2dPosEmbed(dim, grid).subarray(rowStart * cols, (rowStart + rows) * cols);
      const enc = encodeRows(storage, table, rows, cols);
      device.queue.writeBuffer(target.data, 0, enc.data.buffer, enc.data.byteOffset, enc.data.byteLength);
      return;
    }
    const kernel = await this.kernel(device);
    const seed = tensorSeed(name, this.seed);
    const { center, amp } = valueRange(t);
    const n = rows * cols;
    const first = rowStart * cols;
    const fill = (buffer: GPUBuffer, f: SyntheticFill) => kernel.run(buffer, f);
    switch (storage) {
      case 'f32':
        return fill(target.data, { kind: 'f32', seed, first, elements: n, center, amp });
      case 'f16':
        if (cols % 2 !== 0) throw new Error(`${this.name}: "${name}" has an odd width (${cols}): f16 pairs would straddle rows`);
        return fill(target.data, { kind: 'f16x2', seed, first, elements: n, center, amp });
      case 'q4f16':
      case 'q4f32': {
        if (!target.scales) throw new Error(`${this.name}: int4 rows of "${name}" need a scales buffer`);
        fill(target.data, { kind: 'q4x8', seed, first, elements: n, center: 0, amp: 0 });
        // Codes 0..14 around the zero point 7: scales near amp / 7 put the values in about [-amp, amp].
        const scale = amp / 7;
        const groups = { seed: seed ^ 0x9e3779b9, first: first / Q4_GROUP_SIZE, elements: n / Q4_GROUP_SIZE, center: scale, amp: scale / 4 };
        return fill(target.scales, { kind: storage === 'q4f16' ? 'f16x2' : 'f32', ...groups });
      }
    }
  }
}
