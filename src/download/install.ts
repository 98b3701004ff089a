// Getting a model onto the user's machine, three ways, all ending in one stored folder (OPFS in the browser, any
// OutputSink in tests): the official Hugging Face checkpoint converted as it streams in (only the converted result is
// stored), a converted folder at a URL (`npm run convert` output on a static host), or a local folder, raw or
// converted. Only what this GPU needs is stored: the LLM in one MLC format and the image side in q4.
// Resumable: the converter keeps a journal, copies skip verified files; `model.json` is written last, so a folder
// without it is an unfinished install that is never loaded.
import { md5 } from '@noble/hashes/legacy.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { UrlCheckpointFiles, type CheckpointFiles } from '../checkpoint/byte-source.ts';
import { MissingVisionTowerError, openCheckpoint } from '../checkpoint/checkpoint.ts';
import { convertCheckpoint, isMlcQ4, MLC_INDEX_FILE, plannedOutputBytes, type ConvertOutput, type MlcQuantization, type TensorCacheFile } from '../convert/index.ts';
import { hashFile } from '../convert/shard-writer.ts';
import type { OutputSink } from '../convert/sink.ts';

export type InstallSource =
  /** The official checkpoint on the Hugging Face hub (or a server with the same URLs). */
  | { kind: 'hub'; hubUrl: string; repo: string; revision?: string; clipRepo?: string }
  /** A converted folder served over HTTP. */
  | { kind: 'url'; url: string }
  /** A local folder: a raw checkpoint or a converted one (and the CLIP folder, for a checkpoint without the tower). */
  | { kind: 'folder'; name: string; files: CheckpointFiles; clipFiles?: CheckpointFiles };

export interface InstallProgress {
  stage: 'checking' | 'converting' | 'downloading' | 'done';
  /** The tensor being converted or the file being downloaded. */
  item: string | null;
  bytesDone: number;
  bytesTotal: number;
}

/** model.json: present only in a complete model folder. */
export interface StoredModelInfo {
  id: string;
  name: string;
  /** Where it came from, for people ("hub ICTNLP/llava-mini-llama-3.1-8b", a URL, a folder name). */
  source: string;
  format: MlcQuantization;
  outputs: ConvertOutput[];
  bytes: number;
  installedAt: string;
}

/** install.json: an install under way or cut off. `resume` repeats it (a local folder must be picked again). */
export interface UnfinishedInstall {
  id: string;
  name: string;
  source: string;
  format: MlcQuantization;
  startedAt: string;
  resume: Exclude<InstallSource, { kind: 'folder' }> | null;
}

export const MODEL_INFO = 'model.json';
/** install.json: what an unfinished install was doing, so the app can offer to resume it after a reload. */
export const INSTALL_INFO = 'install.json';
export const DEFAULT_HUB_URL = 'https://huggingface.co';
export const OFFICIAL_REPO = 'ICTNLP/llava-mini-llama-3.1-8b';
export const CLIP_REPO = 'openai/clip-vit-large-patch14-336';

export interface InstallContext {
  /** Bytes the storage can still take (quota minus usage). */
  freeBytes(): Promise<number>;
  fetch?: typeof fetch;
  onProgress?: (p: InstallProgress) => void;
  signal?: AbortSignal;
}

/** The image-side pack stored with an LLM format: int4 for an int4 LLM, f16 for an unquantized one (it runs at f32 / f16). */
export const installPack = (format: MlcQuantization): 'mm-q4' | 'mm-f16' => (isMlcQ4(format) ? 'mm-q4' : 'mm-f16');

export const installOutputs = (format: MlcQuantization): ConvertOutput[] => [`llm-${format}`, installPack(format)];

function hubFiles(hubUrl: string, repo: string, revision: string, fetchFn: typeof fetch): UrlCheckpointFiles {
  return new UrlCheckpointFiles(`${hubUrl.replace(/\/+$/, '')}/${repo}/resolve/${revision}`, { fetch: fetchFn });
}

const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 80);

export function describeSource(source: InstallSource): string {
  return source.kind === 'hub' ? `${source.repo} (${source.hubUrl})` : source.kind === 'url' ? source.url : `folder ${source.name}`;
}

/** The same source and format give the same id, so an install started before a reload resumes in the same folder. */
export function modelIdFor(source: InstallSource, format: MlcQuantization): string {
  const what = source.kind === 'hub' ? `${source.hubUrl}|${source.repo}|${source.revision ?? 'main'}` : source.kind === 'url' ? source.url : source.name;
  const name = source.kind === 'hub' ? source.repo.split('/').pop()! : source.kind === 'url' ? new URL(source.url).pathname.split('/').filter(Boolean).pop() ?? 'model' : source.name;
  return `${slug(name)}-${format}-${bytesToHex(sha256(new TextEncoder().encode(`${source.kind}|${what}`))).slice(0, 8)}`;
}

