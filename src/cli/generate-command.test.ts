// `npm run cli -- generate` as a user runs it, on the GPU engine (Dawn; SwiftShader without a GPU), with the
// generated tiny checkpoint (real Llama-3 tokenizer and vocabulary, 576 vision tokens, tiny widths):
// - f32: every --dump tensor within 1e-4 of the CPU reference (max |gpu - ref| / max |ref|), the same 32 greedy
//   tokens, and --check agrees;
// - q4: the same greedy tokens as the CPU reference on the weights as the GPU holds them;
// - f32, f16 and q4 with the kernels' GPU shapes forced (LLAVA_KERNEL_SHAPES=gpu): --check passes (the path a GPU
//   runs, with f16 tile arithmetic on lavapipe);
// - a 64x48 GIF video through --video --check --dump (compressor 2): pixel_values are torch's nearest resize of
//   the first sampled frame, the index rule stated here independently;
// - two --prompt (a follow-up turn): --dump writes the second turn's tensors (the whole conversation's prompt ids),
//   each within 1e-4 of the CPU reference run from scratch, and --check passes;
// - bad input ends with one clear line on stderr and a non-zero exit.
import { copyFile, mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GifWriter } from 'omggif';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliDeviceHasF16, gradientPng, ourStderrLines } from './cli.testing.ts';
import { makeTinyCheckpoint } from '../../scripts/tiny-checkpoint/generate.ts';
import { MemoryByteSource } from '../checkpoint/byte-source.ts';
import { readSafetensorsHeader, readTensorBytes, readTensorF32 } from '../checkpoint/safetensors.ts';
import { decodeImageFile } from '../node/image-file.ts';
import { generateReference } from '../reference/pipeline.ts';
import { normalizePixel, preprocessImage } from '../reference/preprocess.ts';
import { DEFAULT_SYSTEM_PROMPT, imageTurnContent, renderChat, stripImagePlaceholders } from '../text/chat-template.ts';
import { tokenizerImageToken } from '../text/image-tokens.ts';
import { dequantizedSource } from '../weights/dequantized-source.ts';
import { relativeError } from '../gpu/compare.ts';
import { loadModelDir } from './load-model.ts';

/** Palette entry i of the test GIF: (i, 255 - i, 3i mod 256). */
const paletteRgb = (i: number): [number, number, number] => [i, 255 - i, (i * 3) & 255];

/** Palette index of pixel (x, y) of frame k of the test GIF: a gradient that moves with k. */
const gifIndex = (x: number, y: number, k: number) => (x * 3 + y + k * 40) & 255;

/** 2 s at 2 fps: 4 frames of 64x48, each a gradient shifted by its index (so the resize's choice of pixels shows). */
function gradientGif(): Uint8Array {
  const [w, h] = [64, 48];
  const buf = new Uint8Array(w * h * 8 + 8192);
  const gw = new GifWriter(buf, w, h, { palette: Array.from({ length: 256 }, (_, i) => paletteRgb(i).reduce((v, c) => (v << 8) | c, 0)), loop: 0 });
  for (let k = 0; k < 4; k++) gw.addFrame(0, 0, w, h, Array.from({ length: w * h }, (_, p) => gifIndex(p % w, Math.floor(p / w), k)), { delay: 50 });
  return buf.slice(0, gw.end());
}

/**
 * pixel_values [3, 336, 336] of frame k resized as torch.nn.functional.interpolate(size=(336, 336)) does: output
 * (x, y) copies source pixel (floor(x * 64 / 336), floor(y * 48 / 336)); `centres` samples Pillow's way instead,
 * at floor((x + 0.5) * 64 / 336), to show that this GIF tells the two apart.
 */
function gifFramePixelValues(k: number, rule: 'torch' | 'centres'): Float32Array {
  const S = 336;
  const src = (o: number, n: number) => Math.min(Math.floor(((rule === 'torch' ? o : o + 0.5) * n) / S), n - 1);
  const out = new Float32Array(3 * S * S);
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const rgb = paletteRgb(gifIndex(src(x, 64), src(y, 48), k));
      for (const c of [0, 1, 2] as const) out[c * S * S + y * S + x] = normalizePixel(rgb[c], c);
    }
  }
  return out;
}

