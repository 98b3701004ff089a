// `generate`: image(s) or a video + question -> answer on the GPU engine (Dawn: the real GPU, or SwiftShader).
// --dump writes the intermediates as f32 safetensors (the last turn's, with follow-up prompts); --check re-runs the
// same input on the CPU reference from scratch and prints each tensor's error (a user's way to validate their GPU).
import { parseArgs } from 'node:util';
import { Conversation, type TurnResult } from '../engine/conversation.ts';
import { LlavaMiniEngine, type EncodedImage } from '../engine/engine.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { decodeImageFile } from '../node/image-file.ts';
import { decodeVideoFile } from '../node/video-file.ts';
import { LlamaRuntime, type SamplingOptions } from '../llm/llama-runtime.ts';
import { parsePrecision } from '../precision/policy.ts';
import { collectDump, writeDump } from './dump.ts';
import { isSyntheticSpec, syntheticConfig } from '../weights/synthetic-model.ts';
import { loadEngineModel, loadSyntheticModel, modelDirFormat, SYNTHETIC_DEPTH_OPTIONS, syntheticDepthOf, type EngineModel } from './load-model.ts';

export const GENERATE_USAGE = `  generate --model <checkpoint dir | converted dir | synthetic:llava-mini-8b> (--image <png|jpg|webp|gif|bmp> [--image …] | --video <gif>) --prompt <text> [--prompt <follow-up> …]
           [--max-new-tokens N (512)] [--greedy | --temperature T --top-p P --seed S]
           [--precision f32|f16|q4 (q4)] [--max-context N] [--system <text>]
           [--json] [--dump <file.safetensors>] [--check]
           [--llm-layers N --clip-layers N --prefusion-layers N (synthetic models only)]
      Runs LLaVA-Mini on the GPU (WebGPU through Dawn); each further --prompt is a follow-up turn of the same
      conversation (cached rows reused). --json prints { tokens, text, stopped, promptIds, timings, memory, turns }
      (the top-level fields are the last turn's);
      --dump writes pixel_values, clip, compressed, vision_token (the first image or frame), then the last turn's
      fused_text, llm_input, logits0 and prompt_ids (the whole conversation up to that question);
      --check runs the CPU reference from scratch on the same input (the last turn: the re-rendered conversation)
      and prints the error of every tensor (exit 1 when off).
      A converted folder (npm run convert output) loads its int4 LLM (llm-q4f16_1 with shader-f16, else llm-q4f32_1)
      and mm-q4 pack as stored: --precision q4 only, no --check. synthetic:llava-mini-8b is the released model's
      shapes with pseudo-random weights generated on the GPU (for speed and size; its answers mean nothing).`;

function positiveInt(name: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${s}"`);
  return n;
}

