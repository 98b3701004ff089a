// Public API of the model converter (browser + Node; the Node output folder is src/node/output-dir.ts).
export {
  convertCheckpoint,
  CONVERT_OUTPUTS,
  DEFAULT_CONVERT_OUTPUTS,
  CONVERTER_VERSION,
  plannedOutputBytes,
  type ConvertOptions,
  type ConvertOutput,
  type ConvertProgress,
  type ConvertSummary,
} from './convert.ts';
// The LLM formats it writes and their index file (defined with the other converted layouts in format/).
export { isMlcQ4, MLC_INDEX_FILE, type MlcQuantization } from '../format/mlc.ts';
export type { TensorCacheFile } from '../format/tensor-cache.ts';
export { JOURNAL_FILE } from './shard-writer.ts';
export type { OutputSink, OutputStream } from './sink.ts';
