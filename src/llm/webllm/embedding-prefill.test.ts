// EmbeddingPrefill against a fake WebLLM pipeline whose tensors are real GPUBuffers on a Dawn device
// (SwiftShader without a GPU): a first chunk of at most prefillChunkSize rows on an empty cache, then single rows
// (the real library's prefill is wrong over cached rows), each piece's tensor bytes equal to the right rows of our
// f32 buffer (f32 exactly, f16 equal to round-to-nearest-even), the KV calls in WebLLM's order with their
// shape arguments, filledKVCacheLength tracking the cache, roll-back through kv_state_popn, abort between
// chunks, tvm scope hygiene (no leaked tensors, the returned logits detached).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../../node/gpu.ts';
import { f32ToF16Bytes } from '../../checkpoint/dtype.ts';
import { readBuffer, storageBufferFrom } from '../../gpu/buffers.ts';
import type { GpuContext } from '../../gpu/device.ts';
import { mulberry32, randomF32 } from '../../util/seeded-random.ts';
import { dtypeOfQuantization, EmbeddingPrefill } from './embedding-prefill.ts';
import { FakePipeline, type FakePipelineOptions, type ForwardRecord } from './fake-pipeline.testing.ts';

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

const H = 8;
const C = 4;
/** Our engine's LLM input buffer: [ROWS, H] f32. */
const ROWS = 3 * C + 5 + 9;
const INPUT = randomF32(ROWS * H, mulberry32(77), 4);

function fake(opts: Partial<FakePipelineOptions> = {}): FakePipeline {
  return new FakePipeline(ctx.device, { hidden: H, quantization: 'q4f32_1', prefillChunkSize: C, contextWindowSize: 64, ...opts });
}

/** The bytes the model must see for rows [from, from + n) of INPUT in `dtype`. */
function expectedBytes(from: number, n: number, dtype: string): Uint8Array {
  const rows = INPUT.slice(from * H, (from + n) * H);
  return dtype === 'float16' ? f32ToF16Bytes(rows) : new Uint8Array(rows.buffer);
}

async function captured(rec: ForwardRecord): Promise<Uint8Array> {
  return new Uint8Array(await readBuffer(ctx.device, rec.capture, rec.capture.size));
}

/** The rows of each forward of one prefill of `rows` rows after `cached` rows: a first chunk on an empty cache, then one at a time. */
function expectedPieces(rows: number, cached = 0): number[] {
  const first = cached === 0 ? Math.min(C, rows) : 1;
  return [first, ...Array<number>(rows - first).fill(1)];
}

/** The calls one prefill of `rows` rows on an empty cache makes, piece by piece. */
function expectedCalls(rows: number): string[] {
  return expectedPieces(rows).flatMap((n) => [`begin_forward seq=[0] len=[${n}]`, n > 1 ? `prefill n=${n}` : 'decode', 'end_forward']);
}

