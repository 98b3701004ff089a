// The native LLM runtime on Dawn (SwiftShader without a GPU) against LlamaReference on a tiny random model
// (2 layers, width 32, 4 heads x 8, 2 KV heads, vocab 300): prefill (split in chunks of 3 rows, and in one chunk)
// + 32 greedy decode steps give exactly the reference's tokens, at f32 and at q4 (reference on the weights as
// the GPU holds them: dequantizedSource). Logits within 1e-4 relative to the tensor's scale (llm.testing.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageBufferFrom } from '../gpu/buffers.ts';
import type { GpuContext } from '../gpu/device.ts';
import { allRows } from '../gpu/tensor.ts';
import { createNodeGpu, createValidationOnlyGpu } from '../node/gpu.ts';
import { PrefusionRuntime } from '../prefuse/prefusion.ts';
import { LlamaReference } from '../reference/llama.ts';
import { argmaxRef, sampleTopPRef } from '../reference/sampling.ts';
import { randomWeights, tinyConfig } from '../reference/random-weights.testing.ts';
import { mulberry32, randomF32 } from '../util/seeded-random.ts';
import { dequantizedSource } from '../weights/dequantized-source.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import type { Precision } from '../precision/policy.ts';
import { LlamaRuntime } from './llama-runtime.ts';
import { expectRelClose } from './llm.testing.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const config = tinyConfig();
const H = config.llm.hiddenSize;
const V = config.llm.vocabSize;
const source = randomWeights(config, 5);
const PROMPT = 11;
const prompt = randomF32(PROMPT * H, mulberry32(77), 1);
const STEPS = 32;

/** The reference's prefill logits and greedy tokens (prefill + decode with argmax, no stop ids). */
function referenceGreedy(ref: LlamaReference, embeds: Float32Array, rows: number, steps: number) {
  ref.reset();
  let logits = ref.prefill(embeds, rows);
  const logits0 = logits;
  const tokens: number[] = [];
  for (;;) {
    tokens.push(argmaxRef(logits));
    if (tokens.length === steps) break;
    logits = ref.decode(tokens.at(-1)!);
  }
  return { logits0, tokens };
}

async function setup(precision: Precision, prefillChunkSize: number) {
  const weights = new GpuWeights(ctx.device, source, precision);
  const rt = await LlamaRuntime.create(weights, { maxContext: 64, prefillChunkSize });
  const ref = await LlamaReference.load(precision === 'f32' ? source : dequantizedSource(source, precision, ctx.device.features.has('shader-f16')));
  const input = storageBufferFrom(ctx.device, prompt, 'prompt embeds');
  return {
    weights,
    rt,
    ref,
    input,
    done() {
      input.destroy();
      rt.destroy();
      weights.destroy();
    },
  };
}

