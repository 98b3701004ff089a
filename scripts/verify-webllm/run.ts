// The WebLLM verification: our fused rows through a real MLC-compiled Llama library (WebLLM 0.2.79, ABI v0_2_48,
// Llama-3.2-1B-Instruct q0f32) against our own runtime on the same weights, in headless Chromium on the same
// adapter, through the app's own install / stored-model / chat path.
//
//   1. the verification model (prepare.ts): random weights, Llama-3.2-1B shapes, converted to llm-q0f32 + mm-f16
//   2. the app (vite build + preview) and one static server for the converted folder and the library
//   3. a persistent Chromium profile (the default context hits QuotaExceededError after about 1 GB of caching):
//      install the folder by its URL (it lands in WebLLM's cache), then per engine (WebLLM, then native), in a
//      fresh page: load, image + question, a follow-up (the cache is rolled back to the end of the first prompt
//      and reused), a third question stopped mid-answer
//   4. greedy tokens compared, prefill / time to first token / decode rate side by side
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { basename, join, resolve, sep } from 'node:path';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { PNG } from 'pngjs';
import { startTestServer } from '../tiny-checkpoint/test-http-server.ts';
import { prepareVerifyModel, TINY_VERIFY_CHECKPOINT, VERIFY_CHECKPOINT } from './prepare.ts';
import type { TopLogit } from '../../src/engine/conversation.ts';
import { compareLogits0, formatTop, LOGITS0_RTOL } from './logits.ts';
import { durationMs, tokensPerSecond } from './stats.ts';

export interface VerifyOptions {
  /** Llama-3.2-1B-Instruct-q0f32-ctx4k_cs1k-webgpu.wasm of WebLLM's v0_2_48 libraries. */
  lib: string;
  /** Work folder: model, converted folder, browser profile, logs. */
  dir: string;
  /** Tokens per answer (the first two turns). */
  maxNewTokens: number;
  /**
   * Ports of the server of the converted folder and the library (default 4191) and of the app (default 4192).
   * Fixed, so a rerun finds the model a previous run installed in the profile: browser storage belongs to the
   * app's origin, and the stored model's id comes from its folder URL.
   */
  dataPort?: number;
  appPort?: number;
  /**
   * 'llama-3.2-1b': the verification. 'tiny': the same path with a tiny LLM, which the library does not fit:
   * WebLLM must refuse it with a message naming both (the bad-input check), native runs the script.
   */
  model?: 'llama-3.2-1b' | 'tiny';
  log: (line: string) => void;
}

export interface TurnResult {
  question: string;
  tokens: number[];
  status: string;
  reusedRows: number;
  llmRows: number;
  /** The answer's stats table, row header -> cell (Time to first token, Decode, Context, Prefill, Images). */
  stats: Record<string, string>;
  /** The first answer token's highest logits (the app's `?logits=K`). */
  topLogits0?: TopLogit[];
  prefillMs: number;
  firstTokenMs: number;
  decodeTokensPerSecond: number;
}

export interface EngineRun {
  engine: 'webllm' | 'native';
  loadSeconds: number;
  ready: string;
  turns: TurnResult[];
}

export interface VerifyResult {
  runs: EngineRun[];
  /** 'tiny' model: WebLLM's refusal. */
  webllmError?: string;
  /**
   * Per turn: how many leading tokens both engines share, of how many compared; a turn whose first token differs
   * is `explained` when logits0 agree within LOGITS0_RTOL and the two tokens tie within it.
   */
  agreement: Array<{ turn: number; same: number; compared: number; explained?: boolean }>;
}

export const QUESTIONS = ['What is in this image?', 'And what colour is it?', 'Describe it in detail.'];
const LONG = 60 * 60_000;
const TOP_LOGITS = 10;

const CHROMIUM_ARGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--enable-unsafe-swiftshader', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

function run(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('exit', (code) => (code === 0 ? ok() : fail(new Error(`${cmd} ${args.join(' ')} exited with ${code}`))));
  });
}

/** Refuses a port someone else serves (other vite servers run on this machine). */
function checkPortFree(port: number): Promise<void> {
  return new Promise((ok, fail) => {
    const srv = createNetServer();
    srv.once('error', () => fail(new Error(`port ${port} is in use: give another (--app-port)`)));
    srv.listen(port, 'localhost', () => srv.close(() => ok()));
  });
}

