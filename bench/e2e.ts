// The product's whole path at full size, every stage timed on the GPU, with two baselines in the same run:
//   npm run bench:e2e -- --model <synthetic:llava-mini-8b | checkpoint dir> [--precision q4|f16|f32] [--json]
//        [--llm-layers N --clip-layers N --prefusion-layers N] [--decode-tokens N (128)] [--baseline all|limits|none]
// (a) the LLaVA-v1.5 way: the 576 projected CLIP rows straight into the same LLM (no compressor, no pre-fusion),
//     as ratios of time to first token and of FLOPs; (b) the device's limits (copy bandwidth, peak FMA rate)
//     measured here, and every stage as a fraction of its limit. Stops are ignored while decoding.
import { parseArgs } from 'node:util';
import { positiveArg } from './args.ts';
import type { LlavaMiniConfig } from '../src/checkpoint/types.ts';
import { loadModelDir, loadSyntheticModel, SYNTHETIC_DEPTH_OPTIONS, syntheticDepthOf, type EngineModel } from '../src/cli/load-model.ts';
import { Conversation } from '../src/engine/conversation.ts';
import { EncodedImage, LlavaMiniEngine } from '../src/engine/engine.ts';
import { llmLayout } from '../src/engine/llm-layout.ts';
import { createStorageBuffer } from '../src/gpu/buffers.ts';
import { formatAdapterSummary } from '../src/gpu/device.ts';
import { formatBytes } from '../src/util/format-bytes.ts';
import { createNodeGpu } from '../src/node/gpu.ts';
import { IMAGE_TOKEN_INDEX } from '../src/text/image-tokens.ts';
import { mulberry32 } from '../src/util/seeded-random.ts';
import { parsePrecision, storageFor } from '../src/precision/policy.ts';
import { tiledArithmetic } from '../src/gpu/kernels/linear.ts';
import { isSyntheticSpec } from '../src/weights/synthetic-model.ts';
import { measureDeviceLimits, type DeviceLimits } from './e2e/device-limits.ts';
import { clipFlops, compressorFlops, decodeFlops, flopsWords, llmPrefillFlops, prefusionFlops, projectorFlops, speedWords } from './e2e/flops.ts';
import { StageTimer } from './e2e/stage-timer.ts';

/** A typical question: about 40 text tokens. */
export const QUESTION =
  'Describe this picture in detail: which objects and people are in it, what colours and shapes they have, where each one is, what is happening, and whether anything looks unusual or out of place to you.';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    model: { type: 'string' },
    precision: { type: 'string', default: 'q4' },
    json: { type: 'boolean', default: false },
    'decode-tokens': { type: 'string', default: '128' },
    baseline: { type: 'string', default: 'all' },
    'max-context': { type: 'string', default: '1024' },
    ...SYNTHETIC_DEPTH_OPTIONS,
  },
  strict: true,
});

interface Stage {
  name: string;
  /** Which component: image side, pre-fusion, LLM. */
  part: 'image' | 'prefusion' | 'llm';
  ms: number;
  flops?: number;
  /** FLOPs over time against the peak FMA rate, or bytes over time against the copy bandwidth (decode). */
  fractionOfLimit?: number;
}

