// The converted LLM stored where WebLLM itself looks for it: WebLLM's OPFS artifact cache (AppConfig.cacheBackend
// "opfs"), so WebLLM loads the model with no network and the 4.5 GB are stored once, not once for us and again
// for WebLLM. Our native engine reads the same files back.
//
// Layout, as @mlc-ai/web-llm 0.2.86 writes it (tvmjs OPFSStore, lib/index.js lines 5835-6270):
//   tvmjs-opfs-store/<scope>/<sha256 hex of the URL>.bin           the file's bytes
//   tvmjs-opfs-store/<scope>/<sha256 hex of the URL>.record.json   {"url", "nbytes"}: the entry exists only with it
// scope "webllm/config" for mlc-chat-config.json, "webllm/model" for tensor-cache.json, the shards and the
// tokenizer files; each URL is `new URL(file, cleanModelUrl(record.model)).href` (model-record.ts).
import { BlobCheckpointFiles, type CheckpointFiles } from '../../checkpoint/byte-source.ts';
import type { OutputSink, OutputStream } from '../../convert/sink.ts';
import type { OpfsFolder } from '../../download/opfs.ts';

export const WEBLLM_OPFS_ROOT = 'tvmjs-opfs-store';
const CONFIG_SCOPE = 'webllm/config';
const MODEL_SCOPE = 'webllm/model';
const SCOPES = [CONFIG_SCOPE, MODEL_SCOPE] as const;

interface Record {
  url: string;
  nbytes: number;
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/** One model's LLM folder (files named relative to it) inside WebLLM's OPFS cache, as an OutputSink. */
export class WebLlmStore implements OutputSink {
  readonly name: string;

  /** `root` is the OPFS folder tvmjs-opfs-store; `folderUrl` the LLM folder's URL (no fragment), e.g. …/llm-q4f16_1/. */
  constructor(
    private readonly root: OpfsFolder,
    readonly folderUrl: string,
  ) {
    this.name = `WebLLM cache ${folderUrl}`;
  }

  url(path: string): string {
    return new URL(path, this.folderUrl).href;
  }

  private async entry(path: string): Promise<{ payload: string; record: string }> {
    const scope = path === 'mlc-chat-config.json' ? CONFIG_SCOPE : MODEL_SCOPE;
    const h = await sha256Hex(this.url(path));
    return { payload: `${scope}/${h}.bin`, record: `${scope}/${h}.record.json` };
  }

  private async record(path: string): Promise<Record | null> {
    const text = await this.root.readText((await this.entry(path)).record);
    const rec = text ? (JSON.parse(text) as Record) : null;
    return rec && rec.url === this.url(path) ? rec : null;
  }

  async writeFile(path: string, data: Uint8Array | string): Promise<void> {
    const out = await this.create(path);
    await out.write(typeof data === 'string' ? new TextEncoder().encode(data) : data);
    await out.close();
  }

  async create(path: string): Promise<OutputStream> {
    const e = await this.entry(path);
    // As WebLLM does: the record goes first and comes back last, so a half-written file is never an entry.
    await this.root.remove(e.record);
    const payload = await this.root.create(e.payload);
    let nbytes = 0;
    return {
      write: async (bytes) => {
        await payload.write(bytes);
        nbytes += bytes.byteLength;
      },
      close: async () => {
        await payload.close();
        await this.root.writeFile(e.record, JSON.stringify({ url: this.url(path), nbytes } satisfies Record));
      },
    };
  }

  async size(path: string): Promise<number | null> {
    const rec = await this.record(path);
    if (!rec) return null;
    return (await this.root.size((await this.entry(path)).payload)) === rec.nbytes ? rec.nbytes : null;
  }

  async read(path: string, offset: number, length: number): Promise<Uint8Array> {
    return this.root.read((await this.entry(path)).payload, offset, length);
  }

  async readText(path: string): Promise<string | null> {
    return (await this.size(path)) === null ? null : this.root.readText((await this.entry(path)).payload);
  }

  async remove(path: string): Promise<void> {
    const e = await this.entry(path);
    await this.root.remove(e.record);
    await this.root.remove(e.payload);
  }

  /** Every complete entry under this folder URL: path relative to it -> record. */
  private async entries(): Promise<Map<string, { rec: Record; payload: string }>> {
    const out = new Map<string, { rec: Record; payload: string }>();
    for (const scope of SCOPES) {
      for (const f of await this.root.list(scope)) {
        if (!f.endsWith('.record.json')) continue;
        const rec = JSON.parse((await this.root.readText(`${scope}/${f}`)) ?? 'null') as Record | null;
        if (rec?.url.startsWith(this.folderUrl)) out.set(rec.url.slice(this.folderUrl.length), { rec, payload: `${scope}/${f.replace(/\.record\.json$/, '.bin')}` });
      }
    }
    return out;
  }

  async list(dir: string): Promise<string[]> {
    const prefix = dir ? `${dir.replace(/\/$/, '')}/` : '';
    return [...(await this.entries()).keys()].filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map((p) => p.slice(prefix.length)).sort();
  }

  /** The stored files (path relative to the folder, as File) for reading back. */
  async files(): Promise<[string, File][]> {
    const out: [string, File][] = [];
    for (const [path, { payload }] of await this.entries()) {
      const f = await this.root.file(payload);
      if (f) out.push([path, f]);
    }
    return out;
  }

  async removeAll(): Promise<void> {
    for (const path of (await this.entries()).keys()) await this.remove(path);
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
    return [...(await this.folder.walk()), ...(await this.llm.files())].reduce((a, [, f]) => a + f.size, 0);
  }

  /** Deletes the LLM's entries from WebLLM's cache (the model's own folder is deleted by whoever holds its parent). */
  async removeLlm(): Promise<void> {
    await this.llm.removeAll();
  }
}
