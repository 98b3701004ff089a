// Shared by the CLI tests: run `src/cli/main.ts` as a user does (a child Node process) and make test images.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { PNG } from 'pngjs';

const run = promisify(execFile);
const REGISTER = ['--import', './scripts/node-register.mjs'];

/** Runs a CLI entry (default `npm run cli`'s src/cli/main.ts; `npm run convert`'s is src/cli/convert.ts). */
export async function cli(args: string[], entry = 'src/cli/main.ts', env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...REGISTER, entry, ...args], { cwd: process.cwd(), maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** Whether the CLI's GPU device has shader-f16 (`gpu --json`: same adapter and environment as every CLI run here). */
export async function cliDeviceHasF16(): Promise<boolean> {
  const r = await cli(['gpu', '--json']);
  if (r.code !== 0) throw new Error(`cli gpu failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { deviceFeatures: string[] }).deviceFeatures.includes('shader-f16');
}

/**
 * What our code wrote to stderr: without Node's own warnings and without the adapter notices Dawn prints for some
 * drivers (lavapipe: "maxDynamic…BuffersPerPipelineLayout artificially reduced from 256 to 16 …").
 */
export function ourStderrLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.trim() && !/ExperimentalWarning|--trace-warnings|^Warning: \w+ artificially reduced from \d+ to \d+/.test(l));
}

/** A PNG with a colour gradient (deterministic, no flat areas). */
export function gradientPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const [x, y] = [i % width, Math.floor(i / width)];
    png.data.set([(x * 7) & 255, (y * 3) & 255, ((x + y) * 5) & 255, 255], i * 4);
  }
  return PNG.sync.write(png);
}
