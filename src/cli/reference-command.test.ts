// The CPU reference end to end through the CLI, as a user runs it: image + question -> greedy tokens on a
// generated tiny checkpoint, deterministically, and bad input ends in one clear line with a non-zero exit.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encode as encodeBmp } from 'bmp-ts';
import { GifWriter } from 'omggif';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, gradientPng } from './cli.testing.ts';
import { makeTinyCheckpoint } from '../../scripts/tiny-checkpoint/generate.ts';

describe('cli reference', () => {
  let dir: string;
  let model: string;
  let image: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'llava-cli-'));
    model = join(dir, 'model');
    // The real vocabulary and 576 vision tokens, tiny widths.
    await makeTinyCheckpoint({ out: model, seed: 7 });
    image = join(dir, 'photo.png');
    await writeFile(image, gradientPng(300, 220));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('answers an image question with the same greedy tokens every run', async () => {
    const args = ['reference', '--model', model, '--image', image, '--prompt', 'What is in this image?', '--max-new-tokens', '12', '--json'];
    const first = await cli(args);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const a = JSON.parse(first.stdout);
    expect(a.tokens).toHaveLength(12);
    expect(a.stopped).toBe('length');
    expect(a.promptIds.slice(0, 2)).toEqual([128000, 128000]);
    expect(a.promptIds.filter((id: number) => id === -200)).toHaveLength(1);
    // Random weights: the answer must not collapse to one repeated token.
    expect(new Set(a.tokens).size).toBeGreaterThan(3);
    const b = JSON.parse((await cli(args)).stdout);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.text).toBe(a.text);
  });

  it('rejects a text file named .png with one clear line', async () => {
    const fake = join(dir, 'notes.png');
    await writeFile(fake, 'just some text, not pixels\n');
    const r = await cli(['reference', '--model', model, '--image', fake, '--prompt', 'hi']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/notes\.png is not a PNG, JPEG, WebP, GIF or BMP image/);
  });

  it('reads WebP, GIF (first frame) and BMP as the browser does: the tokens of the same pixels as a PNG', async () => {
    const [w, h] = [40, 30];
    // 8 colours (a GIF palette holds them exactly), in a pattern with no symmetry.
    const palette = [0x000000, 0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff, 0xff00ff, 0xffffff];
    const index = (x: number, y: number) => (x * 3 + y * 5 + ((x * y) >> 3)) & 7;
    const rgb = (c: number) => [(c >> 16) & 255, (c >> 8) & 255, c & 255];
    const png = new PNG({ width: w, height: h });
    const abgr = Buffer.alloc(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const [r, g, b] = rgb(palette[index(x, y)]!);
        png.data.set([r, g, b, 255], (y * w + x) * 4);
        abgr.set([0, b, g, r], (y * w + x) * 4);
      }
    const gifBuf = new Uint8Array(16384);
    const gif = new GifWriter(gifBuf, w, h, { palette, loop: 0 });
    gif.addFrame(0, 0, w, h, Array.from({ length: w * h }, (_, i) => index(i % w, Math.floor(i / w))), { delay: 10 });
    gif.addFrame(0, 0, w, h, Array.from({ length: w * h }, () => 0), { delay: 10 }); // a black second frame: unused
    const files: [string, Uint8Array][] = [
      ['pattern.png', PNG.sync.write(png)],
      ['pattern.gif', gifBuf.subarray(0, gif.end())],
      ['pattern.bmp', encodeBmp({ data: abgr, width: w, height: h, bitPP: 24 }).data],
      // Chromium's lossless WebP of a 16x8 red | blue canvas (src/node/testdata), against the same pixels as a PNG.
      ['red-blue.webp', await readFile(new URL('../node/testdata/red-blue-lossless.webp', import.meta.url))],
      ['red-blue.png', (() => {
        const p = new PNG({ width: 16, height: 8 });
        for (let i = 0; i < 128; i++) p.data.set(i % 16 < 8 ? [255, 0, 0, 255] : [0, 0, 255, 255], i * 4);
        return PNG.sync.write(p);
      })()],
    ];
    const tokens: Record<string, number[]> = {};
    for (const [name, bytes] of files) {
      await writeFile(join(dir, name), bytes);
      const r = await cli(['reference', '--model', model, '--image', join(dir, name), '--prompt', 'What is this?', '--max-new-tokens', '4', '--json']);
      expect(r.stderr).toBe('');
      tokens[name] = JSON.parse(r.stdout).tokens;
    }
    expect(tokens['pattern.gif']).toEqual(tokens['pattern.png']);
    expect(tokens['pattern.bmp']).toEqual(tokens['pattern.png']);
    expect(tokens['red-blue.webp']).toEqual(tokens['red-blue.png']);
    expect(tokens['red-blue.png']).not.toEqual(tokens['pattern.png']); // the image does reach the answer
  });

  it('names the missing flag', async () => {
    const r = await cli(['reference', '--image', image, '--prompt', 'hi']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('error: --model <checkpoint dir> is required');
  });
});
