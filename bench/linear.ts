// Benchmark of the tiled linear kernel against a naive one-invocation-per-output baseline, measured in the
// same run on the same device (Node/Dawn; SwiftShader on machines without a GPU):
//   node --import ./scripts/node-register.mjs bench/linear.ts [M K N] [--naive] [--reps R] [--candidate FILE.wgsl]
// --candidate times another tiled shader (same bindings, Dims and 64x64 tile grid) against the current one.
// Prints GFLOP/s (2*M*K*N flops per run, wall time from submit to completion, best of R after a warm-up).
import { readFileSync } from 'node:fs';
import naiveWgsl from '../shaders/matmul-naive.wgsl?raw';
import { createNodeGpu } from '../src/node/gpu.ts';
import { formatAdapterSummary } from '../src/gpu/device.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../src/gpu/buffers.ts';
import { compareArrays } from '../src/gpu/compare.ts';
import { LinearKernel } from '../src/gpu/kernels/linear.ts';
import { firstRows } from '../src/gpu/tensor.ts';

const args = process.argv.slice(2);
const nums = args.filter((a) => /^\d+$/.test(a)).map(Number);
const [M, K, N] = nums.length >= 3 ? nums : [256, 1024, 1024];
const repsArg = args.indexOf('--reps');
const reps = repsArg >= 0 ? Number(args[repsArg + 1]) : 3;
const withNaive = args.includes('--naive');
const candArg = args.indexOf('--candidate');
const candidate = candArg >= 0 ? args[candArg + 1] : null;

const ctx = await createNodeGpu();
const { device } = ctx;
console.log(formatAdapterSummary(ctx.summary));

let seed = 1;
const rnd = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
const x = Float32Array.from({ length: M * K }, rnd);
const w = Float32Array.from({ length: N * K }, rnd);
const b = Float32Array.from({ length: N }, rnd);
const xBuf = storageBufferFrom(device, x, 'x');
const wBuf = storageBufferFrom(device, w, 'w');
const bBuf = storageBufferFrom(device, b, 'b');
const flops = 2 * M * K * N;

async function time(kernel: LinearKernel, yBuf: GPUBuffer): Promise<number> {
  kernel.run(device, { x: firstRows(xBuf, M, K), w: { name: 'w', buffer: wBuf, rows: N, cols: K }, bias: bBuf, y: yBuf }); // warm-up (pipeline specialization, first touch)
  await device.queue.onSubmittedWorkDone();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    kernel.run(device, { x: firstRows(xBuf, M, K), w: { name: 'w', buffer: wBuf, rows: N, cols: K }, bias: bBuf, y: yBuf });
    await device.queue.onSubmittedWorkDone();
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

const tiled = await LinearKernel.create(device);
const yTiled = createStorageBuffer(device, M * N * 4, 'y tiled');
const tTiled = await time(tiled, yTiled);
console.log(`tiled  ${M}x${K}x${N}: ${tTiled.toFixed(1)} ms, ${(flops / tTiled / 1e6).toFixed(3)} GFLOP/s`);

if (withNaive) {
  const naive = await LinearKernel.create(device, {
    shader: { name: 'matmul-naive.wgsl', code: naiveWgsl, workgroupsFor: (m, n) => [Math.ceil(n / 16), Math.ceil(m / 16)] },
  });
  const yNaive = createStorageBuffer(device, M * N * 4, 'y naive');
  const tNaive = await time(naive, yNaive);
  console.log(`naive  ${M}x${K}x${N}: ${tNaive.toFixed(1)} ms, ${(flops / tNaive / 1e6).toFixed(3)} GFLOP/s`);
  console.log(`tiled / naive speed: ${(tNaive / tTiled).toFixed(2)}x`);
  const c = compareArrays(await readF32(device, yTiled), await readF32(device, yNaive), { atol: 1e-3, rtol: 1e-3 });
  console.log(`tiled vs naive agree: ${c.ok} (max abs ${c.maxAbs.toExponential(2)})`);
}
if (candidate) {
  const cand = await LinearKernel.create(device, { shader: { name: candidate, code: readFileSync(candidate, 'utf8') } });
  const yCand = createStorageBuffer(device, M * N * 4, 'y candidate');
  const tCand = await time(cand, yCand);
  console.log(`candidate ${candidate}: ${tCand.toFixed(1)} ms, ${(flops / tCand / 1e6).toFixed(3)} GFLOP/s (${(tTiled / tCand).toFixed(2)}x current)`);
  const c = compareArrays(await readF32(device, yCand), await readF32(device, yTiled), { atol: 1e-3, rtol: 1e-3 });
  console.log(`candidate vs current agree: ${c.ok} (max abs ${c.maxAbs.toExponential(2)})`);
}
device.destroy();
