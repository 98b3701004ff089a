// The model converter: a Hugging Face LLaVA-Mini checkpoint -> the LLM in MLC's format (q4f16_1 and q4f32_1, what
// WebLLM loads) + our own pack of the image side (f16 and q4). Streams the checkpoint tensor by tensor through its
// byte-range reader, writes through an injected OutputSink, and resumes a run that was cut off.
//
// Output folders (inside the sink):
//   llm-q4f16_1/, llm-q4f32_1/   mlc-chat-config.json, tokenizer files, ndarray-cache.json, params_shard_K.bin
//   llm-q0f16/, llm-q0f32/       the same unquantized (only when asked for: --only)
//   mm-f16/, mm-q4/              manifest.json, pack_shard_K.bin
//   convert-journal.json         only while a conversion is unfinished
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CheckpointFiles } from '../checkpoint/byte-source.ts';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { Q4_GROUP_SIZE } from '../quant/q4.ts';
import { jobLabel, jobParams, jobSources, type Job } from '../format/jobs.ts';
import { runJob } from './jobs.ts';
import { isMlcQ4, mlcChatConfig, mlcJobs, mlcQuantizedTensors, MLC_DEFAULT_QUANTIZATIONS, MLC_INDEX_FILE, MLC_QUANTIZATIONS, MLC_TOKENIZER_FILES, type MlcQuantization } from '../format/mlc.ts';
import { packJobs, packManifest, PACK_MANIFEST, PACK_PRECISIONS, type PackPrecision } from '../format/pack.ts';
import { DEFAULT_SHARD_CAP_BYTES, planShards, type ShardPlan, type TensorCacheFile, type TensorCacheShard } from '../format/tensor-cache.ts';
import { JOURNAL_FILE, loadJournal, ShardSetWriter, type Journal } from './shard-writer.ts';
import type { OutputSink } from './sink.ts';

const SHARD_FILE = /^(params|pack)_shard_\d+\.bin$/;

/** Bump when the output of the same input changes (a journal of another version is not resumed). */
export const CONVERTER_VERSION = 1;

export type ConvertOutput = `llm-${MlcQuantization}` | `mm-${PackPrecision}`;
export const CONVERT_OUTPUTS: readonly ConvertOutput[] = [
  ...MLC_QUANTIZATIONS.map((q) => `llm-${q}` as const),
  ...PACK_PRECISIONS.map((p) => `mm-${p}` as const),
];
/** What a conversion writes unless told otherwise: the int4 LLM formats and both packs. */
export const DEFAULT_CONVERT_OUTPUTS: readonly ConvertOutput[] = [
  ...MLC_DEFAULT_QUANTIZATIONS.map((q) => `llm-${q}` as const),
  ...PACK_PRECISIONS.map((p) => `mm-${p}` as const),
];

export interface ConvertProgress {
  /** 'open' (reading headers, validating), 'resume' (checking shards of an earlier run), an output folder, 'done'. */
  stage: 'open' | 'resume' | ConvertOutput | 'done';
  /** The output tensor being computed (or the shard being checked). */
  tensor: string | null;
  bytesDone: number;
  bytesTotal: number;
  tensorsDone: number;
  tensorsTotal: number;
}

export interface ConvertOptions {
  /** A separate openai/clip-vit-large-patch14-336 folder, when the checkpoint has no vision tower. */
  clipFiles?: CheckpointFiles;
  /** How users give that folder, for the error when it is missing (the CLI: "--clip DIR"). */
  clipOptionName?: string;
  /** Which outputs (default DEFAULT_CONVERT_OUTPUTS: llm-q4f16_1, llm-q4f32_1, mm-f16, mm-q4). */
  outputs?: readonly ConvertOutput[];
  /** Shard size cap (default MLC's 32 MiB; tests use small caps). */
  shardCapBytes?: number;
  /** Values per row block read from the checkpoint (default 4M; tests use small blocks). */
  blockElements?: number;
  onProgress?: (p: ConvertProgress) => void;
  signal?: AbortSignal;
}

export interface ConvertSummary {
  outputs: Array<{ dir: ConvertOutput; shards: number; bytes: number; tensors: number }>;
  /** Bytes of shards an earlier run had completed (verified, not written again). */
  resumedBytes: number;
}

interface Section {
  dir: ConvertOutput;
  jobs: Job[];
  shards: ShardPlan[];
  writer: ShardSetWriter;
}

