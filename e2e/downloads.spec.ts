// Getting a model onto the user's machine, in Chromium against e2e/fake-hub.ts (the hub's URLs, range requests):
// from "Hugging Face" with a connection dropped half way, converted in the model-store worker and stored in OPFS;
// then offline after a reload the page opens (service worker), the stored model loads and answers. A corrupted
// download and a full storage give clear messages and nothing half-written is used.
import { expect, test, type Page } from '@playwright/test';
import { expectModelLoaded } from './model-loaded.ts';

const HUB = 'http://127.0.0.1:4174';
const SHOTS = 'e2e/screenshots';

async function openFresh(page: Page): Promise<void> {
  await page.goto('/#/downloads');
  await page.evaluate(() => localStorage.setItem('llava-mini-engine', JSON.stringify({ state: { precision: 'q4', settings: { systemPrompt: '', temperature: 0, topP: 1, maxNewTokens: 6, maxVideoFrames: 16 } }, version: 0 })));
  await page.reload();
}

const stored = (page: Page) => page.getByTestId('downloads').getByTestId('stored-model');

/** Starts "Download and convert" of the demo checkpoint from the fake hub; returns the panel. */
async function startHubInstall(page: Page) {
  await openFresh(page);
  const panel = page.getByTestId('downloads');
  await panel.getByLabel('Hub URL').fill(HUB);
  await panel.getByLabel('Repository').fill('ICTNLP/llava-mini-demo');
  await panel.getByTestId('install').click();
  return panel;
}

test('from the hub (one dropped connection), converted and stored; offline after a reload it loads and answers', async ({ page, request }) => {
  test.setTimeout(600_000);
  const panel = await startHubInstall(page);
  await expect(panel.getByTestId('install-progress')).toBeVisible();
  // Before the first byte the line says it is starting, never "0 B of 0 B, 0 B/s" (read as a stalled download).
  await expect(panel.getByTestId('install-progress')).not.toContainText('0 B of 0 B');
  await expect(panel.getByTestId('install-status')).toHaveAttribute('data-stage', 'converting', { timeout: 60_000 });
  await page.screenshot({ path: `${SHOTS}/download-progress.png`, fullPage: true });
  await expect(stored(page)).toHaveAttribute('data-state', 'complete', { timeout: 300_000 });
  await expect(panel.getByTestId('install-error')).toHaveCount(0);
  expect((await (await request.get(`${HUB}/stats`)).json()).drops).toBe(1);
  await expect(stored(page)).toContainText('q4f32_1'); // SwiftShader has no shader-f16
  // The LLM went straight into WebLLM's own cache (the Cache API): WebLLM's hasModelInCache finds every shard there.
  await expect(stored(page)).toHaveAttribute('data-webllm', 'true');
  await page.screenshot({ path: `${SHOTS}/downloads.png`, fullPage: true });

  // Offline: the service worker serves the page, the model comes from OPFS.
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
  await page.context().setOffline(true);
  await page.reload();
  await expect(page.getByRole('heading', { level: 1 })).toBeVisible();
  // WebLLM's stock library is compiled for the 8B model's shapes: asked to run this tiny one, it says so.
  await panel.getByLabel('LLM engine').selectOption('webllm');
  await stored(page).getByRole('button', { name: 'Load' }).click();
  await expect(page.getByTestId('engine-error')).toContainText(/this model's LLM \(.*\) does not have Llama-3\.1-8B's shapes.*choose the native engine/);
  // Automatic: our own kernels for a model WebLLM's library cannot run.
  await panel.getByLabel('LLM engine').selectOption('auto');
  await stored(page).getByRole('button', { name: 'Load' }).click();
  await expectModelLoaded(page);
  await expect(page.getByTestId('engine-ready')).toContainText('LLM on our kernels');
  await page.getByRole('link', { name: 'Chat', exact: true }).click();
  await page.getByRole('textbox', { name: 'Message' }).fill('Say something.');
  await page.keyboard.press('Enter');
  const answer = page.getByTestId('msg-assistant').last();
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  expect((await answer.getAttribute('data-token-ids'))!.split(' ')).toHaveLength(6);
  await page.context().setOffline(false);
});