async function main(): Promise<void> {
  const spec = values.model;
  if (!spec) throw new Error('--model <synthetic:llava-mini-8b | checkpoint dir> is required');
  const precision = parsePrecision(values.precision);
  const decodeTokens = positiveArg('decode-tokens', values['decode-tokens']);
  const maxContext = positiveArg('max-context', values['max-context']);
  const baseline = values.baseline;
  if (!['all', 'limits', 'none'].includes(baseline)) throw new Error(`--baseline must be all, limits or none, got "${baseline}"`);
  const depth = syntheticDepthOf(values);
  const synthetic = isSyntheticSpec(spec);
  if (!synthetic && Object.values(depth).some((v) => v !== undefined)) throw new Error('--llm-layers / --clip-layers / --prefusion-layers apply to synthetic models only');
  const log = (line: string) => (values.json ? console.error(line) : console.log(line));
  const tStart = performance.now();

  const model: EngineModel = synthetic ? await loadSyntheticModel(spec, depth) : await (async () => {
    const m = await loadModelDir(spec);
    return { source: m.checkpoint, text: m.text, checkpoint: m.checkpoint };
  })();
  let gpuError: string | null = null;
  const ctx = await createNodeGpu({ onUncapturedError: (m) => (gpuError ??= m.split('\n')[0]!), onLost: (r) => (gpuError ??= r.text) });
  const { device } = ctx;
  const failOnGpuError = () => {
    if (gpuError) throw new Error(`the GPU reported an error: ${gpuError}`);
  };
  log(formatAdapterSummary(ctx.summary));
  const cfg = model.source.config;
  log(describeModel(spec, cfg, precision));

  // Load: weights (generated on the GPU for a synthetic model) then every stage's pipelines.
  const t0 = performance.now();
  let tWeights = t0;
  const engine = await LlavaMiniEngine.load(device, model.source, {
    precision,
    maxContext,
    onProgress: (_name, done, total) => {
      if (done === total) tWeights = performance.now();
    },
  });
  await device.queue.onSubmittedWorkDone();
  const tLoaded = performance.now();
  failOnGpuError();
  const load = { weightsMs: tWeights - t0, pipelineBuildMs: tLoaded - tWeights, totalMs: tLoaded - t0 };
  log(`GPU memory after load: ${formatBytes(engine.memory().total)}`);
  log(`loaded in ${(load.totalMs / 1000).toFixed(1)} s (weights ${(load.weightsMs / 1000).toFixed(1)} s, pipelines and buffers ${(load.pipelineBuildMs / 1000).toFixed(1)} s)`);

  const timer = new StageTimer(device);
  const stages: Stage[] = [];
  try {
    // --- the image arrives: preprocess, CLIP, compressor, projector (the engine's own stage list), vision pre-fusion
    const rng = mulberry32(5);
    const image = { width: 640, height: 480, data: Uint8ClampedArray.from({ length: 640 * 480 * 4 }, () => Math.floor(rng() * 256)) };
    const upload = engine.input.upload(image);
    await timer.time('preprocess', () => engine.input.record(device, upload, 'image'));
    upload.buffer.destroy();
    for (const s of engine.encoder.stages) {
      await timer.time(s.name, () => {
        const cmd = device.createCommandEncoder({ label: s.name });
        s.record(cmd, engine.input.pixelValues);
        device.queue.submit([cmd.finish()]);
      });
    }
    const out = engine.encoder.output;
    const state = await timer.time('pre-fusion (vision rows)', () => engine.prefusion.fuseVision(out.G, out.Vc));
    failOnGpuError();
    const imageTimes = await timer.results();
    const byName = (n: string) => imageTimes.find((t) => t.name === n)?.ms ?? 0;
    const clipMs = imageTimes.filter((t) => t.name.startsWith('clip ')).reduce((s, t) => s + t.ms, 0);
    const pfFlops = prefusionFlops(cfg, 0);
    stages.push({ name: 'preprocess', part: 'image', ms: byName('preprocess') });
    stages.push({ name: `CLIP (${cfg.visionLayersUsed} layers, ${imageRows(cfg)} rows)`, part: 'image', ms: clipMs, flops: clipFlops(cfg) });
    stages.push({ name: 'compressor', part: 'image', ms: byName('compressor'), flops: compressorFlops(cfg) });
    stages.push({ name: 'projector', part: 'image', ms: byName('projector'), flops: projectorFlops(cfg, imageRows(cfg) - 1 + cfg.compressorSize ** 2) });
    stages.push({ name: `pre-fusion, vision rows (${cfg.prefusionLayerNum} layers)`, part: 'prefusion', ms: byName('pre-fusion (vision rows)'), flops: pfFlops.vision });
    const encoded = new EncodedImage(state, { imageMs: stages.filter((s) => s.part === 'image').reduce((a, s) => a + s.ms, 0), prefusionMs: byName('pre-fusion (vision rows)') });
    for (const s of stages) log(`  ${s.name}: ${s.ms.toFixed(1)} ms`);

    // --- a question of about 40 text tokens: text rows' pre-fusion, LLM prefill, first token, then decode
    const conv = new Conversation(engine, { ...model.text, stopIds: [] });
    const turn = await conv.ask(QUESTION, { images: [encoded], maxNewTokens: decodeTokens });
    failOnGpuError();
    const questionTokens = model.text.tokenizer.encode(QUESTION, { addBos: false }).length;
    const textRows = turn.promptIds.length;
    stages.push({ name: `pre-fusion, text rows (${textRows} rows)`, part: 'prefusion', ms: turn.timings.prefusionMs, flops: prefusionFlops(cfg, textRows).text });
    stages.push({ name: `LLM prefill (${turn.llmRows} rows)`, part: 'llm', ms: turn.timings.prefillMs, flops: llmPrefillFlops(cfg, turn.llmRows) });
    const ttftMs = turn.timings.prefusionMs + turn.timings.firstTokenMs;
    const decodeSteps = Math.max(1, turn.tokens.length - 1);
    const msPerToken = turn.timings.decodeMs / decodeSteps;
    const meanContext = turn.llmRows + turn.tokens.length / 2;
    const bytesPerToken = decodeBytesPerToken(engine, cfg, meanContext);
    stages.push({ name: `LLM decode, per token (${turn.tokens.length} tokens)`, part: 'llm', ms: msPerToken, flops: decodeFlops(cfg, meanContext) });
    for (const s of stages.slice(-3)) log(`  ${s.name}: ${s.ms.toFixed(1)} ms`);

    // --- baseline (a): the LLaVA-v1.5 way
    let llava15: Record<string, number> | null = null;
    if (baseline === 'all') llava15 = await llava15Baseline(engine, turn.promptIds, timer);
    failOnGpuError();
    // --- baseline (b): the device's limits
    const limits: DeviceLimits | null = baseline === 'none' ? null : await measureDeviceLimits(device);
    // The stages' linears compute in f16 where the engine's tiles do (gpu-linear.ts): measured against that peak.
    const linearMath = tiledArithmetic(storageFor(precision, 'vision', 'linear', device.features.has('shader-f16')), device);
    const peakKind: 'f32' | 'f16' = linearMath === 'f16' && limits?.peakF16Gflops ? 'f16' : 'f32';
    if (limits) {
      const peak = (peakKind === 'f16' ? limits.peakF16Gflops! : limits.peakF32Gflops) * 1e6;
      for (const s of stages) {
        if (s.name.startsWith('LLM decode')) s.fractionOfLimit = bytesPerToken / s.ms / 1e6 / limits.copyGBps;
        else if (s.flops && s.ms > 0) s.fractionOfLimit = s.flops / s.ms / peak;
      }
    }
    const memory = { ...engine.memory(), imageState: encoded.bytes };
    const imageSideMs = stages.filter((s) => s.part === 'image').reduce((a, s) => a + s.ms, 0) + encoded.timings.prefusionMs;
    const ours = {
      imageToReadyMs: imageSideMs,
      ttftMs,
      ttftFlops: prefusionFlops(cfg, textRows).text + llmPrefillFlops(cfg, turn.llmRows),
      imageFlops: clipFlops(cfg) + compressorFlops(cfg) + projectorFlops(cfg, imageRows(cfg) - 1 + cfg.compressorSize ** 2) + pfFlops.vision,
    };
    const ratios = llava15
      ? {
          ttftSpeedup: llava15.ttftMs! / ours.ttftMs,
          ttftFlopsRatio: ours.ttftFlops / llava15.ttftFlops!,
          endToEndSpeedup: (llava15.imageMs! + llava15.ttftMs!) / (ours.imageToReadyMs + ours.ttftMs),
          endToEndFlopsRatio: (ours.imageFlops + ours.ttftFlops) / (llava15.imageFlops! + llava15.ttftFlops!),
        }
      : null;
    const result = {
      adapter: ctx.summary,
      model: spec,
      config: { llmLayers: cfg.llm.numLayers, clipLayers: cfg.visionLayersUsed, prefusionLayers: cfg.prefusionLayerNum, hidden: cfg.llm.hiddenSize, vocab: cfg.llm.vocabSize },
      precision,
      timing: timer.method,
      load,
      stages,
      question: { text: QUESTION, tokens: questionTokens, promptRows: textRows, llmRows: turn.llmRows },
      ttftMs,
      decode: { tokens: turn.tokens.length, tokensPerSecond: 1000 / msPerToken, msPerToken, bytesPerToken },
      memory,
      baselines: { llava15, limits },
      peakKind,
      ours,
      ratios,
      wallMs: performance.now() - tStart,
    };
    if (values.json) console.log(JSON.stringify(result));
    else printTables(result);
    conv.destroy();
  } finally {
    timer.destroy();
    engine.destroy();
    device.destroy();
  }
}