/** `vite preview` of the built app; resolves to its URL once it answers. */
async function startPreview(root: string, port: number): Promise<{ url: string; process: ChildProcess }> {
  await checkPortFree(port);
  const p = spawn(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'preview', '--host', 'localhost', '--port', String(port), '--strictPort'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const url = `http://localhost:${port}/`;
  for (let i = 0; i < 120; i++) {
    if (p.exitCode !== null) break;
    if (await fetch(url).then((r) => r.ok, () => false)) return { url, process: p };
    await new Promise((r) => setTimeout(r, 500));
  }
  p.kill();
  throw new Error('vite preview did not start');
}

/** A 112x112 test image (colour gradient with a square). */
function testImage(): Buffer {
  const png = new PNG({ width: 112, height: 112 });
  for (let y = 0; y < 112; y++) {
    for (let x = 0; x < 112; x++) {
      const i = (y * 112 + x) * 4;
      const inSquare = x > 30 && x < 80 && y > 30 && y < 80;
      png.data[i] = inSquare ? 220 : x * 2;
      png.data[i + 1] = inSquare ? 40 : y * 2;
      png.data[i + 2] = inSquare ? 40 : 128;
      png.data[i + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}

/** The app on its Downloads view (`#/downloads`: install, stored models, the LLM engine), with greedy f32 settings. */
async function openApp(ctx: BrowserContext, appUrl: string, maxNewTokens: number): Promise<Page> {
  const page = await ctx.newPage();
  // ?logits=10: each answer also reports its first token's 10 highest logits, to compare the engines' logits0.
  await page.goto(`${appUrl}?logits=${TOP_LOGITS}#/downloads`);
  await page.evaluate((n) => localStorage.setItem('llava-mini-engine', JSON.stringify({ state: { precision: 'f32', settings: { systemPrompt: 'Answer briefly.', temperature: 0, topP: 1, maxNewTokens: n, maxVideoFrames: 16 } }, version: 0 })), maxNewTokens);
  await page.reload();
  return page;
}

async function install(page: Page, folderUrl: string, dir: string, log: VerifyOptions['log']): Promise<void> {
  const panel = page.getByTestId('downloads');
  const stored = panel.getByTestId('stored-model');
  // The stored-model list is there once the storage line is (both come from one refresh); if it never comes,
  // the page as it was is saved for a look.
  await panel.getByTestId('storage-status').waitFor({ timeout: 10 * 60_000 }).catch(async (e: Error) => {
    const shot = join(dir, 'stored-list-timeout.png');
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    throw new Error(`the stored-model list did not load (${e.message.split('\n')[0]}); the page: ${shot}; its text: ${(await panel.textContent())?.replace(/\s+/g, ' ').slice(0, 600)}`);
  });
  if ((await panel.locator('[data-testid="stored-model"][data-state="complete"]').count()) > 0) {
    log('the model is already stored in this profile');
    return;
  }
  const t0 = Date.now();
  log(`installing ${folderUrl} through the app (about 20 minutes for the 1B model on a busy SwiftShader machine) ...`);
  await panel.getByLabel('Converted folder at a URL').check();
  await panel.getByLabel('Converted model URL').fill(folderUrl);
  await panel.getByTestId('install').click();
  await page.waitForFunction(() => {
    const s = document.querySelector('[data-testid="stored-model"]');
    const err = document.querySelector('[data-testid="install-error"]');
    return s?.getAttribute('data-state') === 'complete' || err !== null;
  }, undefined, { timeout: LONG, polling: 2000 });
  if ((await panel.getByTestId('install-error').count()) > 0) throw new Error(`install failed: ${await panel.getByTestId('install-error').textContent()}`);
  log(`installed in ${((Date.now() - t0) / 1000).toFixed(0)} s; ${(await stored.first().textContent())?.replace(/\s+/g, ' ')}; in WebLLM's cache: ${await stored.first().getAttribute('data-webllm')}`);
}

async function lastAnswer(page: Page, question: string): Promise<TurnResult> {
  const answer = page.getByTestId('msg-assistant').last();
  // The stats line expands into a table: one row per figure, its name in th, its value in td.
  const details = answer.getByTestId('answer-stats');
  const stats: Record<string, string> = {};
  if ((await details.count()) > 0) {
    await details.locator('summary').click();
    Object.assign(
      stats,
      await details.evaluate((el) => {
        const out: Record<string, string> = {};
        for (const row of el.querySelectorAll('tr')) out[(row.querySelector('th')?.textContent ?? '').trim()] = (row.querySelector('td')?.textContent ?? '').trim();
        return out;
      }),
    );
  }
  const ids = (await answer.getAttribute('data-token-ids')) ?? '';
  const top = await answer.getAttribute('data-top-logits0');
  return {
    ...(top ? { topLogits0: JSON.parse(top) as TopLogit[] } : {}),
    question,
    tokens: ids.trim() ? ids.trim().split(/\s+/).map(Number) : [],
    status: (await answer.getAttribute('data-status')) ?? '',
    reusedRows: Number(await answer.getAttribute('data-reused-rows')),
    llmRows: Number(await answer.getAttribute('data-llm-rows')),
    stats,
    prefillMs: durationMs(stats['Prefill']),
    firstTokenMs: durationMs(stats['Time to first token']),
    decodeTokensPerSecond: tokensPerSecond(stats['Decode']),
  };
}

async function ask(page: Page, question: string, stopEarly: boolean, log: VerifyOptions['log']): Promise<TurnResult> {
  const before = await page.getByTestId('msg-assistant').count();
  const t0 = Date.now();
  await page.getByRole('textbox', { name: 'Message' }).fill(question);
  await page.keyboard.press('Enter');
  const answer = page.getByTestId('msg-assistant').nth(before);
  if (stopEarly) {
    // Stop once the answer streams, as a user would. Started = a token id has streamed (data-token-ids): the
    // random weights' first tokens may be whitespace, which renders as no text at all.
    await page.waitForFunction(
      (i) => {
        const m = document.querySelectorAll('[data-testid="msg-assistant"]')[i];
        const ids = (m?.getAttribute('data-token-ids') ?? '').trim();
        const text = (m?.querySelector('[data-testid="answer-text"]')?.textContent ?? '').trim();
        return ids.length > 0 || text.length > 0 || ['done', 'stopped', 'error'].includes(m?.getAttribute('data-status') ?? '');
      },
      before,
      { timeout: LONG, polling: 500 },
    );
    if ((await answer.getAttribute('data-status')) === 'streaming' || (await page.getByTestId('stop').count()) > 0) {
      log(`  streaming after ${((Date.now() - t0) / 1000).toFixed(0)} s (token ids so far: ${(await answer.getAttribute('data-token-ids')) ?? 'none'}): Stop`);
      await page.getByTestId('stop').click().catch(() => log('  (the answer ended before Stop)'));
    }
  }
  await page.waitForFunction((i) => ['done', 'stopped', 'error'].includes(document.querySelectorAll('[data-testid="msg-assistant"]')[i]?.getAttribute('data-status') ?? ''), before, { timeout: LONG, polling: 2000 });
  if ((await answer.getAttribute('data-status')) === 'error') {
    const reason = (await answer.locator('.msg-error').count()) > 0 ? await answer.locator('.msg-error').textContent() : await answer.textContent();
    throw new Error(`"${question}" failed after ${((Date.now() - t0) / 1000).toFixed(0)} s: ${reason?.trim()}`);
  }
  const r = await lastAnswer(page, question);
  log(`  "${question}" -> ${r.status} in ${((Date.now() - t0) / 1000).toFixed(0)} s: tokens [${r.tokens.join(' ')}], rows ${r.llmRows} (${r.reusedRows} reused); ${Object.entries(r.stats).map(([k, v]) => `${k}: ${v}`).join('; ')}`);
  return r;
}

async function runEngine(ctx: BrowserContext, appUrl: string, engine: EngineRun['engine'], libUrl: string, image: string, opts: VerifyOptions): Promise<EngineRun> {
  const { log } = opts;
  log(`--- ${engine === 'webllm' ? 'WebLLM 0.2.79 + ' + basename(opts.lib) : 'native (our WGSL kernels)'} ---`);
  const page = await openApp(ctx, appUrl, opts.maxNewTokens);
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning' || /WebLLM|Loading model|Failed/.test(m.text())) log(`  [console.${m.type()}] ${m.text().slice(0, 500)}`);
  });
  try {
    const panel = page.getByTestId('downloads');
    await panel.getByLabel('LLM engine').selectOption(engine);
    if (engine === 'webllm') await panel.getByLabel('WebLLM model library URL').fill(libUrl);
    const t0 = Date.now();
    await panel.locator('[data-testid="stored-model"][data-state="complete"]').first().getByRole('button', { name: 'Load' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid="engine-ready"]') || document.querySelector('[data-testid="engine-error"]'), undefined, { timeout: LONG, polling: 2000 });
    if ((await page.getByTestId('engine-error').count()) > 0) throw new Error(`load failed: ${await page.getByTestId('engine-error').textContent()}`);
    const loadSeconds = (Date.now() - t0) / 1000;
    // The top bar's chip: its title says "<name> at <precision>, LLM on WebLLM | our kernels".
    const ready = ((await page.getByTestId('engine-ready').getAttribute('title')) ?? (await page.getByTestId('engine-ready').textContent()) ?? '').replace(/\s+/g, ' ').trim();
    log(`  loaded in ${loadSeconds.toFixed(0)} s: ${ready}`);
    // A fresh conversation (the kept profile reopens the last one); the button also routes to the chat (#/).
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.waitForFunction(() => window.location.hash === '#/' || window.location.hash === '', undefined, { timeout: 10_000 });
    await page.getByTestId('file-input').setInputFiles(image);
    await page.waitForFunction(() => [...document.querySelectorAll('.attachment')].every((a) => a.getAttribute('data-status') === 'ready') && document.querySelectorAll('.attachment').length > 0, undefined, { timeout: LONG, polling: 1000 });
    const turns = [];
    for (let i = 0; i < QUESTIONS.length; i++) turns.push(await ask(page, QUESTIONS[i]!, i === QUESTIONS.length - 1, log));
    return { engine, loadSeconds, ready, turns };
  } finally {
    await page.close();
  }
}

function compare(runs: EngineRun[], maxNewTokens: number, log: VerifyOptions['log']): VerifyResult['agreement'] {
  const [w, n] = runs as [EngineRun, EngineRun];
  const agreement: VerifyResult['agreement'] = [];
  const pad = (s: string, k: number) => s.padEnd(k);
  const f = (v: number, d = 0) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  log('');
  log('=== WebLLM 0.2.79 (compiled Llama-3.2-1B q0f32) vs native (our kernels): same weights, same adapter ===');
  log(`${pad('turn', 6)}${pad('tokens WebLLM', 52)}${pad('tokens native', 52)}same`);
  for (let t = 0; t < w.turns.length; t++) {
    const a = w.turns[t]!.tokens;
    const b = n.turns[t]!.tokens;
    // The stopped turn: as many tokens as both streamed before Stop.
    const compared = Math.min(maxNewTokens, a.length, b.length);
    let same = 0;
    while (same < compared && a[same] === b[same]) same++;
    const lw = w.turns[t]!.topLogits0 ?? [];
    const ln = n.turns[t]!.topLogits0 ?? [];
    const c = compareLogits0(lw, ln);
    const explained = same === 0 && compared > 0 && c.tie;
    agreement.push({ turn: t + 1, same, compared, ...(same < compared ? { explained } : {}) });
    log(`${pad(String(t + 1), 6)}${pad(a.join(' '), 52)}${pad(b.join(' '), 52)}${same}/${compared}`);
    log(`${pad('', 6)}logits0 top: WebLLM ${formatTop(lw)} | native ${formatTop(ln)}`);
    log(
      `${pad('', 6)}logits0: ${c.common} of the top ${TOP_LOGITS} ids in both, max relative difference ${c.maxRelDiff.toExponential(2)} (bar ${LOGITS0_RTOL})` +
        (same < compared && same === 0
          ? `; first tokens ${a[0]} / ${b[0]}: each engine's margin over the other's token ${c.margins.map((m) => m.toExponential(2)).join(' / ')} -> ${explained ? 'a tie within the bar: explained' : 'NOT a tie: unexplained'}`
          : same < compared
            ? `; the first divergence is at token ${same + 1} (only logits0 is compared): unexplained`
            : ''),
    );
  }
  log('');
  log(`${pad('turn', 6)}${pad('', 26)}${pad('WebLLM', 14)}${pad('native', 14)}native / WebLLM`);
  for (let t = 0; t < w.turns.length; t++) {
    const a = w.turns[t]!;
    const b = n.turns[t]!;
    const [ra, rb] = [a.llmRows - a.reusedRows, b.llmRows - b.reusedRows];
    // The engines may prefill different row counts (WebLLM re-prefills a follow-up from row 0, see keptRows).
    const rows: Array<[string, number, number, number]> = [
      [`prefill ms (${ra === rb ? ra : `${ra} / ${rb}`} rows)`, a.prefillMs, b.prefillMs, 0],
      ['prefill rows/s', (ra * 1000) / a.prefillMs, (rb * 1000) / b.prefillMs, 3],
      ['time to first token ms', a.firstTokenMs, b.firstTokenMs, 0],
      ['decode tokens/s', a.decodeTokensPerSecond, b.decodeTokensPerSecond, 3],
    ];
    for (const [k, x, y, d] of rows) log(`${pad(String(t + 1), 6)}${pad(k, 26)}${pad(f(x, d), 14)}${pad(f(y, d), 14)}${f(y / x, 2)}`);
  }
  log(`load s: WebLLM ${w.loadSeconds.toFixed(0)}, native ${n.loadSeconds.toFixed(0)}`);
  log(`roll-back + reuse: turn 2 reused ${w.turns[1]!.reusedRows} (WebLLM) / ${n.turns[1]!.reusedRows} (native) cached rows, turn 3 ${w.turns[2]!.reusedRows} / ${n.turns[2]!.reusedRows} (WebLLM keeps cached rows once they fill a prefill chunk); turn 3 stopped: ${w.turns[2]!.status} / ${n.turns[2]!.status}`);
  return agreement;
}

export async function verifyWebLlm(opts: VerifyOptions): Promise<VerifyResult> {
  const root = resolve(import.meta.dirname, '../..');
  const { log } = opts;
  await mkdir(opts.dir, { recursive: true });
  const tiny = opts.model === 'tiny';
  // The library first: a wrong path must not cost the model's generation (minutes, gigabytes).
  const lib = resolve(opts.lib);
  const libBytes = await readFile(lib).catch((e: Error) => {
    throw new Error(`--lib ${lib}: ${e.message}`);
  });
  if (libBytes.subarray(0, 4).toString('latin1') !== '\0asm') throw new Error(`${lib} is not a WebAssembly file`);
  const { converted, key } = await prepareVerifyModel(tiny ? join(opts.dir, 'tiny') : opts.dir, log, tiny ? TINY_VERIFY_CHECKPOINT : VERIFY_CHECKPOINT);
  const data = await startTestServer(async (p) => {
    if (p === `lib/${basename(lib)}`) return libBytes;
    const file = resolve(converted, p.replace(/^converted\//, ''));
    if (!p.startsWith('converted/') || !file.startsWith(converted + sep)) return null;
    return readFile(file).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength), () => null);
  }, 'honour', () => null, opts.dataPort ?? 4191);
  log(`serving the converted folder and the library at ${data.url}`);
  log('building the app (vite build) ...');
  await run('npx', ['vite', 'build', '--logLevel', 'error'], root);
  const preview = await startPreview(root, opts.appPort ?? 4192);
  const image = join(opts.dir, 'verify-image.png');
  await writeFile(image, testImage());
  // The kept profile holds the installed model under a URL that does not change with the weights: a profile that
  // installed other weights (an earlier version of the verify model) starts over.
  const profile = join(opts.dir, tiny ? 'chromium-profile-tiny' : 'chromium-profile');
  const profileModel = join(profile, 'llava-verify-model.json');
  if ((await readFile(profileModel, 'utf8').catch(() => null)) !== key) {
    await rm(profile, { recursive: true, force: true });
    await mkdir(profile, { recursive: true });
    await writeFile(profileModel, key);
  }
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    headless: true,
    // The app is a PWA: in a kept profile its service worker would serve the previous build's scripts.
    serviceWorkers: 'block',
    args: CHROMIUM_ARGS,
    viewport: { width: 1100, height: 900 },
  });
  try {
    const page = await openApp(ctx, preview.url, opts.maxNewTokens);
    log(`GPU: ${((await page.getByTestId('gpu-status').textContent({ timeout: 60_000 })) ?? '').replace(/\s+/g, ' ').trim()}`);
    await install(page, `${data.url}/converted/`, opts.dir, log);
    await page.close();
    const libUrl = `${data.url}/lib/${basename(lib)}`;
    if (tiny) {
      const webllmError = await runEngine(ctx, preview.url, 'webllm', libUrl, image, opts).then(
        () => 'none: WebLLM ran a model its library does not fit',
        (e: Error) => e.message,
      );
      log(`WebLLM on the tiny model: ${webllmError}`);
      return { runs: [await runEngine(ctx, preview.url, 'native', libUrl, image, opts)], agreement: [], webllmError };
    }
    const runs: EngineRun[] = [];
    for (const engine of ['webllm', 'native'] as const) runs.push(await runEngine(ctx, preview.url, engine, libUrl, image, opts));
    return { runs, agreement: compare(runs, opts.maxNewTokens, log) };
  } finally {
    await ctx.close();
    preview.process.kill();
    await data.close();
  }
}
