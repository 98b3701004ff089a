// `npm run convert` end to end as a user runs it (a child Node process): a tiny checkpoint -> the four output
// folders; bad input ends in one clear line on stderr and exit code 1, with nothing written.
import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from './cli.testing.ts';
import { convertDir, expectSameTree, readTree, tinyCheckpoint, tmp } from '../convert/convert.testing.ts';
import { JOURNAL_FILE } from '../convert/shard-writer.ts';

const convert = (args: string[]): ReturnType<typeof cli> => cli(args, 'src/cli/convert.ts');

describe('npm run convert', () => {
  it('is the package.json script', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8'));
    expect(pkg.scripts.convert).toBe('node --import ./scripts/node-register.mjs src/cli/convert.ts');
  });

  it('converts a tiny checkpoint into MLC q4f16_1 / q4f32_1 and the two packs', async () => {
    const ckpt = await tinyCheckpoint({ layers: 1, prefusionLayers: 1 });
    const out = join(await tmp(), 'out');
    const r = await convert([ckpt, out]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/llm-q4f16_1: 15 tensors/);
    expect(r.stderr).toMatch(/\[done\] 100%/);
    expect((await readdir(out)).sort()).toEqual(['llm-q4f16_1', 'llm-q4f32_1', 'mm-f16', 'mm-q4']);
    for (const q of ['q4f16_1', 'q4f32_1']) {
      const files = await readdir(join(out, `llm-${q}`));
      expect(files).toEqual(expect.arrayContaining(['mlc-chat-config.json', 'ndarray-cache.json', 'tokenizer.json', 'tokenizer_config.json', 'params_shard_0.bin']));
      const chat = JSON.parse(await readFile(join(out, `llm-${q}`, 'mlc-chat-config.json'), 'utf8'));
      expect(chat.quantization).toBe(q);
    }
    const manifest = JSON.parse(await readFile(join(out, 'mm-q4', 'manifest.json'), 'utf8'));
    expect(manifest.precision).toBe('q4');
  });

  it('bad input: one clear line, exit 1, nothing written', async () => {
    const noClip = await tinyCheckpoint({ layers: 1, prefusionLayers: 1, visionTower: false });
    const out = join(await tmp(), 'out');
    const r = await convert([noClip, out, '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: .*has no CLIP vision tower.*\(--clip DIR\)\n$/);
    expect(await readdir(out).catch(() => [])).toEqual([]);

    const missing = await convert(['/no/such/checkpoint', out]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('error: checkpoint folder "/no/such/checkpoint" does not exist\n');

    const usage = await convert([noClip]);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/^error: expected <checkpoint dir> <out dir>/);
  });

  it('killed half way (SIGKILL), the same command resumes and ends byte-identical to an uninterrupted run', async () => {
    const ckpt = await tinyCheckpoint({ layers: 2, vocab: 8000, hidden: 128, intermediate: 256 });
    const out = join(await tmp(), 'out');
    const args = ['--import', './scripts/node-register.mjs', 'src/cli/convert.ts', ckpt, out, '--quiet', '--shard-mb', '0.05'];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    let killedWith = 0; // completed shards in the journal when killed
    for (let i = 0; i < 2000 && child.exitCode === null; i++) {
      const j = await readFile(join(out, JOURNAL_FILE), 'utf8').then((t) => JSON.parse(t), () => null);
      const n = j ? Object.keys(j.shards).length : 0;
      if (n >= 3) {
        child.kill('SIGKILL');
        killedWith = n;
        break;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await exited;
    expect(killedWith, 'the conversion finished before it could be killed').toBeGreaterThanOrEqual(3);
    const r = await convert([ckpt, out, '--quiet', '--shard-mb', '0.05']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/resumed: [\d.]+ MB were already done/);
    const fresh = join(await tmp(), 'fresh');
    await convertDir(ckpt, fresh, { shardCapBytes: Math.round(0.05 * (1 << 20)) });
    const [a, b] = [await readTree(out), await readTree(fresh)];
    expectSameTree(a, b);
  });
});
