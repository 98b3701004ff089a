// The direct weight loader on a stand-in for tvmjs's Instance (the real one needs a model library: npm run
// verify:webllm runs it): the constructor trap reaches the instance, raw records go straight to their tensors (no
// CPU tensor), other formats fall back to tvmjs's own loader, and a library of other shapes is refused first.
// webllm-backend.test.ts checks the tvmjs source this mirrors.
import { describe, expect, it } from 'vitest';
import { INSTANCE_MARKER, libraryMismatch, LibraryAbiError, LibraryMismatchError, withDirectWeightLoading, type CacheShard, type LibraryParam } from './direct-weight-loader.ts';

const LIBRARY: LibraryParam[] = [
  { name: 'model.embed_tokens.weight', shape: ['vocab_size', 4], dtype: 'float32' },
  { name: 'model.layers.0.self_attn.qkv_proj.weight', shape: [12, 4], dtype: 'float32' },
  { name: 'model.norm.weight', shape: [4], dtype: 'float32' },
];

const rec = (name: string, shape: number[], byteOffset: number, format = 'raw') => ({ name, shape, dtype: 'float32', format, nbytes: shape.reduce((a, b) => a * b, 1) * 4, byteOffset });
const SHARDS: CacheShard[] = [
  { dataPath: 'params_shard_0.bin', nbytes: 6 * 16, records: [rec('model.embed_tokens.weight', [6, 4], 0)] },
  { dataPath: 'params_shard_1.bin', nbytes: 12 * 16 + 16, records: [rec('model.layers.0.self_attn.qkv_proj.weight', [12, 4], 0), rec('model.norm.weight', [4], 12 * 16)] },
];

/** What the pipeline's tvmjs Instance does, as far as the loader touches it (0.2.79). */
class FakeInstance {
  // Assigned in the constructor as tvmjs does (a declared field would bypass the trap by defining it).
  declare cacheMetadata: object;
  readonly log: string[] = [];
  readonly written = new Map<string, number[]>();
  readonly initProgressCallback: Array<(r: { progress: number; text: string }) => void> = [];
  constructor(readonly params: LibraryParam[] | 'unreadable') {
    this.cacheMetadata = {};
  }
  fetchNDArrayCacheInternal(..._args: unknown[]): Promise<void> {
    this.log.push('original loader');
    return Promise.resolve();
  }
  withNewScope<T>(f: () => T): T {
    return f();
  }
  detachFromCurrentScope<T>(o: T): T {
    return o;
  }
  webgpu() {
    return 'webgpu';
  }
  createVirtualMachine() {
    if (this.params === 'unreadable') throw new Error('Cannot find function vm_load_executable');
    const text = JSON.stringify({ params: this.params });
    return { getFunction: (name: string) => () => ({ toString: () => (name === '_metadata' ? text : '') }) };
  }
  empty(shape: number[], dtype: string) {
    const name = `${dtype}[${shape.join(',')}]`;
    return {
      copyFromRawBytes: (b: Uint8Array) => {
        this.log.push(`write ${name} ${b.byteLength} bytes at ${b.byteOffset}`);
        this.written.set(name, Array.from(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)));
      },
      dispose: () => undefined,
    };
  }
  ndarrayCacheUpdate(name: string) {
    this.log.push(`cache ${name}`);
  }
}

/** The shards' bytes: value i at float i of each shard. */
const cache = {
  fetched: [] as string[],
  fetchWithCache(url: string): Promise<ArrayBuffer> {
    this.fetched.push(url);
    const shard = SHARDS.find((s) => url.endsWith(s.dataPath))!;
    return Promise.resolve(Float32Array.from({ length: shard.nbytes / 4 }, (_, i) => i).buffer);
  },
};
const device = { sync: () => Promise.resolve() };
const OPTS = { library: 'https://h/lib.wasm', model: 'the model' };

