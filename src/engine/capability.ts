// Can this GPU run a model, and in which format? Decided before a multi-GB download, from the config alone:
// the bytes every tensor will take under the precision policy (the same plan GpuWeights follows), the LLM's KV
// cache, the limits of the adapter, and shader-f16. Browsers do not reveal how much memory a GPU has, so the
// verdict is "too small" only where a limit rules the model out; the memory need is stated for the user to weigh.
import { expectedTensorList, type TensorPart } from '../checkpoint/expected-tensors.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { mlcQuantizationFor, type MlcQuantization } from '../format/mlc.ts';
import { GpuWeightsPolicy } from '../precision/policy-table.ts';
import { rowBytes } from '../gpu/storage.ts';

/** What the check reads of an adapter (AdapterSummary has it). */
export interface AdapterCapabilities {
  shaderF16: boolean;
  isFallbackAdapter: boolean;
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxStorageBuffersPerShaderStage: number;
  };
}

/** The LLM's runtime: WebLLM's compiled library (one buffer per MLC tensor) or our native kernels (row blocks). */
export type LlmEngineKind = 'webllm' | 'native';

export interface CapabilityOptions {
  llm: LlmEngineKind;
  /** Context window of the LLM's KV cache (WebLLM's ctx4k libraries: 4096). */
  contextWindow: number;
  /** Device memory in GiB as navigator.deviceMemory reports it (capped at 8 by browsers), when known. */
  deviceMemoryGiB?: number;
}

export interface MemoryNeed {
  part: string;
  bytes: number;
}

