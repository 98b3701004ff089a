// A Hugging Face LLaVA-Mini folder (config.json, tokenizer, model.safetensors or sharded + index) as a
// validated WeightSource. Only headers are read up front; each tensor is read (by its byte range) on demand.
import type { CheckpointFiles } from './byte-source.ts';
import { CLIP_VIT_L_336, parseClipVisionConfig, parseLlavaMiniConfig } from './config.ts';
import { expectedTensorList, VISION_PREFIX } from './expected-tensors.ts';
import {
  bytesToF32,
  formatShape,
  readSafetensorsHeader,
  readTensorBytes,
  readTensorRowBytes,
  type SafetensorsFile,
  type SafetensorsTensor,
} from './safetensors.ts';
import type { ClipVisionConfig, DType, LlavaMiniConfig, TensorInfo, WeightSource } from './types.ts';

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

export interface TensorLocation {
  file: SafetensorsFile;
  tensor: SafetensorsTensor;
}

const DTYPES: ReadonlySet<string> = new Set<DType>(['F32', 'F16', 'BF16', 'I32', 'I64', 'U8', 'I8', 'U32']);
const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F32', 'F16', 'BF16']);

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: not valid JSON (${errText(e)})`);
  }
}

/** A shard name from an index must be a plain relative path inside the folder. */
function checkShardName(name: unknown, where: string): string {
  if (typeof name !== 'string' || name === '' || name.startsWith('/') || name.includes('\\') || name.split('/').includes('..')) {
    throw new Error(`${where}: invalid shard file name ${JSON.stringify(name)}`);
  }
  return name;
}

/**
 * Every tensor of a folder's safetensors weights (single file or sharded with an index), by name.
 * `label` names the folder in errors.
 */
export async function openSafetensorsFolder(files: CheckpointFiles, label = files.name ?? 'checkpoint'): Promise<Map<string, TensorLocation>> {
  const out = new Map<string, TensorLocation>();
  if (await files.exists(INDEX_FILE)) {
    const index = parseJson(await files.readText(INDEX_FILE), INDEX_FILE);
    const wm = (index as { weight_map?: unknown } | null)?.weight_map;
    if (wm === null || typeof wm !== 'object' || Array.isArray(wm)) {
      throw new Error(`${INDEX_FILE}: missing "weight_map" object`);
    }
    const weightMap = wm as Record<string, unknown>;
    const shardNames = [...new Set(Object.values(weightMap).map((s) => checkShardName(s, INDEX_FILE)))];
    const shards = new Map<string, SafetensorsFile>();
    await Promise.all(
      shardNames.map(async (s) => {
        if (!(await files.exists(s))) throw new Error(`${INDEX_FILE} names shard "${s}", which is missing from ${label}`);
        shards.set(s, await readSafetensorsHeader(files.open(s), s));
      }),
    );
    for (const [name, s] of Object.entries(weightMap)) {
      const file = shards.get(s as string)!;
      const tensor = file.tensors.get(name);
      if (!tensor) throw new Error(`${file.name}: tensor "${name}" is listed in ${INDEX_FILE} but missing from the shard`);
      out.set(name, { file, tensor });
    }
    return out;
  }
  if (await files.exists(SINGLE_FILE)) {
    const file = await readSafetensorsHeader(files.open(SINGLE_FILE), SINGLE_FILE);
    for (const tensor of file.tensors.values()) out.set(tensor.name, { file, tensor });
    return out;
  }
  for (const bin of ['pytorch_model.bin.index.json', 'pytorch_model.bin']) {
    if (await files.exists(bin)) {
      throw new Error(`${label}: has ${bin} but no ${SINGLE_FILE} / ${INDEX_FILE}: only safetensors weights are supported (convert the .bin first)`);
    }
  }
  throw new Error(`${label}: no ${SINGLE_FILE} or ${INDEX_FILE}`);
}

export interface OpenCheckpointOptions {
  /**
   * A separate openai/clip-vit-large-patch14-336 folder (tensors "vision_model.*"), mapped onto
   * "model.vision_tower.vision_tower.vision_model.*". Its tensors take precedence over any in the checkpoint.
   */
  clipFiles?: CheckpointFiles;
  /** How the caller's users give that folder, for the missing-CLIP error (default "clipFiles"; the CLI: "--clip DIR"). */
  clipOptionName?: string;
}

async function readOptionalJson(files: CheckpointFiles, name: string): Promise<object | null> {
  if (!(await files.exists(name))) return null;
  return jsonObject(parseJson(await files.readText(name), name), name);
}

export async function readRequiredJson(files: CheckpointFiles, name: string, label: string): Promise<object> {
  if (!(await files.exists(name))) throw new Error(`${label}: missing ${name}`);
  return jsonObject(parseJson(await files.readText(name), name), name);
}

function jsonObject(value: unknown, name: string): object {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${name}: expected a JSON object`);
  return value;
}