describe('EmbeddingPrefill', () => {
  for (const quantization of ['q4f32_1', 'q4f16_1', 'q0f32'] as const) {
    {
      it(`${quantization}: a first chunk of at most prefillChunkSize rows, then single rows, carry the right rows (at offset 0 of each tensor's buffer, whatever byteOffset says)`, async () => {
        const input = storageBufferFrom(ctx.device, INPUT, 'llm input');
        for (const rows of [1, C - 1, C, C + 1, 3 * C + 5]) {
          const p = fake({ quantization });
          const ep = await EmbeddingPrefill.create(p, { hidden: H });
          expect(ep.dtype).toBe(dtypeOfQuantization(quantization));
          const row0 = 2;
          const logits = await ep.run(input, rows, { inputRowOffset: row0 });
          expect(p.calls).toEqual(expectedCalls(rows));
          const sizes = p.forwards.map((f) => f.rows);
          expect(sizes).toEqual(expectedPieces(rows));
          let at = 0;
          for (const f of p.forwards) {
            expect([f.start, f.filledBefore]).toEqual([at, at]);
            expect(f.dtype).toBe(ep.dtype);
            const got = await captured(f);
            expect(Buffer.from(got).equals(Buffer.from(expectedBytes(row0 + at, f.rows, f.dtype))), `rows ${row0 + at}..${row0 + at + f.rows} of ${rows}`).toBe(true);
            at += f.rows;
          }
          expect([p.filledKVCacheLength, p.kvRows, ep.length]).toEqual([rows, rows, rows]);
          // The last chunk's logits, detached and alive; every other tensor freed; every scope closed.
          const last = p.forwards.length - 1;
          expect(Array.from((await ep.readLogits(logits)).subarray(0, 3))).toEqual([last, p.forwards[last]!.rows, p.forwards[last]!.start]);
          expect([p.tvm.live, p.tvm.scopeDepth]).toEqual([1, 0]);
          logits.dispose();
          expect(p.tvm.live).toBe(0);
          ep.destroy();
        }
        input.destroy();
      });
    }
  }

  it('appends after cached rows and rolls back with kv_state_popn (multi-turn bookkeeping)', async () => {
    const input = storageBufferFrom(ctx.device, INPUT, 'llm input');
    const p = fake({ quantization: 'q4f16_1' });
    const ep = await EmbeddingPrefill.create(p, { hidden: H });
    (await ep.run(input, 6)).dispose();
    (await ep.run(input, 5, { inputRowOffset: 6 })).dispose();
    expect([p.filledKVCacheLength, p.kvRows]).toEqual([11, 11]);
    // The first chunk on the empty cache, then one row at a time (the library's prefill is wrong over cached rows).
    expect(p.forwards.map((f) => [f.start, f.rows])).toEqual([[0, 4], [4, 1], [5, 1], [6, 1], [7, 1], [8, 1], [9, 1], [10, 1]]);
    expect(Buffer.from(await captured(p.forwards[2]!)).equals(Buffer.from(expectedBytes(5, 1, 'float16')))).toBe(true);
    p.calls.length = 0;
    ep.rollback(8);
    expect(p.calls).toEqual(['popn seq=0:int64 n=3:int32']);
    expect([p.filledKVCacheLength, p.kvRows]).toEqual([8, 8]);
    ep.rollback(8); // nothing to pop
    expect(p.calls).toHaveLength(1);
    (await ep.run(input, 2, { inputRowOffset: 8 })).dispose();
    expect(p.forwards.slice(-2).map((f) => [f.start, f.kind])).toEqual([[8, 'decode'], [9, 'decode']]);
    // Cached rows are worth keeping once they fill a chunk; below that a fresh prefill is cheaper.
    expect([ep.keptRows(C - 1, 2 * C), ep.keptRows(C, 2 * C), ep.keptRows(2, 3)]).toEqual([0, C, 0]);
    expect(() => ep.keptRows(4, 3)).toThrow(/4 unchanged rows of 3/);
    // The fake refuses what the real library gets wrong.
    expect(() => ep.forward(input, 0, 2)).toThrow(/over 10 cached rows/);
    ep.rollback(0);
    expect([p.filledKVCacheLength, p.kvRows]).toEqual([0, 0]);
    expect(() => ep.rollback(1)).toThrow(/outside 0..0/);
    expect([p.tvm.live, p.tvm.scopeDepth]).toEqual([0, 0]);
    ep.destroy();
    input.destroy();
  });

  it('an abort between chunks rolls the cache back to where the call started and frees every tensor', async () => {
    const input = storageBufferFrom(ctx.device, INPUT, 'llm input');
    const p = fake();
    const ep = await EmbeddingPrefill.create(p, { hidden: H });
    (await ep.run(input, 3)).dispose();
    const ac = new AbortController();
    p.onForward = (rec) => {
      if (rec.start === 3 + C) ac.abort(new Error('stop!'));
    };
    await expect(ep.run(input, 3 * C, { inputRowOffset: 3, signal: ac.signal })).rejects.toThrow('stop!');
    // After cached rows, rows go one at a time: they ran up to the one during which the abort came, and were popped.
    expect(p.forwards.map((f) => f.start)).toEqual([0, ...Array.from({ length: C + 1 }, (_, i) => 3 + i)]);
    expect(p.calls.at(-1)).toBe(`popn seq=0:int64 n=${C + 1}:int32`);
    expect([p.filledKVCacheLength, p.kvRows, p.tvm.live, p.tvm.scopeDepth]).toEqual([3, 3, 0, 0]);
    // An already aborted signal runs nothing.
    await expect(ep.run(input, 2, { signal: ac.signal })).rejects.toThrow('stop!');
    expect(p.forwards).toHaveLength(C + 2);
    // And the backend continues normally afterwards.
    p.onForward = null;
    (await ep.run(input, 2, { inputRowOffset: 3 })).dispose();
    expect([p.filledKVCacheLength, p.kvRows]).toEqual([5, 5]);
    ep.destroy();
    input.destroy();
  });

  it('refuses what it cannot do with clear errors', async () => {
    const input = storageBufferFrom(ctx.device, INPUT, 'llm input');
    const p = fake({ contextWindowSize: 10 });
    await expect(EmbeddingPrefill.create(p, { hidden: H + 2 })).rejects.toThrow(/hidden size is 8, our LLM input rows have 10/);
    const ep = await EmbeddingPrefill.create(p, { hidden: H });
    await expect(ep.run(input, 11)).rejects.toThrow(/exceed the context window of 10/);
    await expect(ep.run(input, 4, { inputRowOffset: ROWS - 3 })).rejects.toThrow(/needs/);
    await expect(ep.run(input, 0)).rejects.toThrow(/positive integer/);
    expect(p.forwards).toHaveLength(0);
    const sliding = fake();
    sliding.slidingWindowSize = 1024;
    await expect(EmbeddingPrefill.create(sliding, { hidden: H })).rejects.toThrow(/sliding window/);
    expect([dtypeOfQuantization('q0f32'), dtypeOfQuantization('q0f16')]).toEqual(['float32', 'float16']);
    expect(() => dtypeOfQuantization('q4')).toThrow(/quantization/);
    ep.destroy();
    input.destroy();
  });
});
