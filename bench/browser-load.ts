// The demo model's load in the browser, as a user meets it: `npm run bench:load [-- --runs N --port P]`.
// Builds the app (vite build), serves it with `vite preview`, and in headless Chromium (WebGPU on this machine's
// adapter: SwiftShader without a GPU) clicks Load N times, each in a fresh page, timing every stage the top bar
// shows (opening, weights upload, kernels: pipelines built of requested) until the model is ready. Prints each
// run and the median per stage. Needs public/models/demo (scripts/prepare-demo-model.ts, run by npm start).
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium, type Page } from '@playwright/test';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, port: { type: 'string', default: '4195' }, 'no-build': { type: 'boolean', default: false } } });
const runs = Number(values.runs);
const root = resolve(import.meta.dirname, '..');
await access(join(root, 'public/models/demo/model.safetensors')).catch(() => {
  throw new Error('no demo model: run `node --import tsx scripts/prepare-demo-model.ts` (or npm start) first');
});

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((ok, fail) => spawn(cmd, args, { cwd: root, stdio: 'inherit' }).on('exit', (c) => (c === 0 ? ok() : fail(new Error(`${cmd} exited with ${c}`)))));
}

interface Stage {
  stage: string;
  seconds: number;
  /** The top bar's text when the stage ended (bytes uploaded, pipelines built of requested). */
  last: string;
}

/** Polls the top bar's load progress every 50 ms from the click until the model is ready. */
async function timeLoad(page: Page): Promise<{ total: number; stages: Stage[] }> {
  await page.getByTestId('load-model').click();
  const t0 = Date.now();
  const stages: Stage[] = [];
  let current: { stage: string; since: number; last: string } | null = null;
  for (;;) {
    const s = await page.evaluate(() => {
      const p = document.querySelector('[data-testid="load-progress"]');
      return {
        ready: document.querySelector('[data-testid="engine-ready"]') !== null,
        error: document.querySelector('[data-testid="engine-error"]')?.textContent ?? null,
        stage: p?.getAttribute('data-stage') ?? null,
        text: p?.querySelector('.load-progress-text')?.textContent ?? '',
      };
    });
    const now = Date.now();
    if (s.error) throw new Error(`load failed: ${s.error}`);
    if (current && (s.ready || s.stage !== current.stage)) {
      stages.push({ stage: current.stage, seconds: (now - current.since) / 1000, last: current.last });
      current = null;
    }
    if (s.ready) return { total: (now - t0) / 1000, stages };
    if (s.stage && !current) current = { stage: s.stage, since: now, last: s.text };
    if (current) current.last = s.text || current.last;
    if (now - t0 > 600_000) throw new Error('no model after 10 minutes');
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (!values['no-build']) await run('npx', ['vite', 'build', '--logLevel', 'error']);
const preview = spawn(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'preview', '--host', 'localhost', '--port', values.port, '--strictPort'], { cwd: root, stdio: 'ignore' });
const url = `http://localhost:${values.port}/`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader'] });
try {
  for (let i = 0; i < 120 && !(await fetch(url).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 500));
  const results: Array<{ total: number; stages: Stage[] }> = [];
  for (let i = 0; i < runs; i++) {
    const ctx = await browser.newContext({ serviceWorkers: 'block', reducedMotion: 'reduce' });
    const page = await ctx.newPage();
    await page.goto(url);
    if (i === 0) console.log(`GPU: ${(await page.getByTestId('gpu-status').textContent({ timeout: 60_000 }))?.replace(/\s+/g, ' ').trim()}`);
    await page.evaluate(() => localStorage.setItem('llava-mini-engine', JSON.stringify({ state: { precision: 'q4' }, version: 0 })));
    await page.reload();
    const r = await timeLoad(page);
    results.push(r);
    console.log(`run ${i + 1}: ${r.total.toFixed(1)} s = ${r.stages.map((s) => `${s.stage} ${s.seconds.toFixed(1)} s ("${s.last}")`).join(' + ')}`);
    await ctx.close();
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;
  const names = [...new Set(results.flatMap((r) => r.stages.map((s) => s.stage)))];
  console.log(`\nmedian of ${runs}: load ${median(results.map((r) => r.total)).toFixed(1)} s; ${names.map((n) => `${n} ${median(results.map((r) => r.stages.filter((s) => s.stage === n).reduce((a, s) => a + s.seconds, 0))).toFixed(1)} s`).join(', ')}`);
} finally {
  await browser.close();
  preview.kill();
}
