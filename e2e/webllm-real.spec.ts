// WebLLM for real (npm run verify:webllm as a test): our fused rows through WebLLM 0.2.79 and the compiled
// Llama-3.2-1B q0f32 library of its ABI (v0_2_48) against our own runtime, same weights, same adapter, through the
// app's install / stored-model / chat path. The library is someone else's binary and cannot be committed: point
// WEBLLM_LIB at it (github.com/mlc-ai/binary-mlc-llm-libs, web-llm-models/v0_2_48/). Tens of minutes on
// SwiftShader and about 11 GB of RAM; CI runs the fake pipeline's tests instead.
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { verifyWebLlm } from '../scripts/verify-webllm/run.ts';

const LIB = process.env.WEBLLM_LIB;
const DIR = process.env.WEBLLM_VERIFY_DIR ?? join(tmpdir(), 'llava-mini-verify-webllm');
const SKIP = !LIB
  ? 'WEBLLM_LIB is not set: it must point at Llama-3.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm (mlc-ai/binary-mlc-llm-libs, web-llm-models/v0_2_48/), a binary that cannot be committed here'
  : !existsSync(LIB)
    ? `WEBLLM_LIB=${LIB} does not exist`
    : null;

const log = (line: string) => console.log(line);

test.describe('WebLLM on a real compiled library', () => {
  test.skip(SKIP !== null, SKIP ?? '');

  test('a library compiled for other shapes is refused, naming both and suggesting the native engine', async () => {
    test.setTimeout(20 * 60_000);
    const r = await verifyWebLlm({ lib: LIB!, dir: DIR, maxNewTokens: 4, log, model: 'tiny' });
    expect(r.webllmError).toMatch(/the model library \S+Llama-3\.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu\.wasm is compiled for other shapes than this model's LLM \(.*2 layers, hidden 128.*\): "model\.embed_tokens\.weight" is float32 \[vocab_size, 2048\] in the library, float32 \[128256, 128\] in the weights.*choose the native engine/);
    // The same stored model answers on our kernels.
    expect(r.runs[0]!.turns.map((t) => t.status)).toEqual(['done', 'done', 'stopped']);
  });

  test('WebLLM and our runtime give the same greedy tokens on every turn (roll-back, Stop), timings side by side', async () => {
    test.setTimeout(3 * 60 * 60_000);
    const r = await verifyWebLlm({ lib: LIB!, dir: DIR, maxNewTokens: 8, log });
    const [webllm, native] = r.runs;
    expect(webllm!.ready).toContain('WebLLM');
    expect(native!.ready).toContain('our kernels');
    for (const run of r.runs) {
      expect(run.turns.map((t) => t.status)).toEqual(['done', 'done', 'stopped']);
      // Turn 2 reused turn 1's cached rows (the cache was rolled back to the end of its prompt), turn 3 turn 2's.
      expect(run.turns[1]!.reusedRows).toBeGreaterThan(0);
      expect(run.turns[2]!.reusedRows).toBeGreaterThan(run.turns[1]!.reusedRows);
      expect(run.turns[0]!.tokens).toHaveLength(8);
    }
    for (const a of r.agreement) expect(a.same, `turn ${a.turn}`).toBe(a.compared);
    expect(r.agreement[2]!.compared).toBeGreaterThan(0);
  });
});
