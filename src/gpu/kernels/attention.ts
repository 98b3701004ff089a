// Flash-style multi-head attention on the GPU (shaders/attention.wgsl): out = softmax(scale q k^T, mask) v per
// head, with GQA, online softmax in f32, no [nq, nk] score matrix. Masks: none (CLIP, the compressor's cross
// attention), causal with a KV-cache offset (past = nk - nq), and causal + a per-key keep mask (pre-fusion).
// K/V are a KV cache: rows 0..nk-1 are read, the buffers may be larger. kv 'f16' (needs shader-f16) reads an
// f16 K/V cache; q and out stay f32 and all math is f32.
//
// Paths (see the WGSL headers): on a GPU 'tiled' (one slot = query row x head per invocation, or per 2-4
// invocations sharing its head dim where the device has subgroups; K/V blocks staged in workgroup memory) for
// many query rows, 'splitk' (up to 4 slots per workgroup, parallel over keys) for
// decode and the compressor; on a CPU adapter 'direct' (shaders/attention-direct.wgsl: tiled's slot per
// invocation with K/V read from their buffers, no workgroup memory or barrier) for every shape. Each may split
// the key range over several workgroups and merge the partial softmax results in a `combine` pass (a scratch
// buffer owned by the kernel, grown on demand).
import attentionDirectWgsl from '../../../shaders/attention-direct.wgsl?raw';
import attentionPartsWgsl from '../../../shaders/attention-parts.wgsl?raw';
import attentionWgsl from '../../../shaders/attention.wgsl?raw';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import { checkedBinding, foldGrid, LazyPrograms, positiveInt, recordPrepared, requireShaderF16, StepTables, UniformCache, workgroupLimit, type GpuTarget, type PreparedRun, type RecordedPass } from '../dispatch.ts';
import { isCpuDevice } from '../device.ts';
import { computeProgram, specializeWgsl, type BindingKind } from '../pipeline.ts';
import { expandWgsl, parseFragments } from '../wgsl-include.ts';
import { roundToF16, toF16Weights } from './linear.ts';
import type { KvStorage } from '../storage.ts';

const BINDINGS: readonly BindingKind[] = ['uniform-dynamic', 'read', 'read', 'read', 'read', 'storage', 'storage'];
const WG = 64;
/** Query slots (row x head of a KV group) per workgroup of each path (direct as tiled). */
const TILED_SLOTS = 64;
const SPLITK_SLOTS = 4;
/** Most keys per splitk chunk (the workgroup score buffer). */
const SPLITK_MAX_CHUNK = 256;
const CAUSAL = 1;
const KEEP = 2;

const PARTS = parseFragments([attentionPartsWgsl]);
/** Register vec4s per lane for q and the output in the lane form (one slot on LANES invocations). */
const LANE_REGISTERS = 8;

/**
 * The attention WGSL of a form ('gpu': attention.wgsl, the tiled and splitk paths; 'direct': attention-direct.wgsl,
 * CPU adapters) for a KV storage type: as is for f32; for f16, `enable f16;` + `alias KV4 = vec4<f16>;`.
 * `lanes` (the 'gpu' form): tiled's slots are held by several invocations summed with subgroup shuffles
 * (`enable subgroups;`, LANE_REGISTERS registers a lane; the pipeline sets LANES, tiledLanes).
 */
export function attentionShaderSource(kv: KvStorage, form: 'gpu' | 'direct' = 'gpu', lanes = false): string {
  if (lanes && form !== 'gpu') throw new Error('attentionShaderSource: only the gpu form has a lane form');
  const parts = new Map(PARTS).set('lane-sum', PARTS.get(lanes ? 'lane-sum-subgroup' : 'lane-sum-one')!);
  const code = expandWgsl(form === 'gpu' ? attentionWgsl : attentionDirectWgsl, parts);
  return specializeWgsl(code, {
    enable: [...(kv === 'f16' ? ['f16'] : []), ...(lanes ? ['subgroups'] : [])],
    aliases: kv === 'f16' ? { KV4: 'vec4<f16>' } : {},
    u32Consts: lanes ? { RC: LANE_REGISTERS } : {},
  });
}