function imageRows(cfg: LlavaMiniConfig): number {
  return (cfg.vision.imageSize / cfg.vision.patchSize) ** 2 + 1;
}

function describeModel(spec: string, cfg: LlavaMiniConfig, precision: string): string {
  const l = cfg.llm;
  return `${spec} at ${precision}: CLIP ${cfg.vision.hiddenSize} x ${cfg.visionLayersUsed} layers, compressor C=${cfg.compressorSize}, ${cfg.prefusionLayerNum} pre-fusion layers, LLM ${l.hiddenSize} x ${l.numLayers} layers (${l.numHeads}x${l.headDim} heads, ${l.numKvHeads} KV heads, FFN ${l.intermediateSize}, vocabulary ${l.vocabSize})`;
}

/** Bytes one decode step must read: every LLM weight it multiplies by (not the embedding table: one row), and the KV cache. */
function decodeBytesPerToken(engine: LlavaMiniEngine, cfg: LlavaMiniConfig, context: number): number {
  const llmWeights = engine.weights.bytesByPart().llm - engine.weights.get('model.embed_tokens.weight').bytes;
  const l = cfg.llm;
  const kvBytes = engine.memory().llm > 0 ? (cfg.llm.numLayers * 2 * l.numKvHeads * l.headDim * context * kvElementBytes(engine)) : 0;
  return llmWeights + kvBytes;
}

