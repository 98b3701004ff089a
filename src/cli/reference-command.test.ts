// The CPU reference end to end through the CLI, as a user runs it: image + question -> greedy tokens on a
// generated tiny checkpoint, deterministically, and bad input ends in one clear line with a non-zero exit.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    expect(r.stderr).toMatch(/notes\.png is not a PNG or JPEG image/);
  });

  it('names the missing flag', async () => {
    const r = await cli(['reference', '--image', image, '--prompt', 'hi']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('error: --model <checkpoint dir> is required');
  });
});
