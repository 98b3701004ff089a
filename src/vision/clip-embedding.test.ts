// CLIP's patch embedding (src/vision/clip-embedding.ts, entry points of shaders/embedding.wgsl) on Dawn against
// src/reference/clip.ts patchify / clipEmbeddingsWith (CLIP hidden_states[0]).
// Tolerances: patchify and the class/position assembly are exact (a copy, one f32 addition). The whole CLIP
// embedding goes through the f32 tiled matmul (K = 588, same 1e-4 as linear.test.ts) and then a LayerNorm that
// divides by the row's std (O(1) here): atol 1e-4 + rtol 1e-4.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorageBuffer, readF32, storageBufferFrom } from '../gpu/buffers.ts';
import type { Tolerance } from '../gpu/compare.ts';
import type { GpuContext } from '../gpu/device.ts';
import { expectClose } from '../gpu/gpu.testing.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { clipEmbeddingsWith, patchify } from '../reference/clip.ts';
import { mulberry32 as seededRandom, randomF32 } from '../util/seeded-random.ts';
import { ClipAssembleKernel, ClipEmbeddingKernel, PatchifyKernel } from './clip-embedding.ts';
import { clipEmbeddingsOnGpu, randomClipEmbeddingWeights, smallClipConfig } from './clip-embedding.selftest.ts';

const EXACT: Tolerance = { atol: 0, rtol: 0 };
const CLIP_TOL: Tolerance = { atol: 1e-4, rtol: 1e-4 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(() => ctx?.device.destroy());

describe('CLIP patch embedding', () => {
  it('patchify matches the reference exactly (S = 42, P = 14 and S = 12, P = 4)', async () => {
    const kernel = await PatchifyKernel.create(ctx.device, { maxWorkgroupsPerDimension: 5 }); // S = 42: 21 workgroups on a 5x5 grid
    for (const [C, S, P] of [
      [3, 42, 14],
      [3, 12, 4],
      [1, 5, 5],
    ] as const) {
      const px = randomF32(C * S * S, seededRandom(S), 2);
      const expected = patchify(px, C, S, P);
      const pb = storageBufferFrom(ctx.device, px);
      const out = createStorageBuffer(ctx.device, expected.length * 4);
      kernel.run(ctx.device, pb, out, C, S, P);
      expectClose(await readF32(ctx.device, out, expected.length), expected, 'patchify', [(S / P) ** 2, C * P * P], EXACT);
      pb.destroy();
      out.destroy();
    }
    kernel.destroy();
  });

  it('assembles class + position embeddings, out of place and in place, exactly', async () => {
    const [N, D] = [9, 20];
    const rng = seededRandom(8);
    const proj = randomF32(N * D, rng, 1);
    const cls = randomF32(D, rng, 1);
    const pos = randomF32((N + 1) * D, rng, 1);
    const expected = new Float32Array((N + 1) * D);
    for (let d = 0; d < D; d++) expected[d] = cls[d]! + pos[d]!;
    for (let i = 0; i < N * D; i++) expected[D + i] = proj[i]! + pos[D + i]!;
    const kernel = await ClipAssembleKernel.create(ctx.device);
    const [pb, cb, qb] = [proj, cls, pos].map((a) => storageBufferFrom(ctx.device, a));
    const out = createStorageBuffer(ctx.device, (N + 1) * D * 4);
    kernel.run(ctx.device, pb!, cb!, qb!, out, N, D);
    expectClose(await readF32(ctx.device, out, (N + 1) * D), expected, 'clip assemble', [N + 1, D], EXACT);
    const inPlace = new Float32Array((N + 1) * D).fill(123);
    inPlace.set(proj, D);
    const ib = storageBufferFrom(ctx.device, inPlace);
    kernel.run(ctx.device, null, cb!, qb!, ib, N, D);
    expectClose(await readF32(ctx.device, ib, (N + 1) * D), expected, 'clip assemble in place', [N + 1, D], EXACT);
    expect(() => kernel.run(ctx.device, ib, cb!, qb!, ib, N, D)).toThrow(/proj = null/);
    for (const b of [pb, cb, qb, out, ib]) b!.destroy();
    kernel.destroy();
  });

  for (const [S, P, D] of [
    [28, 14, 24],
    [42, 14, 32],
    [56, 14, 40],
    [336, 14, 16], // the real grid: 576 patches + class token = 577 rows, K = 588, small width
  ] as const) {
    it(`patchify + LinearKernel + assemble + pre_layrnorm = clipEmbeddingsWith, S=${S} P=${P} D=${D}`, async () => {
      const v = smallClipConfig(S, P, D);
      const w = randomClipEmbeddingWeights(v, S + D);
      const pixels = randomF32(3 * S * S, seededRandom(S * 3), 2);
      const [y] = await clipEmbeddingsOnGpu(ctx.device, w, v, pixels);
      const N = (S / P) ** 2;
      expectClose(y, clipEmbeddingsWith(w, v, pixels), 'clip embeddings', [N + 1, D], CLIP_TOL);
    });
  }

  it('records into one caller pass and reuses its scratch across runs of the same shape', async () => {
    const v = smallClipConfig(28, 14, 24);
    const kernel = await ClipEmbeddingKernel.create(ctx.device);
    const w = randomClipEmbeddingWeights(v, 1);
    const gw = {
      patch: storageBufferFrom(ctx.device, w.patch),
      cls: storageBufferFrom(ctx.device, w.cls),
      pos: storageBufferFrom(ctx.device, w.pos),
      preW: storageBufferFrom(ctx.device, w.preW),
      preB: storageBufferFrom(ctx.device, w.preB),
    };
    const pixA = randomF32(3 * 28 * 28, seededRandom(1), 2);
    const pixB = randomF32(3 * 28 * 28, seededRandom(2), 2);
    const [pa, pb] = [pixA, pixB].map((p) => storageBufferFrom(ctx.device, p));
    const [oa, ob] = [0, 1].map(() => createStorageBuffer(ctx.device, 5 * 24 * 4));
    const encoder = ctx.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    kernel.run(pass, pa!, gw, oa!, v);
    kernel.run(pass, pb!, gw, ob!, v);
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    expectClose(await readF32(ctx.device, oa!, 5 * 24), clipEmbeddingsWith(w, v, pixA), 'clip A', [5, 24], CLIP_TOL);
    expectClose(await readF32(ctx.device, ob!, 5 * 24), clipEmbeddingsWith(w, v, pixB), 'clip B', [5, 24], CLIP_TOL);
    const tooSmall = createStorageBuffer(ctx.device, 4 * 24 * 4); // 4 rows, needs 5
    expect(() => kernel.run(ctx.device, pa!, gw, tooSmall, v)).toThrow(/out.*needs 480/);
    expect(() => kernel.run(ctx.device, pa!, { ...gw, pos: gw.cls }, oa!, v)).toThrow(/position embedding/);
    for (const b of [...Object.values(gw), pa, pb, oa, ob, tooSmall]) b!.destroy();
    kernel.destroy();
  });
});