test('an install cut off by a reload resumes where it stopped', async ({ page }) => {
  test.setTimeout(300_000);
  const panel = await startHubInstall(page);
  // Reload once some shards are written (the converter's journal records each finished shard).
  await expect.poll(async () => Number((await panel.getByTestId('install-progress').getAttribute('data-done')) ?? 0), { timeout: 120_000 }).toBeGreaterThan(4 << 20);
  await page.reload();
  await expect(stored(page)).toHaveAttribute('data-state', 'unfinished');
  await stored(page).getByRole('button', { name: 'Resume' }).click();
  await expect(stored(page)).toHaveAttribute('data-state', 'complete', { timeout: 300_000 });
  await expect(panel.getByTestId('install-error')).toHaveCount(0);
});

test('a corrupted download is refused and never used; the good copy then installs', async ({ page }) => {
  test.setTimeout(300_000);
  await openFresh(page);
  const panel = page.getByTestId('downloads');
  await panel.getByLabel('Converted folder at a URL').check();
  await panel.getByLabel('Converted model URL').fill(`${HUB}/converted-corrupt/`);
  await panel.getByTestId('install').click();
  await expect(panel.getByTestId('install-error')).toContainText(/mm-q4\/pack_shard_0\.bin arrived corrupted \(sha256 [0-9a-f]{64}, the index says [0-9a-f]{64}\); nothing of it was stored/, { timeout: 120_000 });
  await expect(stored(page)).toHaveAttribute('data-state', 'unfinished');
  await expect(stored(page).getByRole('button', { name: 'Load' })).toHaveCount(0);
  await stored(page).getByRole('button', { name: /^Delete/ }).click();
  // Deleting asks first, saying what goes; the dialog's own Delete removes it.
  const confirm = page.getByRole('alertdialog');
  await expect(confirm).toContainText(/stored so far leave this browser's storage; the download would start over/);
  await page.screenshot({ path: `${SHOTS}/delete-model-confirm.png` });
  await confirm.getByRole('button', { name: 'Delete' }).click();
  await expect(stored(page)).toHaveCount(0);

  await panel.getByLabel('Converted model URL').fill(`${HUB}/converted/`);
  await panel.getByTestId('install').click();
  await expect(stored(page)).toHaveAttribute('data-state', 'complete', { timeout: 120_000 });
  await expect(panel.getByTestId('install-error')).toHaveCount(0);
});

test('when the storage cannot take the model, the install says so before writing it', async ({ page }) => {
  test.setTimeout(120_000);
  await openFresh(page);
  // Measured once the service worker has cached the app (that is storage too).
  const { quota = 0, usage = 0 } = await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
    return navigator.storage.estimate();
  });
  const panel = page.getByTestId('downloads');
  await panel.getByLabel('Converted folder at a URL').check();
  // A hosted model whose shards add up to far more than this browser lets the site store.
  await panel.getByLabel('Converted model URL').fill(`${HUB}/converted-huge/`);
  await panel.getByTestId('install').click();
  const error = panel.getByTestId('install-error');
  await expect(error).toContainText(/^Not enough storage: the model needs \d+\.\d\d GB more and the browser lets this site store \d+\.\d\d GB more\. Delete cached models or free disk space/);
  const [need, free] = (/needs ([\d.]+) GB more and the browser lets this site store ([\d.]+) GB/.exec(await error.innerText()) ?? []).slice(1).map(Number);
  expect(need).toBeGreaterThan(100); // the claimed shards: 10000 x the real ones
  expect(Math.abs(free! - (quota - usage) / 1e9)).toBeLessThan(0.05);
  // Nothing but the note of what was started: no shard, no index file, nothing loadable.
  await expect(stored(page)).toHaveAttribute('data-state', 'unfinished');
  await expect(stored(page).getByRole('button', { name: 'Load' })).toHaveCount(0);
  expect(await page.evaluate(async () => (await navigator.storage.estimate()).usage ?? 0)).toBeLessThan(usage + 1_000_000);
});
