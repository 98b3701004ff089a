// The whole engine (image -> vision -> compress -> pre-fuse -> LLM -> text) on Dawn (SwiftShader without a GPU)
// against the CPU reference on a generated tiny checkpoint with the real Llama-3 tokenizer and vocabulary.
// Tolerance: every captured tensor within 1e-4 of the reference relative to the tensor's largest magnitude
// (max |gpu - ref| / max |ref|); greedy tokens identical. q4: the reference runs on the weights exactly as the GPU
// holds them (dequantizedSource), so the same tokens are required there too.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeTinyCheckpoint } from '../../scripts/tiny-checkpoint/generate.ts';
import { loadModelDir, type LoadedModel } from '../cli/load-model.ts';
import { expectRelClose } from '../compress/image-encoder.testing.ts';
import type { GpuContext } from '../gpu/device.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { generateReference, ReferenceLlavaMini } from '../reference/pipeline.ts';
import { preprocessImage, preprocessVideoFrame } from '../reference/preprocess.ts';
import type { RgbaImage } from '../model/constants.ts';
import { renderChat, type ChatMessage } from '../text/chat-template.ts';
import { tokenizerImageToken } from '../text/image-tokens.ts';
import { mulberry32 } from '../util/seeded-random.ts';
import { dequantizedSource } from '../weights/dequantized-source.ts';
import { LlamaRuntime } from '../llm/llama-runtime.ts';
import { GpuWeights } from '../weights/gpu-weights.ts';
import { Conversation, measureContext } from './conversation.ts';
import { LlavaMiniEngine } from './engine.ts';

const STEPS = 32;

let ctx: GpuContext;
let dir: string;
let model: LoadedModel;
let engine: LlavaMiniEngine;
let reference: ReferenceLlavaMini;

function noiseImage(width: number, height: number, seed: number): RgbaImage {
  const rng = mulberry32(seed);
  return { width, height, data: Uint8ClampedArray.from({ length: width * height * 4 }, () => Math.floor(rng() * 256)) };
}

const images = [noiseImage(70, 50, 1), noiseImage(40, 64, 2), noiseImage(56, 56, 3)];

function pixels(img: RgbaImage): Float32Array {
  const cfg = model.checkpoint.config;
  return preprocessImage(img, { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio });
}

function conversation(): Conversation {
  return new Conversation(engine, model.text);
}

/** Prompt ids of a whole conversation rendered from scratch (the reference demo's way). */
function renderIds(messages: readonly ChatMessage[]): number[] {
  return tokenizerImageToken(renderChat(model.checkpoint.tokenizerConfigJson, messages, { addGenerationPrompt: false }), model.text.tokenizer);
}

