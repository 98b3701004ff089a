// Llama decoder layers on the GPU (spec section 4), shared by the pre-fusion layers (model.prefusion_layers.{i}.)
// and the LLM (model.layers.{i}.):
//   h   = x + o_proj(attn(rope(q_proj(rms1(x))), rope(k_proj(rms1(x))), v_proj(rms1(x))))
//   out = h + down(silu(gate(rms2(h))) * up(rms2(h)))
// A call runs n rows (a prefill chunk, or one decode row) held in scratch.x through the layers, in place. Each
// layer's new keys and values land in its KV cache rows [start, start + n) (start = cache length): with an f32
// cache the k/v projections write straight into those rows (yColOffset / yRowStride) and RoPE rotates them in
// place; with an f16 cache they go through f32 scratch and the RoPE kernel writes (and rounds) both into the
// cache. Attention reads cache rows [0, start + n): causal with the cached past, plus a per-key keep mask for
// pre-fusion. Activation scratch is allocated once for the largest chunk and reused by every layer and call.
// Decode can instead replay a recording (recordDecode): one row, everything bound once, the position picked per
// replay by RoPE's and attention's uniform tables; its keys and values always go through the f32 scratch.
import type { LlamaConfig } from '../checkpoint/types.ts';
import { createStorageBuffer } from '../gpu/buffers.ts';
import type { ComputePass, RecordedPass } from '../gpu/dispatch.ts';
import { LinearKernels, NormKernels, recordLinear } from '../gpu/gpu-linear.ts';
import { AttentionKernel } from '../gpu/kernels/attention.ts';
import { SwiGluKernel } from '../gpu/kernels/elementwise.ts';
import { RopeKernel } from '../gpu/kernels/rope.ts';
import type { KvStorage } from '../gpu/storage.ts';
import { ropeInverseFrequencies } from '../model/rope-frequencies.ts';
import { RopeTable } from '../gpu/kernels/rope-table.ts';
import type { GpuTensor, GpuWeights } from '../weights/gpu-weights.ts';
import { KvCache } from './kv-cache.ts';

export interface DecoderLayerWeights {
  inputNorm: GpuTensor;
  q: GpuTensor;
  k: GpuTensor;
  v: GpuTensor;
  o: GpuTensor;
  postNorm: GpuTensor;
  gate: GpuTensor;
  up: GpuTensor;
  down: GpuTensor;
}

/** Uploads (once) and returns the nine tensors of the decoder layer under `prefix`, e.g. "model.layers.3.". */
export async function loadDecoderLayer(weights: GpuWeights, prefix: string): Promise<DecoderLayerWeights> {
  const t = (name: string) => weights.load(prefix + name);
  return {
    inputNorm: await t('input_layernorm.weight'),
    q: await t('self_attn.q_proj.weight'),
    k: await t('self_attn.k_proj.weight'),
    v: await t('self_attn.v_proj.weight'),
    o: await t('self_attn.o_proj.weight'),
    postNorm: await t('post_attention_layernorm.weight'),
    gate: await t('mlp.gate_proj.weight'),
    up: await t('mlp.up_proj.weight'),
    down: await t('mlp.down_proj.weight'),
  };
}

/** The kernels a decoder stack records (one set per stack: built for its weights' storages and row counts). */
export class DecoderKernels {
  private constructor(
    readonly linear: LinearKernels,
    readonly norm: NormKernels,
    readonly swiglu: SwiGluKernel,
    readonly rope: RopeKernel,
    readonly attention: AttentionKernel,
  ) {}

  static async create(device: GPUDevice, layers: readonly DecoderLayerWeights[], cfg: LlamaConfig, maxRows: number, kv: KvStorage): Promise<DecoderKernels> {
    const matrices = layers.flatMap((w) => [w.q, w.k, w.v, w.o, w.gate, w.up, w.down]);
    const norms = layers.flatMap((w) => [w.inputNorm, w.postNorm]);
    return new DecoderKernels(
      await new LinearKernels(device).prepare(matrices, [1, maxRows]),
      await new NormKernels(device).prepare('rmsnorm', norms),
      await SwiGluKernel.create(device),
      await RopeKernel.create(device, { kv }),
      await AttentionKernel.create(device, { headDim: cfg.headDim, kv }),
    );
  }

