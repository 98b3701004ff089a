// A converted model folder (`npm run convert` output) as an EncodedWeightSource: the LLM from an MLC folder
// (llm-q4f16_1/, llm-q4f32_1/ or unquantized llm-q0f16/, llm-q0f32/: ndarray-cache.json + params_shard_K.bin) and everything else from our pack
// (mm-q4/ or mm-f16/: manifest.json + pack_shard_K.bin), read through any byte source (files, Blobs, URLs).
// Tensors go to the GPU as stored: MLC's int4 words and scales byte for byte, its fused qkv_proj / gate_up_proj
// served as row ranges under the engine's q/k/v and gate/up names (rows are contiguous bytes in q_weight and
// q_scale). Every record's shape and dtype is checked against the config before anything is read.
import type { ByteSource, CheckpointFiles } from '../checkpoint/byte-source.ts';
import { readRequiredJson, openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { parseLlavaMiniConfig } from '../checkpoint/config.ts';
import { expectedTensorList } from '../checkpoint/expected-tensors.ts';
import type { LlavaMiniConfig, TensorInfo } from '../checkpoint/types.ts';
import { jobParams, type Job } from '../format/jobs.ts';
import { isMlcQ4, mlcJobs, MLC_INDEX_FILE, mlcModelDType, type MlcQuantization } from '../format/mlc.ts';
import { packJobs, PACK_FORMAT, PACK_MANIFEST, PACK_PRECISIONS, PACK_VERSION, type PackManifest, type PackPrecision } from '../format/pack.ts';
import type { CacheDType } from '../format/tensor-cache.ts';
import { decodeRows, rowBytes, type EncodedRows, type Storage } from '../gpu/storage.ts';
import type { Precision } from '../precision/policy.ts';
import type { EncodedWeightSource } from './encoded-source.ts';

const JOURNAL = 'convert-journal.json';

/** One stored parameter: its file (relative to the converted folder) and byte range. */
interface StoredRecord {
  name: string;
  file: string;
  byteOffset: number;
  nbytes: number;
  shape: number[];
  dtype: string;
}

/** Where an engine tensor's rows live: rows [rowOffset, rowOffset + rows) of a stored (possibly fused) parameter. */
interface Entry {
  storage: Storage;
  /** The engine tensor's shape (as the checkpoint has it). */
  shape: readonly number[];
  rows: number;
  cols: number;
  rowOffset: number;
  /** Values (f16 / f32) or int4 words. */
  data: StoredRecord;
  /** int4 scales. */
  scales?: StoredRecord;
  /** The index file that lists it (for error messages). */
  index: string;
}

/** Which outputs a converted folder holds (complete ones: their index file exists). */
export interface ConvertedLayout {
  llm: MlcQuantization[];
  pack: PackPrecision[];
}

/** The converted outputs present under `files`, or null when it has none (a Hugging Face checkpoint, say). */
export async function convertedLayout(files: CheckpointFiles): Promise<ConvertedLayout | null> {
  const has = (p: string) => files.exists(p);
  const llm: MlcQuantization[] = [];
  for (const q of LLM_ORDER_F16) if (await has(`llm-${q}/${MLC_INDEX_FILE}`)) llm.push(q);
  const pack: PackPrecision[] = [];
  for (const p of PACK_PRECISIONS) if (await has(`mm-${p}/${PACK_MANIFEST}`)) pack.push(p);
  return llm.length || pack.length ? { llm, pack } : null;
}

/** Which LLM format a folder with several is opened in: int4 first, the device's scale dtype first. */
const LLM_ORDER_F16: readonly MlcQuantization[] = ['q4f16_1', 'q4f32_1', 'q0f16', 'q0f32'];
const LLM_ORDER_F32: readonly MlcQuantization[] = ['q4f32_1', 'q4f16_1', 'q0f32', 'q0f16'];

export interface OpenConvertedOptions {
  /** Whether the device has shader-f16: picks llm-q4f16_1 (with) or llm-q4f32_1 (without) when both exist. */
  hasF16: boolean;
  /** Force one LLM format / pack. */
  llm?: MlcQuantization;
  pack?: PackPrecision;
}

function pick<T>(have: readonly T[], order: readonly T[], forced: T | undefined, what: string, label: string): T {
  if (forced !== undefined) {
    if (!have.includes(forced)) throw new Error(`${label}: has no complete ${what}${String(forced)} output`);
    return forced;
  }
  const found = order.find((x) => have.includes(x));
  if (found === undefined) throw new Error(`${label}: has no complete ${what}* output (no index file: run npm run convert again)`);
  return found;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

function storageOf(job: Job): Storage {
  if (job.kind === 'q4') return job.scaleDType === 'f16' ? 'q4f16' : 'q4f32';
  return job.dtype === 'float16' ? 'f16' : 'f32';
}

/**
 * Checks an output's records against the parameters the config implies (names, shapes, dtypes; nothing missing,
 * nothing extra) and maps every engine tensor the jobs produce to its stored rows.
 */
function mapJobs(jobs: readonly Job[], records: Map<string, StoredRecord>, index: string, config: LlavaMiniConfig, into: Map<string, Entry>): void {
  const shapes = new Map(expectedTensorList(config).map((t) => [t.name, t.shape]));
  const expected = new Set<string>();
  for (const job of jobs) {
    for (const p of jobParams(job)) {
      expected.add(p.name);
      const r = records.get(p.name);
      if (!r) throw new Error(`${index}: no tensor "${p.name}", which config.json implies (a conversion of another model?)`);
      if (shapeText(r.shape) !== shapeText(p.shape) || r.dtype !== p.dtype) {
        throw new Error(`${index}: tensor "${p.name}" is ${r.dtype} ${shapeText(r.shape)}, config.json implies ${p.dtype} ${shapeText(p.shape)}`);
      }
      if (r.nbytes !== p.nbytes) throw new Error(`${index}: tensor "${p.name}" has nbytes ${r.nbytes}, its shape and dtype need ${p.nbytes}`);
    }
    const storage = storageOf(job);
    if (job.kind === 'dense') {
      let rowOffset = 0;
      for (const source of job.sources) {
        const rows = shapes.get(source)![0]!;
        into.set(source, { storage, shape: shapes.get(source)!, rows, cols: job.cols, rowOffset, data: records.get(job.output)!, index });
        rowOffset += rows;
      }
      continue;
    }
    if (job.kind === 'cast') {
      const [rows, cols] = job.shape.length === 1 ? [1, job.shape[0]!] : [job.shape[0]!, job.shape.slice(1).reduce((a, b) => a * b, 1)];
      into.set(job.source, { storage, shape: job.shape, rows, cols, rowOffset: 0, data: records.get(job.output)!, index });
      continue;
    }
    let rowOffset = 0;
    for (const source of job.sources) {
      const rows = shapes.get(source)![0]!;
      into.set(source, { storage, shape: shapes.get(source)!, rows, cols: job.cols, rowOffset, data: records.get(job.qWeight)!, scales: records.get(job.qScale)!, index });
      rowOffset += rows;
    }
  }
  for (const name of records.keys()) {
    if (!expected.has(name)) throw new Error(`${index}: tensor "${name}" is not one config.json implies (a conversion of another model?)`);
  }
}

export class ConvertedModel implements EncodedWeightSource {
  /** Resolves to each shard file's checked size (once per file). */
  private readonly checked = new Map<string, Promise<ByteSource>>();

  constructor(
    readonly config: LlavaMiniConfig,
    /** The checkpoint's config.json, as the pack manifest carries it. */
    readonly configJson: object,
    readonly tokenizerJson: object,
    readonly tokenizerConfigJson: object,
    /** From mlc-chat-config.json: its eos_token_id (the stop ids). */
    readonly generationConfig: object,
    readonly llm: MlcQuantization,
    readonly pack: PackPrecision,
    private readonly entries: Map<string, Entry>,
    /** Each shard file's size as its index file gives it. */
    private readonly fileSizes: Map<string, { nbytes: number; index: string }>,
    readonly files: CheckpointFiles,
  ) {}

  get label(): string {
    return this.files.name ?? 'converted folder';
  }

  /** The precision the engine runs it at: q4 for an int4 LLM, else the unquantized LLM's dtype (its pack is mm-f16). */
  get precision(): Precision {
    if (isMlcQ4(this.llm)) return 'q4';
    return mlcModelDType(this.llm) === 'float16' ? 'f16' : 'f32';
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`${this.label}: no tensor "${name}" in llm-${this.llm}/ or mm-${this.pack}/`);
    return e;
  }

  /** Bytes of every shard file the model reads (the LLM output's and the pack's). */
  totalBytes(): number {
    let n = 0;
    for (const f of this.fileSizes.values()) n += f.nbytes;
    return n;
  }

  /** Bytes a tensor's rows take as stored (progress counting). */
  storedBytes(name: string): number {
    const e = this.entry(name);
    const per = rowBytes(e.storage, e.cols);
    return e.rows * (per.data + per.scales);
  }

  storedAs(name: string): Storage {
    return this.entry(name).storage;
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { name, dtype: e.storage === 'f16' ? 'F16' : 'F32', shape: [...e.shape] };
  }

  /** The shard file, its size checked once against the index file (a truncated download is named here). */
  private file(path: string, tensor: string): Promise<ByteSource> {
    let p = this.checked.get(path);
    if (!p) {
      p = (async () => {
        const src = this.files.open(path);
        const size = await src.size();
        const want = this.fileSizes.get(path)!;
        if (size !== want.nbytes) {
          throw new Error(`${this.label}: ${path} is ${size} bytes, ${want.index} says ${want.nbytes} (truncated or incomplete download?)`);
        }
        return src;
      })();
      this.checked.set(path, p);
    }
    return p.catch((e: Error) => {
      throw new Error(`${e.message}; reading tensor "${tensor}"`);
    });
  }

  private async readRange(rec: StoredRecord, tensor: string, offset: number, length: number): Promise<Uint8Array> {
    const src = await this.file(rec.file, tensor);
    try {
      return await src.read(rec.byteOffset + offset, length);
    } catch (e) {
      throw new Error(`${this.label}: tensor "${tensor}" (${rec.name} in ${rec.file}): ${(e as Error).message}`);
    }
  }

  async readEncodedRows(name: string, start: number, count: number): Promise<EncodedRows> {
    const e = this.entry(name);
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > e.rows) {
      throw new Error(`${this.label}: rows [${start}, ${start + count}) of tensor "${name}" (${e.rows} rows)`);
    }
    const per = rowBytes(e.storage, e.cols);
    const row = e.rowOffset + start;
    const data = await this.readRange(e.data, name, row * per.data, count * per.data);
    if (!e.scales) return { data };
    return { data, scales: await this.readRange(e.scales, name, row * per.scales, count * per.scales) };
  }

  /** Values as stored (int4 dequantized: (q - 7) * scale). */
  async readRowsF32(name: string, start: number, count: number): Promise<Float32Array> {
    const e = this.entry(name);
    return decodeRows(e.storage, await this.readEncodedRows(name, start, count), count, e.cols);
  }

  readF32(name: string): Promise<Float32Array> {
    return this.readRowsF32(name, 0, this.entry(name).rows);
  }
}

