// Public API of the model converter (browser + Node; the Node output folder is src/node/output-dir.ts).
export {
  convertCheckpoint,
  CONVERT_OUTPUTS,
  CONVERTER_VERSION,
  plannedOutputBytes,
  type ConvertOptions,
  type ConvertOutput,
  type ConvertProgress,
  type ConvertSummary,
} from './convert.ts';
export { llama31ConvTemplate, mlcChatConfig, mlcJobs, MLC_CONTEXT_WINDOW, MLC_PREFILL_CHUNK, type MlcQuantization } from '../format/mlc.ts';
export { openPack, packJobs, Pack, PACK_MANIFEST, type PackManifest, type PackPrecision, type PackTensor } from '../format/pack.ts';
export { DEFAULT_SHARD_CAP_BYTES, planShards, type CacheDType, type OutParam, type ShardPlan, type ShardRecord } from '../format/tensor-cache.ts';
export { JOURNAL_FILE } from './shard-writer.ts';
export type { OutputSink, OutputStream } from './sink.ts';