export async function isConvertedFolder(files: CheckpointFiles, format: MlcQuantization): Promise<boolean> {
  return (await files.exists(`llm-${format}/${MLC_INDEX_FILE}`)) && (await files.exists(`${installPack(format)}/manifest.json`));
}

/**
 * The LLM format to store from `source` on a device that runs `deviceFormat`: that one, unless the source is a
 * converted folder without it but with an unquantized format the device runs (q0f32 anywhere, q0f16 with
 * shader-f16), which is then stored as it is.
 */
export async function formatToInstall(source: InstallSource, deviceFormat: MlcQuantization, fetchFn: typeof fetch = globalThis.fetch.bind(globalThis)): Promise<MlcQuantization> {
  if (source.kind === 'hub') return deviceFormat;
  const files = source.kind === 'url' ? new UrlCheckpointFiles(source.url, { fetch: fetchFn }) : source.files;
  if (await isConvertedFolder(files, deviceFormat)) return deviceFormat;
  const unquantized: MlcQuantization[] = deviceFormat === 'q4f16_1' ? ['q0f16', 'q0f32'] : ['q0f32'];
  for (const q of unquantized) if (await isConvertedFolder(files, q)) return q;
  return deviceFormat;
}

async function checkRoom(ctx: InstallContext, needBytes: number): Promise<void> {
  const free = await ctx.freeBytes();
  if (needBytes > free) {
    const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
    throw new Error(`Not enough storage: the model needs ${gb(needBytes)} more and the browser lets this site store ${gb(Math.max(0, free))} more. Delete cached models or free disk space, then try again.`);
  }
}

interface CopyItem {
  path: string;
  nbytes: number | null;
  md5?: string;
  sha256?: string;
}

/** What a converted folder holds for one format: shards with their hashes, the small files, and the index files. */
async function convertedFiles(files: CheckpointFiles, format: MlcQuantization): Promise<{ items: CopyItem[]; indexes: string[] }> {
  const llm = `llm-${format}`;
  const pack = installPack(format);
  const cache = JSON.parse(await files.readText(`${llm}/${MLC_INDEX_FILE}`)) as TensorCacheFile;
  const chat = JSON.parse(await files.readText(`${llm}/mlc-chat-config.json`)) as { tokenizer_files?: string[] };
  const manifest = JSON.parse(await files.readText(`${pack}/manifest.json`)) as { files: { path: string; nbytes: number; sha256: string }[] };
  const items: CopyItem[] = [
    { path: `${llm}/mlc-chat-config.json`, nbytes: null },
    ...(chat.tokenizer_files ?? []).map((t) => ({ path: `${llm}/${t}`, nbytes: null })),
    ...cache.records.map((r) => ({ path: `${llm}/${r.dataPath}`, nbytes: r.nbytes, md5: r.md5sum })),
    ...manifest.files.map((f) => ({ path: `${pack}/${f.path}`, nbytes: f.nbytes, sha256: f.sha256 })),
  ];
  return { items, indexes: [`${llm}/${MLC_INDEX_FILE}`, `${pack}/manifest.json`] };
}

async function matches(sink: OutputSink, item: CopyItem): Promise<boolean> {
  const size = await sink.size(item.path);
  if (size === null || (item.nbytes !== null && size !== item.nbytes)) return false;
  if (!item.md5 && !item.sha256) return true;
  const h = await hashFile(sink, item.path, size);
  return (!item.md5 || h.md5 === item.md5) && (!item.sha256 || h.sha256 === item.sha256);
}

