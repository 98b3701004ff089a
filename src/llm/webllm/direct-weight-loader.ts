// Loading a model's weights into WebLLM without the wasm heap, and checking the library against them first.
//
// WebLLM 0.2.79's tvmjs (Instance.fetchNDArrayCacheInternal, lib/index.js line 5845) copies every weight record
// into a CPU tensor inside the model library's wasm32 memory (capped at 2 GiB) and then to the GPU: a record of
// about 1 GB (Llama-3.2-1B's float32 embedding) fails there ("Failed to load shard 0's record", exit(1)). The
// replacement below writes each raw record straight into its GPU tensor (Tensor.copyFromRawBytes, line 5185:
// WebGPUContext.copyRawBytesToBuffer = queue.writeBuffer from the shard's ArrayBuffer, line 3918) and registers it
// by name as the original does (ndarrayCacheUpdate), so LLMChatPipeline finds its params unchanged.
//
// Before any weight is read it compares the library's own parameter list (the VM's `_metadata`, what
// LLMChatPipeline loads by name, line 8676) with the model's ndarray-cache.json: a library compiled for other
// shapes is refused with both named, instead of failing deep in the pipeline or computing garbage.
//
// Reaching the tvmjs Instance: MLCEngine.reloadInternal creates it (instantiate, line 6756) and calls
// fetchNDArrayCache on it before anything else can see it; the class is not exported. Its constructor's first
// statement is `this.cacheMetadata = {}` (line 5484). While a reload runs, an accessor on Object.prototype catches
// that assignment, makes it a plain own property again and gives that one instance the replacement method.
// webllm-backend.test.ts checks all of this against the installed package's source.

import type { TensorCacheRecord, TensorCacheShard } from '../../format/tensor-cache.ts';

/** A shard entry of ndarray-cache.json, as far as tvmjs reads it. */
export type CacheShard = Pick<TensorCacheShard, 'dataPath' | 'nbytes' | 'records'>;

/** A parameter the library expects (its `_metadata` params); a dimension can be symbolic ("vocab_size"). */
export interface LibraryParam {
  name: string;
  shape: Array<number | string>;
  dtype: string;
}

/** A concrete shape fits a library shape when every numeric dimension is equal (symbolic ones take any size). */
const shapeFits = (lib: readonly (number | string)[], have: readonly number[]) => lib.length === have.length && lib.every((d, i) => typeof d !== 'number' || d === have[i]);

/** The library was compiled for other shapes than the model's weights have. */
export class LibraryMismatchError extends Error {}

/** The library could not be instantiated or read by the pinned WebLLM's runtime (another ABI, or not a model library). */
export class LibraryAbiError extends Error {}

/** The first difference between the library's parameters and the model's records, or null when they match. */
export function libraryMismatch(library: readonly LibraryParam[], records: readonly TensorCacheRecord[]): string | null {
  const have = new Map(records.map((r) => [r.name, r]));
  for (const p of library) {
    const r = have.get(p.name);
    if (!r) return `the library needs "${p.name}", which the weights do not have`;
    if (r.dtype !== p.dtype || !shapeFits(p.shape, r.shape)) {
      return `"${p.name}" is ${p.dtype} [${p.shape.join(', ')}] in the library, ${r.dtype} [${r.shape.join(', ')}] in the weights`;
    }
  }
  const wanted = new Set(library.map((p) => p.name));
  const extra = records.find((r) => !wanted.has(r.name));
  return extra ? `the weights have "${extra.name}", which the library does not use` : null;
}

/** The members of tvmjs's Instance the replacement uses (0.2.79). */
interface TvmInstanceInternals {
  initProgressCallback: Array<(r: { progress: number; timeElapsed: number; text: string }) => void>;
  withNewScope<T>(f: () => T): T;
  detachFromCurrentScope<T>(obj: T): T;
  empty(shape: number[], dtype: string, device: unknown): { copyFromRawBytes(b: Uint8Array): unknown; dispose(): void };
  ndarrayCacheUpdate(name: string, arr: unknown, override: boolean): void;
  createVirtualMachine(device: unknown): { getFunction(name: string): () => { toString(): string } };
  webgpu(): unknown;
  fetchNDArrayCacheInternal(url: string, list: CacheShard[], device: { sync(): Promise<void> }, cache: ArtifactCacheLike, signal?: AbortSignal): Promise<void>;
}

interface ArtifactCacheLike {
  fetchWithCache(url: string, storetype: 'arraybuffer', signal?: AbortSignal): Promise<ArrayBuffer>;
}

/** The first property the tvmjs Instance constructor assigns (0.2.79 line 5484). */
export const INSTANCE_MARKER = 'cacheMetadata';

