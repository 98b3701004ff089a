// Kernel benchmark at the REAL LLaVA-Mini (Llama-3.1-8B + CLIP ViT-L/336) shapes, each against a naive
// one-invocation-per-output baseline measured in the same run on the same device:
//   npm run bench -- [--rows R] [--reps N] [--only NAME]
// Weights in the formats the q4 model uses on this adapter (CLIP f16 and the LLM q4f16 with shader-f16, f32 / q4f32
// without), each run by the kernel the engine picks (path, form, arithmetic). GFLOP/s = 2*M*K*N / time, also as a
// fraction of the FMA peak measured here (f16 peak for f16 arithmetic); GB/s = weight bytes + activation bytes /
// time (what the kernel must move at least). With shader-f16, the tiled kernel's f32 and f16 arithmetic are also
// timed against each other.
// On SwiftShader (no GPU) the row count M is cut to --rows (default 16 there, the real M on a GPU) and the
// baseline to the same M, so ratios stay like for like; the note printed says so.
import naiveWgsl from '../shaders/matmul-naive.wgsl?raw';
import naiveQ4Wgsl from '../shaders/matmul-q4-naive.wgsl?raw';
import { createStorageBuffer, storageBufferFrom, uniformBufferFrom } from '../src/gpu/buffers.ts';
import { formatAdapterSummary, isCpuDevice } from '../src/gpu/device.ts';
import { linearPath } from '../src/gpu/gpu-linear.ts';
import { decodeRows, encodeRows, isQ4, type DenseStorage, type Storage } from '../src/gpu/storage.ts';
import { measureDeviceLimits } from './e2e/device-limits.ts';
import { defaultLinearForm, LinearKernel, tiledArithmetic, type LinearArithmetic, type LinearForm } from '../src/gpu/kernels/linear.ts';
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

const hasF16 = device.features.has('shader-f16');
const cpu = isCpuDevice(device);
// The formats the q4 model runs (precision/policy.ts): CLIP f16 (f32 without shader-f16), the LLM int4 with f16
// scales (f32 without), each through the kernel and arithmetic the engine picks (gpu-linear.ts: tiledArithmetic).
const clipStorage: DenseStorage = hasF16 ? 'f16' : 'f32';
const q4Storage: Storage = hasF16 ? 'q4f16' : 'q4f32';
const limits = await measureDeviceLimits(device, { reps: 2, fmaInvocations: cpu ? 1 << 14 : 1 << 20, copyBytes: cpu ? 16 << 20 : 256 << 20 });
console.log(`device limits: copy ${limits.copyGBps.toFixed(1)} GB/s, peak FMA f32 ${limits.peakF32Gflops.toFixed(1)} GFLOP/s${limits.peakF16Gflops !== null ? `, f16 ${limits.peakF16Gflops.toFixed(1)} GFLOP/s` : ''}`);
console.log(`formats: CLIP ${clipStorage}, LLM ${q4Storage}; the linears' form here: ${defaultLinearForm(device)}`);

type Weights = 'clip' | 'q4';
interface Case {
  name: string;
  M: number;
  K: number;
  N: number;
  weights: Weights;
}

// The real shapes (spec section 0): CLIP 577 rows of 1024; pre-fusion ~600 rows of 4096; decode 1 row.
const CASES: Case[] = [
  { name: 'clip.qkv 577x1024 . 1024x3072', M: 577, K: 1024, N: 3072, weights: 'clip' },
  { name: 'clip.fc1 577x1024 . 1024x4096', M: 577, K: 1024, N: 4096, weights: 'clip' },
  { name: 'prefusion.qkv q4 600x4096 . 4096x6144', M: 600, K: 4096, N: 6144, weights: 'q4' },
  { name: 'prefusion.gate_up q4 600x4096 . 4096x28672', M: 600, K: 4096, N: 28672, weights: 'q4' },
  { name: 'prefusion.down q4 600x14336 . 14336x4096', M: 600, K: 14336, N: 4096, weights: 'q4' },
  { name: 'decode.gate_up q4 1x4096 . 4096x28672', M: 1, K: 4096, N: 28672, weights: 'q4' },
  { name: 'decode.lm_head q4 1x4096 . 4096x128256', M: 1, K: 4096, N: 128256, weights: 'q4' },
];