/**
 * Invocations per slot of the tiled path: 1 without subgroups; with them the fewest (1, 2 or 4) that leave a lane
 * at most LANE_REGISTERS vec4s of q and of output (a head dim of 128 would otherwise hold 256 floats an
 * invocation, more than a GPU's registers).
 */
export function tiledLanes(headDim: number, subgroups: boolean): 1 | 2 | 4 {
  if (!subgroups) return 1;
  const hd4 = headDim / 4;
  return hd4 <= LANE_REGISTERS ? 1 : hd4 <= 2 * LANE_REGISTERS ? 2 : 4;
}

export interface AttentionKernelOptions {
  /** Head dimension: a multiple of 4, at most 128 (a pipeline constant: one kernel per head dim). */
  headDim: number;
  /** Storage type of K and V (default 'f32'); 'f16' needs shader-f16. */
  kv?: KvStorage;
  /** Lower the dispatch limit (tests exercise the 2D fold); default: the device limit. */
  maxWorkgroupsPerDimension?: number;
  /** Split the key range until about this many workgroups run (default 128). */
  targetWorkgroups?: number;
  /**
   * The paths to build (default: tiled and splitk on a GPU, direct on a CPU adapter). A caller whose shape never
   * changes builds only the one its shape takes (`attentionPath`): a tiled or splitk build costs about 0.75 s on
   * SwiftShader. 'auto' then takes a built path; every path is right for any shape, only slower off its own.
   */
  paths?: readonly AttentionPath[];
  /** Instead of `paths`: build only the path this shape takes on this device (a caller whose shape never changes). */
  onlyFor?: Pick<AttentionShape, 'nq' | 'numHeads' | 'numKvHeads'>;
  /** Shape the paths for a CPU adapter (default: isCpuDevice(device)). */
  cpu?: boolean;
  /**
   * Let tiled hold a slot on 2 or 4 invocations, each with a share of the head dim (tiledLanes; needs `subgroups`).
   * Default: where the device has `subgroups`. Tests run both forms on one device.
   */
  splitHeadDim?: boolean;
}

/**
 * 'tiled' (K/V blocks staged in workgroup memory) and 'splitk' (parallel over keys) on a GPU; 'direct' (a slot per
 * invocation reading K/V from their buffers, no workgroup memory: attention-direct.wgsl) on a CPU adapter.
 */
export type AttentionPath = 'tiled' | 'splitk' | 'direct';
const PATHS: readonly AttentionPath[] = ['tiled', 'splitk', 'direct'];

/**
 * The path 'auto' takes for a shape: on a CPU adapter direct; on a GPU splitk for at most SPLITK_SLOTS query
 * slots (nq x G), else tiled.
 */
export function attentionPath(shape: Pick<AttentionShape, 'nq' | 'numHeads' | 'numKvHeads'>, cpu = false): AttentionPath {
  if (cpu) return 'direct';
  const slots = shape.nq * (shape.numHeads / (shape.numKvHeads ?? shape.numHeads));
  return slots <= SPLITK_SLOTS ? 'splitk' : 'tiled';
}

export interface AttentionShape {
  /** Query rows. */
  nq: number;
  /** Key (= value) rows read from the cache: 0 .. nk-1. */
  nk: number;
  numHeads: number;
  /** Default numHeads; must divide numHeads (head h reads KV head floor(h / (numHeads / numKvHeads))). */
  numKvHeads?: number;
  /** Multiplies q.k; default 1/sqrt(headDim). */
  scale?: number;
  /** Query row i sees keys 0 .. (nk - nq) + i (needs nk >= nq). Default false. */
  causal?: boolean;
}