  /** Records y rows = RMSNorm(x rows) (rows from x row `xRowOffset`) with the norm weight w. */
  rmsNorm(pass: ComputePass, x: GPUBuffer, w: GpuTensor, y: GPUBuffer, rows: number, eps: number, xRowOffset = 0): void {
    this.norm.record(pass, 'rmsnorm', x, w, null, y, rows, eps, { xRowOffset });
  }

  destroy(): void {
    for (const k of [this.linear, this.norm, this.swiglu, this.rope, this.attention]) k.destroy();
  }
}

/** Activation buffers for up to `maxRows` rows, reused by every layer. */
export class DecoderScratch {
  /** The residual stream [maxRows, H]: a call's input and output. */
  readonly x: GPUBuffer;
  /** Normed rows, then the o_proj and down_proj outputs [maxRows, H]. */
  readonly h: GPUBuffer;
  readonly q: GPUBuffer;
  /** Attention output [maxRows, nH * hd]. */
  readonly attn: GPUBuffer;
  /** gate | up side by side [maxRows, 2I]. */
  readonly gateUp: GPUBuffer;
  readonly act: GPUBuffer;
  /** The new rows' f32 keys and values before RoPE writes them into the cache (an f16 cache, and decode plans). */
  readonly kNew: GPUBuffer;
  readonly vNew: GPUBuffer;

  constructor(
    device: GPUDevice,
    cfg: LlamaConfig,
    readonly maxRows: number,
  ) {
    if (!Number.isInteger(maxRows) || maxRows < 1) throw new Error(`DecoderScratch: maxRows must be a positive integer, got ${maxRows}`);
    const f32 = (cols: number, label: string) => createStorageBuffer(device, maxRows * cols * 4, `decoder ${label}`);
    const qd = cfg.numHeads * cfg.headDim;
    const kvd = cfg.numKvHeads * cfg.headDim;
    this.x = f32(cfg.hiddenSize, 'x');
    this.h = f32(cfg.hiddenSize, 'h');
    this.q = f32(qd, 'q');
    this.attn = f32(qd, 'attn');
    this.gateUp = f32(2 * cfg.intermediateSize, 'gate|up');
    this.act = f32(cfg.intermediateSize, 'swiglu');
    this.kNew = f32(kvd, 'new k');
    this.vNew = f32(kvd, 'new v');
  }

  private all(): GPUBuffer[] {
    return [this.x, this.h, this.q, this.attn, this.gateUp, this.act, this.kNew, this.vNew];
  }

  bytes(): number {
    return this.all().reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    for (const b of this.all()) b.destroy();
  }
}

/** Where the rows of one call sit: their RoPE positions and which cached keys attention may read. */
export interface DecoderStep {
  rows: number;
  /** i32 positions; row r uses positions[positionOffset + r]. */
  positions: GPUBuffer;
  positionOffset: number;
  /** u32 per cache row, 0 = never a key (pre-fusion pad rows); null = every key (plain causal). */
  keep: GPUBuffer | null;
}

/** Records one decoder layer over scratch.x rows [0, step.rows) (in place), writing cache rows [cache.length, +rows). */
export function recordDecoderLayer(
  pass: ComputePass,
  k: DecoderKernels,
  w: DecoderLayerWeights,
  cfg: LlamaConfig,
  s: DecoderScratch,
  cache: KvCache,
  layer: number,
  rope: RopeTable,
  step: DecoderStep,
): void {
  const n = step.rows;
  const kvd = cfg.numKvHeads * cfg.headDim;
  const start = cache.length;
  const kCache = cache.k[layer]!;
  const vCache = cache.v[layer]!;
  const dims = { rows: n, headDim: cfg.headDim, numHeads: cfg.numHeads, numKvHeads: cfg.numKvHeads, positionOffset: step.positionOffset, kRowOffset: start };

  if (cache.storage === 'f16') {
    recordProjections(pass, k, w, cfg, s, n, { k: s.kNew, v: s.vNew });
    k.rope.run(pass, rope, step.positions, { q: s.q, k: kCache, kSrc: s.kNew, v: vCache, vSrc: s.vNew }, dims);
  } else {
    const rows = { yColOffset: start * kvd, yRowStride: kvd };
    recordProjections(pass, k, w, cfg, s, n, { k: kCache, v: vCache, rows });
    k.rope.run(pass, rope, step.positions, { q: s.q, k: kCache }, dims);
  }
  k.attention.run(pass, s.q, kCache, vCache, s.attn, { nq: n, nk: start + n, numHeads: cfg.numHeads, numKvHeads: cfg.numKvHeads, causal: true }, { keep: step.keep });
  recordLayerTail(pass, k, w, cfg, s, n);
}