describe('cli generate', () => {
  let dir: string;
  let model: string;
  let model2: string;
  let image: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llava-generate-'));
    model = join(dir, 'model');
    await makeTinyCheckpoint({ out: model, seed: 7 });
    model2 = join(dir, 'model-c2');
    await makeTinyCheckpoint({ out: model2, seed: 7, compressorSize: 2 });
    image = join(dir, 'photo.png');
    await writeFile(image, gradientPng(300, 220));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('f32: every dumped tensor within 1e-4 of the CPU reference and the same 32 greedy tokens', async () => {
    const dump = join(dir, 'dump.safetensors');
    const args = ['generate', '--model', model, '--image', image, '--prompt', 'What is in this image?', '--precision', 'f32', '--max-new-tokens', '32', '--greedy', '--json', '--dump', dump];
    const r = await cli(args);
    expect(ourStderrLines(r.stderr)).toEqual([]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.tokens).toHaveLength(32);
    for (const k of ['loadMs', 'imageMs', 'prefusionVisionMs', 'prefusionTextMs', 'prefillMs', 'firstTokenMs', 'decodeMs', 'tokensPerSecond']) expect(out.timings[k]).toBeGreaterThan(0);
    expect(out.memory.weights.llm).toBeGreaterThan(0);

    const file = await readSafetensorsHeader(new MemoryByteSource(new Uint8Array(await readFile(dump)), 'dump'));
    const promptIds = Array.from(new Int32Array((await readTensorBytes(file, 'prompt_ids')).buffer));
    expect(promptIds.filter((id) => id === -200)).toHaveLength(1);
    expect(out.promptIds).toEqual(promptIds);

    const loaded = await loadModelDir(model);
    const cfg = loaded.checkpoint.config;
    const pixelValues = preprocessImage(await decodeImageFile(image), { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio });
    const ref = await generateReference({ weights: loaded.checkpoint, pixelValues, promptIds, maxNewTokens: 32, stopIds: loaded.text.stopIds });
    const expected: Record<string, Float32Array> = {
      pixel_values: ref.intermediates.pixelValues,
      clip: ref.intermediates.clip,
      compressed: ref.intermediates.compressed,
      vision_token: ref.intermediates.visionToken,
      fused_text: ref.intermediates.fusedText,
      llm_input: ref.intermediates.llmInput,
      logits0: ref.logits0,
    };
    const H = cfg.llm.hiddenSize;
    const shapes: Record<string, number[]> = {
      pixel_values: [3, 336, 336],
      clip: [576, cfg.vision.hiddenSize],
      compressed: [1, H],
      vision_token: [1, H],
      fused_text: [promptIds.length, H],
      llm_input: [ref.intermediates.llmInputRows, H],
      logits0: [cfg.llm.vocabSize],
    };
    for (const [name, want] of Object.entries(expected)) {
      expect(file.tensors.get(name)?.shape, name).toEqual(shapes[name]);
      const e = relativeError(await readTensorF32(file, name), want);
      expect(e.rel, `${name}: max err ${e.maxErr} of max|ref| ${e.maxRef}`).toBeLessThanOrEqual(1e-4);
    }
    expect(out.tokens).toEqual(ref.tokens);
  });

  it('q4: the same greedy tokens as the CPU reference on the dequantized weights', async () => {
    const r = await cli(['generate', '--model', model, '--image', image, '--prompt', 'Describe it.', '--precision', 'q4', '--max-new-tokens', '32', '--json']);
    expect(ourStderrLines(r.stderr)).toEqual([]);
    const out = JSON.parse(r.stdout);
    const loaded = await loadModelDir(model);
    const cfg = loaded.checkpoint.config;
    const pixelValues = preprocessImage(await decodeImageFile(image), { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio });
    // The reference runs on the weights as the CLI's device holds them: the q4 policy's f16 tensors and int4 scales
    // are f16 with shader-f16, f32 without (the child process gets the same adapter and LLAVA_DISABLE_FEATURES).
    const weights = dequantizedSource(loaded.checkpoint, 'q4', await cliDeviceHasF16());
    const ref = await generateReference({ weights, pixelValues, promptIds: out.promptIds, maxNewTokens: 32, stopIds: loaded.text.stopIds });
    expect(out.tokens).toEqual(ref.tokens);
  });

  for (const precision of ['f32', 'f16', 'q4'] as const) {
    it(`${precision} with the kernels' GPU shapes (LLAVA_KERNEL_SHAPES=gpu: tiled linears, in f16 for f16-stored weights where shader-f16, 64-lane matvec, tiled / splitk attention): --check passes`, async (t) => {
      if (precision === 'f16' && !(await cliDeviceHasF16())) return t.skip();
      const r = await cli(['generate', '--model', model, '--image', image, '--prompt', 'Describe it.', '--precision', precision, '--max-new-tokens', '8', '--check'], undefined, { LLAVA_KERNEL_SHAPES: 'gpu' });
      expect(r.code, r.stderr).toBe(0);
      const rows = r.stderr.split('\n').filter((l) => /^\s+\w+\s+\[[\d, ]+\]\s+max err/.test(l));
      expect(rows.length, r.stderr).toBeGreaterThanOrEqual(6);
      for (const row of rows) expect(row, r.stderr).toMatch(/ ok$/);
      expect(r.stderr).toMatch(/^check: OK$/m);
    });
  }

  it("--video (a 64x48 GIF, compressor 2) with --check and --dump: pixel_values are torch's nearest resize of the first sampled frame", async () => {
    const gif = join(dir, 'clip.gif');
    await writeFile(gif, gradientGif());
    const dump = join(dir, 'video.safetensors');
    const r = await cli(['generate', '--model', model2, '--video', gif, '--prompt', 'What happens?', '--precision', 'f32', '--max-new-tokens', '6', '--check', '--dump', dump]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/check: CPU reference on f32/);
    for (const name of ['pixel_values', 'clip', 'compressed', 'vision_token', 'fused_text', 'llm_input', 'logits0']) expect(r.stderr).toMatch(new RegExp(`${name} .* ok`));
    expect(r.stderr).toMatch(/compressed +\[4, /); // C = 2: four vision tokens a frame
    expect(r.stderr).toMatch(/tokens: all 6 equal/);
    expect(r.stderr).toMatch(/check: OK/);

    // 4 frames at 2 fps: num_frm = 4 // 2 = 2, s = 3 / 2, the first sampled frame is (round(0) + round(1.5)) // 2 = 1.
    const file = await readSafetensorsHeader(new MemoryByteSource(new Uint8Array(await readFile(dump)), 'dump'));
    const pixelValues = await readTensorF32(file, 'pixel_values');
    const expected = gifFramePixelValues(1, 'torch');
    expect(Buffer.from(pixelValues.buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    expect(Buffer.from(expected.buffer).equals(Buffer.from(gifFramePixelValues(1, 'centres').buffer))).toBe(false);
  });

  describe('a follow-up turn (two --prompt)', () => {
    const questions = ['What is in this image?', 'And what colours does it have?'];
    // One CLI run serves both tests (--check logs to stderr, --json prints to stdout).
    let run: ReturnType<typeof cli> | undefined;
    const dumpFile = () => join(dir, 'turn2.safetensors');
    const followUp = () =>
      (run ??= cli(['generate', '--model', model, '--image', image, '--prompt', questions[0]!, '--prompt', questions[1]!, '--precision', 'f32', '--max-new-tokens', '8', '--json', '--dump', dumpFile(), '--check']));

    it("--dump writes the second turn's tensors: the whole conversation, within 1e-4 of the reference from scratch", async () => {
      const dump = dumpFile();
      const r = await followUp();
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.turns).toHaveLength(2);

      const loaded = await loadModelDir(model);
      const cfg = loaded.checkpoint.config;
      const file = await readSafetensorsHeader(new MemoryByteSource(new Uint8Array(await readFile(dump)), 'dump'));
      const promptIds = Array.from(new Int32Array((await readTensorBytes(file, 'prompt_ids')).buffer));
      // The conversation re-rendered with the first answer as text, then the follow-up question.
      const messages = [
        { role: 'system' as const, content: DEFAULT_SYSTEM_PROMPT },
        { role: 'user' as const, content: imageTurnContent(questions[0]!, 1) },
        { role: 'assistant' as const, content: stripImagePlaceholders(out.turns[0].text) },
        { role: 'user' as const, content: imageTurnContent(questions[1]!, 0) },
      ];
      expect(promptIds).toEqual(tokenizerImageToken(renderChat(loaded.checkpoint.tokenizerConfigJson, messages, { addGenerationPrompt: false }), loaded.text.tokenizer));
      expect(promptIds).toEqual(out.turns[1].promptIds);
      expect(promptIds.length).toBeGreaterThan(out.turns[0].promptIds.length);

      const pixelValues = preprocessImage(await decodeImageFile(image), { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio });
      const ref = await generateReference({ weights: loaded.checkpoint, pixelValues, promptIds, maxNewTokens: 8, stopIds: loaded.text.stopIds });
      const H = cfg.llm.hiddenSize;
      const expected: Record<string, [Float32Array, number[]]> = {
        pixel_values: [ref.intermediates.pixelValues, [3, 336, 336]],
        fused_text: [ref.intermediates.fusedText, [promptIds.length, H]],
        llm_input: [ref.intermediates.llmInput, [ref.intermediates.llmInputRows, H]],
        logits0: [ref.logits0, [cfg.llm.vocabSize]],
      };
      for (const [name, [want, shape]] of Object.entries(expected)) {
        expect(file.tensors.get(name)?.shape, name).toEqual(shape);
        const e = relativeError(await readTensorF32(file, name), want);
        expect(e.rel, `${name}: max err ${e.maxErr} of max|ref| ${e.maxRef}`).toBeLessThanOrEqual(1e-4);
      }
      expect(out.tokens).toEqual(out.turns[1].tokens);
      expect(out.tokens).toEqual(ref.tokens);
    });

    it('--check compares the second turn with the reference from scratch and passes', async () => {
      const r = await followUp();
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      const L = out.turns[1].promptIds.length;
      expect(L).toBeGreaterThan(out.turns[0].promptIds.length);
      // fused_text covers the whole conversation (the second turn's L rows), not the first turn's
      expect(r.stderr).toMatch(new RegExp(`fused_text +\\[${L}, \\d+\\] .* ok`));
      for (const name of ['pixel_values', 'clip', 'compressed', 'vision_token', 'llm_input', 'logits0']) expect(r.stderr).toMatch(new RegExp(`${name} .* ok`));
      expect(r.stderr).toMatch(new RegExp(`tokens: all ${out.tokens.length} equal`));
      expect(r.stderr).toMatch(/check: OK/);
    });
  });

  describe('bad input: one clear line, non-zero exit', () => {
    const expectOneLine = (r: { code: number; stderr: string }, pattern: RegExp) => {
      expect(r.code).not.toBe(0);
      const lines = ourStderrLines(r.stderr);
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(pattern);
    };

    it('not an image', async () => {
      const fake = join(dir, 'notes.jpg');
      await writeFile(fake, 'plain text\n');
      expectOneLine(await cli(['generate', '--model', model, '--image', fake, '--prompt', 'hi']), /^error: .*notes\.jpg is not a PNG, JPEG, WebP, GIF or BMP image/);
    });

    it('a truncated shard', async () => {
      const broken = join(dir, 'truncated');
      await mkdir(broken, { recursive: true });
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors']) await copyFile(join(model, f), join(broken, f));
      await truncate(join(broken, 'model.safetensors'), 100_000);
      expectOneLine(await cli(['generate', '--model', broken, '--image', image, '--prompt', 'hi']), /^error: .*model\.safetensors.*(truncated|past the end|bytes)/i);
    });

    it('a config whose shapes disagree with the tensors', async () => {
      const mismatched = join(dir, 'mismatched');
      await mkdir(mismatched, { recursive: true });
      for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors']) await copyFile(join(model, f), join(mismatched, f));
      const config = JSON.parse(await readFile(join(model, 'config.json'), 'utf8'));
      config.intermediate_size *= 2;
      await writeFile(join(mismatched, 'config.json'), JSON.stringify(config));
      expectOneLine(await cli(['generate', '--model', mismatched, '--image', image, '--prompt', 'hi']), /^error: .*shape/i);
    });

    it('a video Node cannot decode, an unknown precision, a missing prompt', async () => {
      const mp4 = join(dir, 'movie.mp4');
      await writeFile(mp4, Uint8Array.from([0, 0, 0, 24, ...Buffer.from('ftypisom'), 0, 0, 2, 0, ...Buffer.from('isomiso2')]));
      expectOneLine(await cli(['generate', '--model', model, '--video', mp4, '--prompt', 'hi']), /^error: movie\.mp4: decoding mp4 video needs a browser/);
      expectOneLine(await cli(['generate', '--model', model, '--image', image, '--prompt', 'hi', '--precision', 'int8']), /^error: .*precision/i);
      expectOneLine(await cli(['generate', '--model', model, '--image', image]), /^error: --prompt <text> is required$/);
    });
  });
});