describe('LlamaRuntime vs LlamaReference (tiny random model)', () => {
  for (const [precision, chunk] of [
    ['f32', 3],
    ['f32', 128],
    ['q4', 3],
  ] as const) {
    it(`${precision}, prefill chunks of ${chunk}: prefill logits and ${STEPS} greedy tokens match`, async () => {
      const s = await setup(precision, chunk);
      try {
        const expected = referenceGreedy(s.ref, prompt, PROMPT, STEPS);
        const prefillMs = await s.rt.prefill(s.input, PROMPT);
        expect(s.rt.length).toBe(PROMPT);
        expectRelClose(await s.rt.logitsOfLastPrefill(), expected.logits0, `logits0 ${precision}`, [V]);
        const streamed: number[] = [];
        const res = await s.rt.generate({ maxNewTokens: STEPS, stopIds: [], onToken: (id) => streamed.push(id) });
        expect(res.tokens).toEqual(expected.tokens);
        expect(streamed).toEqual(res.tokens);
        expect(res.stopped).toBe('length');
        // The last token is not fed back.
        expect(s.rt.length).toBe(PROMPT + STEPS - 1);
        console.log(
          `[llama-runtime ${precision} chunk ${chunk}] prefill ${PROMPT} rows ${prefillMs.toFixed(1)} ms, ${STEPS} tokens: ` +
            `decode ${res.timings.decodeMs.toFixed(1)} ms (${res.timings.tokensPerSecond.toFixed(1)} tok/s), first token ${res.timings.firstTokenMs.toFixed(1)} ms; ` +
            `runtime bytes ${s.rt.bytes()}`,
        );
      } finally {
        s.done();
      }
    });
  }

  it('decode(id) logits, stop ids, rollback + re-prefill equal a fresh run', async () => {
    const s = await setup('f32', 3);
    try {
      await s.rt.prefill(s.input, PROMPT);
      const refLogits0 = s.ref.prefill(prompt, PROMPT);
      const first = argmaxRef(refLogits0);
      // Host-given token through decode().
      await s.rt.decode(first);
      expectRelClose(await s.rt.readLogits(), s.ref.decode(first), 'decode logits', [V]);

      // Stop on the reference's 3rd greedy token: 'eos', the stop token included.
      const expected = referenceGreedy(s.ref, prompt, PROMPT, 3);
      s.rt.rollback(0);
      await s.rt.prefill(s.input, PROMPT);
      const res = await s.rt.generate({ maxNewTokens: 10, stopIds: [expected.tokens[2]!] });
      expect(res.tokens).toEqual(expected.tokens.slice(0, 3));
      expect(res.stopped).toBe('eos');
      // Every token but the last was fed back: the step decoded after the stop token (submitted before it was
      // read) left no row behind.
      expect(s.rt.length).toBe(PROMPT + 2);
      // The prefill logits stay readable; generating again needs a new prefill.
      expectRelClose(await s.rt.logitsOfLastPrefill(), refLogits0, 'logits0 after generate', [V]);
      await expect(s.rt.generate({ maxNewTokens: 1 })).rejects.toThrow(/prefill/);

      // Multi-turn: keep 5 prompt rows, prefill 4 new rows; equals a fresh prefill of the 9 rows (GPU and reference).
      const more = randomF32(4 * H, mulberry32(78), 1);
      const moreBuf = storageBufferFrom(ctx.device, more, 'second turn');
      const joined = new Float32Array(9 * H);
      joined.set(prompt.subarray(0, 5 * H));
      joined.set(more, 5 * H);
      const joinedBuf = storageBufferFrom(ctx.device, joined, 'joined');
      try {
        s.rt.rollback(5);
        await s.rt.prefill(moreBuf, 4);
        expect(s.rt.length).toBe(9);
        const continued = await s.rt.logitsOfLastPrefill();
        s.rt.rollback(0);
        await s.rt.prefill(joinedBuf, 9);
        const fresh = await s.rt.logitsOfLastPrefill();
        s.ref.reset();
        const refFresh = s.ref.prefill(joined, 9);
        expectRelClose(continued, fresh, 'rolled-back continuation vs fresh GPU run', [V], 1e-5);
        expectRelClose(continued, refFresh, 'rolled-back continuation vs reference', [V]);
        // inputRowOffset reads a window of the input buffer.
        s.rt.rollback(5);
        await s.rt.prefill(joinedBuf, 4, { inputRowOffset: 5 });
        expectRelClose(await s.rt.logitsOfLastPrefill(), refFresh, 'prefill from a row offset', [V]);
      } finally {
        moreBuf.destroy();
        joinedBuf.destroy();
      }
    } finally {
      s.done();
    }
  });

  it('top-p sampling with a seeded host RNG matches the reference sampler on the reference logits', async () => {
    const s = await setup('f32', 128);
    try {
      const sampling = { temperature: 0.8, topP: 0.9, seed: 1234 };
      const rng = mulberry32(sampling.seed);
      s.ref.reset();
      let logits = s.ref.prefill(prompt, PROMPT);
      const expected: number[] = [];
      for (;;) {
        expected.push(sampleTopPRef(logits, { temperature: sampling.temperature, topP: sampling.topP, u: rng() }));
        if (expected.length === 12) break;
        logits = s.ref.decode(expected.at(-1)!);
      }
      await s.rt.prefill(s.input, PROMPT);
      const res = await s.rt.generate({ maxNewTokens: 12, stopIds: [], sampling });
      expect(res.tokens).toEqual(expected);
    } finally {
      s.done();
    }
  });

  it('aborts between prefill chunks (cache rolled back) and between tokens; a full cache is a clear error', async () => {
    const s = await setup('f32', 3);
    try {
      const aborted = new AbortController();
      aborted.abort();
      await expect(s.rt.prefill(s.input, PROMPT, { signal: aborted.signal })).rejects.toThrow();
      expect(s.rt.length).toBe(0);
      // A signal that fires once the first chunk has been submitted (checks: on entry, before each submit).
      let checks = 0;
      const afterFirstChunk = {
        get aborted() {
          return checks > 2;
        },
        throwIfAborted() {
          if (++checks > 2) throw new Error('aborted after chunk 1');
        },
      } as unknown as AbortSignal;
      await expect(s.rt.prefill(s.input, PROMPT, { signal: afterFirstChunk })).rejects.toThrow('aborted after chunk 1');
      expect(checks).toBe(3);
      expect(s.rt.length).toBe(0);

      await s.rt.prefill(s.input, PROMPT);
      const stop = new AbortController();
      const res = await s.rt.generate({ maxNewTokens: 20, stopIds: [], signal: stop.signal, onToken: (id) => void (id >= 0 && stop.abort()) });
      expect(res.stopped).toBe('aborted');
      expect(res.tokens.length).toBe(1);
      expect(s.rt.length).toBe(PROMPT);

      // Generating into the last free rows: every token the cache allows is delivered, then the full cache is the error.
      s.rt.rollback(0);
      const long = storageBufferFrom(ctx.device, randomF32(62 * H, mulberry32(79), 1), '62 rows');
      await s.rt.prefill(long, 62).finally(() => long.destroy()); // two rows left
      const delivered: number[] = [];
      await expect(s.rt.generate({ maxNewTokens: 10, stopIds: [], onToken: (id) => void delivered.push(id) })).rejects.toThrow(/KV cache full: 64 cached rows \+ 1 new rows exceed its capacity of 64/);
      expect(delivered.length).toBe(3);
      expect(s.rt.length).toBe(64);

      s.rt.rollback(0);
      const big = storageBufferFrom(ctx.device, new Float32Array(65 * H), 'too long');
      try {
        await expect(s.rt.prefill(big, 65)).rejects.toThrow(/KV cache full: 0 cached rows \+ 65 new rows exceed its capacity of 64/);
      } finally {
        big.destroy();
      }
    } finally {
      s.done();
    }
  });
});

