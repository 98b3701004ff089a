// The peer bench: our kernels against ONNX Runtime Web's WebGPU EP (onnxruntime-web, the engine under
// transformers.js) and against a naive one-invocation-per-output baseline, in one Node process, on one
// GPUDevice (ORT is handed ours: bench/peer/ort-webgpu.ts), on identical bytes (bench/peer/contenders.ts):
//   npm run bench:peer -- [--reps 5] [--shapes decode,prefill.m16,...] [--n NAME=N,...]
// For each case: median (min-max) of --reps timed runs per side, the sides in rotating order (ours/ORT/naive,
// ORT/naive/ours, ...); each time is submit (ORT: session.run with GPU-resident x and y) to
// queue.onSubmittedWorkDone. "ORT / ours" and "naive / ours" are ratios of medians (above 1: ours is faster).
// max |diff| compares ORT's and naive's y with ours. "build + first run" = the side's init (ours: kernel create,
// i.e. createComputePipelineAsync for its pipelines; ORT: InferenceSession.create, i.e. model parse and weight
// upload; its shaders are generated and built in the first run) + its first run, waited for: subtract the median
// for the pipeline-build share. Our kernels are built once per kind and shared by the shapes (the first shape of
// a kind pays), ORT builds a session per shape. On a software adapter (SwiftShader, lavapipe) N is scaled down per case (bench/peer/cases.ts),
// M never; the output says so.
import { formatAdapterSummary } from '../src/gpu/device.ts';
import { createNodeGpu } from '../src/node/gpu.ts';
import { parseNOverrides, selectCases, type PeerCase } from './peer/cases.ts';
import { KernelCache, makeContenders, type Contender } from './peer/contenders.ts';
import { encodeModel, OnnxType } from './peer/onnx-model.ts';
import { OrtGraph, ortOnDevice } from './peer/ort-webgpu.ts';
import { formatSpread, rotation, spread, type Spread } from './peer/stats.ts';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const reps = Number(opt('reps') ?? 5);
if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps ${opt('reps')}: a positive integer`);
const cases = selectCases(opt('shapes'));
const nOverride = parseNOverrides(opt('n'));

const ctx = await createNodeGpu();
const { device } = ctx;
const s = ctx.summary;
const adapterText = `${s.vendor} ${s.architecture} ${s.description}`;
const software = s.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(adapterText);
const f16 = ctx.features.has('shader-f16');
console.log(formatAdapterSummary(s));
console.log(`formats: ${f16 ? 'q4f16 (f16 scales), f16 CLIP weights, f16 ORT graphs' : 'q4f32 (f32 scales), f32 CLIP weights, f32 ORT graphs (no shader-f16)'}`);
if (software) console.log('note: software adapter: N scaled down per case (column N; real N in brackets), M as in the model');

// ORT's runtime (wasm + its WebGPU backend on our device), started on a one-node Identity graph, timed apart.
// That session stays open to the end: ORT destroys its WebGPU device (ours) when its last session is released.
const t0 = performance.now();
const ort = await ortOnDevice(ctx);
const tImport = performance.now() - t0;
const identity = createIdentity();
const keepAlive = await OrtGraph.create(ort, { model: identity.model, x: identity.x, y: identity.y, M: 1, K: 4, N: 4, dtype: 'float32' });
const tSession = performance.now() - t0 - tImport;
await keepAlive.run();
await device.queue.onSubmittedWorkDone();
if ((await ort.env.webgpu.device) !== device) throw new Error('ORT runs on a device other than ours');
console.log(
  `ORT ${ort.env.versions.web} start: import ${(tImport / 1000).toFixed(1)} s, first session (wasm + WebGPU backend, Identity graph) ` +
    `${(tSession / 1000).toFixed(1)} s, its first run ${((performance.now() - t0 - tImport - tSession) / 1000).toFixed(1)} s\n`,
);

function createIdentity(): { model: Uint8Array; x: GPUBuffer; y: GPUBuffer } {
  const model = encodeModel({
    node: { opType: 'Identity', inputs: ['x'], outputs: ['y'] },
    inputs: [{ name: 'x', type: OnnxType.FLOAT, dims: [1, 4] }],
    outputs: [{ name: 'y', type: OnnxType.FLOAT, dims: [1, 4] }],
    initializers: [],
  });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  return { model, x: device.createBuffer({ size: 16, usage }), y: device.createBuffer({ size: 16, usage }) };
}

async function timed(f: () => void | Promise<void>): Promise<number> {
  const t = performance.now();
  await f();
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

interface Row {
  c: PeerCase;
  N: number;
  detail: Record<string, string>;
  t: Record<string, Spread>;
  init: Record<string, number>;
  first: Record<string, number>;
  diffOrt: number;
  diffNaive: number;
  yMax: number;
}

const cache = new KernelCache(device);
const rows: Row[] = [];
const fmtN = (c: PeerCase, N: number) => (N === c.N ? String(N) : `${N} [${c.N}]`);
const ratio = (a: Spread, b: Spread) => (a.median / b.median).toFixed(2);
const sec = (ms: number) => (ms / 1000).toFixed(1);
const buildFirst = (r: Row, label: string) => sec(r.init[label]! + r.first[label]!);
for (const c of cases) {
  let N = nOverride.get(c.name) ?? (software ? (c.softwareN ?? c.N) : c.N);
  const bytesPerW = c.kind === 'q4' ? 0.5 : f16 ? 2 : 4;
  while (N * c.K * bytesPerW > device.limits.maxStorageBufferBindingSize) N = Math.floor(N / 2 / 64) * 64;
  const shape = { kind: c.kind, M: c.M, K: c.K, N };
  process.stdout.write(`${c.name} ${c.M}x${c.K} -> ${fmtN(c, N)}: `);
  let sides: Contender[] = [];
  try {
    sides = makeContenders(device, ort, cache, shape, f16);
    const init: Record<string, number> = {};
    const first: Record<string, number> = {};
    for (const side of sides) {
      init[side.label] = await timed(() => side.init());
      first[side.label] = await timed(() => side.run());
    }
    const samples: Record<string, number[]> = Object.fromEntries(sides.map((x) => [x.label, []]));
    for (let r = 0; r < reps; r++) for (const side of rotation(sides, r)) samples[side.label]!.push(await timed(() => side.run()));
    const t = Object.fromEntries(sides.map((x) => [x.label, spread(samples[x.label]!)]));
    const [yOurs, yOrt, yNaive] = await Promise.all(sides.map((x) => x.read()));
    const row: Row = {
      c,
      N,
      detail: Object.fromEntries(sides.map((x) => [x.label, x.detail])),
      t,
      init,
      first,
      diffOrt: maxAbsDiff(yOrt!, yOurs!),
      diffNaive: maxAbsDiff(yNaive!, yOurs!),
      yMax: maxAbs(yOurs!),
    };
    rows.push(row);
    console.log(
      `ours ${formatSpread(t.ours!)} ms, ORT ${formatSpread(t.ORT!)} ms, naive ${formatSpread(t.naive!)} ms; ` +
        `ORT/ours ${ratio(t.ORT!, t.ours!)}, naive/ours ${ratio(t.naive!, t.ours!)}; ` +
        `max |diff| ORT ${row.diffOrt.toExponential(2)}, naive ${row.diffNaive.toExponential(2)} (max |y| ${row.yMax.toFixed(2)}); ` +
        `build + first run: ${sides.map((x) => `${x.label} ${sec(init[x.label]!)} + ${sec(first[x.label]!)} s`).join(', ')}`,
    );
  } catch (e) {
    console.log(`FAILED: ${e instanceof Error ? e.message || e.stack : String(e)}`);
  } finally {
    for (const side of [...sides].reverse()) await side.destroy();
  }
}

// The table for docs/PERFORMANCE.md.
console.log(`\n| kernel | M x K -> N | ours ms | ORT ms | naive ms | ORT / ours | naive / ours | max abs diff ORT / naive | build + first run s: ours / ORT / naive |`);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.c.what} (${r.detail.ours}) | ${r.c.M} x ${r.c.K} -> ${fmtN(r.c, r.N)} | ${formatSpread(r.t.ours!)} | ${formatSpread(r.t.ORT!)} | ${formatSpread(r.t.naive!)} | ` +
      `${ratio(r.t.ORT!, r.t.ours!)} | ${ratio(r.t.naive!, r.t.ours!)} | ${r.diffOrt.toExponential(1)} / ${r.diffNaive.toExponential(1)} | ` +
      `${buildFirst(r, 'ours')} / ${buildFirst(r, 'ORT')} / ${buildFirst(r, 'naive')} |`,
  );
}
console.log(
  `\nreps ${reps} per side, rotating order; times are median (min-max) from submit to onSubmittedWorkDone. ` +
    `"build + first run": kernel create / session create + the first run (ours and naive are built once per kind: later shapes of a kind show only their first run).`,
);
device.destroy();
process.exit(0);