describe('direct weight loader', () => {
  it('reaches the Instance a reload creates and writes each raw record straight into its GPU tensor', async () => {
    let inst!: FakeInstance;
    const { trace } = await withDirectWeightLoading(OPTS, async () => {
      inst = new FakeInstance(LIBRARY);
      const progress: number[] = [];
      inst.initProgressCallback.push((r) => progress.push(r.progress));
      await inst.fetchNDArrayCacheInternal.call(inst, 'https://h/m/', SHARDS, device, cache);
      expect(progress.at(-1)).toBe(1);
      return inst;
    });
    expect(trace).toEqual({ instantiated: true, checked: true });
    expect(inst.log).toEqual([
      'write float32[6,4] 96 bytes at 0',
      'cache model.embed_tokens.weight',
      'write float32[12,4] 192 bytes at 0',
      'cache model.layers.0.self_attn.qkv_proj.weight',
      'write float32[4] 16 bytes at 192',
      'cache model.norm.weight',
    ]);
    expect(inst.written.get('float32[4]')).toEqual([48, 49, 50, 51]);
    expect(cache.fetched.slice(-2)).toEqual(['https://h/m/params_shard_0.bin', 'https://h/m/params_shard_1.bin']);
    // The trap is gone once the reload is over: later objects are untouched.
    expect(Object.getOwnPropertyDescriptor(Object.prototype, INSTANCE_MARKER)).toBeUndefined();
    expect(Object.hasOwn(new FakeInstance(LIBRARY), 'fetchNDArrayCacheInternal')).toBe(false);
    expect(({} as Record<string, unknown>)[INSTANCE_MARKER]).toBeUndefined();
  });

  it('hands records in another format (MLC f32-to-bf16) to tvmjs\'s own loader', async () => {
    const shards = SHARDS.map((s) => ({ ...s, records: s.records.map((r) => ({ ...r, format: 'f32-to-bf16' })) }));
    await withDirectWeightLoading(OPTS, async () => {
      const inst = new FakeInstance(LIBRARY);
      await inst.fetchNDArrayCacheInternal.call(inst, 'https://h/m/', shards, device, cache);
      expect(inst.log).toEqual(['original loader']);
    });
  });

  it('refuses a library of other shapes before reading a weight, and one it cannot read', async () => {
    const other = LIBRARY.map((p) => (p.name === 'model.norm.weight' ? { ...p, shape: [8] } : p));
    const err = await withDirectWeightLoading(OPTS, async () => {
      const inst = new FakeInstance(other);
      await inst.fetchNDArrayCacheInternal.call(inst, 'https://h/m/', SHARDS, device, cache);
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LibraryMismatchError);
    expect((err as Error).message).toBe('the model library https://h/lib.wasm is compiled for other shapes than this model\'s LLM (the model): "model.norm.weight" is float32 [8] in the library, float32 [4] in the weights');
    expect((err as { trace: unknown }).trace).toEqual({ instantiated: true, checked: false });
    const abi = await withDirectWeightLoading(OPTS, async () => {
      const inst = new FakeInstance('unreadable');
      await inst.fetchNDArrayCacheInternal.call(inst, 'https://h/m/', SHARDS, device, cache);
    }).catch((e: unknown) => e);
    expect(abi).toBeInstanceOf(LibraryAbiError);
    expect((abi as Error).message).toMatch(/could not be read by WebLLM 0\.2\.79's runtime \(Cannot find function vm_load_executable\)/);
    expect(Object.getOwnPropertyDescriptor(Object.prototype, INSTANCE_MARKER)).toBeUndefined();
  });

  it('compares parameter lists, symbolic dimensions taking any size', () => {
    const records = SHARDS.flatMap((s) => s.records);
    expect(libraryMismatch(LIBRARY, records)).toBeNull();
    expect(libraryMismatch(LIBRARY.slice(0, 2), records)).toBe('the weights have "model.norm.weight", which the library does not use');
    expect(libraryMismatch([...LIBRARY, { name: 'lm_head.weight', shape: ['vocab_size', 4], dtype: 'float32' }], records)).toBe('the library needs "lm_head.weight", which the weights do not have');
    expect(libraryMismatch([{ ...LIBRARY[0]!, dtype: 'float16' }], records.slice(0, 1))).toMatch(/float16 \[vocab_size, 4\] in the library, float32 \[6, 4\]/);
  });
});
