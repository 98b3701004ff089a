// One conversion step = one or more output parameters computed from checkpoint tensors. The jobs list of a
// converted folder is its layout: the converter runs it (convert/jobs.ts), the reader maps the stored records
// back to checkpoint tensors with it (weights/converted-model.ts).
import { Q4_GROUP_SIZE, Q4_PER_WORD, type Q4ScaleDType } from '../quant/q4.ts';
import { outParam, type CacheDType, type OutParam } from './tensor-cache.ts';

export type Job =
  /** int4 group-32 of the row-concatenation of `sources` (all [*, cols]) -> q_weight [rows, cols/8], q_scale [rows, cols/32]. */
  | { kind: 'q4'; sources: string[]; rows: number; cols: number; scaleDType: Q4ScaleDType; qWeight: string; qScale: string }
  /** `source` stored as float16 / float32, same shape. */
  | { kind: 'cast'; source: string; shape: number[]; dtype: DenseDType; output: string }
  /** The row-concatenation of `sources` (all [*, cols]) stored as float16 / float32 -> [rows, cols] (MLC's unquantized q0 formats). */
  | { kind: 'dense'; sources: string[]; rows: number; cols: number; dtype: DenseDType; output: string };

export type DenseDType = Extract<CacheDType, 'float16' | 'float32'>;

export function jobParams(job: Job): OutParam[] {
  if (job.kind === 'cast') return [outParam(job.output, job.shape, job.dtype)];
  if (job.kind === 'dense') return [outParam(job.output, [job.rows, job.cols], job.dtype)];
  return [
    outParam(job.qWeight, [job.rows, job.cols / Q4_PER_WORD], 'uint32'),
    outParam(job.qScale, [job.rows, job.cols / Q4_GROUP_SIZE], job.scaleDType === 'f16' ? 'float16' : 'float32'),
  ];
}

export function jobSources(job: Job): string[] {
  return job.kind === 'cast' ? [job.source] : job.sources;
}

/** Name of the tensor the job's output is shown under in progress reports. */
export function jobLabel(job: Job): string {
  return job.kind === 'q4' ? job.qWeight.replace(/\.q_weight$/, '') : job.output;
}
