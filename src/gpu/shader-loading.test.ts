// Shaders load identically under Vite/Vitest (`?raw` natively) and in plain Node
// (`node --import ./scripts/node-register.mjs`, which registers tsx and scripts/raw-loader.mjs).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import matmulWgsl from '../../shaders/matmul.wgsl?raw';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url);
const fileText = readFileSync(new URL('shaders/matmul.wgsl', root), 'utf8');

describe('?raw shader imports', () => {
  it('Vitest gives the exact file text', () => {
    expect(matmulWgsl).toBe(fileText);
  });

  it('plain Node with scripts/node-register.mjs gives the same text, and the kernel runs there', async () => {
    const { stdout } = await run(process.execPath, ['--import', './scripts/node-register.mjs', 'scripts/check-raw-loader.ts', '--gpu'], {
      cwd: root,
      env: process.env, // includes VK_ICD_FILENAMES from the setup file
      timeout: 120_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(out.matmulLength).toBe(fileText.length);
    expect(out.firstLine).toBe(fileText.split('\n')[0]);
    expect(out.linearOk).toBe(true);
  });
});