/** Copies a converted folder file by file, each checked against the hash its index records. */
async function copyConverted(files: CheckpointFiles, sink: OutputSink, format: MlcQuantization, ctx: InstallContext): Promise<void> {
  const { items, indexes } = await convertedFiles(files, format);
  const bytesTotal = items.reduce((a, i) => a + (i.nbytes ?? 0), 0);
  let bytesDone = 0;
  const todo: CopyItem[] = [];
  for (const item of items) {
    if (await matches(sink, item)) bytesDone += item.nbytes ?? 0;
    else todo.push(item);
  }
  await checkRoom(ctx, bytesTotal - bytesDone);
  for (const item of todo) {
    ctx.signal?.throwIfAborted();
    ctx.onProgress?.({ stage: 'downloading', item: item.path, bytesDone, bytesTotal });
    const src = files.open(item.path);
    const bytes = await src.read(0, item.nbytes ?? (await src.size()));
    const got = { md5: item.md5 ? bytesToHex(md5(bytes)) : undefined, sha256: item.sha256 ? bytesToHex(sha256(bytes)) : undefined };
    if ((item.md5 && got.md5 !== item.md5) || (item.sha256 && got.sha256 !== item.sha256)) {
      const [kind, want, have] = item.md5 ? ['md5', item.md5, got.md5] : ['sha256', item.sha256, got.sha256];
      throw new Error(`${item.path} arrived corrupted (${kind} ${have}, the index says ${want}); nothing of it was stored. Try again; if it repeats, the hosted copy is damaged.`);
    }
    await sink.writeFile(item.path, bytes);
    bytesDone += item.nbytes ?? 0;
  }
  // The index files last: a folder with them has every shard they list.
  for (const path of indexes) await sink.writeFile(path, await files.readText(path));
  ctx.onProgress?.({ stage: 'done', item: null, bytesDone: bytesTotal, bytesTotal });
}

/** Bytes of the files in the output folders. */
async function storedBytes(sink: OutputSink, outputs: readonly ConvertOutput[]): Promise<number> {
  let bytes = 0;
  for (const o of outputs) for (const f of await sink.list(o)) bytes += (await sink.size(`${o}/${f}`)) ?? 0;
  return bytes;
}

/** Converts a raw checkpoint into the sink, storing only the outputs this GPU uses. */
async function convertInto(files: CheckpointFiles, sink: OutputSink, format: MlcQuantization, ctx: InstallContext, clipFolder?: CheckpointFiles): Promise<void> {
  const outputs = installOutputs(format);
  ctx.onProgress?.({ stage: 'checking', item: null, bytesDone: 0, bytesTotal: 0 });
  // The CLIP folder is read only when the checkpoint has no vision tower of its own.
  let clipFiles: CheckpointFiles | undefined;
  const ck = await openCheckpoint(files).catch((e: unknown) => {
    if (!(e instanceof MissingVisionTowerError) || !clipFolder) throw e;
    clipFiles = clipFolder;
    return openCheckpoint(files, { clipFiles });
  });
  // A resumed conversion already holds some shards: the quota check counts what is left (an upper bound).
  await checkRoom(ctx, plannedOutputBytes(ck.config, outputs) - (await storedBytes(sink, outputs)));
  await convertCheckpoint(files, sink, {
    outputs,
    ...(clipFiles ? { clipFiles, clipOptionName: `the ${CLIP_REPO} repository` } : {}),
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    onProgress: (p) => ctx.onProgress?.({ stage: p.stage === 'done' ? 'done' : 'converting', item: p.tensor, bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
  });
}

/** Installs a model into `sink` (a model's own folder). Errors are one sentence each; a retry resumes. */
export async function installModel(source: InstallSource, format: MlcQuantization, sink: OutputSink, ctx: InstallContext): Promise<StoredModelInfo> {
  const fetchFn = ctx.fetch ?? globalThis.fetch.bind(globalThis);
  const id = modelIdFor(source, format);
  const name = source.kind === 'hub' ? source.repo : source.kind === 'url' ? source.url.replace(/\/+$/, '').split('/').pop()! : source.name;
  await sink.remove(MODEL_INFO);
  const unfinished: UnfinishedInstall = { id, name, source: describeSource(source), format, startedAt: new Date().toISOString(), resume: source.kind === 'folder' ? null : source };
  await sink.writeFile(INSTALL_INFO, JSON.stringify(unfinished));
  if (source.kind === 'hub') {
    const revision = source.revision ?? 'main';
    await convertInto(hubFiles(source.hubUrl, source.repo, revision, fetchFn), sink, format, ctx, hubFiles(source.hubUrl, source.clipRepo ?? CLIP_REPO, 'main', fetchFn));
  } else {
    const files = source.kind === 'url' ? new UrlCheckpointFiles(source.url, { fetch: fetchFn }) : source.files;
    if (await isConvertedFolder(files, format)) await copyConverted(files, sink, format, ctx);
    else if (source.kind === 'folder') await convertInto(files, sink, format, ctx, source.clipFiles);
    else throw new Error(`${source.url} has no converted model for ${format} (llm-${format}/${MLC_INDEX_FILE} and ${installPack(format)}/manifest.json): host the output of npm run convert there`);
  }
  const outputs = installOutputs(format);
  const info: StoredModelInfo = { id, name, source: describeSource(source), format, outputs, bytes: await storedBytes(sink, outputs), installedAt: new Date().toISOString() };
  await sink.writeFile(MODEL_INFO, JSON.stringify(info, null, 2));
  await sink.remove(INSTALL_INFO);
  return info;
}