/** Times of `reps` runs of `run` after a warm-up (pipeline specialization, first touch of the buffers). */
async function times(run: () => void, n = reps): Promise<number[]> {
  run();
  await device.queue.onSubmittedWorkDone();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(await timeOnce(run));
  return out;
}
const best = async (run: () => void) => Math.min(...(await times(run)));
async function timeOnce(run: () => void): Promise<number> {
  const t0 = performance.now();
  run();
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
}
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

let naiveF32: ComputeProgram | null = null;
let naiveQ4: ComputeProgram | null = null;

/** The naive baseline: one invocation per output. */
function naiveRun(program: ComputeProgram, dims: Uint32Array, buffers: GPUBuffer[], M: number, N: number): () => void {
  return naiveDispatch(device, program, [uniformBufferFrom(device, dims), ...buffers], M, N);
}

type Kernel = LinearKernel | LinearQ4Kernel | MatvecKernel;

/** The tile kernel over these weights in a form (default: the device's) and arithmetic. */
const tileKernel = (storage: Storage, arithmetic: LinearArithmetic, form?: LinearForm): Promise<Kernel> =>
  isQ4(storage)
    ? LinearQ4Kernel.create(device, { form, scales: storage === 'q4f16' ? 'f16' : 'f32', arithmetic })
    : LinearKernel.create(device, { form, weights: storage as DenseStorage, arithmetic });

/** The kernel the engine runs for M rows over these weights (gpu-linear.ts: path, form, arithmetic). */
const engineKernel = (storage: Storage, M: number, K: number): Promise<Kernel> =>
  linearPath(storage, M, K, cpu) === 'matvec' ? MatvecKernel.create(device, { weights: storage }) : tileKernel(storage, tiledArithmetic(storage, device));

