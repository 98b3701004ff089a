// `npm run verify:webllm-kv -- --lib <Llama-3.2-1B q0f32 library> [--dir DIR] [--cached 17 --added 4 --decoded 2]
//   [--library-prefill]`:
// how the real WebLLM library's KV cache behaves under EmbeddingPrefill's continued prefill and roll-back, and
// (--library-prefill) under its own prefill over cached rows (kv-probe-page.ts). Needs the
// profile of an earlier `npm run verify:webllm` (the installed model) and the same ports; serves the page with
// vite's dev server at the app's origin, where the model is stored.
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from '@playwright/test';
import { createServer } from 'vite';
import { startTestServer } from '../tiny-checkpoint/test-http-server.ts';
import type { ProbeStep } from './kv-probe-page.ts';

/** Relative to max |logit| of the fresh prefill (turn 1 of the verify run agrees with our runtime within 8e-6). */
const LOGITS_RTOL = 1e-4;

const { values } = parseArgs({
  options: {
    lib: { type: 'string' },
    dir: { type: 'string', default: join(tmpdir(), 'llava-mini-verify-webllm') },
    cached: { type: 'string', default: '17' },
    added: { type: 'string', default: '4' },
    decoded: { type: 'string', default: '2' },
    'library-prefill': { type: 'boolean', default: false },
  },
});
if (!values.lib) throw new Error('--lib PATH is required');
const root = resolve(import.meta.dirname, '../..');
const lib = await readFile(resolve(values.lib));
const data = await startTestServer(async (p) => (p === `lib/${basename(values.lib!)}` ? new Uint8Array(lib) : null), 'honour', () => null, 4191);
// No file watching: an edit during the (long) run must not reload the page.
const vite = await createServer({ root, logLevel: 'error', server: { host: 'localhost', port: 4192, strictPort: true, hmr: false, watch: null } });
await vite.listen();
const t0 = Date.now();
const log = (s: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${s}`);
try {
  const ctx = await chromium.launchPersistentContext(join(values.dir, 'chromium-profile'), {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    serviceWorkers: 'block',
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--disable-background-networking', '--no-first-run'],
  });
  const page = await ctx.newPage();
  page.on('console', (m) => log(`[console.${m.type()}] ${m.text().slice(0, 300)}`));
  await page.exposeFunction('probeLog', log);
  await page.goto('http://localhost:4192/scripts/verify-webllm/kv-probe.html');
  await page.waitForFunction(() => 'kvProbe' in globalThis, undefined, { timeout: 300_000 });
  const steps = await page.evaluate(
    ([url, c, a, d, lp]) => (globalThis as unknown as { kvProbe: (...x: unknown[]) => Promise<ProbeStep[]> }).kvProbe(url, c, a, d, lp, (globalThis as unknown as { probeLog: (s: string) => void }).probeLog),
    [`${data.url}/lib/${basename(values.lib)}`, Number(values.cached), Number(values.added), Number(values.decoded), values['library-prefill']] as const,
  );
  console.log(JSON.stringify(steps, null, 2));
  await ctx.close();
  // Our path (every step but the library's own prefill over cached rows) must reproduce the fresh prefill.
  const off = steps.filter((s) => !s.libraryPrefill && s.maxRelDiff > LOGITS_RTOL);
  log(off.length ? `OFF (> ${LOGITS_RTOL}): ${off.map((s) => s.name).join('; ')}` : `EmbeddingPrefill's continued prefill and roll-back agree with a fresh prefill within ${LOGITS_RTOL}`);
  process.exitCode = off.length ? 1 : 0;
} finally {
  await vite.close();
  await data.close();
}