export interface AttentionRunOptions {
  /** u32 per key row (nk of them), 0 = that key is never visible (pre-fusion pad rows). */
  keep?: GPUBuffer | null;
  /** Row strides in elements (multiples of 4): q (default numHeads*hd), k and v (default numKvHeads*hd), out (default numHeads*hd). */
  qRowStride?: number;
  kvRowStride?: number;
  outRowStride?: number;
  /** Force a path (tests, tuning); default ('auto'): attentionPath's for this shape and adapter, if built. */
  path?: 'auto' | AttentionPath;
  /** Force the number of key splits (clamped so splitk chunks stay <= 256 keys). */
  splits?: number;
}

/** How a run is dispatched. */
export interface AttentionPlan {
  path: AttentionPath;
  slotBlocks: number;
  splits: number;
  /** Keys per split. */
  chunk: number;
  workgroups: number;
}

export class AttentionKernel {
  readonly kv: KvStorage;
  readonly headDim: number;
  /** The paths this kernel built. */
  readonly paths: ReadonlySet<AttentionPath>;
  /** Invocations per slot of the tiled path (tiledLanes). */
  readonly lanes: 1 | 2 | 4;
  /** 'auto' picks paths for a CPU adapter. */
  private readonly cpu: boolean;
  private readonly programs = new LazyPrograms(async () => {
    const f16 = this.kv === 'f16' ? ' (f16 KV)' : '';
    const lanes = this.lanes > 1 ? `, ${this.lanes} lanes a slot` : '';
    const build = (form: 'gpu' | 'direct', entryPoint: string) =>
      computeProgram(this.device, {
        name: form === 'gpu' ? `attention.wgsl${f16}${lanes}` : `attention-direct.wgsl${f16}`,
        code: attentionShaderSource(this.kv, form, form === 'gpu' && this.lanes > 1),
        entryPoint,
        bindings: BINDINGS,
        constants: { HD4: this.headDim / 4, ...(entryPoint === 'tiled' ? { LANES: this.lanes } : {}) },
      });
    const main = await Promise.all(PATHS.map((p) => (this.paths.has(p) ? build(p === 'direct' ? 'direct' : 'gpu', p) : null)));
    // combine from the direct module: it has no workgroup memory, whichever paths are built.
    const combine = await build('direct', 'combine');
    return { main: new Map(PATHS.map((p, i) => [p, main[i]!] as const)), combine };
  });
  /** One uniform buffer per distinct shape (a decode step shares one across all layers). */
  private readonly uniforms: UniformCache;
  private readonly stepTables: StepTables;
  private dummies: { keep: GPUBuffer; part: GPUBuffer } | null = null;
  private scratch: GPUBuffer | null = null;
  private readonly maxWg: number;
  private readonly target: number;

  constructor(
    readonly device: GPUDevice,
    opts: AttentionKernelOptions,
  ) {
    this.kv = opts.kv ?? 'f32';
    this.headDim = opts.headDim;
    this.cpu = opts.cpu ?? isCpuDevice(device);
    this.paths = new Set(opts.paths ?? (opts.onlyFor ? [attentionPath(opts.onlyFor, this.cpu)] : this.cpu ? ['direct'] : ['tiled', 'splitk']));
    if (this.paths.size === 0 || [...this.paths].some((p) => !PATHS.includes(p))) {
      throw new Error(`AttentionKernel: paths must be some of ${PATHS.join(', ')}, got ${JSON.stringify(opts.paths)}`);
    }
    if (!Number.isInteger(this.headDim) || this.headDim < 4 || this.headDim > 128 || this.headDim % 4 !== 0) {
      throw new Error(`AttentionKernel: headDim must be a multiple of 4 in [4, 128], got ${opts.headDim}`);
    }
    requireShaderF16(device, this.kv === 'f16', 'AttentionKernel: an f16 KV cache needs', 'kv "f32"');
    const subgroups = device.features.has('subgroups');
    if (opts.splitHeadDim && !subgroups) throw new Error('AttentionKernel: splitting the head dim over lanes (splitHeadDim) needs a device with the `subgroups` feature');
    this.lanes = tiledLanes(this.headDim, opts.splitHeadDim ?? subgroups);
    this.maxWg = workgroupLimit(device, opts.maxWorkgroupsPerDimension);
    this.target = opts.targetWorkgroups ?? 128;
    this.uniforms = new UniformCache(device, 'attention dims');
    this.stepTables = new StepTables(device, 'attention dims per step');
  }

