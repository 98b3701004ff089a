// `npm run cli -- generate` as a user runs it, on the GPU engine (Dawn; SwiftShader without a GPU), with the
// generated tiny checkpoint (real Llama-3 tokenizer and vocabulary, 576 vision tokens, tiny widths):
// - f32: every --dump tensor within 1e-4 of the CPU reference (max |gpu - ref| / max |ref|), the same 32 greedy
//   tokens, and --check agrees;
// - q4: the same greedy tokens as the CPU reference on the weights as the GPU holds them;
// - a GIF video through --video --check;
// - bad input ends with one clear line on stderr and a non-zero exit.
import { copyFile, mkdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GifWriter } from 'omggif';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, gradientPng } from './cli.testing.ts';
import { makeTinyCheckpoint } from '../../scripts/tiny-checkpoint/generate.ts';
import { MemoryByteSource } from '../checkpoint/byte-source.ts';
import { readSafetensorsHeader, readTensorBytes, readTensorF32 } from '../checkpoint/safetensors.ts';
import { decodeImageFile } from '../node/image-file.ts';
import { generateReference } from '../reference/pipeline.ts';
import { preprocessImage } from '../reference/preprocess.ts';
import { dequantizedSource } from '../weights/dequantized-source.ts';
import { relativeError } from './check.ts';
import { loadModelDir } from './load-model.ts';

/** 2 s at 2 fps (4 frames, each one palette colour): two frames are sampled. */
function colourGif(): Uint8Array {
  const buf = new Uint8Array(64 * 48 * 8 + 4096);
  const gw = new GifWriter(buf, 64, 48, { palette: [0xff0000, 0x00ff00, 0x0000ff, 0xffffff], loop: 0 });
  for (let k = 0; k < 4; k++) gw.addFrame(0, 0, 64, 48, new Array<number>(64 * 48).fill(k), { delay: 50 });
  return buf.slice(0, gw.end());
}

/** The error lines on stderr (Node's own warnings are not ours). */
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.trim() && !/ExperimentalWarning|--trace-warnings/.test(l));

describe('cli generate', () => {
  let dir: string;
  let model: string;
  let image: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llava-generate-'));
    model = join(dir, 'model');
    await makeTinyCheckpoint({ out: model, seed: 7 });
    image = join(dir, 'photo.png');
    await writeFile(image, gradientPng(300, 220));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('f32: every dumped tensor within 1e-4 of the CPU reference and the same 32 greedy tokens', async () => {
    const dump = join(dir, 'dump.safetensors');
    const args = ['generate', '--model', model, '--image', image, '--prompt', 'What is in this image?', '--precision', 'f32', '--max-new-tokens', '32', '--greedy', '--json', '--dump', dump];
    const r = await cli(args);
    expect(errorLines(r.stderr)).toEqual([]);
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
    expect(errorLines(r.stderr)).toEqual([]);
    const out = JSON.parse(r.stdout);
    const loaded = await loadModelDir(model);
    const cfg = loaded.checkpoint.config;
    const pixelValues = preprocessImage(await decodeImageFile(image), { size: cfg.vision.imageSize, aspectRatio: cfg.imageAspectRatio });
    // SwiftShader has no shader-f16: the q4 policy's f16 tensors are stored f32 there (the policy's fallback).
    const weights = dequantizedSource(loaded.checkpoint, 'q4', false);
    const ref = await generateReference({ weights, pixelValues, promptIds: out.promptIds, maxNewTokens: 32, stopIds: loaded.text.stopIds });
    expect(out.tokens).toEqual(ref.tokens);
  });

  it('--video (an animated GIF) with --check: per-tensor errors and OK', async () => {
    const gif = join(dir, 'clip.gif');
    await writeFile(gif, colourGif());
    const r = await cli(['generate', '--model', model, '--video', gif, '--prompt', 'What happens?', '--precision', 'f32', '--max-new-tokens', '6', '--check']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/check: CPU reference on f32/);
    for (const name of ['pixel_values', 'clip', 'compressed', 'vision_token', 'fused_text', 'llm_input', 'logits0']) expect(r.stderr).toMatch(new RegExp(`${name} .* ok`));
    expect(r.stderr).toMatch(/tokens: all 6 equal/);
    expect(r.stderr).toMatch(/check: OK/);
  });

  describe('bad input: one clear line, non-zero exit', () => {
    const expectOneLine = (r: { code: number; stderr: string }, pattern: RegExp) => {
      expect(r.code).not.toBe(0);
      const lines = errorLines(r.stderr);
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