/**
 * Records into `rec` one decoder layer over scratch.x row 0 for a replay at step p = the row's cache row and
 * position (positions[p], plain causal): the projections go through scratch.kNew / vNew, RoPE writes them into
 * cache row p, attention reads rows [0, p]. Everything but RoPE's and attention's per-step uniforms is fixed.
 */
function recordDecodeLayer(rec: RecordedPass, k: DecoderKernels, w: DecoderLayerWeights, cfg: LlamaConfig, s: DecoderScratch, cache: KvCache, layer: number, rope: RopeTable, positions: GPUBuffer): void {
  const kCache = cache.k[layer]!;
  const vCache = cache.v[layer]!;
  const heads = { numHeads: cfg.numHeads, numKvHeads: cfg.numKvHeads };
  recordProjections(rec, k, w, cfg, s, 1, { k: s.kNew, v: s.vNew });
  k.rope.recordSteps(rec, rope, positions, { q: s.q, k: kCache, kSrc: s.kNew, v: vCache, vSrc: s.vNew }, (p) => ({ rows: 1, headDim: cfg.headDim, ...heads, positionOffset: p, kRowOffset: p }));
  k.attention.recordSteps(rec, s.q, kCache, vCache, s.attn, (p) => ({ nq: 1, nk: p + 1, ...heads, causal: true }));
  recordLayerTail(rec, k, w, cfg, s, 1);
}

/** input RMSNorm -> h, then q -> scratch.q and k, v -> `kv` (scratch rows, or cache rows placed by `kv.rows`). */
function recordProjections(
  pass: ComputePass,
  k: DecoderKernels,
  w: DecoderLayerWeights,
  cfg: LlamaConfig,
  s: DecoderScratch,
  n: number,
  kv: { k: GPUBuffer; v: GPUBuffer; rows?: { yColOffset: number; yRowStride: number } },
): void {
  k.rmsNorm(pass, s.x, w.inputNorm, s.h, n, cfg.rmsNormEps);
  recordLinear(pass, k.linear, s.h, w.q, null, s.q, n);
  recordLinear(pass, k.linear, s.h, w.k, null, kv.k, n, kv.rows);
  recordLinear(pass, k.linear, s.h, w.v, null, kv.v, n, kv.rows);
}

/** o_proj + residual, then the MLP (post RMSNorm, gate | up, SwiGLU, down) + residual, over n rows. */
function recordLayerTail(pass: ComputePass, k: DecoderKernels, w: DecoderLayerWeights, cfg: LlamaConfig, s: DecoderScratch, n: number): void {
  const I = cfg.intermediateSize;
  recordLinear(pass, k.linear, s.attn, w.o, null, s.x, n, { residual: true });
  k.rmsNorm(pass, s.x, w.postNorm, s.h, n, cfg.rmsNormEps);
  if (k.linear.fusesGated(w.gate, w.up, n)) {
    // Decode rows: gate, up and SiLU * up in one pass over both matrices.
    k.linear.recordGated(pass, s.h, w.gate, w.up, s.act, n);
  } else {
    recordLinear(pass, k.linear, s.h, w.gate, null, s.gateUp, n, { yColOffset: 0, yRowStride: 2 * I });
    recordLinear(pass, k.linear, s.h, w.up, null, s.gateUp, n, { yColOffset: I, yRowStride: 2 * I });
    k.swiglu.run(pass, s.gateUp, s.act, n, I);
  }
  recordLinear(pass, k.linear, s.act, w.down, null, s.x, n, { residual: true });
}

export interface DecoderStackOptions {
  /** Largest number of rows one call runs (the prefill chunk). */
  maxRows: number;
  /** Positions 0 .. maxPositions-1 get a RoPE table entry (size it to the context). */
  maxPositions: number;
  /** KV cache storage; default 'f32'. 'f16' needs shader-f16. */
  kv?: KvStorage;
}

/** A run of decoder layers with their kernels, activation scratch and RoPE table; KV caches are made per sequence. */
export class DecoderStack {
  private constructor(
    readonly device: GPUDevice,
    readonly config: LlamaConfig,
    readonly layers: DecoderLayerWeights[],
    readonly kernels: DecoderKernels,
    readonly scratch: DecoderScratch,
    readonly rope: RopeTable,
    readonly kv: KvStorage,
  ) {}