  /** Builds the pipelines (the chosen paths and combine). Rejects with a ShaderError if the WGSL does not compile. */
  init(): Promise<this> {
    return this.programs.ready(this);
  }

  static create(device: GPUDevice, opts: AttentionKernelOptions): Promise<AttentionKernel> {
    return new AttentionKernel(device, opts).init();
  }

  /** The path, slot blocks and key splits a run of this shape uses. */
  plan(shape: AttentionShape, opts: Pick<AttentionRunOptions, 'path' | 'splits'> = {}): AttentionPlan {
    const { nq, nk } = shape;
    const nKV = shape.numKvHeads ?? shape.numHeads;
    const slots = nq * (shape.numHeads / nKV);
    const preferred = attentionPath(shape, this.cpu);
    const path = !opts.path || opts.path === 'auto' ? (this.paths.has(preferred) ? preferred : [...this.paths][0]!) : opts.path;
    if (!this.paths.has(path)) throw new Error(`AttentionKernel: the ${path} path was not built (paths: ${[...this.paths].join(', ')})`);
    const slotBlocks = Math.ceil(slots / (path === 'splitk' ? SPLITK_SLOTS : TILED_SLOTS));
    const base = slotBlocks * nKV;
    let chunk: number;
    if (opts.splits !== undefined) {
      positiveInt('AttentionKernel', 'splits', opts.splits);
      chunk = Math.ceil(nk / Math.min(opts.splits, nk));
    } else if (path === 'splitk') {
      chunk = SPLITK_MAX_CHUNK;
      while (chunk > 64 && base * Math.ceil(nk / chunk) < this.target) chunk /= 2;
    } else {
      // tiled and direct: split only long key ranges (>= 256 keys per split), and only as far as needed to fill the GPU.
      const splits = Math.max(1, Math.min(Math.ceil(this.target / base), Math.floor(nk / 256)));
      chunk = Math.ceil(nk / splits / 64) * 64;
    }
    if (path === 'splitk') chunk = Math.min(chunk, SPLITK_MAX_CHUNK);
    chunk = Math.max(1, Math.min(chunk, nk));
    const splits = Math.ceil(nk / chunk);
    return { path, slotBlocks, splits, chunk, workgroups: base * splits };
  }

  /** Workgroup grid for n workgroups, folded into 2D. */
  dispatchSize(n: number): [number, number] {
    return foldGrid(n, this.maxWg, 'AttentionKernel');
  }

  /**
   * Records out = attention(q, k, v) for the shape. q [nq, numHeads*hd] f32, k and v [>= nk, numKvHeads*hd]
   * (f32 or f16 per the kernel), out [nq, numHeads*hd] f32 (a different buffer from the inputs).
   * With a device, encodes and submits at once; with an encoder or pass, only records.
   */
  run(target: GpuTarget, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer, shape: AttentionShape, opts: AttentionRunOptions = {}): void {
    const r = this.prepare(q, k, v, out, shape, opts);
    recordPrepared(target, 'attention', this.device, r, this.uniforms.get(r.words, r.f32At));
  }

  /**
   * Records into `rec` an attention whose shape depends on the replay's step (a decode position: nk = step + 1):
   * bind group and uniforms are made here once for steps 0 .. rec.steps-1, the buffers bound at the last step's
   * extents (the largest). The path must stay the same over the steps (the key splits may change).
   */
  recordSteps(rec: RecordedPass, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer, shapeAt: (step: number) => AttentionShape, opts: AttentionRunOptions = {}): void {
    // The split-K scratch is bound at its size for the most splits of any step (not always the last step's).
    let minScratchSplits = 1;
    for (let s = 0; s < rec.steps; s++) minScratchSplits = Math.max(minScratchSplits, this.plan(shapeAt(s), opts).splits);
    this.stepTables.record(rec, (s) => this.prepare(q, k, v, out, shapeAt(s), { ...opts, minScratchSplits }));
  }

