// The GPU check's steps (scripts/device-check.sh --run / --local): print the adapter, make the tiny checkpoint,
// run `generate --check` on it at f16 and q4, the kernel, decode and attention benches at real shapes, and bench:e2e
// on a synthetic model at q4 and f16; then write results.json and results.md into OUT. Each step is a child process with a time limit, so
// one failing or slow step is reported and the rest still run.
//   node run-checks.mjs --out OUT [--app DIR] [--scale full|local]
// --app DIR: the bundles' folder (device-check.sh --run); without it the repository's TypeScript runs through tsx.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import { formatAdapterSummary, type AdapterSummary } from '../../src/gpu/device.ts';
import { createNodeGpu } from '../../src/node/gpu.ts';
import { mulberry32 } from '../../src/util/seeded-random.ts';
import { formatResultsMarkdown, type CheckResults, type StepResult } from './results.ts';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { out: { type: 'string' }, app: { type: 'string' }, scale: { type: 'string', default: 'full' } },
  strict: true,
});
if (!values.out) throw new Error('--out DIR is required');
if (values.scale !== 'full' && values.scale !== 'local') throw new Error(`--scale must be full or local, got "${values.scale}"`);
const out = resolve(values.out);
const local = values.scale === 'local';
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The bundle (with --app) or the repository source of each tool. */
const TOOLS = {
  cli: 'src/cli/main.ts',
  'bench-e2e': 'bench/e2e.ts',
  'bench-kernels': 'bench/kernels.ts',
  'bench-decode': 'bench/decode.ts',
  'bench-attention': 'bench/attention.ts',
  'make-tiny-checkpoint': 'scripts/make-tiny-checkpoint.ts',
} as const;

function toolArgs(tool: keyof typeof TOOLS): string[] {
  if (values.app) return [join(resolve(values.app), `${tool}.mjs`)];
  return ['--import', join(repo, 'scripts/node-register.mjs'), join(repo, TOOLS[tool])];
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
  timedOut: boolean;
}

function run(tool: keyof typeof TOOLS, args: string[], limitS: number): Promise<Run> {
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [...toolArgs(tool), ...args], { cwd: values.app ?? repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      process.stderr.write(d);
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, limitS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, seconds: (performance.now() - t0) / 1000, timedOut });
    });
  });
}

/** The check's time budget: 8 minutes on a GPU; a CPU adapter (--scale local) gets an hour and step limits x5. */
const BUDGET_S = local ? 3600 : 480;
const SLOW = local ? 5 : 1;

// Dawn warns on every device it makes that it lowered a dynamic-offset limit: nothing a step did, so not its detail.
const DAWN_LIMIT_WARNING = /^Warning: max\w+ artificially reduced/;
const lastLines = (s: string, n = 12) =>
  s
    .trim()
    .split('\n')
    .filter((line) => line.trim() !== '' && !DAWN_LIMIT_WARNING.test(line))
    .slice(-n)
    .join('\n');

const tStart = performance.now();
const steps: StepResult[] = [];
async function step(name: string, tool: keyof typeof TOOLS, args: string[], capS: number, skip?: string): Promise<Run | null> {
  if (skip) {
    steps.push({ name, status: 'skipped', seconds: 0, detail: skip });
    console.error(`[check] ${name}: skipped (${skip})`);
    return null;
  }
  // The whole check must end within its budget: a step gets at most what is left of it.
  const left = BUDGET_S - (performance.now() - tStart) / 1000;
  if (left < 10) {
    steps.push({ name, status: 'failed', seconds: 0, detail: `not run: the ${BUDGET_S} s budget is spent` });
    return null;
  }
  const limitS = Math.min(capS * SLOW, left - 5);
  console.error(`[check] ${name} (at most ${limitS.toFixed(0)} s) ...`);
  const r = await run(tool, args, limitS);
  const ok = r.code === 0 && !r.timedOut;
  const detail = r.timedOut ? `stopped after ${limitS} s` : ok ? lastLines(r.stdout + '\n' + r.stderr, 4) : lastLines(r.stderr || r.stdout);
  steps.push({ name, status: ok ? 'passed' : 'failed', seconds: r.seconds, detail });
  console.error(`[check] ${name}: ${ok ? 'passed' : 'FAILED'} in ${r.seconds.toFixed(1)} s`);
  return ok ? r : null;
}