/** Checks what the MLC layout needs beyond the checkpoint reader's shape validation (K % 32 == 0). */
function validateForMlc(config: Checkpoint['config']): void {
  for (const t of mlcQuantizedTensors(config)) {
    if (t.cols % Q4_GROUP_SIZE !== 0) {
      throw new Error(
        `tensor "${t.sources[0]}": its input width ${t.cols} is not a multiple of ${Q4_GROUP_SIZE}, ` +
          'which MLC int4 group quantization (q4f16_1 / q4f32_1) needs',
      );
    }
  }
}

function fingerprint(ck: Checkpoint, outputs: readonly ConvertOutput[], cap: number): string {
  const tensors = ck.tensorNames().sort().map((n) => {
    const { file, tensor } = ck.location(n);
    return [n, tensor.dtype, tensor.shape, file.name, file.size, tensor.begin, tensor.end];
  });
  const text = JSON.stringify({ v: CONVERTER_VERSION, config: ck.configJson, tensors, outputs, cap });
  return bytesToHex(sha256(new TextEncoder().encode(text)));
}

/** Tokenizer files present in the checkpoint, in MLC's order, with their bytes. */
async function tokenizerFiles(files: CheckpointFiles): Promise<Array<{ name: string; bytes: Uint8Array }>> {
  const out: Array<{ name: string; bytes: Uint8Array }> = [];
  for (const name of MLC_TOKENIZER_FILES) {
    if (!(await files.exists(name))) continue;
    const src = files.open(name);
    out.push({ name, bytes: await src.read(0, await src.size()) });
  }
  return out;
}

function indexFile(s: Section): string {
  return `${s.dir}/${s.dir.startsWith('llm-') ? MLC_INDEX_FILE : PACK_MANIFEST}`;
}

function json(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}

function tensorCacheJson(ck: Checkpoint, section: Section): TensorCacheFile {
  const records = section.shards.map((s): TensorCacheShard => ({
    dataPath: s.dataPath,
    format: 'raw-shard',
    nbytes: s.nbytes,
    records: s.records.map((r) => ({ name: r.name, shape: r.shape, dtype: r.dtype, format: r.format, nbytes: r.nbytes, byteOffset: r.byteOffset })),
    md5sum: section.writer.result(s).md5,
  }));
  const paramBytes = section.shards.reduce((a, s) => a + s.nbytes, 0);
  let sourceParams = 0;
  for (const j of section.jobs) for (const n of jobSources(j)) sourceParams += ck.info(n).shape.reduce((a, b) => a * b, 1);
  const paramSize = section.shards.reduce((a, s) => a + s.records.length, 0);
  return { metadata: { ParamSize: paramSize, ParamBytes: paramBytes, BitsPerParam: (paramBytes * 8) / sourceParams }, records };
}

/** The tensors (jobs) and shard files of one output folder. */
function planOutput(config: Checkpoint['config'], dir: ConvertOutput, cap: number): { jobs: Job[]; shards: ShardPlan[] } {
  const isLlm = dir.startsWith('llm-');
  const jobs = isLlm ? mlcJobs(config, dir.slice(4) as MlcQuantization) : packJobs(config, dir.slice(3) as PackPrecision);
  return { jobs, shards: planShards(jobs.flatMap(jobParams), cap, isLlm ? 'params_shard' : 'pack_shard') };
}

/** Bytes of the shard files a conversion writes (what it needs on disk, before the small JSON files). */
export function plannedOutputBytes(config: Checkpoint['config'], outputs: readonly ConvertOutput[], cap = DEFAULT_SHARD_CAP_BYTES): number {
  return outputs.reduce((a, dir) => a + planOutput(config, dir, cap).shards.reduce((b, sh) => b + sh.nbytes, 0), 0);
}

/**
 * Converts the checkpoint in `files` into `sink`. Everything is validated before anything is written; a run that
 * was cut off (killed, aborted, failed) resumes from its journal and ends with the same bytes as an uninterrupted one.
 */