function kvElementBytes(engine: LlavaMiniEngine): number {
  const storage = (engine.llm as { cache?: { storage?: string } }).cache?.storage;
  return storage === 'f16' ? 2 : 4;
}

/**
 * Baseline (a): the prompt's text rows as plain token embeddings with the 576 projected CLIP rows G in the image
 * slot, prefilled into the same LLM from an empty cache; time to first token = that prefill + the first token.
 */
async function llava15Baseline(engine: LlavaMiniEngine, promptIds: readonly number[], timer: StageTimer): Promise<Record<string, number>> {
  const { device, config: cfg } = engine;
  const H = cfg.llm.hiddenSize;
  const slot = promptIds.indexOf(IMAGE_TOKEN_INDEX);
  const textIds = promptIds.filter((id) => id !== IMAGE_TOKEN_INDEX);
  const G = engine.encoder.output.G;
  const rows = textIds.length + G.rows;
  if (rows + 1 > engine.llm.capacity) throw new Error(`baseline (a): ${rows} rows exceed the LLM context (${engine.llm.capacity}): raise --max-context`);
  const input = createStorageBuffer(device, rows * H * 4, 'llava-1.5 input', GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC);
  try {
    device.queue.submit([engine.assembler.assemble(textIds, llmLayout(textIds, []), [], 0, textIds.length)]);
    const cmd = device.createCommandEncoder({ label: 'llava-1.5 input' });
    const rowBytes = H * 4;
    cmd.copyBufferToBuffer(engine.assembler.input, 0, input, 0, slot * rowBytes);
    cmd.copyBufferToBuffer(G.buffer, G.rowStart * rowBytes, input, slot * rowBytes, G.rows * rowBytes);
    cmd.copyBufferToBuffer(engine.assembler.input, slot * rowBytes, input, (slot + G.rows) * rowBytes, (textIds.length - slot) * rowBytes);
    device.queue.submit([cmd.finish()]);
    engine.llm.rollback(0);
    engine.llmOwner = null;
    const first = await timer.time('llava-1.5 prefill + first token', async () => {
      await engine.llm.prefill(input, rows);
      return engine.llm.generate({ maxNewTokens: 1, stopIds: [] });
    });
    engine.llm.rollback(0);
    const imageMs = (await timer.results()).filter((t) => t.name === 'preprocess' || t.name.startsWith('clip ') || t.name === 'projector').reduce((s, t) => s + t.ms, 0);
    return {
      rows,
      prefillMs: first.timings.prefillMs,
      ttftMs: first.timings.firstTokenMs,
      ttftFlops: llmPrefillFlops(cfg, rows),
      imageMs,
      imageFlops: clipFlops(cfg) + projectorFlops(cfg, G.rows),
    };
  } finally {
    input.destroy();
  }
}