beforeAll(async () => {
  ctx = await createNodeGpu();
  dir = await mkdtemp(join(tmpdir(), 'llava-engine-'));
  // 16 patches, C = 2 (4 vision tokens), the real tokenizer and 128256-token vocabulary, tiny widths.
  await makeTinyCheckpoint({ out: dir, seed: 3, imageSize: 56, clipHidden: 128, clipIntermediate: 256, clipHeads: 2, compressorSize: 2 });
  model = await loadModelDir(dir);
  engine = await LlavaMiniEngine.load(ctx.device, model.checkpoint, { precision: 'f32', chunkSize: 16 });
  reference = await ReferenceLlavaMini.load(model.checkpoint);
});
afterAll(async () => {
  engine?.destroy();
  ctx?.device.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('LlavaMiniEngine at f32', () => {
  it('one image: every stage within 1e-4 of the reference and the same 32 greedy tokens', async () => {
    const encoded = await engine.encodeImage(images[0]!, { capture: true });
    const conv = conversation();
    const turn = await conv.ask('What is in this image?', { images: [encoded], maxNewTokens: STEPS, capture: true });
    const ref = await generateReference({ weights: model.checkpoint, model: reference, pixelValues: pixels(images[0]!), promptIds: turn.promptIds, maxNewTokens: STEPS, stopIds: model.text.stopIds });
    const r = ref.intermediates;
    const got = encoded.intermediates!;
    const H = engine.hidden;
    expect(got.pixelValues).toEqual(r.pixelValues); // bit-exact preprocessing
    expectRelClose(got.clip, r.clip, 'clip', [r.clip.length / 128, 128]);
    expectRelClose(got.compressed, r.compressed, 'compressed', [4, H]);
    expectRelClose(got.visionToken, r.visionToken, 'vision_token', [4, H]);
    expectRelClose(turn.captured!.fusedText, r.fusedText, 'fused_text', [turn.promptIds.length, H]);
    expectRelClose(turn.captured!.llmInput, r.llmInput, 'llm_input', [r.llmInputRows, H]);
    expectRelClose(turn.captured!.logits0, ref.logits0, 'logits0', [ref.logits0.length]);
    expect(turn.llmRows).toBe(r.llmInputRows);
    expect(turn.tokens).toEqual(ref.tokens);
    expect(turn.tokens).toHaveLength(STEPS);
    expect(turn.reusedRows).toBe(0);
    conv.destroy();
  });

  it('multi-turn with caching gives the tokens of a from-scratch run of the whole conversation', async () => {
    const conv = conversation();
    const first = await conv.ask('Describe the picture.', { images: [await engine.encodeImage(images[0]!)], maxNewTokens: 12 });
    // The context the next question will take, measured before sending: from the conversation, or from saved history.
    const usage = conv.measure('And the colours?');
    expect(measureContext(engine, model.text, {}, [{ question: 'Describe the picture.', answer: first.text, images: [1] }], 'And the colours?', [])).toEqual(usage);
    const second = await conv.ask('And the colours?', { maxNewTokens: STEPS });
    expect(usage.rows).toBe(second.llmRows);
    // The previous prompt's rows stayed in the LLM cache: only the answer and the new turn were prefilled.
    expect(second.reusedRows).toBe(first.llmRows);
    expect(second.promptIds.slice(0, first.promptIds.length)).toEqual(first.promptIds);
    const ids = renderIds(conv.messages.slice(0, 4));
    expect(second.promptIds).toEqual(ids);
    const scratch = await generateReference({ weights: model.checkpoint, model: reference, pixelValues: pixels(images[0]!), promptIds: ids, maxNewTokens: STEPS, stopIds: model.text.stopIds });
    expect(second.tokens).toEqual(scratch.tokens);

    // Turn 2 again after another conversation took the LLM cache over: the whole prompt is prefilled from row 0.
    const other = conversation();
    await other.ask('Unrelated question, no image.', { maxNewTokens: 2 });
    expect(conv.undoLastTurn()).toEqual([]);
    expect(conv.messages).toHaveLength(3);
    const again = await conv.ask('And the colours?', { maxNewTokens: STEPS });
    expect(again.reusedRows).toBe(0);
    expect(again.tokens).toEqual(second.tokens);

    // After a reload: the saved history with the image re-encoded gives the same answer.
    const resumed = Conversation.resume(engine, model.text, {}, [{ question: 'Describe the picture.', answer: first.text, images: [await engine.encodeImage(images[0]!)] }]);
    expect(resumed.messages).toEqual(conv.messages.slice(0, 3));
    expect((await resumed.ask('And the colours?', { maxNewTokens: STEPS })).tokens).toEqual(second.tokens);
    resumed.destroy();
    other.destroy();
    conv.destroy();
  });

  it('two images in one turn, then a third in the next: text rows are the mean over images, V at each slot', async () => {
    const conv = conversation();
    const a = await engine.encodeImage(images[0]!);
    const b = await engine.encodeImage(images[1]!);
    const turn1 = await conv.ask('Compare these.', { images: [a, b], maxNewTokens: 8, capture: true });
    const ref1 = await generateReference({ weights: model.checkpoint, model: reference, pixelValues: [pixels(images[0]!), pixels(images[1]!)], promptIds: turn1.promptIds, maxNewTokens: 8, stopIds: model.text.stopIds });
    expectRelClose(turn1.captured!.fusedText, ref1.intermediates.fusedText, 'mean fused_text', [turn1.promptIds.length, engine.hidden]);
    expectRelClose(turn1.captured!.llmInput, ref1.intermediates.llmInput, 'llm_input', [ref1.intermediates.llmInputRows, engine.hidden]);
    expect(turn1.tokens).toEqual(ref1.tokens);

    const turn2 = await conv.ask('And this one?', { images: [await engine.encodeImage(images[2]!)], maxNewTokens: 16 });
    expect(turn2.reusedRows).toBe(0); // a new image changes every text row's mean
    const ids = renderIds(conv.messages.slice(0, 4));
    expect(turn2.promptIds).toEqual(ids);
    const ref2 = await generateReference({ weights: model.checkpoint, model: reference, pixelValues: images.map(pixels), promptIds: ids, maxNewTokens: 16, stopIds: model.text.stopIds });
    expect(turn2.tokens).toEqual(ref2.tokens);
    conv.destroy();
  });

  it('video frames: one slot holds V_1 .. V_T, text rows averaged over frames', async () => {
    const conv = conversation();
    const frames = [];
    for (const img of images) frames.push(await engine.encodeImage(img, { mode: 'video' }));
    const turn = await conv.ask('What happens in the video?', { images: [frames], maxNewTokens: 12, capture: true });
    const cfg = model.checkpoint.config;
    const feats = images.map((img) => {
      const e = reference.encodeImage(preprocessVideoFrame(img, { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio }));
      return { G: e.G, Vc: e.compressed };
    });
    const fused = reference.fuseFrames(feats, turn.promptIds);
    expectRelClose(turn.captured!.llmInput, fused.llmInput, 'llm_input', [fused.llmInputRows, engine.hidden]);
    expect(turn.llmRows).toBe(fused.llmInputRows);
    expect(turn.tokens).toEqual(reference.generateFromInput(fused.llmInput, fused.llmInputRows, { maxNewTokens: 12, stopIds: model.text.stopIds }).tokens);
    conv.destroy();
  });

  it('a text-only turn uses the plain embeddings; an over-long one is refused with the limit and what to do', async () => {
    const conv = conversation();
    const long = 'word '.repeat(5000);
    const { rows, limit } = conv.measure(long);
    expect(rows).toBeGreaterThan(limit);
    await expect(conv.ask(long, { maxNewTokens: 2 })).rejects.toThrow(`This message is ${rows} tokens long and the model's context holds ${limit}: shorten it by at least ${rows - limit} tokens`);
    const turn = await conv.ask('Say hello.', { maxNewTokens: 16, capture: true });
    const fused = reference.fuse([], turn.promptIds);
    expectRelClose(turn.captured!.llmInput, fused.llmInput, 'llm_input', [fused.llmInputRows, engine.hidden]);
    expect(turn.tokens).toEqual(reference.generateFromInput(fused.llmInput, fused.llmInputRows, { maxNewTokens: 16, stopIds: model.text.stopIds }).tokens);
    conv.destroy();
  });

  it('streams the visible text and reports memory per component', async () => {
    const conv = conversation();
    let streamed = '';
    const turn = await conv.ask('Hi', { images: [await engine.encodeImage(images[1]!)], maxNewTokens: 8, onText: (d) => (streamed += d) });
    expect(streamed).toBe(turn.text);
    expect(conv.messages.at(-1)).toEqual({ role: 'assistant', content: turn.text });
    const mem = engine.memory();
    for (const part of ['vision', 'projector', 'compressor', 'prefusion', 'llm'] as const) expect(mem.weights[part]).toBeGreaterThan(0);
    expect(mem.total).toBeGreaterThan(mem.weights.llm + mem.llm);
    expect(conv.images[0]![0]!.bytes).toBeGreaterThan(0);
    conv.destroy();
  });

  it('images encoded concurrently (and during an answer) equal images encoded one at a time', async () => {
    const conv = conversation();
    const first = await engine.encodeImage(images[2]!);
    const answering = conv.ask('Hi', { images: [first], maxNewTokens: 3 });
    const [a, b] = await Promise.all([engine.encodeImage(images[0]!, { capture: true }), engine.encodeImage(images[1]!, { capture: true }), answering]);
    const a1 = await engine.encodeImage(images[0]!, { capture: true });
    const b1 = await engine.encodeImage(images[1]!, { capture: true });
    expect(a.intermediates!.visionToken).toEqual(a1.intermediates!.visionToken);
    expect(b.intermediates!.visionToken).toEqual(b1.intermediates!.visionToken);
    expect(await a.state.readFusedText()).toEqual(new Float32Array(0));
    for (const e of [a, b, a1, b1]) e.destroy();
    conv.destroy();
  });

  it('an aborted question leaves the conversation as it was', async () => {
    const conv = conversation();
    const image = await engine.encodeImage(images[0]!);
    const controller = new AbortController();
    controller.abort();
    await expect(conv.ask('Anything?', { images: [image], signal: controller.signal })).rejects.toThrow(/abort/i);
    expect(conv.messages).toHaveLength(1);
    const ok = await conv.ask('Anything?', { images: [image], maxNewTokens: 4 });
    expect(ok.tokens).toHaveLength(4);
    conv.destroy();
  });
});

describe('LlavaMiniEngine with an external LLM (how WebLLM plugs in)', () => {
  it('uploads no LLM layers of its own and answers through the given LlmBackend with the same tokens', async () => {
    // The "external" LLM: a native runtime over its own weights, as WebLLM brings its own on the same device.
    const llmWeights = new GpuWeights(ctx.device, model.checkpoint, 'f32');
    await llmWeights.loadAll(undefined, (n) => n.startsWith('model.layers.') || n === 'model.norm.weight' || n === 'lm_head.weight' || n === 'model.embed_tokens.weight');
    const external = await LlamaRuntime.create(llmWeights, { prefillChunkSize: 16, kv: 'f32' });
    const withExternal = await LlavaMiniEngine.load(ctx.device, model.checkpoint, { precision: 'f32', chunkSize: 16, externalLlm: external });
    try {
      expect(withExternal.llm).toBe(external);
      // Only the token embedding of the LLM part is the engine's (text rows and pre-fusion read it).
      const H = engine.hidden;
      expect(withExternal.memory().weights.llm).toBe(model.checkpoint.config.llm.vocabSize * H * 4);
      expect(engine.memory().weights.llm).toBeGreaterThan(withExternal.memory().weights.llm);
      const question = 'Describe it in detail.';
      const convA = new Conversation(withExternal, model.text);
      const convB = new Conversation(engine, model.text);
      const a = await convA.ask(question, { images: [await withExternal.encodeImage(images[1]!)], maxNewTokens: 12 });
      const b = await convB.ask(question, { images: [await engine.encodeImage(images[1]!)], maxNewTokens: 12 });
      expect(a.tokens).toEqual(b.tokens);
      // A backend that keeps no cached rows (as WebLLM below a whole prefill chunk): the follow-up is prefilled
      // from row 0, with the same answer.
      const keptRows = vi.fn(() => 0);
      Object.assign(external, { keptRows });
      const a2 = await convA.ask('And the colours?', { maxNewTokens: 8 });
      const b2 = await convB.ask('And the colours?', { maxNewTokens: 8 });
      expect(keptRows).toHaveBeenCalledWith(a.llmRows, a2.llmRows);
      expect([a2.reusedRows, b2.reusedRows]).toEqual([0, b.llmRows]);
      expect(a2.tokens).toEqual(b2.tokens);
    } finally {
      withExternal.destroy();
      llmWeights.destroy();
    }
  });
});

describe('LlavaMiniEngine at q4', () => {
  it('the same greedy tokens as the reference on the dequantized weights', async () => {
    const q4 = await LlavaMiniEngine.load(ctx.device, model.checkpoint, { precision: 'q4', chunkSize: 16 });
    try {
      const conv = new Conversation(q4, model.text);
      const turn = await conv.ask('What is in this image?', { images: [await q4.encodeImage(images[0]!)], maxNewTokens: STEPS });
      const source = dequantizedSource(model.checkpoint, 'q4', ctx.device.features.has('shader-f16'));
      const ref = await generateReference({ weights: source, pixelValues: pixels(images[0]!), promptIds: turn.promptIds, maxNewTokens: STEPS, stopIds: model.text.stopIds });
      expect(turn.tokens).toEqual(ref.tokens);
      const mem = q4.memory();
      expect(mem.weights.llm).toBeLessThan(engine.memory().weights.llm / 4);
      conv.destroy();
    } finally {
      q4.destroy();
    }
  });
});
