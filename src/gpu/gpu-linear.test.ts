// Kernels over GpuWeights tensors against the CPU reference (src/reference/linear.ts, ops.ts) fed the weights exactly
// as the GPU holds them (dequantizedSource), on Dawn: with shader-f16 the policy's half tensors are f16 and q4 scales
// f16 (q4f16), without it both are f32. Weights are uploaded with a 1 KiB binding limit so that most are split in row
// blocks. Metric: max |gpu - ref| / max |ref| <= 1e-5 (f32 sums of at most 64 terms; observed ~1e-7).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodeGpu } from '../node/gpu.ts';
import { linear } from '../reference/linear.ts';
import { layerNorm, rmsNorm } from '../reference/ops.ts';
import { randomUniform, randomWeights, tinyConfig } from '../reference/random-weights.testing.ts';
import { dequantizedSource } from '../weights/dequantized-source.ts';
import { rowBytes, type Storage } from './storage.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from './buffers.ts';
import { compareArrays, formatComparison } from './compare.ts';
import { MATVEC_MAX_M } from './kernels/matvec.ts';
import { isCpuDevice } from './device.ts';
import { LinearKernels, linearPath, matvecTailRows, loadF32Tensor, NormKernels, recordLinear, sliceRows } from './gpu-linear.ts';

const REL = 1e-5;
const MAX_BINDING = 1024;
const source = randomWeights(tinyConfig({ llmHidden: 64 }), 9);

let device: GPUDevice;
let hasF16: boolean;
let deq: ReturnType<typeof dequantizedSource>;
let weights: GpuWeights;
let kernels: LinearKernels;
const owned: GPUBuffer[] = [];
beforeAll(async () => {
  device = (await createNodeGpu()).device;
  hasF16 = device.features.has('shader-f16');
  deq = dequantizedSource(source, 'q4', hasF16);
  weights = new GpuWeights(device, source, 'q4', { maxBindingBytes: MAX_BINDING });
  kernels = new LinearKernels(device);
});
afterAll(() => {
  kernels?.destroy();
  for (const b of owned) b.destroy();
  weights?.destroy();
  device?.destroy();
});

function expectRel(actual: Float32Array, expected: Float32Array, name: string): void {
  const maxRef = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const cmp = compareArrays(actual, expected, { atol: REL * maxRef, rtol: 0 });
  expect(cmp.ok, formatComparison(cmp, { name })).toBe(true);
}

/**
 * y window [M, N] at column `off` of rows `ldy` wide, pre-filled with a sentinel that must survive outside it.
 * `residual`: the window starts as a stream y0 (exact small values) that the linear must add into (y += x W^T + b).
 */
async function runWindow(
  name: string,
  biasName: string | null,
  M: number,
  ldy: number,
  off: number,
  { slice, residual = false }: { slice?: { start: number; count: number }; residual?: boolean } = {},
) {
  let w = await weights.load(name);
  if (slice) w = sliceRows(device, w, slice.start, slice.count, owned);
  const bias = biasName ? await loadF32Tensor(weights, biasName, owned) : null;
  await kernels.prepare([w], [M]);
  const N = w.rows;
  const K = w.cols;
  const x = randomUniform(M * K, M * 31 + K);
  const sentinel = 1234.5;
  const inWindow = (c: number) => c >= off && c < off + N;
  const y0 = (r: number, c: number) => (residual ? 0.25 * (((r * 7 + c) % 9) - 4) : 0);
  const yInit = new Float32Array(M * ldy).fill(sentinel);
  // Without `residual` the window keeps the sentinel too: a kernel that added instead of writing would fail.
  if (residual) for (let r = 0; r < M; r++) for (let c = off; c < off + N; c++) yInit[r * ldy + c] = y0(r, c);
  const xb = storageBufferFrom(device, x, 'x');
  const yb = storageBufferFrom(device, yInit, 'y');
  try {
    recordLinear(device, kernels, xb, w, bias, yb, M, { yRowStride: ldy, yColOffset: off, residual });
    const y = await readF32(device, yb, M * ldy);
    let wRef = await deq.readF32(name);
    if (slice) wRef = wRef.subarray(slice.start * K, (slice.start + slice.count) * K);
    const ref = linear(x, M, K, wRef, N, biasName ? await deq.readF32(biasName) : undefined);
    const got = new Float32Array(M * N);
    let outside = 0;
    for (let r = 0; r < M; r++) {
      for (let c = 0; c < ldy; c++) {
        if (inWindow(c)) got[r * N + c - off] = y[r * ldy + c]! - y0(r, c);
        else if (y[r * ldy + c] !== sentinel) outside++;
      }
    }
    expect(outside, 'values written outside the y window').toBe(0);
    expectRel(got, ref, `${w.name} M=${M}`);
    return w;
  } finally {
    xb.destroy();
    yb.destroy();
  }
}