/** The CLIP vision config of a separate CLIP folder's config.json (CLIPConfig or CLIPVisionConfig), or null. */
function clipFolderVisionConfig(json: unknown): ClipVisionConfig | null {
  if (json === null || typeof json !== 'object') return null;
  const o = json as Record<string, unknown>;
  const raw = o.vision_config ?? (o.model_type === 'clip_vision_model' ? o : null);
  if (raw === null || typeof raw !== 'object') return null;
  // The folder is meant to be openai/clip-vit-large-patch14-336: fill fields it leaves out from its defaults.
  const d = CLIP_VIT_L_336;
  const filled = {
    hidden_size: d.hiddenSize,
    intermediate_size: d.intermediateSize,
    num_hidden_layers: d.numLayers,
    num_attention_heads: d.numHeads,
    image_size: d.imageSize,
    patch_size: d.patchSize,
    ...(raw as Record<string, unknown>),
  };
  return parseClipVisionConfig(filled, 'CLIP folder config.json: vision_config');
}

export class Checkpoint implements WeightSource {
  constructor(
    readonly config: LlavaMiniConfig,
    /** The raw parsed config.json. */
    readonly configJson: object,
    readonly tokenizerJson: object,
    readonly tokenizerConfigJson: object,
    /** generation_config.json, or null when the folder has none. */
    readonly generationConfig: object | null,
    private readonly tensors: Map<string, TensorLocation>,
    readonly files: CheckpointFiles,
  ) {}

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  tensorNames(): string[] {
    return [...this.tensors.keys()];
  }

  location(name: string): TensorLocation {
    const loc = this.tensors.get(name);
    if (!loc) throw new Error(`checkpoint has no tensor "${name}"`);
    return loc;
  }

  info(name: string): TensorInfo {
    const { tensor } = this.location(name);
    if (!DTYPES.has(tensor.dtype)) throw new Error(`tensor "${name}": dtype ${tensor.dtype} is not supported`);
    return { name, dtype: tensor.dtype as DType, shape: [...tensor.shape] };
  }

  /** The tensor's raw little-endian bytes in its stored dtype (reads only its byte range). */
  async readBytes(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const { file, tensor } = this.location(name);
    return readTensorBytes(file, tensor.name);
  }

  async readF32(name: string): Promise<Float32Array> {
    const { file, tensor } = this.location(name);
    return bytesToF32(await readTensorBytes(file, tensor.name), tensor.dtype, `${file.name}: tensor "${name}"`);
  }

  /** Rows [start, start + count) along the first dimension as f32 (e.g. a few embedding rows). */
  async readRowsF32(name: string, start: number, count: number): Promise<Float32Array> {
    const { file, tensor } = this.location(name);
    return bytesToF32(await readTensorRowBytes(file, tensor.name, start, count), tensor.dtype, `${file.name}: tensor "${name}"`);
  }