function parseSampling(v: { greedy?: boolean; temperature?: string; 'top-p'?: string; seed?: string }): SamplingOptions {
  const sampled = v.temperature !== undefined || v['top-p'] !== undefined || v.seed !== undefined;
  if (v.greedy && sampled) throw new Error('--greedy cannot be combined with --temperature / --top-p / --seed');
  if (!sampled) return { greedy: true };
  const temperature = Number(v.temperature ?? '1');
  const topP = Number(v['top-p'] ?? '1');
  const seed = Number(v.seed ?? '0');
  if (!Number.isFinite(temperature) || temperature < 0) throw new Error(`--temperature must be a number >= 0, got "${v.temperature}"`);
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw new Error(`--top-p must be in (0, 1], got "${v['top-p']}"`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a whole number >= 0, got "${v.seed}"`);
  return temperature === 0 ? { greedy: true } : { temperature, topP, seed };
}

export async function runGenerate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      image: { type: 'string', multiple: true },
      video: { type: 'string' },
      prompt: { type: 'string', multiple: true },
      system: { type: 'string' },
      'max-new-tokens': { type: 'string', default: '512' },
      'max-context': { type: 'string' },
      greedy: { type: 'boolean' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      precision: { type: 'string', default: 'q4' },
      json: { type: 'boolean', default: false },
      dump: { type: 'string' },
      check: { type: 'boolean', default: false },
      ...SYNTHETIC_DEPTH_OPTIONS,
    },
    strict: true,
  });
  if (!values.model) throw new Error('--model <checkpoint dir or converted dir> is required');
  const prompts = values.prompt ?? [];
  if (prompts.length === 0) throw new Error('--prompt <text> is required');
  if (values.video && values.image?.length) throw new Error('--video and --image cannot be combined');
  const maxNewTokens = positiveInt('max-new-tokens', values['max-new-tokens'])!;
  const maxContext = positiveInt('max-context', values['max-context']);
  const precision = parsePrecision(values.precision);
  const sampling = parseSampling(values);
  if (values.check && !('greedy' in sampling)) throw new Error('--check compares greedy tokens: leave out --temperature / --top-p / --seed');

  const t0 = performance.now();
  const synthetic = isSyntheticSpec(values.model);
  const depth = syntheticDepthOf(values);
  if (synthetic) {
    syntheticConfig(values.model, depth);
    if (values.check) throw new Error('--check runs the CPU reference on checkpoint weights: a synthetic model has none');
  } else if (Object.values(depth).some((v) => v !== undefined)) throw new Error('--llm-layers / --clip-layers / --prefusion-layers apply to synthetic models only');
  const format = synthetic ? null : await modelDirFormat(values.model, precision);
  if (format === 'converted' && values.check) throw new Error('--check runs the CPU reference on the Hugging Face checkpoint: give that folder, not a converted one');
  // Inputs are decoded before the GPU work starts: a bad file fails fast.
  const images = await Promise.all((values.image ?? []).map((p) => decodeImageFile(p)));
  const video = values.video ? await decodeVideoFile(values.video) : null;

  let gpuError: string | null = null;
  const ctx = await createNodeGpu({ onUncapturedError: (m) => (gpuError ??= m.split('\n')[0]!), onLost: (r) => (gpuError ??= r.text) });
  const failOnGpuError = () => {
    if (gpuError) throw new Error(`the GPU reported an error: ${gpuError}`);
  };
  const model: EngineModel = synthetic ? await loadSyntheticModel(values.model, depth) : await loadEngineModel(values.model, ctx.device.features.has('shader-f16'));
  const engine = await LlavaMiniEngine.load(ctx.device, model.source, { precision, maxContext });
  try {
    const tLoaded = performance.now();
    const capture = values.check || values.dump !== undefined;
    const encoded: EncodedImage[] = [];
    for (const img of images) encoded.push(await engine.encodeImage(img, { capture }));
    for (const frame of video?.frames ?? []) encoded.push(await engine.encodeImage(frame, { mode: 'video', capture }));
    failOnGpuError();
    const conv = new Conversation(engine, model.text, { systemPrompt: values.system });
    const stream = !values.json && process.stdout.isTTY;
    const turns: TurnResult[] = [];
    for (const [i, prompt] of prompts.entries()) {
      if (stream && i > 0) process.stdout.write('\n\n');
      turns.push(
        await conv.ask(prompt, {
          images: i > 0 ? [] : video ? [encoded] : encoded,
          maxNewTokens,
          sampling,
          capture: capture && i === prompts.length - 1,
          onText: stream ? (d) => process.stdout.write(d) : undefined,
        }),
      );
      failOnGpuError();
    }
    const turn = turns.at(-1)!;
    const timings = {
      loadMs: tLoaded - t0,
      imageMs: encoded.reduce((s, e) => s + e.timings.imageMs, 0),
      prefusionVisionMs: encoded.reduce((s, e) => s + e.timings.prefusionMs, 0),
      prefusionTextMs: turn.timings.prefusionMs,
      prefillMs: turn.timings.prefillMs,
      firstTokenMs: turn.timings.firstTokenMs,
      decodeMs: turn.timings.decodeMs,
      tokensPerSecond: turn.timings.tokensPerSecond,
    };
    const dump = capture ? collectDump(encoded, turn, engine.config) : null;
    if (values.dump && dump) await writeDump(values.dump, dump);
    if (values.json) {
      const summary = (t: TurnResult) => ({ tokens: t.tokens, text: t.text, stopped: t.stopped, promptIds: t.promptIds, llmRows: t.llmRows, reusedRows: t.reusedRows });
      console.log(JSON.stringify({ ...summary(turn), timings, memory: engine.memory(), turns: turns.map(summary) }));
    } else {
      if (stream) process.stdout.write('\n');
      else console.log(turns.map((t) => t.text).join('\n\n'));
      console.error(`${turn.tokens.length} tokens (${turn.stopped}); prefill ${turn.llmRows} rows in ${timings.prefillMs.toFixed(0)} ms; ${timings.tokensPerSecond.toFixed(1)} tokens/s`);
    }
    if (values.check && dump && model.checkpoint) {
      // The oracle's check, loaded only for --check (the GPU path never loads the reference).
      const { runCheck } = await import('../reference/cli/check.ts');
      const ok = await runCheck({ model: { checkpoint: model.checkpoint, text: model.text }, precision, hasF16: ctx.device.features.has('shader-f16'), kv: engine.llm instanceof LlamaRuntime ? engine.llm.cache.storage : 'f32', images, video, dump, tokens: turn.tokens, log: (line) => console.error(line) });
      if (!ok) throw new Error('check: the GPU results differ from the CPU reference beyond the tolerance (see above)');
    }
    conv.destroy();
  } finally {
    engine.destroy();
    ctx.device.destroy();
  }
}