  /** Checks a run and returns its dispatches (main, then combine when the keys are split), bindings and uniform words. */
  private prepare(q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer, shape: AttentionShape, opts: AttentionRunOptions & { minScratchSplits?: number }): PreparedRun {
    const programs = this.programs.require('AttentionKernel');
    const hd = this.headDim;
    const { nq, nk, numHeads: nH } = shape;
    const nKV = shape.numKvHeads ?? nH;
    for (const [name, val] of [['nq', nq], ['nk', nk], ['numHeads', nH], ['numKvHeads', nKV]] as const) positiveInt('AttentionKernel.run', name, val);
    if (nH % nKV !== 0) throw new Error(`AttentionKernel.run: numHeads ${nH} is not a multiple of numKvHeads ${nKV}`);
    const causal = shape.causal ?? false;
    if (causal && nk < nq) throw new Error(`AttentionKernel.run: causal attention needs nk >= nq (past = nk - nq), got nq ${nq}, nk ${nk}`);
    const scale = shape.scale ?? 1 / Math.sqrt(hd);
    const qStride = opts.qRowStride ?? nH * hd;
    const kvStride = opts.kvRowStride ?? nKV * hd;
    const oStride = opts.outRowStride ?? nH * hd;
    for (const [name, s, min] of [['qRowStride', qStride, nH * hd], ['kvRowStride', kvStride, nKV * hd], ['outRowStride', oStride, nH * hd]] as const) {
      if (!Number.isInteger(s) || s < min || s % 4 !== 0) throw new Error(`AttentionKernel.run: ${name} must be a multiple of 4 and >= ${min}, got ${s}`);
    }
    const keep = opts.keep ?? null;
    if (out === q || out === k || out === v || (keep !== null && out === keep)) {
      throw new Error('AttentionKernel.run: out must be a different buffer from q, k and v');
    }

    const kvBytes = this.kv === 'f16' ? 2 : 4;
    const maxBinding = this.device.limits.maxStorageBufferBindingSize;
    // Sizes are whole numbers of vec4 (f32: 16 B, f16: 8 B) by construction.
    const bind = (label: string, buf: GPUBuffer, bytes: number, what: string) => checkedBinding(this.device, 'AttentionKernel', label, buf, bytes, what);
    const qb = bind('q', q, ((nq - 1) * qStride + nH * hd) * 4, `[${nq}, ${nH}x${hd}] f32, stride ${qStride}`);
    const kvExtent = ((nk - 1) * kvStride + nKV * hd) * kvBytes;
    const kb = bind('k', k, kvExtent, `[${nk}, ${nKV}x${hd}] ${this.kv}, stride ${kvStride}`);
    const vb = bind('v', v, kvExtent, `[${nk}, ${nKV}x${hd}] ${this.kv}, stride ${kvStride}`);
    const ob = bind('out', out, ((nq - 1) * oStride + nH * hd) * 4, `[${nq}, ${nH}x${hd}] f32, stride ${oStride}`);
    this.dummies ??= {
      keep: createStorageBuffer(this.device, 16, 'attention: no keep mask'),
      part: createStorageBuffer(this.device, 16, 'attention: no partials'),
    };
    const keepb = keep ? bind('keep', keep, nk * 4, `${nk} u32`) : { buffer: this.dummies.keep };

    const plan = this.plan(shape, opts);
    let partb: GPUBufferBinding = { buffer: this.dummies.part };
    const mlOff4 = plan.splits * nq * nH * (hd / 4);
    const scratchSplits = Math.max(plan.splits, opts.minScratchSplits ?? 1);
    if (scratchSplits > 1) {
      const bytes = scratchSplits * (nq * nH * (hd / 4) + nq * nH) * 16;
      if (bytes > maxBinding) throw new Error(`AttentionKernel: the split-K scratch (${bytes} bytes) exceeds maxStorageBufferBindingSize; pass fewer splits`);
      if (!this.scratch || this.scratch.size < bytes) {
        // Not destroyed: a recorded, unsubmitted run may still use the old one (GC frees it).
        this.scratch = createStorageBuffer(this.device, Math.min(maxBinding, Math.max(bytes, 2 * (this.scratch?.size ?? 0), 1 << 16)), 'attention split-K partials');
      }
      partb = { buffer: this.scratch, offset: 0, size: bytes };
    }

    const flags = (causal ? CAUSAL : 0) | (keep ? KEEP : 0);
    const main = programs.main.get(plan.path)!;
    return {
      dispatches: [
        { program: main, grid: this.dispatchSize(plan.workgroups) },
        { program: programs.combine, grid: plan.splits > 1 ? this.dispatchSize(Math.ceil((nq * nH * (hd / 4)) / WG)) : [0, 0] },
      ],
      bindings: [qb, kb, vb, keepb, ob, partb],
      words: [nq, nk, nH, nKV, nH / nKV, qStride / 4, kvStride / 4, oStride / 4, causal ? nk - nq : 0, flags, plan.splits, plan.chunk, plan.slotBlocks, mlOff4, scale, plan.workgroups],
      f32At: [14], // scale
    };
  }