type Result = {
  adapter: { vendor: string; architecture: string; description: string };
  model: string;
  precision: string;
  timing: string;
  load: { weightsMs: number; pipelineBuildMs: number; totalMs: number };
  stages: Stage[];
  question: { tokens: number; promptRows: number; llmRows: number };
  ttftMs: number;
  decode: { tokens: number; tokensPerSecond: number; msPerToken: number; bytesPerToken: number };
  memory: Record<string, unknown>;
  baselines: { llava15: Record<string, number> | null; limits: DeviceLimits | null };
  /** Which FMA peak the non-decode stages are measured against: f16 where the linears compute in f16. */
  peakKind: 'f32' | 'f16';
  ours: { imageToReadyMs: number; ttftMs: number; ttftFlops: number; imageFlops: number };
  ratios: Record<string, number> | null;
  wallMs: number;
};

function printTables(r: Result): void {
  const pct = (f: number | undefined) => (f === undefined ? '' : `${(100 * f).toFixed(1)}%`);
  console.log(`\ntiming: ${r.timing}; question ${r.question.tokens} tokens (${r.question.promptRows} prompt rows, ${r.question.llmRows} LLM rows)`);
  console.log(`${'stage'.padEnd(44)} ${'ms'.padStart(10)} ${'GFLOP'.padStart(9)}  of limit`);
  for (const s of r.stages) console.log(`${s.name.padEnd(44)} ${s.ms.toFixed(1).padStart(10)} ${s.flops ? (s.flops / 1e9).toFixed(1).padStart(9) : ''.padStart(9)}  ${pct(s.fractionOfLimit)}`);
  console.log(`${'time to first token (question)'.padEnd(44)} ${r.ttftMs.toFixed(1).padStart(10)}`);
  console.log(`decode: ${r.decode.tokensPerSecond.toFixed(2)} tokens/s, ${formatBytes(r.decode.bytesPerToken)} read per token`);
  console.log(`load: weights ${(r.load.weightsMs / 1000).toFixed(1)} s, pipeline build ${(r.load.pipelineBuildMs / 1000).toFixed(1)} s`);
  const m = r.memory as { weights: Record<string, number>; imageSide: number; prefusion: number; llm: number; imageState: number; total: number };
  console.log(`GPU memory: ${Object.entries(m.weights).map(([k, v]) => `${k} weights ${formatBytes(v)}`).join(', ')}; image side ${formatBytes(m.imageSide)}, pre-fusion ${formatBytes(m.prefusion)}, LLM runtime ${formatBytes(m.llm)}, image state ${formatBytes(m.imageState)}; total ${formatBytes(m.total + m.imageState)}`);
  const l = r.baselines.limits;
  if (l) console.log(`device limits: copy ${l.copyGBps.toFixed(1)} GB/s, peak FMA f32 ${l.peakF32Gflops.toFixed(1)} GFLOP/s${l.peakF16Gflops !== null ? `, f16 ${l.peakF16Gflops.toFixed(1)} GFLOP/s` : ''}; stages against the ${r.peakKind} peak`);
  const a = r.baselines.llava15;
  if (a && r.ratios) {
    console.log(`LLaVA-v1.5 way: ${a.rows} LLM rows, time to first token ${a.ttftMs!.toFixed(1)} ms (${(a.ttftFlops! / 1e9).toFixed(1)} GFLOP) vs ours ${r.ttftMs.toFixed(1)} ms (${(r.ours.ttftFlops / 1e9).toFixed(1)} GFLOP)`);
    console.log(`ratios: time to first token ${speedWords(r.ratios.ttftSpeedup!)}, ${flopsWords(r.ratios.ttftFlopsRatio!)}; image + question ${speedWords(r.ratios.endToEndSpeedup!)}, ${flopsWords(r.ratios.endToEndFlopsRatio!)}`);
  }
  console.log(`wall time ${(r.wallMs / 1000).toFixed(1)} s`);
}

try {
  await main();
} catch (e) {
  console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
}