/** Rows per block under MAX_BINDING for a tensor of this storage and width. */
const rowsPerBlock = (storage: Storage, cols: number) => Math.floor(MAX_BINDING / rowBytes(storage, cols).data);

describe('matvecTailRows', () => {
  it('gives the rows past the last whole 64-row tile to the matvec when they are few, readable and aligned', () => {
    expect(matvecTailRows('f16', 577, 1024, 256)).toBe(1); // CLIP: 9 tiles + the last row
    expect(matvecTailRows('q4f16', 80, 4096, 256)).toBe(16);
    expect(matvecTailRows('q4f16', 95, 4096, 256)).toBe(0); // 31 rows: more than a matvec batch (16)
    expect(matvecTailRows('f32', 64, 4096, 256)).toBe(0);
    expect(matvecTailRows('f32', 33, 4096, 256)).toBe(0); // no whole tile before it
    expect(matvecTailRows('f32', 65, 3, 256)).toBe(0); // 12-byte rows: the matvec reads 16-byte units
    expect(matvecTailRows('f32', 65, 4, 2048)).toBe(0); // the tail's byte offset (1024) is not aligned
  });
});

describe('recordLinear over GpuWeights tensors', () => {
  it('half-precision weight (f16, or f32 without shader-f16) in row blocks with bias slices, into a column window: matvec (M = 1, 3, 7), tiled (M = 17, 81) and tiled + a matvec tail (M = 65: 64 + 1)', async () => {
    for (const M of [1, 3, 7, 17, 65, 81]) {
      const w = await runWindow('model.mm_projector.2.weight', 'model.mm_projector.2.bias', M, 64 + 9, 5);
      expect(w.storage).toBe(hasF16 ? 'f16' : 'f32');
      expect(w.blocks.length).toBe(hasF16 ? 8 : 16);
      expect(w.blocks.length).toBe(Math.ceil(w.rows / rowsPerBlock(w.storage, w.cols)));
      expect(linearPath(w.storage, M, w.cols)).toBe(M <= MATVEC_MAX_M ? 'matvec' : 'tiled');
      expect(matvecTailRows(w.storage, M, w.cols, device.limits.minStorageBufferOffsetAlignment)).toBe(M === 65 ? 1 : 0);
    }
  });

  it('int4 (q4f16, or q4f32 without shader-f16) weight in 4 row blocks: batched matvec (M = 3; M = 9 on a GPU), the int4 tile kernel (M = 17; M = 9 on a CPU adapter: 16-row tiles) and tiles + a 16-row matvec tail (M = 80)', async () => {
    const cpu = isCpuDevice(device);
    for (const M of [3, 9, 17, 80]) {
      const w = await runWindow('model.layers.0.mlp.up_proj.weight', null, M, 128, 0);
      expect(w.storage).toBe(hasF16 ? 'q4f16' : 'q4f32');
      expect(w.blocks.length).toBe(4);
      expect(linearPath(w.storage, M, w.cols, cpu)).toBe(M <= (cpu ? 4 : MATVEC_MAX_M) ? 'matvec' : 'tiled');
    }
  });

  it('the residual epilogue (y += x W^T + b) in a column window, through row blocks, bias slices and a matvec tail: half precision (M = 1, 17, 65) and int4 (M = 3, 17, 80)', async () => {
    for (const M of [1, 17, 65]) await runWindow('model.mm_projector.2.weight', 'model.mm_projector.2.bias', M, 64 + 9, 5, { residual: true });
    for (const M of [3, 17, 80]) await runWindow('model.layers.0.mlp.up_proj.weight', null, M, 128 + 3, 2, { residual: true });
  });

  it('row slices across blocks (half precision and int4 with scales) give the same linear as the slice of the weights', async () => {
    const f = await runWindow('model.compressor.attn.in_proj_weight', null, 6, 32, 0, { slice: { start: 8, count: 32 } });
    const r = rowsPerBlock(f.storage, f.cols);
    expect(f.blocks.length).toBe(Math.floor(39 / r) - Math.floor(8 / r) + 1);
    expect(f.blocks.length).toBeGreaterThan(1);
    const q = await runWindow('model.layers.0.mlp.up_proj.weight', null, 5, 64, 0, { slice: { start: 16, count: 64 } });
    expect(q.blocks.map((b) => [b.rowStart, b.rows])).toEqual([[0, 16], [16, 32], [48, 16]]);
  });

  it('gate and up in 4 row blocks: recordGated gives silu(x G^T) * (x U^T) for decode rows; tiled row counts and mismatched tensors are refused', async () => {
    const gate = await weights.load('model.layers.0.mlp.gate_proj.weight');
    const up = await weights.load('model.layers.0.mlp.up_proj.weight');
    const [N, K] = [gate.rows, gate.cols];
    expect(gate.blocks.length).toBe(4);
    await kernels.prepare([gate, up], [1]);
    const gRef = await deq.readF32(gate.name);
    const uRef = await deq.readF32(up.name);
    for (const M of [1, 3]) {
      expect(kernels.fusesGated(gate, up, M)).toBe(true);
      const x = randomUniform(M * K, 17 + M);
      const xb = storageBufferFrom(device, x, 'x');
      const yb = createStorageBuffer(device, M * N * 4, 'y');
      try {
        kernels.recordGated(device, xb, gate, up, yb, M);
        const g = linear(x, M, K, gRef, N);
        const u = linear(x, M, K, uRef, N);
        expectRel(await readF32(device, yb, M * N), g.map((v, i) => (v / (1 + Math.exp(-v))) * u[i]!), `gated M=${M}`);
      } finally {
        xb.destroy();
        yb.destroy();
      }
    }
    expect(kernels.fusesGated(gate, up, 17)).toBe(false); // the tiled path: gate, up and SwiGLU stay separate
    const other = await weights.load('model.layers.0.self_attn.o_proj.weight');
    expect(kernels.fusesGated(gate, other, 1)).toBe(false);
    const b = createStorageBuffer(device, 4096);
    expect(() => kernels.recordGated(device, b, gate, other, b, 1)).toThrow(/gated form needs the matvec path \(M = 1\) and two tensors of one storage, shape and row blocks/);
    b.destroy();
  });

  it('throws a clear error when the kernel variant was not prepared', async () => {
    const w = await weights.load('model.layers.1.self_attn.o_proj.weight');
    const fresh = new LinearKernels(device);
    const M = MATVEC_MAX_M + 1; // the tiled path
    const b = createStorageBuffer(device, M * 64 * 4);
    expect(() => recordLinear(device, fresh, b, w, null, b, M)).toThrow(new RegExp(`no tiled kernel for ${w.storage} weights was prepared`));
    b.destroy();
  });
});

