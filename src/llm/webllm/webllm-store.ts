// The converted LLM stored where WebLLM itself looks for it: WebLLM 0.2.79's artifact cache in the Cache API
// (AppConfig.useIndexedDBCache false), so WebLLM loads the model with no network and the gigabytes are stored
// once, not once for us and again for WebLLM. Our native engine reads the same files back.
//
// Layout, as @mlc-ai/web-llm 0.2.79 reads and writes it (tvmjs ArtifactCache, lib/index.js line 4323): one Cache
// per scope, an entry per file keyed by its URL, the body the file's bytes (what `cache.add(url)` stores); scope
// "webllm/config" for mlc-chat-config.json (reloadInternal, line 10710), "webllm/model" for ndarray-cache.json,
// the shards (fetchNDArrayCache, line 5817) and the tokenizer files (asyncLoadTokenizer, line 10325). Each URL is
// `new URL(file, cleanModelUrl(record.model)).href` (model-record.ts). WebLLM's hasModelInCache finds the entries.
// 0.2.79 has no OPFS cache (0.2.86's OPFSStore came later). An entry is put whole, so a half-written file is
// never an entry.
import { BlobCheckpointFiles, type CheckpointFiles } from '../../checkpoint/byte-source.ts';
import type { OutputSink, OutputStream } from '../../convert/sink.ts';
import type { OpfsFolder } from '../../download/opfs.ts';

const CONFIG_SCOPE = 'webllm/config';
const MODEL_SCOPE = 'webllm/model';
const SCOPES = [CONFIG_SCOPE, MODEL_SCOPE] as const;

/** One model's LLM folder (files named relative to it) inside WebLLM's Cache API cache, as an OutputSink. */
export class WebLlmStore implements OutputSink {
  readonly name: string;
  /** Bodies already looked up (a Blob of a cached response is backed by the cache, not copied). */
  private readonly blobs = new Map<string, Blob>();

  /** `folderUrl` is the LLM folder's URL (no fragment), e.g. …/llm-q4f16_1/. */
  constructor(
    private readonly storage: CacheStorage,
    readonly folderUrl: string,
  ) {
    this.name = `WebLLM cache ${folderUrl}`;
  }

  url(path: string): string {
    return new URL(path, this.folderUrl).href;
  }

  private open(path: string): Promise<Cache> {
    return this.storage.open(path === 'mlc-chat-config.json' ? CONFIG_SCOPE : MODEL_SCOPE);
  }

  private async blob(path: string): Promise<Blob | null> {
    const have = this.blobs.get(path);
    if (have) return have;
    const res = await (await this.open(path)).match(this.url(path));
    if (!res) return null;
    const blob = await res.blob();
    this.blobs.set(path, blob);
    return blob;
  }

  /** Puts a whole file; its size goes in Content-Length too (as a fetched entry has it), so size() needs no body. */
  private async put(path: string, body: Blob): Promise<void> {
    this.blobs.delete(path);
    await (await this.open(path)).put(this.url(path), new Response(body, { headers: { 'Content-Length': String(body.size) } }));
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    await this.put(path, new Blob([typeof data === 'string' ? data : (data as Uint8Array<ArrayBuffer>)]));
  }

  async create(path: string): Promise<OutputStream> {
    await this.remove(path);
    const parts: Blob[] = [];
    return {
      write: async (bytes) => {
        parts.push(new Blob([bytes.slice() as Uint8Array<ArrayBuffer>]));
      },
      close: () => this.put(path, new Blob(parts)),
    };
  }

  async size(path: string): Promise<number | null> {
    if (this.blobs.has(path)) return this.blobs.get(path)!.size;
    const res = await (await this.open(path)).match(this.url(path));
    if (!res) return null;
    const length = Number(res.headers.get('Content-Length') ?? NaN);
    return Number.isInteger(length) ? length : (await this.blob(path))!.size;
  }

