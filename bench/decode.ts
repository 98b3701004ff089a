// The decode step's two structural costs, each against the way it was done before, in one run on one device:
//   npm run bench:decode -- [--model synthetic:llava-mini-8b] [--llm-layers N] [--precision q4|f16|f32]
//        [--context 4096] [--reps 20]
// 1. Host (CPU) time to record one decode step of the decoder layers. "re-recorded": every layer's dispatches
//    recorded anew (DecoderStack.record with one row: argument checks, a bind group per dispatch, uniform lookups
//    by key), as decode did before the decode plan; "replayed": the decode plan (DecoderStack.recordDecode,
//    recorded once) replayed at a position (setPipeline / setBindGroup / dispatchWorkgroups only). Nothing is
//    submitted: this is what a token costs the CPU before the GPU can start on it.
// 2. GPU time of one layer's MLP input on decode's one row: gate and up matvecs into [1, 2I] + the SwiGLU pass
//    ("separate"), against the matvec's gated form (one pass over both matrices, silu(gate) * up written once).
//    Submit to onSubmittedWorkDone, the sides in alternating order.
// 3. GPU time of one layer's two residual projections on one row: o_proj and down_proj into scratch, each followed
//    by an add pass into the residual stream ("separate", as decode did before), against the linear kernels'
//    residual epilogue (each projection adds itself into the stream: 2 dispatches, not 4). Same timing as 2.
// The synthetic model's weights are generated on the GPU at the real widths; median (min-max) of --reps.
import { parseArgs } from 'node:util';
import { positiveArg } from './args.ts';
import { llamaLayerPrefix } from '../src/checkpoint/expected-tensors.ts';
import { loadSyntheticModel, SYNTHETIC_DEPTH_OPTIONS, syntheticDepthOf } from '../src/cli/load-model.ts';
import { createStorageBuffer, readF32, storageBufferFrom } from '../src/gpu/buffers.ts';
import { formatAdapterSummary } from '../src/gpu/device.ts';
import { RecordedPass } from '../src/gpu/dispatch.ts';
import { recordLinear } from '../src/gpu/gpu-linear.ts';
import type { KvStorage } from '../src/gpu/storage.ts';
import { AddKernel } from '../src/gpu/kernels/elementwise.ts';
import { DecoderStack } from '../src/llm/decoder-layer.ts';
import { createNodeGpu } from '../src/node/gpu.ts';
import { parsePrecision } from '../src/precision/policy.ts';
import { mulberry32, randomF32 } from '../src/util/seeded-random.ts';
import { GpuWeights } from '../src/weights/gpu-weights.ts';
import { formatSpread, rotation, spread, type Spread } from './peer/stats.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    model: { type: 'string', default: 'synthetic:llava-mini-8b' },
    precision: { type: 'string', default: 'q4' },
    context: { type: 'string', default: '4096' },
    reps: { type: 'string', default: '20' },
    ...SYNTHETIC_DEPTH_OPTIONS,
  },
  strict: true,
});

const precision = parsePrecision(values.precision);
const context = positiveArg('context', values.context);
const reps = positiveArg('reps', values.reps);
const ctx = await createNodeGpu();
const { device } = ctx;
console.log(formatAdapterSummary(ctx.summary));
const { source } = await loadSyntheticModel(values.model, syntheticDepthOf(values));
const cfg = source.config.llm;
const kv: KvStorage = device.features.has('shader-f16') && precision !== 'f32' ? 'f16' : 'f32';
const tLoad = performance.now();
const prefixes = Array.from({ length: cfg.numLayers }, (_, i) => llamaLayerPrefix(i));
const stack = await DecoderStack.create(new GpuWeights(device, source, precision), prefixes, { maxRows: 1, maxPositions: context, kv });
await device.queue.onSubmittedWorkDone();
const [layer0] = stack.layers;
console.log(
  `${values.model}: ${cfg.numLayers} decoder layers, hidden ${cfg.hiddenSize}, ${layer0!.gate.storage} weights, ${kv} KV cache of ${context} rows ` +
    `(weights and pipelines in ${((performance.now() - tLoad) / 1000).toFixed(1)} s); median (min-max) of ${reps}\n`,
);
const fmt = (s: Spread) => formatSpread(s);
const ratio = (a: Spread, b: Spread) => (a.median / b.median).toFixed(1);

// ---- 1. host time to record a decode step ----
const cache = stack.createCache(context, 'bench kv');
const positions = storageBufferFrom(device, Int32Array.from({ length: context }, (_, i) => i), 'bench positions');
const tPlan = performance.now();
const plan = new RecordedPass(context);
stack.recordDecode(plan, cache, positions);
const planMs = performance.now() - tPlan;

/** Host ms to record into a fresh pass (ended, never submitted). */
function hostMs(record: (pass: GPUComputePassEncoder) => void): number {
  const encoder = device.createCommandEncoder({ label: 'bench decode step' });
  const pass = encoder.beginComputePass();
  const t0 = performance.now();
  record(pass);
  const ms = performance.now() - t0;
  pass.end();
  encoder.finish();
  return ms;
}

const host = { rerecorded: [] as number[], replayed: [] as number[] };
for (let r = 0; r < reps; r++) {
  const p = Math.floor(((r + 0.5) / reps) * (context - 1)); // spread over the context: attention's splits change
  cache.rollback(0);
  cache.advance(p);
  const sides = [
    () => host.rerecorded.push(hostMs((pass) => stack.record(pass, cache, { rows: 1, positions, positionOffset: p, keep: null }))),
    () => host.replayed.push(hostMs((pass) => plan.replay(pass, p))),
  ];
  for (const side of rotation(sides, r)) {
    side();
    cache.rollback(p); // record() advanced the cache
  }
}
const rr = spread(host.rerecorded);
const rp = spread(host.replayed);
console.log(`decode plan: ${plan.length} commands for ${cfg.numLayers} layers, recorded once in ${planMs.toFixed(0)} ms`);
console.log('| host time to record one decode step | ms |');
console.log('|---|---:|');
console.log(`| re-recorded (every layer's dispatches, each token) | ${fmt(rr)} |`);
console.log(`| replayed decode plan | ${fmt(rp)} |`);
console.log(`re-recorded / replayed: ${ratio(rr, rp)}x\n`);

