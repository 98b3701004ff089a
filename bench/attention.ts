// Attention paths side by side at the real model's shapes, in one run on one device:
//   npm run bench:attention -- [--reps 5] [--only NAME]
// Each path of AttentionKernel (tiled and splitk, the GPU paths; direct, the CPU-adapter path) is built (its
// pipeline build time is printed) and run on identical q, K, V; the table gives the median (min-max) of --reps
// runs per path in rotating order (submit to onSubmittedWorkDone) and the ratio of each path to the one this
// adapter takes ("auto"), with the largest difference between paths' outputs. Where the device has subgroups,
// tiled runs in both its forms: a slot on several lanes (the engine's) and on one invocation ("tiled 1 lane").
import { parseArgs } from 'node:util';
import { positiveArg } from './args.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../src/gpu/buffers.ts';
import { formatAdapterSummary, isCpuDevice } from '../src/gpu/device.ts';
import { AttentionKernel, attentionPath, tiledLanes, type AttentionPath, type AttentionShape } from '../src/gpu/kernels/attention.ts';
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
const subgroups = device.features.has('subgroups');
console.log(formatAdapterSummary(ctx.summary));
console.log(`this adapter's paths: ${cpu ? 'direct (CPU adapter)' : 'tiled, splitk (GPU)'}; median (min-max) of ${reps}\n`);

/** A column of the table: a path, and for tiled its form (one lane a slot, where the engine would split). */
interface Variant {
  name: string;
  path: AttentionPath;
  oneLane?: boolean;
}
const variantsFor = (hd: number): Variant[] => [
  ...PATHS.map((path) => ({ name: path, path })),
  ...(tiledLanes(hd, subgroups) > 1 ? [{ name: 'tiled 1 lane', path: 'tiled' as const, oneLane: true }] : []),
];
const variantNames = [...new Set(CASES.flatMap((c) => variantsFor(c.headDim).map((v) => v.name)))];

// Build each variant's pipelines once per head dim, timed.
const kernels = new Map<string, AttentionKernel>();
for (const hd of [...new Set(CASES.map((c) => c.headDim))]) {
  for (const v of variantsFor(hd)) {
    const t0 = performance.now();
    const kernel = await AttentionKernel.create(device, { headDim: hd, paths: [v.path], splitHeadDim: v.oneLane ? false : undefined });
    kernels.set(`${hd}:${v.name}`, kernel);
    const lanes = v.path === 'tiled' ? `, ${kernel.lanes} lane${kernel.lanes > 1 ? 's' : ''} a slot` : '';
    console.log(`build: ${v.path} path${lanes}, head dim ${hd}: ${(performance.now() - t0).toFixed(0)} ms (with combine, if not built yet)`);
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
  const variants = variantsFor(c.headDim);
  const names = variants.map((x) => x.name);
  const outs = new Map(names.map((n) => [n, createStorageBuffer(device, nq * numHeads * c.headDim * 4, `out ${n}`)] as const));
  const run = async (n: string) => {
    const t0 = performance.now();
    kernels.get(`${c.headDim}:${n}`)!.run(device, q, k, v, outs.get(n)!, c.shape);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  for (const n of names) await run(n); // first runs
  const samples = new Map(names.map((n) => [n, [] as number[]] as const));
  for (let r = 0; r < reps; r++) for (const n of rotation(names, r)) samples.get(n)!.push(await run(n));
  const auto = attentionPath(c.shape, cpu);
  const t = new Map(names.map((n) => [n, spread(samples.get(n)!)] as const));
  const ys = await Promise.all(names.map((n) => readF32(device, outs.get(n)!)));
  let diff = 0;
  for (const y of ys.slice(1)) for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i]! - ys[0]![i]!));
  const cells = variantNames.map((n) => (t.has(n) ? `${formatSpread(t.get(n)!)}${n === auto ? ' (auto)' : ''}` : '-'));
  const ratios = names.filter((n) => n !== auto).map((n) => `${n} / ${auto} ${(t.get(n)!.median / t.get(auto)!.median).toFixed(2)}`);
  rows.push(`| ${c.name} | ${nq} x ${nk}, ${numHeads}${nKV !== numHeads ? `:${nKV}` : ''} x ${c.headDim} | ${cells.join(' | ')} | ${ratios.join(', ')} | ${diff.toExponential(1)} |`);
  console.log(rows.at(-1));
  for (const b of [q, k, v, ...outs.values()]) b.destroy();
}
console.log(`\n| shape | nq x nk, heads x hd | ${variantNames.map((n) => `${n} ms`).join(' | ')} | ratio to this adapter's path | max abs diff |`);
console.log(`|---|---|${variantNames.map(() => '---|').join('')}---|---|`);
for (const r of rows) console.log(r);
for (const kernel of kernels.values()) kernel.destroy();
device.destroy();
