// Attention paths side by side at the real model's shapes, in one run on one device:
//   npm run bench:attention -- [--reps 5] [--only NAME]
// Each path of AttentionKernel (tiled and splitk, the GPU paths; direct, the CPU-adapter path) is built (its
// pipeline build time is printed) and run on identical q, K, V; the table gives the median (min-max) of --reps
// runs per path in rotating order (submit to onSubmittedWorkDone) and the ratio of each path to the one this
// adapter takes ("auto"), with the largest difference between paths' outputs.
import { parseArgs } from 'node:util';
import { positiveArg } from './args.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../src/gpu/buffers.ts';
import { formatAdapterSummary, isCpuDevice } from '../src/gpu/device.ts';
import { AttentionKernel, attentionPath, type AttentionPath, type AttentionShape } from '../src/gpu/kernels/attention.ts';
import { createNodeGpu } from '../src/node/gpu.ts';
import { mulberry32, randomF32 } from '../src/util/seeded-random.ts';
import { formatSpread, rotation, spread } from './peer/stats.ts';

const { values } = parseArgs({ args: process.argv.slice(2), options: { reps: { type: 'string', default: '5' }, only: { type: 'string' } }, strict: true });
const reps = positiveArg('reps', values.reps);

interface Case {
  name: string;
  shape: AttentionShape;
  headDim: number;
}
// CLIP ViT-L/336 self-attention; the compressor's cross-attention (C = 1); pre-fusion's text rows over the cached
// vision rows (Llama-3.1-8B heads); decode over a short and a long context.
const CASES: Case[] = [
  { name: 'CLIP self-attention', shape: { nq: 577, nk: 577, numHeads: 16 }, headDim: 64 },
  { name: 'compressor (C = 1)', shape: { nq: 1, nk: 576, numHeads: 32 }, headDim: 128 },
  { name: 'pre-fusion text rows', shape: { nq: 40, nk: 617, numHeads: 32, numKvHeads: 8, causal: true }, headDim: 128 },
  { name: 'decode, 600 cached rows', shape: { nq: 1, nk: 600, numHeads: 32, numKvHeads: 8, causal: true }, headDim: 128 },
  { name: 'decode, 4096 cached rows', shape: { nq: 1, nk: 4096, numHeads: 32, numKvHeads: 8, causal: true }, headDim: 128 },
];
const PATHS: readonly AttentionPath[] = ['tiled', 'splitk', 'direct'];

const ctx = await createNodeGpu();
const { device } = ctx;
const cpu = isCpuDevice(device);
console.log(formatAdapterSummary(ctx.summary));
console.log(`this adapter's paths: ${cpu ? 'direct (CPU adapter)' : 'tiled, splitk (GPU)'}; median (min-max) of ${reps}\n`);

// Build each path's pipelines once per head dim, timed.
const kernels = new Map<string, AttentionKernel>();
for (const hd of [...new Set(CASES.map((c) => c.headDim))]) {
  for (const path of PATHS) {
    const t0 = performance.now();
    kernels.set(`${hd}:${path}`, await AttentionKernel.create(device, { headDim: hd, paths: [path] }));
    console.log(`build: ${path} path, head dim ${hd}: ${(performance.now() - t0).toFixed(0)} ms (with combine, if not built yet)`);
  }
}

const rows: string[] = [];
for (const c of CASES) {
  if (values.only && !c.name.includes(values.only)) continue;
  const { nq, nk, numHeads } = c.shape;
  const nKV = c.shape.numKvHeads ?? numHeads;
  const rng = mulberry32(nq * 31 + nk);
  const q = storageBufferFrom(device, randomF32(nq * numHeads * c.headDim, rng, 1), 'q');
  const k = storageBufferFrom(device, randomF32(nk * nKV * c.headDim, rng, 1), 'k');
  const v = storageBufferFrom(device, randomF32(nk * nKV * c.headDim, rng, 1), 'v');
  const outs = new Map(PATHS.map((p) => [p, createStorageBuffer(device, nq * numHeads * c.headDim * 4, `out ${p}`)] as const));
  const run = async (p: AttentionPath) => {
    const t0 = performance.now();
    kernels.get(`${c.headDim}:${p}`)!.run(device, q, k, v, outs.get(p)!, c.shape);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  for (const p of PATHS) await run(p); // first runs
  const samples = new Map(PATHS.map((p) => [p, [] as number[]] as const));
  for (let r = 0; r < reps; r++) for (const p of rotation(PATHS, r)) samples.get(p)!.push(await run(p));
  const auto = attentionPath(c.shape, cpu);
  const t = new Map(PATHS.map((p) => [p, spread(samples.get(p)!)] as const));
  const ys = await Promise.all(PATHS.map((p) => readF32(device, outs.get(p)!)));
  let diff = 0;
  for (const y of ys.slice(1)) for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i]! - ys[0]![i]!));
  const cells = PATHS.map((p) => `${formatSpread(t.get(p)!)}${p === auto ? ' (auto)' : ''}`);
  const ratios = PATHS.filter((p) => p !== auto).map((p) => `${p} / ${auto} ${(t.get(p)!.median / t.get(auto)!.median).toFixed(2)}`);
  rows.push(`| ${c.name} | ${nq} x ${nk}, ${numHeads}${nKV !== numHeads ? `:${nKV}` : ''} x ${c.headDim} | ${cells.join(' | ')} | ${ratios.join(', ')} | ${diff.toExponential(1)} |`);
  console.log(rows.at(-1));
  for (const b of [q, k, v, ...outs.values()]) b.destroy();
}
console.log(`\n| shape | nq x nk, heads x hd | tiled ms | splitk ms | direct ms | ratio to this adapter's path | max abs diff |`);
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
for (const kernel of kernels.values()) kernel.destroy();
device.destroy();