const pct = (gflops: number, peak: number | null) => (peak ? `${((100 * gflops) / peak).toFixed(1)}%`.padStart(7) : '      -');
const fmt = (v: number, d = 2) => v.toFixed(d).padStart(8);
const abRows: string[] = [];
console.log(`\n${'kernel'.padEnd(46)} ${'M'.padStart(5)}  ${'ms'.padStart(8)} ${'GFLOP/s'.padStart(8)} ${'of peak'.padStart(7)} ${'GB/s'.padStart(8)}  ${'naive ms'.padStart(8)}  speed-up`);
for (const c of CASES) {
  if (only && !c.name.includes(only)) continue;
  const M = Math.min(c.M, rowsCap);
  const { K, N } = c;
  const storage: Storage = c.weights === 'clip' ? clipStorage : q4Storage;
  const rng = mulberry32(7);
  const xBuf = storageBufferFrom(device, randomF32(M * K, rng), 'x');
  const y = createStorageBuffer(device, M * N * 4, 'y');
  const yNaive = createStorageBuffer(device, M * N * 4, 'y naive');
  const wF32 = randomF32(N * K, rng, 0.05);
  const enc = encodeRows(storage, wF32, N, K);
  const wBuf = storageBufferFrom(device, enc.data, 'w');
  const sBuf = enc.scales ? storageBufferFrom(device, enc.scales, 'w scales') : null;
  const op = { x: firstRows(xBuf, M, K), w: { name: 'w', buffer: wBuf, ...(sBuf ? { scales: sBuf } : {}), rows: N, cols: K }, bias: null, y };
  const runner = (k: Kernel) => () => k.run(device, op);
  const kernel = await engineKernel(storage, M, K);
  let baseline: () => void;
  const owned = [xBuf, y, yNaive, wBuf, sBuf];
  if (!isQ4(storage)) {
    // Naive f32 over the same values widened to f32 (the naive shader reads f32 weights).
    const w32 = storageBufferFrom(device, decodeRows(storage, enc, N, K), 'w f32');
    owned.push(w32);
    naiveF32 ??= await computeProgram(device, { name: 'matmul-naive.wgsl', code: naiveWgsl, bindings: ['uniform', 'read', 'read', 'read', 'storage'] });
    const noBias = createStorageBuffer(device, 16, 'no bias');
    owned.push(noBias);
    baseline = naiveRun(naiveF32, new Uint32Array([M, K, N, 0, N, 0, 0, 0]), [xBuf, w32, noBias, yNaive], M, N);
  } else {
    // The naive int4 shader reads f32 scales.
    const q = quantizeQ4(wF32, N, K);
    const qs = storageBufferFrom(device, q.qScale, 'qs f32');
    owned.push(qs);
    naiveQ4 ??= await computeProgram(device, { name: 'matmul-q4-naive.wgsl', code: naiveQ4Wgsl, bindings: ['uniform', 'read', 'read', 'read', 'storage'] });
    baseline = naiveRun(naiveQ4, new Uint32Array([M, K, N, 0]), [xBuf, wBuf, qs, yNaive], M, N);
  }
  const weightBytes = enc.data.byteLength + (enc.scales?.byteLength ?? 0);
  const ms = await best(runner(kernel));
  const naiveMs = await best(baseline);
  const gflops = (2 * M * K * N) / ms / 1e6;
  const gbs = (weightBytes + (M * K + M * N) * 4) / ms / 1e6;
  const f16Math = kernel instanceof MatvecKernel ? false : kernel.arithmetic === 'f16';
  const peak = kernel instanceof MatvecKernel ? null : f16Math ? limits.peakF16Gflops : limits.peakF32Gflops;
  const label = `${c.name}${kernel instanceof MatvecKernel ? '' : f16Math ? ' (f16 math)' : ''}`;
  console.log(`${label.padEnd(46)} ${String(M).padStart(5)}  ${fmt(ms, 1)} ${fmt(gflops)} ${pct(gflops, peak)} ${fmt(gbs)}  ${fmt(naiveMs, 1)}  ${(naiveMs / ms).toFixed(2)}x`);
  kernel.destroy();

  // Where f16 math exists: the tiled kernel in f32 and in f16 arithmetic, alternated, median of the reps.
  if (hasF16 && M > 16) {
    const [k32, k16] = await Promise.all([tileKernel(storage, 'f32', 'tiled'), tileKernel(storage, 'f16', 'tiled')]);
    const t32: number[] = [];
    const t16: number[] = [];
    for (const k of [k32, k16]) await times(runner(k), 0); // warm-up only
    for (let i = 0; i < reps; i++) {
      const pair = i % 2 ? ([[k16, t16], [k32, t32]] as const) : ([[k32, t32], [k16, t16]] as const);
      for (const [k, t] of pair) t.push(await timeOnce(runner(k)));
    }
    const [m32, m16] = [median(t32), median(t16)];
    const g16 = (2 * M * K * N) / m16 / 1e6;
    abRows.push(`${c.name.padEnd(46)} ${String(M).padStart(5)}  ${fmt(m32, 1)} ${fmt(m16, 1)}  ${(m32 / m16).toFixed(2).padStart(5)}x ${fmt(g16)} ${pct(g16, limits.peakF16Gflops)}`);
    k32.destroy();
    k16.destroy();
  }
  for (const b of owned) b?.destroy();
}
if (abRows.length) {
  console.log(`\ntiled kernel, f32 against f16 arithmetic (median of ${reps}, alternating; of peak = against the f16 FMA peak)`);
  console.log(`${'kernel'.padEnd(46)} ${'M'.padStart(5)}  ${'f32 ms'.padStart(8)} ${'f16 ms'.padStart(8)}  ${'ratio'.padStart(6)} ${'GFLOP/s'.padStart(8)} ${'of peak'.padStart(7)}`);
  for (const r of abRows) console.log(r);
}
device.destroy();