export interface DirectLoadOptions {
  /** The library URL (for messages). */
  library: string;
  /** What the library was checked against (for messages): the model's folder. */
  model: string;
}

export interface DirectLoadTrace {
  /** The tvmjs Instance was created (the library instantiated). */
  instantiated: boolean;
  /** The library's parameters were read and matched the weights. */
  checked: boolean;
}

function readLibraryParams(tvm: TvmInstanceInternals, opts: DirectLoadOptions): LibraryParam[] {
  try {
    return tvm.withNewScope(() => {
      const meta = JSON.parse(tvm.createVirtualMachine(tvm.webgpu()).getFunction('_metadata')().toString()) as { params?: LibraryParam[] };
      if (!Array.isArray(meta.params)) throw new Error('its metadata lists no params');
      return meta.params;
    });
  } catch (e) {
    throw new LibraryAbiError(`the model library ${opts.library} could not be read by WebLLM 0.2.79's runtime (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** The replacement for Instance.fetchNDArrayCacheInternal (same arguments). */
function directFetch(opts: DirectLoadOptions, trace: DirectLoadTrace, original: TvmInstanceInternals['fetchNDArrayCacheInternal']) {
  return async function (this: TvmInstanceInternals, url: string, list: CacheShard[], device: { sync(): Promise<void> }, cache: ArtifactCacheLike, signal?: AbortSignal): Promise<void> {
    const records = list.flatMap((s) => s.records);
    const mismatch = libraryMismatch(readLibraryParams(this, opts), records);
    if (mismatch) {
      throw new LibraryMismatchError(`the model library ${opts.library} is compiled for other shapes than this model's LLM (${opts.model}): ${mismatch}`);
    }
    trace.checked = true;
    // Records stored in another format (MLC's own "f32-to-bf16") need tvmjs's decoder: its own path.
    if (records.some((r) => r.format !== 'raw')) return original.call(this, url, list, device, cache, signal);
    const total = list.reduce((a, s) => a + s.nbytes, 0);
    const t0 = performance.now();
    let done = 0;
    const report = (text: string) => {
      for (const cb of this.initProgressCallback) cb({ progress: total ? done / total : 1, timeElapsed: Math.round((performance.now() - t0) / 1000), text });
    };
    report('Start to fetch params');
    for (let i = 0; i < list.length; i++) {
      const shard = list[i]!;
      const buffer = await cache.fetchWithCache(new URL(shard.dataPath, url).href, 'arraybuffer', signal);
      for (const rec of shard.records) {
        const t = this.withNewScope(() => this.detachFromCurrentScope(this.empty(rec.shape, rec.dtype, device)));
        t.copyFromRawBytes(new Uint8Array(buffer, rec.byteOffset, rec.nbytes));
        this.ndarrayCacheUpdate(rec.name, t, false);
        t.dispose();
      }
      await device.sync();
      done += shard.nbytes;
      report(`Loading model weights [${i + 1}/${list.length}]: ${Math.round(done / 2 ** 20)} MB, straight to the GPU`);
    }
  };
}

/**
 * Runs `reload` (an MLCEngine.reload) with every tvmjs Instance it creates loading weights through directFetch.
 * Errors keep their class; `trace` says how far the library got.
 */
export async function withDirectWeightLoading<T>(opts: DirectLoadOptions, reload: () => Promise<T>): Promise<{ result: T; trace: DirectLoadTrace }> {
  const trace: DirectLoadTrace = { instantiated: false, checked: false };
  const proto = Object.prototype as Record<string, unknown>;
  if (Object.getOwnPropertyDescriptor(proto, INSTANCE_MARKER)) throw new Error('a WebLLM model is already loading');
  Object.defineProperty(proto, INSTANCE_MARKER, {
    configurable: true,
    set(this: TvmInstanceInternals, value: unknown) {
      Object.defineProperty(this, INSTANCE_MARKER, { value, writable: true, enumerable: true, configurable: true });
      const own = this as unknown as Record<string, unknown>;
      const original = Object.getPrototypeOf(this)?.fetchNDArrayCacheInternal as TvmInstanceInternals['fetchNDArrayCacheInternal'] | undefined;
      if (typeof original !== 'function') return; // some other object with this field
      trace.instantiated = true;
      own.fetchNDArrayCacheInternal = directFetch(opts, trace, original);
    },
  });
  try {
    return { result: await reload(), trace };
  } catch (e) {
    throw Object.assign(e instanceof Error ? e : new Error(String(e)), { trace });
  } finally {
    delete proto[INSTANCE_MARKER];
  }
}