export async function convertCheckpoint(files: CheckpointFiles, sink: OutputSink, options: ConvertOptions = {}): Promise<ConvertSummary> {
  const outputs = options.outputs ?? DEFAULT_CONVERT_OUTPUTS;
  for (const o of outputs) if (!CONVERT_OUTPUTS.includes(o)) throw new Error(`unknown output "${o}" (${CONVERT_OUTPUTS.join(', ')})`);
  const cap = options.shardCapBytes ?? DEFAULT_SHARD_CAP_BYTES;
  const signal = options.signal;
  let tensorsDone = 0;
  let tensorsTotal = 0;
  let bytesTotal = 0;
  let sections: Section[] = [];
  const doneBytes = (): number => sections.reduce((a, s) => a + s.writer.doneBytes() + s.writer.inFlightBytes, 0);
  const report = (stage: ConvertProgress['stage'], tensor: string | null): void =>
    options.onProgress?.({ stage, tensor, bytesDone: doneBytes(), bytesTotal, tensorsDone, tensorsTotal });

  report('open', null);
  const ck = await openCheckpoint(files, {
    ...(options.clipFiles ? { clipFiles: options.clipFiles } : {}),
    ...(options.clipOptionName ? { clipOptionName: options.clipOptionName } : {}),
  });
  const config = ck.config;
  if (outputs.some((o) => o.startsWith('llm-') && isMlcQ4(o.slice(4) as MlcQuantization))) validateForMlc(config);
  const tokenizers = await tokenizerFiles(files);
  const decoder = (ck.tokenizerJson as { decoder?: { type?: unknown } }).decoder?.type;
  signal?.throwIfAborted();

  const fp = fingerprint(ck, outputs, cap);
  report('resume', null);
  const journal: Journal = await loadJournal(sink, fp, (path) => report('resume', path));
  const saveJournal = (): Promise<void> => sink.writeFile(JOURNAL_FILE, json(journal));

  sections = outputs.map((dir) => {
    const { jobs, shards } = planOutput(config, dir, cap);
    return { dir, jobs, shards, writer: new ShardSetWriter(sink, dir, shards, journal, !dir.startsWith('llm-'), saveJournal) };
  });
  tensorsTotal = sections.reduce((a, s) => a + s.jobs.length, 0);
  bytesTotal = sections.reduce((a, s) => a + s.shards.reduce((b, sh) => b + sh.nbytes, 0), 0);
  const resumedBytes = doneBytes();
  await saveJournal();
  // An index file (ndarray-cache.json / manifest.json) is written last: while it is absent the output is unfinished.
  for (const s of sections) await sink.remove(indexFile(s));

  for (const s of sections) {
    if (!s.dir.startsWith('llm-')) continue;
    const q = s.dir.slice(4) as MlcQuantization;
    for (const t of tokenizers) await sink.writeFile(`${s.dir}/${t.name}`, t.bytes);
    const chat = mlcChatConfig({
      config,
      quantization: q,
      generationConfig: ck.generationConfig,
      tokenizerFiles: tokenizers.map((t) => t.name),
      tokenizerDecoderType: typeof decoder === 'string' ? decoder : null,
    });
    await sink.writeFile(`${s.dir}/mlc-chat-config.json`, json(chat));
  }

  for (const s of sections) {
    try {
      for (const job of s.jobs) {
        signal?.throwIfAborted();
        const names = jobParams(job).map((p) => p.name);
        if (s.writer.needs(names)) {
          report(s.dir, jobLabel(job));
          await runJob(job, ck, async (i, bytes) => {
            await s.writer.write(names[i]!, bytes);
            report(s.dir, jobLabel(job));
          }, { signal, ...(options.blockElements ? { blockElements: options.blockElements } : {}) });
        }
        tensorsDone++;
        report(s.dir, jobLabel(job));
      }
    } finally {
      await s.writer.closeOpen();
    }
    if (!s.writer.allDone()) throw new Error(`internal: ${s.dir} has unfinished shards after every tensor was written`);
    // shard files of an earlier conversion with another layout would only mislead
    const planned = new Set(s.shards.map((sh) => sh.dataPath));
    for (const f of await sink.list(s.dir)) if (SHARD_FILE.test(f) && !planned.has(f)) await sink.remove(`${s.dir}/${f}`);
    if (s.dir.startsWith('llm-')) {
      // indent 4 as tvmjs.dump_tensor_cache writes it
      await sink.writeFile(indexFile(s), JSON.stringify(tensorCacheJson(ck, s), null, 4) + '\n');
    } else {
      const files = new Map(s.shards.map((sh) => [sh.dataPath, s.writer.result(sh).sha256!]));
      const records = new Map(s.shards.flatMap((sh) => Object.entries(s.writer.result(sh).records ?? {})));
      const manifest = packManifest(s.dir.slice(3) as PackPrecision, ck.configJson, config, s.jobs, s.shards, { files, records });
      await sink.writeFile(indexFile(s), json(manifest));
    }
  }
  await sink.remove(JOURNAL_FILE);
  report('done', null);
  return {
    outputs: sections.map((s) => ({
      dir: s.dir,
      shards: s.shards.length,
      bytes: s.shards.reduce((a, sh) => a + sh.nbytes, 0),
      tensors: s.shards.reduce((a, sh) => a + sh.records.length, 0),
    })),
    resumedBytes,
  };
}