describe('loadF32Tensor and NormKernels', () => {
  it('a column slice of a bias holds exactly the stored values', async () => {
    const t = await loadF32Tensor(weights, 'model.compressor.attn.in_proj_bias', owned, { start: 16, count: 16 });
    const all = await deq.readF32('model.compressor.attn.in_proj_bias');
    expect(await readF32(device, t.blocks[0]!.data, 16)).toEqual(all.slice(16, 32));
  });

  it('LayerNorm and RMSNorm with the kernel of the weight storage', async () => {
    const norms = new NormKernels(device);
    const rows = 5;
    const D = 64;
    const x = randomUniform(rows * D, 77, -3, 3);
    const xb = storageBufferFrom(device, x, 'x');
    const yb = createStorageBuffer(device, rows * D * 4, 'y');
    const rmsW = await weights.load('model.prefusion_layers.0.input_layernorm.weight');
    await norms.prepare('rmsnorm', [rmsW]);
    norms.record(device, 'rmsnorm', xb, rmsW, null, yb, rows, 1e-5);
    expectRel(await readF32(device, yb, rows * D), rmsNorm(x, rows, D, await deq.readF32(rmsW.name), 1e-5), 'rmsnorm');

    const lnW = await weights.load('model.compressor.ln_kv.weight');
    const lnB = await weights.load('model.compressor.ln_kv.bias');
    await norms.prepare('layernorm', [lnW]);
    const d = lnW.cols;
    norms.record(device, 'layernorm', xb, lnW, lnB, yb, rows, 1e-5);
    expectRel(await readF32(device, yb, rows * d), layerNorm(x.subarray(0, rows * d), rows, d, await deq.readF32(lnW.name), await deq.readF32(lnB.name), 1e-5), 'layernorm');
    xb.destroy();
    yb.destroy();
    norms.destroy();
  });
});
