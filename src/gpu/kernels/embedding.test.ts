// Embedding kernels (shaders/embedding.wgsl) on Dawn (SwiftShader without a GPU) against the CPU reference:
// src/reference/llama.ts embedRows (token gather; ids clamped with max(id, 0) as spec section 4 does), a q4
// packer/dequantizer written for these tests (embedding.selftest.ts). The CLIP entry points are tested in
// src/vision/clip-embedding.test.ts.
// Tolerances: gathers are bit-exact (a copy, or (q - 7) * scale rounded once in f32 on both sides).
// f16 tables and q4f16 scales cannot run on SwiftShader (no shader-f16): they run where the adapter has it and
// are compiled and validated on Dawn's Null backend (createValidationOnlyGpu) at the end of this file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu, createValidationOnlyGpu } from '../../node/gpu.ts';
import { embedRows } from '../../reference/llama.ts';
import { mulberry32 as seededRandom, randomF32 } from '../../util/seeded-random.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../buffers.ts';
import type { Tolerance } from '../compare.ts';
import { expectClose } from '../gpu.testing.ts';
import type { GpuContext } from '../device.ts';
import { runSelfTests } from '../selftest-support.ts';
import { ShaderError } from '../pipeline.ts';
import {
  createEmbeddingTable,
  destroyEmbeddingTable,
  embeddingBlockRows,
  embeddingShaderSource,
  EmbeddingKernel,
  embedOnGpu,
} from './embedding.ts';
import type { Storage } from '../storage.ts';
import { dequantizeQ4Rows, EMBEDDING_SELF_TEST_CASES, embeddingTableFor, quantizeQ4Rows } from './embedding.selftest.ts';

const EXACT: Tolerance = { atol: 0, rtol: 0 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());


/** `rows` ids in [0, vocab) with the edge ids and one -200 image slot mixed in. */
function tokenIds(rows: number, vocab: number, seed: number): Int32Array {
  const rng = seededRandom(seed);
  const ids = Int32Array.from({ length: rows }, () => Math.floor(rng() * vocab));
  const edges = [0, vocab - 1, -200, 1];
  for (let i = 0; i < Math.min(rows, edges.length); i++) ids[(i * 5) % rows] = edges[i]!;
  return ids;
}

const clamp0 = (ids: Int32Array) => Array.from(ids, (i) => Math.max(i, 0));