  /** Total bytes of all tensors. */
  totalBytes(): number {
    let n = 0;
    for (const { tensor } of this.tensors.values()) n += tensor.end - tensor.begin;
    return n;
  }
}

/** The checkpoint lacks the CLIP tower (LLaVA checkpoints often do): the caller may retry with `clipFiles`. */
export class MissingVisionTowerError extends Error {
  override name = 'MissingVisionTowerError';
}

/**
 * Open and validate a checkpoint folder: config.json (parsed and checked), tokenizer.json and
 * tokenizer_config.json (required), generation_config.json (optional), and the presence, dtype and shape
 * of every tensor the config implies. Reads only file headers.
 */
export async function openCheckpoint(files: CheckpointFiles, options: OpenCheckpointOptions = {}): Promise<Checkpoint> {
  const label = files.name ?? 'checkpoint';
  const [configJson, tokenizerJson, tokenizerConfigJson, generationConfig, mainTensors] = await Promise.all([
    readRequiredJson(files, 'config.json', label),
    readRequiredJson(files, 'tokenizer.json', label),
    readRequiredJson(files, 'tokenizer_config.json', label),
    readOptionalJson(files, 'generation_config.json'),
    openSafetensorsFolder(files, label),
  ]);

  const tensors = new Map(mainTensors);
  let clipVision: ClipVisionConfig | null = null;
  const clip = options.clipFiles;
  if (clip) {
    const clipLabel = clip.name ?? 'CLIP folder';
    const [clipConfig, clipTensors] = await Promise.all([
      readOptionalJson(clip, 'config.json'),
      openSafetensorsFolder(clip, clipLabel),
    ]);
    clipVision = clipFolderVisionConfig(clipConfig);
    let n = 0;
    for (const [name, loc] of clipTensors) {
      if (name.startsWith('vision_model.')) {
        tensors.set(VISION_PREFIX + name.slice('vision_model.'.length), loc);
        n++;
      }
    }
    if (n === 0) throw new Error(`${clipLabel}: no "vision_model.*" tensors (is it openai/clip-vit-large-patch14-336?)`);
  }

  const config = parseLlavaMiniConfig(configJson, clipVision ? { visionConfig: clipVision } : {});

  const missing: string[] = [];
  for (const t of expectedTensorList(config)) {
    const loc = tensors.get(t.name);
    if (!loc) {
      if (t.used) missing.push(t.name);
      continue;
    }
    const actual = loc.tensor.shape;
    if (actual.length !== t.shape.length || actual.some((d, i) => d !== t.shape[i])) {
      throw new Error(
        `config.json disagrees with the weights: tensor "${t.name}" has shape ${formatShape(actual)} in ${loc.file.name} ` +
          `but config.json implies ${formatShape(t.shape)}`,
      );
    }
    if (!FLOAT_DTYPES.has(loc.tensor.dtype)) {
      throw new Error(`${loc.file.name}: tensor "${t.name}" has dtype ${loc.tensor.dtype}; expected F32, F16 or BF16`);
    }
  }
  if (missing.length > 0) {
    const visionMissing = missing.filter((n) => n.startsWith(VISION_PREFIX));
    const hasAnyVision = [...tensors.keys()].some((n) => n.startsWith(VISION_PREFIX));
    if (visionMissing.length > 0 && !hasAnyVision) {
      throw new MissingVisionTowerError(
        `${label}: the checkpoint has no CLIP vision tower (no "${VISION_PREFIX}*" tensors): ` +
          `also give the openai/clip-vit-large-patch14-336 folder (${options.clipOptionName ?? 'clipFiles'})`,
      );
    }
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
    throw new Error(`${label}: missing tensor "${missing[0]}"${more}: the weights do not match config.json`);
  }

  return new Checkpoint(config, configJson, tokenizerJson, tokenizerConfigJson, generationConfig, tensors, files);
}