  async read(path: string, offset: number, length: number): Promise<Uint8Array> {
    const blob = await this.blob(path);
    if (!blob) throw new Error(`${this.url(path)} is not in WebLLM's cache`);
    return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
  }

  async readText(path: string): Promise<string | null> {
    return (await this.blob(path))?.text() ?? null;
  }

  async remove(path: string): Promise<void> {
    this.blobs.delete(path);
    await (await this.open(path)).delete(this.url(path));
  }

  /** Every entry under this folder URL: path relative to it. */
  private async paths(): Promise<string[]> {
    const out: string[] = [];
    for (const scope of SCOPES) {
      for (const req of await (await this.storage.open(scope)).keys()) {
        if (req.url.startsWith(this.folderUrl)) out.push(req.url.slice(this.folderUrl.length));
      }
    }
    return out;
  }

  async list(dir: string): Promise<string[]> {
    const prefix = dir ? `${dir.replace(/\/$/, '')}/` : '';
    return (await this.paths()).filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length)).sort();
  }

  /** The stored files (path relative to the folder, as Blob) for reading back. */
  async files(): Promise<[string, Blob][]> {
    const out: [string, Blob][] = [];
    for (const path of await this.paths()) {
      const b = await this.blob(path);
      if (b) out.push([path, b]);
    }
    return out;
  }

  /**
   * Bytes of every entry from its Content-Length, no body read (a listing must stay cheap: reading a cached body
   * can load gigabytes); an entry without one counts 0.
   */
  async bytes(): Promise<number> {
    let n = 0;
    for (const path of await this.paths()) {
      const res = await (await this.open(path)).match(this.url(path));
      n += Number(res?.headers.get('Content-Length') ?? 0) || 0;
    }
    return n;
  }

  async removeAll(): Promise<void> {
    for (const path of await this.paths()) await this.remove(path);
  }
}

/**
 * A model folder whose `llm-<q>/` lives in WebLLM's cache and everything else in our own OPFS folder: one sink for
 * the installer and one CheckpointFiles for the loader, with the converter's usual paths.
 */
export class SplitModelStore implements OutputSink {
  readonly name: string;

  constructor(
    private readonly folder: OpfsFolder,
    private readonly llmDir: string,
    readonly llm: WebLlmStore,
  ) {
    this.name = folder.name;
  }

  private route(path: string): [OutputSink, string] {
    return path === this.llmDir || path.startsWith(`${this.llmDir}/`) ? [this.llm, path.slice(this.llmDir.length + 1)] : [this.folder, path];
  }

  writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const [sink, p] = this.route(path);
    return sink.writeFile(p, data);
  }
  create(path: string): Promise<OutputStream> {
    const [sink, p] = this.route(path);
    return sink.create(p);
  }
  size(path: string): Promise<number | null> {
    const [sink, p] = this.route(path);
    return sink.size(p);
  }
  read(path: string, offset: number, length: number): Promise<Uint8Array> {
    const [sink, p] = this.route(path);
    return sink.read(p, offset, length);
  }
  readText(path: string): Promise<string | null> {
    const [sink, p] = this.route(path);
    return sink.readText(p);
  }
  remove(path: string): Promise<void> {
    const [sink, p] = this.route(path);
    return sink.remove(p);
  }
  list(dir: string): Promise<string[]> {
    const [sink, p] = this.route(dir);
    return sink.list(p);
  }

  async checkpointFiles(): Promise<CheckpointFiles> {
    const own = await this.folder.walk();
    const llm = (await this.llm.files()).map(([p, f]) => [`${this.llmDir}/${p}`, f] as [string, Blob]);
    return new BlobCheckpointFiles([...own, ...llm], this.folder.name);
  }

  async bytes(): Promise<number> {
    return (await this.folder.walk()).reduce((a, [, f]) => a + f.size, 0) + (await this.llm.bytes());
  }

  /** Deletes the LLM's entries from WebLLM's cache (the model's own folder is deleted by whoever holds its parent). */
  async removeLlm(): Promise<void> {
    await this.llm.removeAll();
  }
}
