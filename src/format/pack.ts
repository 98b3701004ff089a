// Our own pack for everything that is not the MLC LLM: the CLIP layers that run, projector, compressor and
// pre-fusion layers, stored by the precision policy (src/precision/policy.ts): 'f16' = all float16; 'q4' = the
// pre-fusion matrices int4 in the q4f16_1 layout (q_weight uint32 + q_scale float16), everything else float16.
// Layout: raw shard files (`pack_shard_K.bin`, the tensor-cache sharding) + manifest.json with every tensor's
// file, byte range, shape, dtype and sha256, each file's size and sha256, and the checkpoint's config.json.
import type { CheckpointFiles } from '../checkpoint/byte-source.ts';
import { f16ToNumber } from '../checkpoint/dtype.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { GpuWeightsPolicy } from '../precision/policy-table.ts';
import type { Job } from './jobs.ts';
import type { CacheDType, ShardPlan } from './tensor-cache.ts';

export type PackPrecision = 'f16' | 'q4';
export const PACK_PRECISIONS: readonly PackPrecision[] = ['f16', 'q4'];
export const PACK_FORMAT = 'llava-mini-pack';
export const PACK_VERSION = 1;
export const PACK_MANIFEST = 'manifest.json';

export interface PackTensor {
  name: string;
  /** The checkpoint tensor it comes from. */
  source: string;
  shape: number[];
  dtype: CacheDType;
  /** 'f16', or 'q4f16' (then two entries: `<base>.q_weight` and `<base>.q_scale`). */
  storage: 'f16' | 'q4f16';
  file: string;
  byteOffset: number;
  nbytes: number;
  sha256: string;
}

export interface PackManifest {
  format: typeof PACK_FORMAT;
  version: number;
  precision: PackPrecision;
  /** The checkpoint's config.json, as read. */
  config: object;
  /** Derived values the engine needs to know the pack holds only these CLIP layers. */
  visionLayersUsed: number;
  files: Array<{ path: string; nbytes: number; sha256: string }>;
  tensors: PackTensor[];
}

/** `x.weight` -> `x.q_weight` / `x.q_scale`. */
export function q4Names(name: string): { qWeight: string; qScale: string } {
  const base = name.endsWith('.weight') ? name.slice(0, -'.weight'.length) : name;
  return { qWeight: `${base}.q_weight`, qScale: `${base}.q_scale` };
}

/** The pack's tensors: every tensor inference reads except the LLM's (which go to MLC). */
export function packJobs(config: LlavaMiniConfig, precision: PackPrecision): Job[] {
  const policy = new GpuWeightsPolicy(config, precision, true);
  const jobs: Job[] = [];
  for (const t of policy.usedTensors()) {
    if (t.part === 'llm') continue;
    const plan = policy.plan(t.name);
    if (plan.storage === 'q4f16') {
      jobs.push({ kind: 'q4', sources: [t.name], rows: plan.rows, cols: plan.cols, scaleDType: 'f16', ...q4Names(t.name) });
    } else if (plan.storage === 'f16') {
      jobs.push({ kind: 'cast', source: t.name, shape: [...t.shape], dtype: 'float16', output: t.name });
    } else {
      throw new Error(`pack ${precision}: tensor "${t.name}" would be stored ${plan.storage}`);
    }
  }
  return jobs;
}

export function packManifest(
  precision: PackPrecision,
  configJson: object,
  config: LlavaMiniConfig,
  jobs: readonly Job[],
  shards: readonly ShardPlan[],
  sha256: { files: Map<string, string>; records: Map<string, string> },
): PackManifest {
  const meta = new Map<string, { source: string; storage: 'f16' | 'q4f16' }>();
  for (const j of jobs) {
    if (j.kind === 'cast') meta.set(j.output, { source: j.source, storage: 'f16' });
    else if (j.kind === 'q4') for (const n of [j.qWeight, j.qScale]) meta.set(n, { source: j.sources[0]!, storage: 'q4f16' });
  }
  const tensors: PackTensor[] = [];
  for (const s of shards) {
    for (const r of s.records) {
      const m = meta.get(r.name)!;
      tensors.push({
        name: r.name,
        source: m.source,
        shape: r.shape,
        dtype: r.dtype,
        storage: m.storage,
        file: s.dataPath,
        byteOffset: r.byteOffset,
        nbytes: r.nbytes,
        sha256: sha256.records.get(r.name)!,
      });
    }
  }
  return {
    format: PACK_FORMAT,
    version: PACK_VERSION,
    precision,
    config: configJson,
    visionLayersUsed: config.visionLayersUsed,
    files: shards.map((s) => ({ path: s.dataPath, nbytes: s.nbytes, sha256: sha256.files.get(s.dataPath)! })),
    tensors,
  };
}

/** A pack folder read back: its manifest and each tensor's bytes / values. */
export class Pack {
  private readonly byName: Map<string, PackTensor>;
  constructor(
    readonly manifest: PackManifest,
    private readonly files: CheckpointFiles,
  ) {
    this.byName = new Map(manifest.tensors.map((t) => [t.name, t]));
  }

  tensor(name: string): PackTensor {
    const t = this.byName.get(name);
    if (!t) throw new Error(`pack has no tensor "${name}"`);
    return t;
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const t = this.tensor(name);
    return this.files.open(t.file).read(t.byteOffset, t.nbytes);
  }

  /** float16 / float32 tensors as f32 values, uint32 as Uint32Array. */
  async read(name: string): Promise<Float32Array | Uint32Array> {
    const t = this.tensor(name);
    const b = (await this.readBytes(name)).slice();
    if (t.dtype === 'uint32') return new Uint32Array(b.buffer);
    if (t.dtype === 'float32') return new Float32Array(b.buffer);
    return Float32Array.from(new Uint16Array(b.buffer), (h) => f16ToNumber(h));
  }
}

export async function openPack(files: CheckpointFiles): Promise<Pack> {
  const json = JSON.parse(await files.readText(PACK_MANIFEST)) as PackManifest;
  if (json.format !== PACK_FORMAT || json.version !== PACK_VERSION) {
    throw new Error(`${files.name ?? 'pack'}: ${PACK_MANIFEST} is not a ${PACK_FORMAT} v${PACK_VERSION} manifest`);
  }
  return new Pack(json, files);
}