  /** Loads the layers under `prefixes` from `weights` and builds everything they need. */
  static async create(weights: GpuWeights, prefixes: readonly string[], opts: DecoderStackOptions): Promise<DecoderStack> {
    const device = weights.device;
    const cfg = weights.source.config.llm;
    const kv = opts.kv ?? 'f32';
    const layers: DecoderLayerWeights[] = [];
    for (const p of prefixes) layers.push(await loadDecoderLayer(weights, p));
    const kernels = await DecoderKernels.create(device, layers, cfg, opts.maxRows, kv);
    const rope = RopeTable.create(device, ropeInverseFrequencies(cfg), opts.maxPositions, 'decoder rope table');
    return new DecoderStack(device, cfg, layers, kernels, new DecoderScratch(device, cfg, opts.maxRows), rope, kv);
  }

  /** A KV cache for this stack holding up to `capacity` rows. */
  createCache(capacity: number, label?: string): KvCache {
    if (capacity > this.rope.maxPositions) {
      // Positions never exceed the row count (causal: cumsum(keep) - 1 < rows), so the table must cover the capacity.
      throw new Error(`DecoderStack: a cache of ${capacity} rows needs RoPE positions up to ${capacity - 1}, the table covers ${this.rope.maxPositions}`);
    }
    return new KvCache(this.device, { layers: this.layers.length, capacity, width: this.config.numKvHeads * this.config.headDim, storage: this.kv, label });
  }

  /**
   * Records scratch.x rows [0, step.rows) through every layer (in place). Their keys and values are appended to
   * `cache` (its length advances by step.rows).
   */
  record(pass: ComputePass, cache: KvCache, step: DecoderStep): void {
    if (step.rows > this.scratch.maxRows) throw new Error(`DecoderStack: ${step.rows} rows in one call, the scratch holds ${this.scratch.maxRows}`);
    if (cache.layers !== this.layers.length) throw new Error(`DecoderStack: the cache has ${cache.layers} layers, the stack ${this.layers.length}`);
    cache.checkRoom(step.rows);
    this.layers.forEach((w, l) => recordDecoderLayer(pass, this.kernels, w, this.config, this.scratch, cache, l, this.rope, step));
    cache.advance(step.rows);
  }

  /**
   * Records into `rec` (rec.steps <= cache.capacity) one decode row, scratch.x row 0, through every layer: a replay
   * at step p is that row at cache row and position p (positions[p]). The caller advances the cache per replay.
   */
  recordDecode(rec: RecordedPass, cache: KvCache, positions: GPUBuffer): void {
    if (cache.layers !== this.layers.length) throw new Error(`DecoderStack: the cache has ${cache.layers} layers, the stack ${this.layers.length}`);
    if (rec.steps > cache.capacity) throw new Error(`DecoderStack.recordDecode: ${rec.steps} steps, the cache holds ${cache.capacity} rows`);
    this.layers.forEach((w, l) => recordDecodeLayer(rec, this.kernels, w, this.config, this.scratch, cache, l, this.rope, positions));
  }

  /**
   * Runs `rows` rows in chunks of at most scratch.maxRows rows, each recorded by `record(encoder, r, n)` into its
   * own command buffer. One chunk is in flight while the next is recorded; `signal` is checked before each
   * submit (an abort rejects with its reason). Resolves when the GPU has finished every chunk.
   */
  async runChunks(rows: number, signal: AbortSignal | undefined, record: (encoder: GPUCommandEncoder, r: number, n: number) => void): Promise<void> {
    signal?.throwIfAborted();
    let inFlight: Promise<void> | null = null;
    try {
      for (let r = 0; r < rows; r += this.scratch.maxRows) {
        const n = Math.min(this.scratch.maxRows, rows - r);
        const encoder = this.device.createCommandEncoder({ label: 'decoder chunk' });
        record(encoder, r, n);
        await inFlight;
        signal?.throwIfAborted();
        this.device.queue.submit([encoder.finish()]);
        inFlight = this.device.queue.onSubmittedWorkDone();
      }
      await inFlight;
    } catch (e) {
      // Let submitted work finish before the caller rolls its caches back.
      await inFlight?.catch(() => undefined);
      throw e;
    }
  }

  /** GPU bytes of the scratch and the RoPE table (weights and caches are counted by their owners). */
  bytes(): number {
    return this.scratch.bytes() + this.rope.buffer.size;
  }

  destroy(): void {
    this.kernels.destroy();
    this.scratch.destroy();
    this.rope.destroy();
  }
}
