// Output parameters and their layout in raw shard files, as TVM's tensor cache lays them out
// (apache/tvm python/tvm/contrib/tvmjs.py, TensorCacheShardingManager.append_or_update):
//   for each parameter in order, with `pending` = bytes of the shard being filled:
//     if pending + nbytes >= cap:
//       if 2 * nbytes >= cap: the parameter alone becomes the NEXT shard file right away ("out of band"; the
//                             shard being filled stays open and gets a later number)
//       else: the shard being filled is committed and a new one begun
//     the parameter is appended to the shard being filled at byteOffset = pending
//   the last shard being filled is committed at the end.
// So a shard of several parameters stays below the cap (32 MiB), and a parameter of 16 MiB or more that does not
// fit the shard being filled gets a shard of its own (one that fits may join it: 3.5 + 28 MiB < 32 MiB). Shard
// files are numbered in commit order.

export type CacheDType = 'float16' | 'float32' | 'uint32';

export const CACHE_DTYPE_BYTES: Record<CacheDType, number> = { float16: 2, float32: 4, uint32: 4 };

/** One record of tensor-cache.json (ndarray-cache.json for WebLLM 0.2.79), as written and as read back. */
export interface TensorCacheRecord {
  name: string;
  shape: number[];
  dtype: string;
  format: string;
  nbytes: number;
  byteOffset: number;
}

/** One shard file's entry in tensor-cache.json. */
export interface TensorCacheShard {
  dataPath: string;
  format: string;
  nbytes: number;
  md5sum: string;
  records: TensorCacheRecord[];
}

/** tensor-cache.json. */
export interface TensorCacheFile {
  metadata: { ParamSize: number; ParamBytes: number; BitsPerParam: number };
  records: TensorCacheShard[];
}

/** MLC's default shard cap (shard_cap_mb = 32). */
export const DEFAULT_SHARD_CAP_BYTES = 32 * (1 << 20);

export interface OutParam {
  name: string;
  shape: number[];
  dtype: CacheDType;
  nbytes: number;
}

export interface ShardRecord extends OutParam {
  format: 'raw';
  byteOffset: number;
}

export interface ShardPlan {
  dataPath: string;
  nbytes: number;
  records: ShardRecord[];
}

export function outParam(name: string, shape: number[], dtype: CacheDType): OutParam {
  return { name, shape, dtype, nbytes: shape.reduce((a, b) => a * b, 1) * CACHE_DTYPE_BYTES[dtype] };
}

/** The shard files for these parameters (in this order), named `${prefix}_${k}.bin`. */
export function planShards(params: readonly OutParam[], capBytes: number, prefix: string): ShardPlan[] {
  if (!Number.isSafeInteger(capBytes) || capBytes < 1) throw new Error(`shard cap must be a positive integer, got ${capBytes}`);
  const shards: ShardPlan[] = [];
  let pending: ShardRecord[] = [];
  let pendingBytes = 0;
  const commit = (records: ShardRecord[], nbytes: number): void => {
    shards.push({ dataPath: `${prefix}_${shards.length}.bin`, nbytes, records });
  };
  const seen = new Set<string>();
  for (const p of params) {
    if (seen.has(p.name)) throw new Error(`duplicate parameter name "${p.name}"`);
    seen.add(p.name);
    const rec: ShardRecord = { name: p.name, shape: [...p.shape], dtype: p.dtype, format: 'raw', nbytes: p.nbytes, byteOffset: 0 };
    if (pendingBytes + p.nbytes >= capBytes) {
      if (p.nbytes * 2 >= capBytes) {
        commit([rec], p.nbytes);
        continue;
      }
      if (pendingBytes !== 0) commit(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
    rec.byteOffset = pendingBytes;
    pending.push(rec);
    pendingBytes += p.nbytes;
  }
  if (pendingBytes !== 0) commit(pending, pendingBytes);
  return shards;
}