async function adapter(): Promise<AdapterSummary> {
  const ctx = await createNodeGpu();
  console.log(formatAdapterSummary(ctx.summary));
  ctx.device.destroy();
  return ctx.summary;
}

const summary = await adapter();
const work = await mkdtemp(join(tmpdir(), 'llava-check-'));
try {
  const noF16 = summary.shaderF16 ? undefined : 'the adapter has no shader-f16';
  const tiny = join(work, 'tiny');
  const image = join(work, 'photo.png');
  const rng = mulberry32(3);
  const png = new PNG({ width: 320, height: 240 });
  for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : Math.floor(rng() * 256);
  await writeFile(image, PNG.sync.write(png));

  const made = await step('tiny checkpoint', 'make-tiny-checkpoint', ['--out', tiny], 120);
  for (const precision of ['f16', 'q4'] as const) {
    const skip = !made ? 'no tiny checkpoint' : precision === 'f16' ? noF16 : undefined;
    await step(`generate --check ${precision} (tiny checkpoint)`, 'cli', ['generate', '--model', tiny, '--image', image, '--prompt', 'What is in the picture?', '--precision', precision, '--max-new-tokens', '8', '--check'], 180, skip);
  }
  // Real shapes; on a local software adapter only the CLIP shapes (the 8B ones take minutes there).
  const kernels = await step('kernel bench (real shapes)', 'bench-kernels', local ? ['--only', 'clip', '--reps', '1'] : [], 150);
  // The decode step's host recording (re-recorded vs the plan), the gated MLP matvec and the residual epilogue;
  // every attention path.
  const decode = await step('decode bench (plan, gated MLP, residual epilogue)', 'bench-decode', local ? ['--model', 'synthetic:llava-mini-tiny', '--context', '256', '--reps', '5'] : [], 150);
  const attention = await step('attention bench (every path)', 'bench-attention', local ? ['--only', 'compressor', '--reps', '1'] : [], 120);

  const e2e: CheckResults['e2e'] = [];
  const model = local ? ['--model', 'synthetic:llava-mini-tiny', '--decode-tokens', '16'] : ['--model', 'synthetic:llava-mini-8b'];
  for (const precision of ['q4', 'f16'] as const) {
    const r = await step(`bench:e2e ${model[1]} ${precision}`, 'bench-e2e', [...model, '--precision', precision, '--json'], 150, precision === 'f16' ? noF16 : undefined);
    if (r) e2e.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!));
  }
  const results: CheckResults = {
    date: new Date().toISOString(),
    commit: process.env.LLAVA_BUNDLE_COMMIT ?? 'working tree',
    scale: local ? 'local' : 'full',
    adapter: summary,
    steps,
    kernels: kernels ? kernels.stdout : null,
    decode: decode ? decode.stdout : null,
    attention: attention ? attention.stdout : null,
    e2e,
    wallSeconds: (performance.now() - tStart) / 1000,
  };
  await writeFile(join(out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  await writeFile(join(out, 'results.md'), formatResultsMarkdown(results));
  console.log(`[check] ${steps.filter((s) => s.status === 'passed').length} passed, ${steps.filter((s) => s.status === 'failed').length} failed, ${steps.filter((s) => s.status === 'skipped').length} skipped in ${results.wallSeconds.toFixed(0)} s; results in ${out}`);
  process.exitCode = steps.some((s) => s.status === 'failed') ? 1 : 0;
} finally {
  await rm(work, { recursive: true, force: true });
}
