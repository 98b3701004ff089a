// GPU self-test: each case runs one kernel on the current device with seeded random data and compares it with the
// CPU reference. Data-driven: a kernel family lists its cases in src/gpu/kernels/<family>.selftest.ts and they are
// gathered here into SELF_TEST_CASES (the UI and tests show whatever is there). The types, the runner and the
// per-case plumbing live in selftest-support.ts, which the case files import (not this module), so this aggregate
// can import all of them without a cycle. No React, no DOM: usable from the app, the CLI and tests.
import { ATTENTION_SELF_TEST_CASES } from './kernels/attention.selftest.ts';
import { CONVERT_SELF_TEST_CASES } from './kernels/convert.selftest.ts';
import { ELEMENTWISE_SELF_TEST_CASES } from './kernels/elementwise.selftest.ts';
import { EMBEDDING_SELF_TEST_CASES } from './kernels/embedding.selftest.ts';
import { LINEAR_Q4_SELF_TEST_CASES } from './kernels/linear-q4.selftest.ts';
import { LINEAR_SELF_TEST_CASES } from './kernels/linear.selftest.ts';
import { MATVEC_SELF_TEST_CASES } from './kernels/matvec.selftest.ts';
import { NORM_SELF_TEST_CASES } from './kernels/norm.selftest.ts';
import { PREPROCESS_SELF_TEST_CASES } from '../image/preprocess.selftest.ts';
import { ROPE_SELF_TEST_CASES } from './kernels/rope.selftest.ts';
import { SAMPLING_SELF_TEST_CASES } from './kernels/sampling.selftest.ts';
import { CLIP_EMBEDDING_SELF_TEST_CASES } from '../vision/clip-embedding.selftest.ts';
import { runSelfTests as runCases, type SelfTestCase, type SelfTestContext, type SelfTestResult } from './selftest-support.ts';

export {
  runSelfTest,
  type SelfTestCase,
  type SelfTestContext,
  type SelfTestMeasurement,
  type SelfTestResult,
  type SelfTestStatus,
} from './selftest-support.ts';

/** One kernel family's cases, under the heading the diagnostics table shows. */
export interface SelfTestGroup {
  family: string;
  cases: readonly SelfTestCase[];
}

/**
 * Every family, in display order: the path of an image through the model (preprocess, CLIP embedding, norms,
 * matmuls, activations, attention, RoPE) and then decoding (matvec, sampling). Sizes stay small: the page may run on
 * a CPU WebGPU (SwiftShader).
 */
export const SELF_TEST_GROUPS: readonly SelfTestGroup[] = [
  { family: 'Image preprocessing', cases: PREPROCESS_SELF_TEST_CASES },
  { family: 'Embeddings', cases: [...EMBEDDING_SELF_TEST_CASES, ...CLIP_EMBEDDING_SELF_TEST_CASES] },
  { family: 'Normalization', cases: NORM_SELF_TEST_CASES },
  { family: 'Linear (tiled matmul)', cases: [...LINEAR_SELF_TEST_CASES, ...LINEAR_Q4_SELF_TEST_CASES] },
  { family: 'Activations and residuals', cases: ELEMENTWISE_SELF_TEST_CASES },
  { family: 'Attention', cases: ATTENTION_SELF_TEST_CASES },
  { family: 'RoPE', cases: ROPE_SELF_TEST_CASES },
  { family: 'Decode matvec', cases: MATVEC_SELF_TEST_CASES },
  { family: 'Sampling', cases: SAMPLING_SELF_TEST_CASES },
  { family: 'WebLLM hand-off', cases: CONVERT_SELF_TEST_CASES },
];

/** Every self-test, in display order. */
export const SELF_TEST_CASES: readonly SelfTestCase[] = SELF_TEST_GROUPS.flatMap((g) => g.cases);

/** Runs the cases (default: all of them) one after another, reporting each result as it arrives. */
export function runSelfTests(
  ctx: SelfTestContext,
  cases: readonly SelfTestCase[] = SELF_TEST_CASES,
  onResult?: (r: SelfTestResult) => void,
): Promise<SelfTestResult[]> {
  return runCases(ctx, cases, onResult);
}