describe('EmbeddingKernel vs embedRows(max(ids, 0))', () => {
  const cases: [Storage, number, number, number, number | undefined][] = [
    // format, rows, vocab, H, maxBlockRows
    ['f32', 1, 50, 24, undefined],
    ['f32', 7, 50, 100, undefined],
    ['f32', 577, 50, 24, 7], // 8 row blocks
    ['f32', 601, 61, 100, 60], // 2 blocks, the second a single row
    ['f32', 1, 5, 1024, undefined],
    ['f32', 1, 3, 4096, undefined],
    ['q4f32', 1, 40, 64, undefined],
    ['q4f32', 7, 40, 96, undefined],
    ['q4f32', 577, 40, 32, 9],
    ['q4f32', 601, 40, 64, 13],
    ['q4f32', 1, 3, 4096, undefined],
  ];
  for (const [format, rows, vocab, H, maxBlockRows] of cases) {
    it(`${format} rows=${rows} vocab=${vocab} H=${H}${maxBlockRows ? ` in blocks of ${maxBlockRows}` : ''}`, async () => {
      const values = randomF32(vocab * H, seededRandom(vocab * 13 + H), 1);
      const { data, expected: table } = embeddingTableFor(format, values, vocab, H);
      const ids = tokenIds(rows, vocab, rows + H);
      const y = await embedOnGpu(ctx.device, format, data, vocab, H, ids, { maxBlockRows });
      expectClose(y, embedRows(table, vocab, H, clamp0(ids)), `embed ${format}`, [rows, H], EXACT);
    });
  }

  it("negativeIds: 'zero' gives zero rows for the image slot; ids >= vocab always give zero rows", async () => {
    const [vocab, H] = [20, 24];
    const values = randomF32(vocab * H, seededRandom(4), 1);
    const ids = Int32Array.from([3, -200, 19, 20, 1000, -1, 0]);
    for (const [format, maxBlockRows] of [
      ['f32', 6],
      ['q4f32', 6],
    ] as const) {
      const H2 = format === 'q4f32' ? 32 : H;
      const v2 = format === 'q4f32' ? randomF32(vocab * H2, seededRandom(5), 1) : values;
      const { data, expected: table } = embeddingTableFor(format, v2, vocab, H2);
      const expected = new Float32Array(ids.length * H2);
      ids.forEach((id, r) => {
        if (id >= 0 && id < vocab) expected.set(table.subarray(id * H2, (id + 1) * H2), r * H2);
      });
      const zero = await embedOnGpu(ctx.device, format, data, vocab, H2, ids, { negativeIds: 'zero', maxBlockRows });
      expectClose(zero, expected, `${format} negative -> zero`, [ids.length, H2], EXACT);
      // default 'clamp': negative ids read row 0; >= vocab still zero
      for (const r of [1, 5]) expected.set(table.subarray(0, H2), r * H2);
      const clamped = await embedOnGpu(ctx.device, format, data, vocab, H2, ids, { maxBlockRows });
      expectClose(clamped, expected, `${format} negative -> row 0`, [ids.length, H2], EXACT);
    }
  });

  it('idsOffset / outRowOffset: gathers a slice of ids into rows after other rows, leaving those alone', async () => {
    const [vocab, H, total] = [30, 40, 10];
    const values = randomF32(vocab * H, seededRandom(6), 1);
    const kernel = await EmbeddingKernel.create(ctx.device, 'f32', { maxWorkgroupsPerDimension: 2 });
    expect(kernel.dispatchSize(4)).toEqual([2, 2]);
    const table = createEmbeddingTable(ctx.device, 'f32', vocab, H, values, { maxBlockRows: 11 });
    expect(table.blocks.map((b) => b.rows)).toEqual([11, 11, 8]);
    const ids = Int32Array.from([9, 9, 29, -200, 12, 0, 7]);
    const idsBuf = storageBufferFrom(ctx.device, ids);
    const sentinel = new Float32Array(total * H).fill(5);
    const out = storageBufferFrom(ctx.device, sentinel);
    kernel.run(ctx.device, idsBuf, table, out, 4, { idsOffset: 2, outRowOffset: 6 }); // ids 29, -200, 12, 0 -> rows 6..9
    const expected = sentinel.slice();
    expected.set(embedRows(values, vocab, H, [29, 0, 12, 0]), 6 * H);
    expectClose(await readF32(ctx.device, out, total * H), expected, 'embed window', [total, H], EXACT);
    destroyEmbeddingTable(table);
    idsBuf.destroy();
    out.destroy();
    kernel.destroy();
  });

  it('the q4 test packer follows the MLC layout (nibble order, (q - 7) * scale, zero groups)', () => {
    const H = 32;
    const w = new Float32Array(2 * H);
    for (let i = 0; i < H; i++) w[i] = i === 3 ? 7 : i === 9 ? -7 : (i % 7) - 3; // max |w| = 7 -> scale 1
    const q = quantizeQ4Rows(w, 2, H, 'f32'); // row 1 all zero
    expect(Array.from(q.qScale)).toEqual([1, 0]);
    // element 3 = 7 -> q = 14 in bits 12..15 of word 0; element 9 = -7 -> q = 0 in bits 4..7 of word 1
    expect((q.qWeight[0]! >>> 12) & 15).toBe(14);
    expect((q.qWeight[1]! >>> 4) & 15).toBe(0);
    expect(q.qWeight[4]).toBe(0x77777777); // zero group: q = 7 everywhere
    expect(Array.from(dequantizeQ4Rows(q.qWeight, q.qScale, 2, H))).toEqual(Array.from(w, (v, i) => (i < H ? v : 0)));
    // random values: |w - dequant| <= scale / 2 (round to nearest)
    const r = randomF32(4 * 64, seededRandom(9), 3);
    for (const scales of ['f32', 'f16'] as const) {
      const qr = quantizeQ4Rows(r, 4, 64, scales);
      const d = dequantizeQ4Rows(qr.qWeight, qr.qScale, 4, 64);
      // the stored scales as f32 values: dequantize words of all-8 nibbles ((8 - 7) * scale), one per group
      const s = dequantizeQ4Rows(new Uint32Array(32).fill(0x88888888), qr.qScale, 4, 64).filter((_, i) => i % 32 === 0);
      expect(s.length).toBe(8);
      for (let i = 0; i < r.length; i++) expect(Math.abs(r[i]! - d[i]!)).toBeLessThanOrEqual(s[i >> 5]! * 0.5000001 + 1e-7);
    }
  });

  it('block sizing for the real vocab and refusal of an oversized block', async () => {
    const limit128M = 128 * 1024 * 1024;
    expect(embeddingBlockRows('f16', 4096, limit128M)).toBe(16383); // 1 GiB f16 table -> 8 blocks
    expect(Math.ceil(128256 / embeddingBlockRows('f16', 4096, limit128M))).toBe(8);
    expect(Math.ceil(128256 / embeddingBlockRows('q4f16', 4096, limit128M))).toBe(2); // q_weight 256 MiB
    expect(Math.ceil(128256 / embeddingBlockRows('f32', 4096, 2 ** 30))).toBe(2);
    const kernel = await EmbeddingKernel.create(ctx.device, 'f32');
    const small = createStorageBuffer(ctx.device, 64);
    const out = createStorageBuffer(ctx.device, 4096 * 4);
    const max = ctx.device.limits.maxStorageBufferBindingSize;
    const rows = Math.floor(max / (4096 * 4)) + 1;
    const big = { format: 'f32' as const, vocab: rows, hidden: 4096, blocks: [{ rows, table: small }] };
    expect(() => kernel.run(ctx.device, small, big, out, 1)).toThrow(/block 0 .* more than this device's maxStorageBufferBindingSize.*split the table/);
    const wrong = { format: 'f32' as const, vocab: 10, hidden: 4, blocks: [{ rows: 4, table: small }] };
    expect(() => kernel.run(ctx.device, small, wrong, out, 1)).toThrow(/blocks hold 4 rows, vocab is 10/);
    expect(() => kernel.run(ctx.device, small, { ...wrong, format: 'q4f32' }, out, 1)).toThrow(/the table is q4f32/);
    expect(() => createEmbeddingTable(ctx.device, 'q4f32', 2, 24, { qWeight: new Uint32Array(6), qScale: new Float32Array(2) })).toThrow(/multiple of 32/);
    small.destroy();
    out.destroy();
    kernel.destroy();
  });

  it('is refused with a clear error when the device lacks shader-f16', ({ skip }) => {
    if (ctx.device.features.has('shader-f16')) skip('this device has shader-f16');
    expect(() => new EmbeddingKernel(ctx.device, 'f16')).toThrow(/shader-f16/);
    expect(() => new EmbeddingKernel(ctx.device, 'q4f16')).toThrow(/shader-f16.*q4f32/);
  });

  it('f16 and q4f16 tables match exactly (needs shader-f16)', async ({ skip }) => {
    if (!ctx.device.features.has('shader-f16')) skip('the adapter has no shader-f16');
    for (const [format, H] of [
      ['f16', 100],
      ['q4f16', 96],
    ] as const) {
      const vocab = 45;
      const { data, expected: table } = embeddingTableFor(format, randomF32(vocab * H, seededRandom(2), 1), vocab, H);
      const ids = tokenIds(601, vocab, 3);
      const y = await embedOnGpu(ctx.device, format, data, vocab, H, ids, { maxBlockRows: 10 });
      expectClose(y, embedRows(table, vocab, H, clamp0(ids)), `embed ${format}`, [601, H], EXACT);
    }
  });
});

describe('f16 variants on a validating (Null) device', () => {
  let vctx: GpuContext;
  beforeAll(async () => {
    vctx = await createValidationOnlyGpu();
  });
  afterAll(() => vctx?.device.destroy());

  it('the f32 code never mentions f16; the variants enable it and retype only their alias', () => {
    expect(embeddingShaderSource('f32').replace(/\/\/.*$/gm, '')).not.toMatch(/f16/);
    expect(embeddingShaderSource('q4f32')).toBe(embeddingShaderSource('f32'));
    const f16 = embeddingShaderSource('f16');
    const q4f16 = embeddingShaderSource('q4f16');
    expect(f16.startsWith('enable f16;\n') && q4f16.startsWith('enable f16;\n')).toBe(true);
    expect(f16).toMatch(/^alias TT = f16;$/m);
    expect(f16).toMatch(/^alias ST = f32;$/m);
    expect(q4f16).toMatch(/^alias TT = f32;$/m);
    expect(q4f16).toMatch(/^alias ST = f16;$/m);
  });

  it('every format builds and a multi-block gather validates', async () => {
    expect(vctx.device.features.has('shader-f16')).toBe(true);
    const d = vctx.device;
    for (const format of ['f32', 'f16', 'q4f32', 'q4f16'] as const) {
      const kernel = await EmbeddingKernel.create(d, format);
      const [vocab, H] = [7, 96];
      const { data } = embeddingTableFor(format, randomF32(vocab * H, seededRandom(1), 1), vocab, H);
      const table = createEmbeddingTable(d, format, vocab, H, data, { maxBlockRows: 3 });
      const ids = createStorageBuffer(d, 5 * 4);
      const out = createStorageBuffer(d, 5 * H * 4);
      d.pushErrorScope('validation');
      kernel.run(d, ids, table, out, 5);
      expect((await d.popErrorScope())?.message ?? null).toBeNull();
      destroyEmbeddingTable(table);
      ids.destroy();
      out.destroy();
      kernel.destroy();
    }
  });

  it('a broken f16 edit is caught as a ShaderError with its line', async () => {
    const { computeProgram } = await import('../pipeline.ts');
    const broken = embeddingShaderSource('f16').replace('out[o + c] = f32(table[t + c]);', 'out[o + c] = table[t + c];');
    const err = await computeProgram(vctx.device, {
      name: 'embedding.wgsl (f16, broken)',
      code: broken,
      entryPoint: 'gather',
      bindings: ['uniform', 'read', 'read', 'storage'],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShaderError);
    expect((err as Error).message).toMatch(/line \d+:\d+: error/);
  });
});

describe('in-app self-test cases (EMBEDDING_SELF_TEST_CASES)', () => {
  it('each passes here, or is skipped for a missing feature', async () => {
    const results = await runSelfTests({ device: ctx.device }, EMBEDDING_SELF_TEST_CASES);
    expect(new Set(results.map((r) => r.id)).size).toBe(EMBEDDING_SELF_TEST_CASES.length);
    for (const [i, r] of results.entries()) {
      const runnable = (EMBEDDING_SELF_TEST_CASES[i]!.requires ?? []).every((f) => ctx.device.features.has(f));
      expect(r.status, r.detail).toBe(runnable ? 'pass' : 'skipped');
      if (process.env.SHOW_CMP) console.log(r.detail, r.gpuMs?.toFixed(1), 'ms');
    }
  });
});