async function readJson(files: CheckpointFiles, path: string, label: string): Promise<Record<string, unknown>> {
  return (await readRequiredJson(files, path, label)) as Record<string, unknown>;
}

/** Opens a converted folder: the LLM format for the device (or the one asked for) and the pack (q4, else f16). */
export async function openConvertedModel(files: CheckpointFiles, opts: OpenConvertedOptions): Promise<ConvertedModel> {
  const label = files.name ?? 'converted folder';
  if (await files.exists(JOURNAL)) throw new Error(`${label}: the conversion is unfinished (${JOURNAL} is present): run npm run convert again to complete it`);
  const layout = (await convertedLayout(files)) ?? { llm: [], pack: [] };
  const llm = pick(layout.llm, opts.hasF16 ? LLM_ORDER_F16 : LLM_ORDER_F32, opts.llm, 'llm-', label);
  // An unquantized LLM runs at f32 / f16, which an int4 pack cannot give: it goes with mm-f16.
  const pack = pick(layout.pack, isMlcQ4(llm) ? (['q4', 'f16'] as const) : (['f16'] as const), opts.pack, 'mm-', label);
  const llmDir = `llm-${llm}`;
  const packDir = `mm-${pack}`;

  const manifestPath = `${packDir}/${PACK_MANIFEST}`;
  const manifest = (await readJson(files, manifestPath, label)) as unknown as PackManifest;
  if (manifest.format !== PACK_FORMAT || manifest.version !== PACK_VERSION) {
    throw new Error(`${label}: ${manifestPath} is not a ${PACK_FORMAT} v${PACK_VERSION} manifest`);
  }
  const config = parseLlavaMiniConfig(manifest.config, { where: `${manifestPath}: config` });
  if (manifest.visionLayersUsed !== config.visionLayersUsed) {
    throw new Error(`${label}: ${manifestPath} holds ${manifest.visionLayersUsed} CLIP layers, its config needs ${config.visionLayersUsed}`);
  }
  const cachePath = `${llmDir}/${MLC_INDEX_FILE}`;
  const [cache, chat, tokenizerJson, tokenizerConfigJson] = await Promise.all([
    readJson(files, cachePath, label),
    readJson(files, `${llmDir}/mlc-chat-config.json`, label),
    readJson(files, `${llmDir}/tokenizer.json`, label),
    readJson(files, `${llmDir}/tokenizer_config.json`, label),
  ]);
  if (chat.quantization !== llm) throw new Error(`${label}: ${llmDir}/mlc-chat-config.json says quantization "${String(chat.quantization)}"`);

  const fileSizes = new Map<string, { nbytes: number; index: string }>();
  const llmRecords = new Map<string, StoredRecord>();
  for (const shard of (cache.records ?? []) as Array<{ dataPath: string; nbytes: number; records: Array<Omit<StoredRecord, 'file'>> }>) {
    const file = `${llmDir}/${shard.dataPath}`;
    fileSizes.set(file, { nbytes: shard.nbytes, index: cachePath });
    for (const r of shard.records) {
      if (r.byteOffset + r.nbytes > shard.nbytes) throw new Error(`${label}: ${cachePath}: tensor "${r.name}" ends past its shard ${shard.dataPath}`);
      llmRecords.set(r.name, { ...r, file });
    }
  }
  const packRecords = new Map<string, StoredRecord>();
  for (const f of manifest.files) fileSizes.set(`${packDir}/${f.path}`, { nbytes: f.nbytes, index: manifestPath });
  for (const t of manifest.tensors) {
    const file = `${packDir}/${t.file}`;
    const size = fileSizes.get(file);
    if (!size || t.byteOffset + t.nbytes > size.nbytes) throw new Error(`${label}: ${manifestPath}: tensor "${t.name}" is not inside a listed file (${t.file})`);
    packRecords.set(t.name, { name: t.name, file, byteOffset: t.byteOffset, nbytes: t.nbytes, shape: t.shape, dtype: t.dtype as CacheDType });
  }

  const entries = new Map<string, Entry>();
  mapJobs(mlcJobs(config, llm), llmRecords, cachePath, config, entries);
  mapJobs(packJobs(config, pack), packRecords, manifestPath, config, entries);
  const generationConfig = { eos_token_id: chat.eos_token_id };
  return new ConvertedModel(config, manifest.config, tokenizerJson, tokenizerConfigJson, generationConfig, llm, pack, entries, fileSizes, files);
}

/** A model folder of either kind: a Hugging Face checkpoint, or a converted folder (detected by its outputs). */
export async function openModelFolder(files: CheckpointFiles, opts: OpenConvertedOptions): Promise<Checkpoint | ConvertedModel> {
  if (await convertedLayout(files)) return openConvertedModel(files, opts);
  return openCheckpoint(files);
}