  /** Frees the kernel's own buffers (uniforms, scratch), not the caller's. */
  destroy(): void {
    this.uniforms.destroy();
    this.stepTables.destroy();
    this.dummies?.keep.destroy();
    this.dummies?.part.destroy();
    this.dummies = null;
    this.scratch?.destroy();
    this.scratch = null;
  }
}

export interface AttentionOnGpuArgs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  nq: number;
  nk: number;
  numHeads: number;
  numKvHeads?: number;
  headDim: number;
  scale?: number;
  causal?: boolean;
  /** Per key: 0 = excluded. */
  keep?: Uint8Array | Uint32Array;
  /** Store K/V as f16 (their values are rounded; compare against roundToF16(k), roundToF16(v)). */
  kv?: KvStorage;
  path?: AttentionRunOptions['path'];
  splits?: number;
  paths?: readonly AttentionPath[];
  /** Extra K/V rows allocated past nk (a larger cache), filled with garbage that must not be read. */
  extraKvRows?: number;
  splitHeadDim?: boolean;
}

/** One-shot convenience for tests and self-tests: uploads, runs, reads back out [nq, numHeads*headDim]. */
export async function attentionOnGpu(device: GPUDevice, a: AttentionOnGpuArgs): Promise<Float32Array> {
  const kv = a.kv ?? 'f32';
  const nKV = a.numKvHeads ?? a.numHeads;
  const kvw = nKV * a.headDim;
  // A forced path is built even where it is not this adapter's (tests run every path on every adapter).
  const forced = a.path && a.path !== 'auto' ? [a.path] : undefined;
  const kernel = await AttentionKernel.create(device, { headDim: a.headDim, kv, paths: a.paths ?? forced, splitHeadDim: a.splitHeadDim });
  const extra = a.extraKvRows ?? 0;
  const pad = (x: Float32Array) => {
    if (!extra) return x;
    const y = new Float32Array(x.length + extra * kvw).fill(1e4);
    y.set(x);
    return y;
  };
  const upload = (x: Float32Array, label: string) => storageBufferFrom(device, kv === 'f16' ? toF16Weights(pad(x)) : pad(x), label);
  const qb = storageBufferFrom(device, a.q, 'attention q');
  const kb = upload(a.k, 'attention k');
  const vb = upload(a.v, 'attention v');
  const keepb = a.keep ? storageBufferFrom(device, Uint32Array.from(a.keep), 'attention keep') : null;
  const ob = createStorageBuffer(device, a.q.length * 4, 'attention out');
  try {
    kernel.run(device, qb, kb, vb, ob, { nq: a.nq, nk: a.nk, numHeads: a.numHeads, numKvHeads: nKV, scale: a.scale, causal: a.causal }, { keep: keepb, path: a.path, splits: a.splits });
    return await readF32(device, ob, a.nq * a.numHeads * a.headDim);
  } finally {
    for (const b of [qb, kb, vb, keepb, ob]) b?.destroy();
    kernel.destroy();
  }
}

export { roundToF16 };
