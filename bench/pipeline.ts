// Whole-pipeline time split on the generated tiny checkpoint (576 vision tokens, real vocabulary, tiny widths):
//   npm run bench:pipeline -- [--precision f32|q4|f16] [--tokens N] [--reps N]
// Image side stages are submitted one at a time and waited for (GPU time on SwiftShader; on a real GPU it
// includes a submit round trip each); pre-fusion, prefill and decode are the engine's own timings. The first
// question after an image pays the text rows only; the per-token decode is wall time per generated token.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTinyCheckpoint } from '../scripts/tiny-checkpoint/generate.ts';
import { loadModelDir } from '../src/cli/load-model.ts';
import { Conversation } from '../src/engine/conversation.ts';
import { LlavaMiniEngine } from '../src/engine/engine.ts';
import { formatAdapterSummary } from '../src/gpu/device.ts';
import { formatBytes } from '../src/util/format-bytes.ts';
import { createNodeGpu } from '../src/node/gpu.ts';
import { mulberry32 } from '../src/util/seeded-random.ts';
import { parsePrecision, PRECISIONS, type Precision } from '../src/precision/policy.ts';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const tokens = Number(opt('tokens') ?? 16);
const reps = Number(opt('reps') ?? 2);

const ctx = await createNodeGpu();
const { device } = ctx;
const hasF16 = device.features.has('shader-f16');
const precisions: Precision[] = opt('precision') ? [parsePrecision(opt('precision')!)] : PRECISIONS.filter((p) => p !== 'f16' || hasF16);
console.log(formatAdapterSummary(ctx.summary));

const dir = await mkdtemp(join(tmpdir(), 'llava-bench-'));
await makeTinyCheckpoint({ out: dir, seed: 1 });
const model = await loadModelDir(dir);
const cfg = model.checkpoint.config;
console.log(
  `tiny checkpoint: image ${cfg.vision.imageSize}, CLIP ${cfg.vision.hiddenSize} x ${cfg.visionLayersUsed} layers used, LLM ${cfg.llm.hiddenSize} x ${cfg.llm.numLayers} layers, ` +
    `${cfg.prefusionLayerNum} pre-fusion layers, vocabulary ${cfg.llm.vocabSize}; ${tokens} new tokens, best of ${reps}`,
);

const rng = mulberry32(5);
const image = { width: 640, height: 480, data: Uint8ClampedArray.from({ length: 640 * 480 * 4 }, () => Math.floor(rng() * 256)) };
const fmt = (ms: number) => ms.toFixed(1).padStart(9);

for (const precision of precisions) {
  const t0 = performance.now();
  const engine = await LlavaMiniEngine.load(device, model.checkpoint, { precision });
  const loadMs = performance.now() - t0;
  let best: Map<string, number> | null = null;
  let prefillRows = 0;
  for (let r = 0; r < reps; r++) {
    const rows = new Map<string, number>();
    const encoded = await engine.encodeImage(image, { profile: true });
    for (const s of encoded.timings.stages ?? []) {
      const name = s.name.startsWith('clip layer') ? 'CLIP layers' : s.name;
      rows.set(name, (rows.get(name) ?? 0) + s.ms);
    }
    rows.set('pre-fusion (vision rows)', encoded.timings.prefusionMs);
    const conv = new Conversation(engine, { ...model.text, stopIds: [] });
    const turn = await conv.ask('What is in this image?', { images: [encoded], maxNewTokens: tokens });
    prefillRows = turn.llmRows;
    rows.set('pre-fusion (text rows)', turn.timings.prefusionMs);
    rows.set(`LLM prefill (${turn.llmRows} rows)`, turn.timings.prefillMs);
    rows.set('LLM decode, per token', turn.timings.decodeMs / Math.max(1, turn.tokens.length - 1));
    conv.destroy();
    if (!best) best = rows;
    else for (const [k, v] of rows) best.set(k, Math.min(best.get(k)!, v));
  }
  const mem = engine.memory();
  console.log(`\nprecision ${precision}: load ${(loadMs / 1000).toFixed(1)} s, GPU memory ${formatBytes(mem.total)} (weights ${Object.entries(mem.weights).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ')})`);
  const total = [...best!.values()].reduce((s, v) => s + v, 0) - best!.get('LLM decode, per token')!;
  console.log(`${'stage'.padEnd(30)} ${'ms'.padStart(9)}  share of the time to first token`);
  for (const [k, v] of best!) console.log(`${k.padEnd(30)} ${fmt(v)}  ${k.includes('per token') ? `${(1000 / v).toFixed(1)} tokens/s` : `${((100 * v) / total).toFixed(1)}%`}`);
  console.log(`${'time to first token'.padEnd(30)} ${fmt(total)}  (${prefillRows} prompt rows)`);
  engine.destroy();
}
device.destroy();
await rm(dir, { recursive: true, force: true });