// ---- 2 and 3: two ways to compute the same thing, timed on the GPU in alternating order, outputs compared ----
const { linear, swiglu } = stack.kernels;
const w = layer0!;
const I = cfg.intermediateSize;
const H = cfg.hiddenSize;
type Recorder = (pass: GPUComputePassEncoder) => void;
const submitted = async (record: Recorder): Promise<number> => {
  const t0 = performance.now();
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  record(pass);
  pass.end();
  device.queue.submit([encoder.finish()]);
  await device.queue.onSubmittedWorkDone();
  return performance.now() - t0;
};

interface Side {
  /** Short name for the ratio line. */
  name: string;
  label: string;
  record: Recorder;
  /** Where this side leaves its result (the two sides must agree). */
  out: GPUBuffer;
}

/** Times both sides (one warm-up round, then `reps` in rotating order) and prints ms, weight GB/s, ratio, agreement. */
async function compareSides(title: string, weightBytes: number, before: Side, after: Side, outLength: number, note: string): Promise<void> {
  const times: [number[], number[]] = [[], []];
  for (let r = 0; r <= reps; r++) {
    for (const i of rotation([0, 1] as const, r)) {
      const ms = await submitted([before, after][i]!.record);
      if (r > 0) times[i].push(ms);
    }
  }
  const [a, b] = await Promise.all([readF32(device, before.out, outLength), readF32(device, after.out, outLength)]);
  let diff = 0;
  let max = 0;
  for (let i = 0; i < outLength; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    max = Math.max(max, Math.abs(a[i]!));
  }
  const [sa, sb] = times.map(spread) as [Spread, Spread];
  console.log(`| ${title} | ms | weight GB/s |`);
  console.log('|---|---:|---:|');
  for (const [side, t] of [[before, sa], [after, sb]] as const) console.log(`| ${side.label} | ${fmt(t)} | ${(weightBytes / t.median / 1e6).toFixed(1)} |`);
  console.log(`${before.name} / ${after.name}: ${ratio(sa, sb)}x; max |diff| ${diff.toExponential(1)} (max |out| ${max.toFixed(2)}${note})\n`);
}

// 2. one layer's MLP input on one row: separate vs gated
const x = storageBufferFrom(device, randomF32(H, mulberry32(5), 1), 'bench x');
const gateUp = createStorageBuffer(device, 2 * I * 4, 'bench gate|up');
const ySeparate = createStorageBuffer(device, I * 4, 'bench act (separate)');
const yGated = createStorageBuffer(device, I * 4, 'bench act (gated)');
await compareSides(
  `MLP input, 1 x ${H} -> 2 x ${I} (${w.gate.storage})`,
  w.gate.bytes + w.up.bytes,
  {
    name: 'separate',
    label: 'separate: gate + up matvecs, SwiGLU pass',
    record: (pass) => {
      recordLinear(pass, linear, x, w.gate, null, gateUp, 1, { yColOffset: 0, yRowStride: 2 * I });
      recordLinear(pass, linear, x, w.up, null, gateUp, 1, { yColOffset: I, yRowStride: 2 * I });
      swiglu.run(pass, gateUp, ySeparate, 1, I);
    },
    out: ySeparate,
  },
  { name: 'gated', label: 'gated matvec (one pass)', record: (pass) => linear.recordGated(pass, x, w.gate, w.up, yGated, 1), out: yGated },
  I,
  '',
);

// 3. one layer's residual projections on one row: add passes vs the residual epilogue
const add = await AddKernel.create(device);
const rng = mulberry32(9);
const attnIn = storageBufferFrom(device, randomF32(H, rng, 1), 'bench attn');
const actIn = storageBufferFrom(device, randomF32(I, rng, 1), 'bench act');
const stream0 = randomF32(H, rng, 1);
const streams = { separate: storageBufferFrom(device, stream0, 'bench stream (separate)'), fused: storageBufferFrom(device, stream0, 'bench stream (fused)') };
const scratch = createStorageBuffer(device, H * 4, 'bench o | down');
await compareSides(
  `o_proj + down_proj into the residual stream, 1 row (${w.o.storage})`,
  w.o.bytes + w.down.bytes,
  {
    name: 'separate',
    label: 'separate: each projection into scratch, then an add pass',
    record: (pass) => {
      recordLinear(pass, linear, attnIn, w.o, null, scratch, 1);
      add.run(pass, scratch, streams.separate, H);
      recordLinear(pass, linear, actIn, w.down, null, scratch, 1);
      add.run(pass, scratch, streams.separate, H);
    },
    out: streams.separate,
  },
  {
    name: 'epilogue',
    label: 'residual epilogue (each projection adds itself)',
    record: (pass) => {
      recordLinear(pass, linear, attnIn, w.o, null, streams.fused, 1, { residual: true });
      recordLinear(pass, linear, actIn, w.down, null, streams.fused, 1, { residual: true });
    },
    out: streams.fused,
  },
  H,
  ` after ${reps + 1} updates of each stream`,
);

add.destroy();
for (const buf of [positions, x, gateUp, ySeparate, yGated, attnIn, actIn, streams.separate, streams.fused, scratch]) buf.destroy();
cache.destroy();
stack.destroy();
device.destroy();
