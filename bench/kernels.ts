// Kernel benchmark at the REAL LLaVA-Mini (Llama-3.1-8B + CLIP ViT-L/336) shapes, each against a naive
// one-invocation-per-output baseline measured in the same run on the same device:
//   npm run bench -- [--rows R] [--reps N] [--only NAME]
// GFLOP/s = 2*M*K*N / time; GB/s = weight bytes + activation bytes / time (what the kernel must move at least).
// On SwiftShader (no GPU) the row count M is cut to --rows (default 16 there, the real M on a GPU) and the
// baseline to the same M, so ratios stay like for like; the note printed says so.
import naiveWgsl from '../shaders/matmul-naive.wgsl?raw';
import naiveQ4Wgsl from '../shaders/matmul-q4-naive.wgsl?raw';
import { createStorageBuffer, storageBufferFrom, uniformBufferFrom } from '../src/gpu/buffers.ts';
import { formatAdapterSummary } from '../src/gpu/device.ts';
import { LinearKernel } from '../src/gpu/kernels/linear.ts';
import { LinearQ4Kernel } from '../src/gpu/kernels/linear-q4.ts';
import { MatvecKernel } from '../src/gpu/kernels/matvec.ts';
import { computeProgram, type ComputeProgram } from '../src/gpu/pipeline.ts';
import { createNodeGpu } from '../src/node/gpu.ts';
import { quantizeQ4 } from '../src/quant/q4.ts';
import { mulberry32, randomF32 } from '../src/util/seeded-random.ts';
import { firstRows } from '../src/gpu/tensor.ts';
import { naiveDispatch } from './naive-dispatch.ts';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};

const ctx = await createNodeGpu();
const { device } = ctx;
const software = /swiftshader/i.test(ctx.summary.architecture) || /swiftshader/i.test(ctx.summary.description ?? '');
const rowsCap = Number(opt('rows') ?? (software ? 16 : Infinity));
const reps = Number(opt('reps') ?? 3);
const only = opt('only');
console.log(formatAdapterSummary(ctx.summary));
if (Number.isFinite(rowsCap)) console.log(`note: prefill rows capped at ${rowsCap} (software adapter); pass --rows to change`);

type Weights = 'f32' | 'q4';
interface Case {
  name: string;
  M: number;
  K: number;
  N: number;
  weights: Weights;
}

// The real shapes (spec section 0): CLIP 577 rows of 1024; pre-fusion ~600 rows of 4096; decode 1 row.
const CASES: Case[] = [
  { name: 'clip.qkv 577x1024 . 1024x3072', M: 577, K: 1024, N: 3072, weights: 'f32' },
  { name: 'clip.fc1 577x1024 . 1024x4096', M: 577, K: 1024, N: 4096, weights: 'f32' },
  { name: 'prefusion.qkv q4 600x4096 . 4096x6144', M: 600, K: 4096, N: 6144, weights: 'q4' },
  { name: 'prefusion.gate_up q4 600x4096 . 4096x28672', M: 600, K: 4096, N: 28672, weights: 'q4' },
  { name: 'prefusion.down q4 600x14336 . 14336x4096', M: 600, K: 14336, N: 4096, weights: 'q4' },
  { name: 'decode.gate_up q4 1x4096 . 4096x28672', M: 1, K: 4096, N: 28672, weights: 'q4' },
  { name: 'decode.lm_head q4 1x4096 . 4096x128256', M: 1, K: 4096, N: 128256, weights: 'q4' },
];

async function best(run: () => void): Promise<number> {
  run(); // warm-up: pipeline specialization, first touch of the buffers
  await device.queue.onSubmittedWorkDone();
  let ms = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    run();
    await device.queue.onSubmittedWorkDone();
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
}

let naiveF32: ComputeProgram | null = null;
let naiveQ4: ComputeProgram | null = null;

/** The naive baseline: one invocation per output. */
function naiveRun(program: ComputeProgram, dims: Uint32Array, buffers: GPUBuffer[], M: number, N: number): () => void {
  return naiveDispatch(device, program, [uniformBufferFrom(device, dims), ...buffers], M, N);
}

const fmt = (v: number, d = 2) => v.toFixed(d).padStart(8);
console.log(`\n${'kernel'.padEnd(46)} ${'M'.padStart(5)}  ${'ms'.padStart(8)} ${'GFLOP/s'.padStart(8)} ${'GB/s'.padStart(8)}  ${'naive ms'.padStart(8)}  speed-up`);
for (const c of CASES) {
  if (only && !c.name.includes(only)) continue;
  const M = Math.min(c.M, rowsCap);
  const { K, N } = c;
  const rng = mulberry32(7);
  const x = storageBufferFrom(device, randomF32(M * K, rng), 'x');
  const y = createStorageBuffer(device, M * N * 4, 'y');
  const yNaive = createStorageBuffer(device, M * N * 4, 'y naive');
  const wF32 = randomF32(N * K, rng, 0.05);
  let run: () => void;
  let baseline: () => void;
  let weightBytes: number;
  if (c.weights === 'f32') {
    const w = storageBufferFrom(device, wF32, 'w');
    const kernel = await LinearKernel.create(device);
    run = () => kernel.run(device, { x: firstRows(x, M, K), w: { name: 'w', buffer: w, rows: N, cols: K }, bias: null, y: y });
    naiveF32 ??= await computeProgram(device, { name: 'matmul-naive.wgsl', code: naiveWgsl, bindings: ['uniform', 'read', 'read', 'read', 'storage'] });
    baseline = naiveRun(naiveF32, new Uint32Array([M, K, N, 0, N, 0, 0, 0]), [x, w, createStorageBuffer(device, 16, 'no bias'), yNaive], M, N);
    weightBytes = N * K * 4;
  } else {
    const q = quantizeQ4(wF32, N, K);
    const qw = storageBufferFrom(device, q.qWeight, 'qw');
    const qs = storageBufferFrom(device, q.qScale, 'qs');
    if (M <= 4) {
      const kernel = await MatvecKernel.create(device, { weights: 'q4f32' });
      run = () => kernel.run(device, { x: firstRows(x, M, K), w: { name: 'w', buffer: qw, scales: qs, rows: N, cols: K }, bias: null, y: y });
    } else {
      const kernel = await LinearQ4Kernel.create(device);
      run = () => kernel.run(device, { x: firstRows(x, M, K), w: { name: 'w', buffer: qw, scales: qs, rows: N, cols: K }, bias: null, y: y });
    }
    naiveQ4 ??= await computeProgram(device, { name: 'matmul-q4-naive.wgsl', code: naiveQ4Wgsl, bindings: ['uniform', 'read', 'read', 'read', 'storage'] });
    baseline = naiveRun(naiveQ4, new Uint32Array([M, K, N, 0]), [x, qw, qs, yNaive], M, N);
    weightBytes = q.qWeight.byteLength + q.qScale.byteLength;
  }
  const ms = await best(run);
  const naiveMs = await best(baseline);
  const gflops = (2 * M * K * N) / ms / 1e6;
  const gbs = (weightBytes + (M * K + M * N) * 4) / ms / 1e6;
  console.log(`${c.name.padEnd(46)} ${String(M).padStart(5)}  ${fmt(ms, 1)} ${fmt(gflops)} ${fmt(gbs)}  ${fmt(naiveMs, 1)}  ${(naiveMs / ms).toFixed(2)}x`);
  for (const b of [x, y, yNaive]) b.destroy();
}
device.destroy();
