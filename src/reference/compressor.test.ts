import { describe, expect, it } from 'vitest';
import { sincos2dPosEmbed as sincos2d } from '../checkpoint/sincos.ts';
import { bicubicResizePosEmbed, compressor, torchBicubicTaps, torchCubicCoeffs } from './compressor.ts';
import { linear } from './linear.ts';
import { layerNorm } from './ops.ts';
import { randomUniform, randomWeights, tinyConfig } from './random-weights.testing.ts';

/** numpy's get_2d_sincos_pos_embed ported step by step (meshgrid(w, h), emb_h from grid[0], f32 arrays). */
function numpyStyleSincos(embedDim: number, gridSize: number): Float32Array {
  const f = Math.fround;
  const oneD = (dim: number, pos: number[]): number[][] => {
    const omega = Array.from({ length: dim / 2 }, (_, k) => f(f(k / (dim / 2))));
    const om = omega.map((o) => f(1 / f(10000 ** o)));
    return pos.map((p) => {
      const out = om.map((o) => f(p * o));
      return [...out.map((a) => f(Math.sin(a))), ...out.map((a) => f(Math.cos(a)))];
    });
  };
  // grid = meshgrid(grid_w, grid_h): grid[0][i][j] = j, grid[1][i][j] = i, flattened row-major (i, j)
  const g0: number[] = [];
  const g1: number[] = [];
  for (let i = 0; i < gridSize; i++) for (let j = 0; j < gridSize; j++) (g0.push(j), g1.push(i));
  const embH = oneD(embedDim / 2, g0);
  const embW = oneD(embedDim / 2, g1);
  return Float32Array.from(embH.flatMap((row, m) => [...row, ...embW[m]!]));
}

describe('sincos2d', () => {
  it('C = 2, D = 8 by hand: w = [1, 0.01]; token (i, j) = [sin j, sin .01j, cos j, cos .01j, sin i, sin .01i, cos i, cos .01i]', () => {
    const t = sincos2d(8, 2);
    const row = (i: number, j: number): number[] => [
      Math.sin(j), Math.sin(0.01 * j), Math.cos(j), Math.cos(0.01 * j),
      Math.sin(i), Math.sin(0.01 * i), Math.cos(i), Math.cos(0.01 * i),
    ];
    const expected = [row(0, 0), row(0, 1), row(1, 0), row(1, 1)].flat();
    expect(t.length).toBe(32);
    expected.forEach((v, n) => expect(Math.abs(t[n]! - v)).toBeLessThan(1e-7));
    expect([...t.subarray(0, 8)]).toEqual([0, 0, 1, 1, 0, 0, 1, 1]);
  });

  it('equals the generator-style (numpy port) table', () => {
    for (const [d, c] of [
      [64, 3],
      [1024, 1],
      [1024, 2],
      [16, 5],
    ] as const) {
      expect([...sincos2d(d, c)]).toEqual([...numpyStyleSincos(d, c)]);
    }
  });
});

describe('torch bicubic (align_corners=False, A = -0.75)', () => {
  it('cubic coefficients sum to 1 and match hand values', () => {
    // t = 0.25: [cc2(1.25), cc1(0.25), cc1(0.75), cc2(1.75)]
    expect(torchCubicCoeffs(0.25)).toEqual([-0.10546875, 0.87890625, 0.26171875, -0.03515625]);
    for (const t of [0, 0.1, 0.5, 0.93]) expect(torchCubicCoeffs(t).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    expect(torchCubicCoeffs(0)).toEqual([0, 1, 0, 0]);
  });

  it('2 -> 4 taps: src = (dst + 0.5) / 2 - 0.5, clamped indices', () => {
    const t = torchBicubicTaps(2, 4);
    // dst 0: src -0.25, floor -1, t 0.75 -> taps -2..1 clamped to [0, 0, 0, 1]
    expect([...t.idx.subarray(0, 4)]).toEqual([0, 0, 0, 1]);
    expect([...t.idx.subarray(4, 8)]).toEqual([0, 0, 1, 1]);
  });

  it('2x2 grid -> 4x4 by hand (separable: M G M^T)', () => {
    // 1-D weights of (a, b) per output (summing clamped taps):
    //   out0 = 1.10546875 a - 0.10546875 b; out1 = 0.7734375 a + 0.2265625 b; out2, out3 mirrored.
    const M = [
      [1.10546875, -0.10546875],
      [0.7734375, 0.2265625],
      [0.2265625, 0.7734375],
      [-0.10546875, 1.10546875],
    ];
    const G = [
      [1, 2],
      [3, 5],
    ];
    // two channels: G and 10 - G
    const pe = new Float32Array([G[0]![0]!, 10 - G[0]![0]!, G[0]![1]!, 10 - G[0]![1]!, G[1]![0]!, 10 - G[1]![0]!, G[1]![1]!, 10 - G[1]![1]!]);
    const out = bicubicResizePosEmbed(pe, 2, 4, 2);
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) {
        let e = 0;
        for (let a = 0; a < 2; a++) for (let b = 0; b < 2; b++) e += M[y]![a]! * G[a]![b]! * M[x]![b]!;
        expect(out[(y * 4 + x) * 2]).toBeCloseTo(e, 6);
        expect(out[(y * 4 + x) * 2 + 1]).toBeCloseTo(10 - e, 6);
      }
    }
  });

  it('C = 1: every resized row equals the single row; same size: unchanged', () => {
    const pe = new Float32Array([0.1, -2.5, 3.75, 1e-3]);
    const out = bicubicResizePosEmbed(pe, 1, 24, 4);
    expect(out.length).toBe(576 * 4);
    for (let r = 0; r < 576; r++) expect([...out.subarray(r * 4, r * 4 + 4)]).toEqual([...pe]);
    const same = randomUniform(4 * 3, 1);
    expect([...bicubicResizePosEmbed(same, 2, 2, 3)]).toEqual([...same]);
  });
});

describe('compressor', () => {
  it('in_proj rows are [Wq; Wk; Wv]: with Wk = 0 every query gets out_proj(mean of V rows)', async () => {
    const cfg = tinyConfig({ compressorSize: 2 });
    const w = randomWeights(cfg, 3);
    const D = cfg.mmHiddenSize;
    const inW = await w.readF32('model.compressor.attn.in_proj_weight');
    const inB = await w.readF32('model.compressor.attn.in_proj_bias');
    inW.fill(0, D * D, 2 * D * D);
    inB.fill(0, D, 2 * D);
    w.set('model.compressor.attn.in_proj_weight', [3 * D, D], inW);
    w.set('model.compressor.attn.in_proj_bias', [3 * D], inB);
    const N = 4;
    const clip = randomUniform(N * D, 9);
    const out = await compressor(w, clip);
    expect(out.length).toBe(4 * D);
    const x = layerNorm(clip, N, D, await w.readF32('model.compressor.ln_kv.weight'), await w.readF32('model.compressor.ln_kv.bias'), 1e-5);
    const V = linear(x, N, D, inW.subarray(2 * D * D), D, inB.subarray(2 * D));
    const meanV = new Float32Array(D);
    for (let d = 0; d < D; d++) meanV[d] = (V[d]! + V[D + d]! + V[2 * D + d]! + V[3 * D + d]!) / 4;
    const e = linear(meanV, 1, D, await w.readF32('model.compressor.attn.out_proj.weight'), D, await w.readF32('model.compressor.attn.out_proj.bias'));
    for (let r = 0; r < 4; r++) for (let d = 0; d < D; d++) expect(out[r * D + d]).toBeCloseTo(e[d]!, 5);
  });
});