export interface CapabilityReport {
  format: MlcQuantization;
  /** GPU memory the model needs, per part (weights, KV caches, working buffers). */
  needs: MemoryNeed[];
  totalBytes: number;
  /** The largest single buffer the model binds (WebLLM: a whole MLC tensor; native: row blocks fit any limit). */
  largestBindingBytes: number;
  verdict: 'ok' | 'slow' | 'too-small';
  /** Why the GPU cannot run it (verdict 'too-small'), one sentence each. */
  problems: string[];
  /** Things to know that do not stop it. */
  notes: string[];
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const fmt = (bytes: number) => (bytes >= GiB ? `${(bytes / GiB).toFixed(1)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`);

/** What WebLLM's device request asks for beyond the defaults (detectGPUDevice in @mlc-ai/web-llm 0.2.86). */
const WEBLLM_MIN_WORKGROUP_STORAGE = 32 * 1024;
const WEBLLM_MIN_STORAGE_BUFFERS = 10;

/** Weight bytes per model part under the q4 policy (int4 pre-fusion and LLM matrices, half precision elsewhere). */
export function weightBytesByPart(config: LlavaMiniConfig, hasF16: boolean): Record<TensorPart, number> {
  const policy = new GpuWeightsPolicy(config, 'q4', hasF16);
  const out: Record<TensorPart, number> = { vision: 0, projector: 0, compressor: 0, prefusion: 0, llm: 0 };
  for (const t of policy.usedTensors()) {
    const plan = policy.plan(t.name);
    const row = rowBytes(plan.storage, plan.cols);
    out[t.part] += plan.rows * (row.data + row.scales);
  }
  return out;
}

/** The largest MLC tensor of the LLM: q_weight [N, K/8] u32 of its widest int4 matrix (the 128256-row embedding). */
export function largestMlcTensorBytes(config: LlavaMiniConfig): number {
  let max = 0;
  for (const t of expectedTensorList(config)) {
    if (t.part !== 'llm' || t.shape.length !== 2) continue;
    const [n, k] = t.shape as [number, number];
    max = Math.max(max, n * (k / 2));
  }
  // MLC fuses q, k, v (and gate, up) along N: those fused matrices are larger than any one of their parts.
  const l = config.llm;
  const qkv = (l.numHeads + 2 * l.numKvHeads) * l.headDim * (l.hiddenSize / 2);
  const gateUp = 2 * l.intermediateSize * (l.hiddenSize / 2);
  return Math.max(max, qkv, gateUp);
}

/** Working buffers of the image side and pre-fusion (activations of the widest layer, one image's K/V rows). */
function workingBytes(config: LlavaMiniConfig): { imageSide: number; prefusion: number } {
  const v = config.vision;
  const tokens = (v.imageSize / v.patchSize) ** 2 + 1;
  const l = config.llm;
  const rows = tokens + config.compressorSize ** 2 + config.tokenizerModelMaxLength;
  return {
    imageSide: tokens * (3 * v.hiddenSize + v.intermediateSize) * 4 * 2,
    prefusion: rows * (3 * l.hiddenSize + 2 * l.intermediateSize) * 4 + config.prefusionLayerNum * 2 * rows * l.numKvHeads * l.headDim * 2,
  };
}

export function checkCapability(gpu: AdapterCapabilities, config: LlavaMiniConfig, opts: CapabilityOptions): CapabilityReport {
  const format = mlcQuantizationFor(gpu.shaderF16);
  const weights = weightBytesByPart(config, gpu.shaderF16);
  const l = config.llm;
  const kvBytes = l.numLayers * 2 * opts.contextWindow * l.numKvHeads * l.headDim * (gpu.shaderF16 ? 2 : 4);
  const work = workingBytes(config);
  // The LLM's activations for one prefill chunk of 1024 rows plus the f32 logits of one row.
  const llmWork = 1024 * (3 * l.hiddenSize + 2 * l.intermediateSize) * (gpu.shaderF16 ? 2 : 4) + l.vocabSize * 4;
  const needs: MemoryNeed[] = [
    { part: 'vision tower, projector, compressor weights', bytes: weights.vision + weights.projector + weights.compressor },
    { part: 'pre-fusion weights', bytes: weights.prefusion },
    { part: 'LLM weights', bytes: weights.llm },
    { part: `LLM KV cache (${opts.contextWindow} tokens)`, bytes: kvBytes },
    { part: 'working buffers', bytes: work.imageSide + work.prefusion + llmWork },
  ];
  if (opts.llm === 'webllm') {
    // WebLLM holds the LLM's weights; the engine keeps its own int4 copy of the token embedding for text rows and
    // pre-fusion (LlavaMiniEngine with externalLlm).
    const row = rowBytes(gpu.shaderF16 ? 'q4f16' : 'q4f32', l.hiddenSize);
    needs.push({ part: 'token embedding (the image side\'s copy)', bytes: l.vocabSize * (row.data + row.scales) });
  }
  const totalBytes = needs.reduce((a, n) => a + n.bytes, 0);
  const largestBindingBytes = opts.llm === 'webllm' ? largestMlcTensorBytes(config) : Math.min(gpu.limits.maxStorageBufferBindingSize, weights.llm);

  const problems: string[] = [];
  const lim = gpu.limits;
  if (opts.llm === 'webllm') {
    for (const [name, have] of [
      ['maxStorageBufferBindingSize', lim.maxStorageBufferBindingSize],
      ['maxBufferSize', lim.maxBufferSize],
    ] as const) {
      if (have < largestBindingBytes) {
        problems.push(`The LLM's largest tensor is ${fmt(largestBindingBytes)} and this GPU's ${name} is ${fmt(have)}: WebLLM's library needs it in one buffer. The native engine splits it and can run here.`);
      }
    }
    if (lim.maxComputeWorkgroupStorageSize < WEBLLM_MIN_WORKGROUP_STORAGE) {
      problems.push(`WebLLM needs ${WEBLLM_MIN_WORKGROUP_STORAGE / 1024} KiB of workgroup memory and this GPU offers ${lim.maxComputeWorkgroupStorageSize / 1024} KiB.`);
    }
    if (lim.maxStorageBuffersPerShaderStage < WEBLLM_MIN_STORAGE_BUFFERS) {
      problems.push(`WebLLM needs ${WEBLLM_MIN_STORAGE_BUFFERS} storage buffers per shader stage and this GPU offers ${lim.maxStorageBuffersPerShaderStage}.`);
    }
  }
  const notes: string[] = [];
  if (!gpu.shaderF16) notes.push('This GPU has no shader-f16: the model runs in q4f32_1 (f32 scales and activations), which needs more memory and is slower than q4f16_1.');
  notes.push(`Needs about ${fmt(totalBytes)} of GPU memory. Browsers do not say how much a GPU has: on a GPU with less, loading fails with an out-of-memory message.`);
  if (opts.deviceMemoryGiB !== undefined && opts.deviceMemoryGiB * GiB < totalBytes) {
    notes.push(`This device reports about ${opts.deviceMemoryGiB} GiB of memory; a GPU that shares it (integrated graphics) may not fit the model.`);
  }
  if (gpu.isFallbackAdapter) notes.push('This is a software (CPU) adapter: the model would take minutes per answer.');
  const verdict = problems.length ? 'too-small' : gpu.isFallbackAdapter ? 'slow' : 'ok';
  return { format, needs, totalBytes, largestBindingBytes, verdict, problems, notes };
}