// SwiftShader has no shader-f16: the f16 KV cache, f16 weights and q4f16 (f16 scales) are validated on Dawn's
// null backend, which compiles and validates every pipeline and command exactly like a real device but executes
// nothing (so only "no validation error" is checked, never values).
describe('f16 paths record without validation errors (Dawn null backend, shader-f16)', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  for (const precision of ['f16', 'q4'] as const) {
    it(`${precision} weights, f16 KV cache: prefill (2 chunks), generate, pre-fusion vision + text`, async () => {
      expect(vctx.device.features.has('shader-f16')).toBe(true);
      const d = vctx.device;
      const weights = new GpuWeights(d, source, precision);
      const rt = await LlamaRuntime.create(weights, { maxContext: 32, prefillChunkSize: 8, kv: 'f16' });
      const pf = await PrefusionRuntime.create(weights, { maxTextRows: 16, chunkSize: 8, kv: 'f16' });
      expect(weights.get('model.layers.0.mlp.up_proj.weight').storage).toBe(precision === 'q4' ? 'q4f16' : 'f16');
      const input = storageBufferFrom(d, prompt, 'prompt');
      const G = storageBufferFrom(d, new Float32Array(pf.patchRows * H), 'G');
      const Vc = storageBufferFrom(d, new Float32Array(pf.compressedRows * H), 'Vc');
      d.pushErrorScope('validation');
      try {
        await rt.prefill(input, PROMPT);
        await rt.generate({ maxNewTokens: 3, stopIds: [], sampling: { temperature: 1, topP: 0.5, seed: 1 } });
        const state = await pf.fuseVision(allRows(G, H), allRows(Vc, H));
        await pf.fuseText(state, [1, 1, 7, -200, 8, 2]);
        state.destroy();
      } finally {
        const error = await d.popErrorScope();
        expect(error?.message ?? null).toBeNull();
        for (const b of [input, G, Vc]) b.destroy();
        rt.destroy();
        pf.destroy();
        weights.destroy();
      }
    });
  }
});
