// The app shell in Chromium: the GPU diagnostics page (adapter, features, limits, the WGSL self-test running in
// the page), the no-WebGPU message, narrow and dark layouts.
import { expect, test } from '@playwright/test';
import { pickerRoom } from './picker-room.ts';

const SHOTS = 'e2e/screenshots';

test('the diagnostics page shows the WebGPU adapter (SwiftShader here) with its features and limits', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(/LLaVA-Mini — runs on your GPU, in your browser/);
  // The chat page says in one line that WebGPU is ready and links to the diagnostics page.
  await expect(page.getByTestId('gpu-status')).toContainText(/WebGPU ready.*swiftshader.*shader-f16 no/i);
  await page.getByRole('link', { name: 'GPU diagnostics' }).click();
  await expect(page).toHaveURL(/#\/diagnostics$/);
  await expect(page.getByRole('link', { name: 'GPU diagnostics' })).toHaveAttribute('aria-current', 'page');
  const summary = page.getByTestId('adapter-summary');
  await expect(summary).toBeVisible();
  await expect(page.getByTestId('adapter-vendor')).toContainText(/google/i);
  await expect(page.getByTestId('adapter-architecture')).toContainText(/swiftshader/i);
  await expect(page.getByTestId('adapter-shader-f16')).toContainText('no');
  await expect(page.getByTestId('adapter-subgroups')).toContainText('yes');
  await expect(page.getByTestId('adapter-maxBufferSize')).toContainText(/\d+(\.\d)? (MiB|GiB)/);
  await expect(page.getByTestId('adapter-maxStorageBufferBindingSize')).toContainText(/\d+(\.\d)? (MiB|GiB)/);
  await expect(page.getByTestId('adapter-maxComputeWorkgroupStorageSize')).toContainText('32 KiB');
  await expect(page.getByTestId('adapter-maxComputeInvocationsPerWorkgroup')).toContainText(/\d+/);
  // Every feature and every limit, as the adapter reports them.
  const features = page.getByTestId('adapter-features');
  await features.getByText(/^Features \(\d+\)$/).click();
  await expect(features.locator('li', { hasText: 'subgroups' })).toHaveCount(1);
  await expect(features.locator('li', { hasText: /^shader-f16$/ })).toHaveCount(0);
  const limits = page.getByTestId('adapter-limits');
  await limits.getByText(/^Limits \(\d+\)$/).click();
  expect(await limits.locator('.kv-row').count()).toBeGreaterThanOrEqual(25);
  await expect(limits.locator('.kv-row', { hasText: 'maxComputeWorkgroupSizeX' })).toContainText(/\d+/);
  await expect(limits.locator('.kv-row', { hasText: 'minStorageBufferOffsetAlignment' })).toContainText(/^minStorageBufferOffsetAlignment\s*\d+$/);
  await expect(page.getByRole('button', { name: 'Run GPU self-test' })).toBeEnabled();
  await page.screenshot({ path: `${SHOTS}/gpu-panel.png`, fullPage: true });
});

test('the GPU self-test runs every kernel family in the page and passes against the CPU reference', async ({ page }) => {
  test.setTimeout(180_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  await page.goto('/#/diagnostics');
  const button = page.getByRole('button', { name: 'Run GPU self-test' });
  await expect(button).toBeEnabled();
  const rows = page.getByTestId('diagnostics').locator('tr[data-status]');
  const total = await rows.count();
  expect(total).toBeGreaterThanOrEqual(30); // every family: linear, int4, matvec, norm, elementwise, embedding, RoPE, attention, preprocess, sampling
  const started = Date.now();
  await button.click();

  // Finished: the summary counts every case; none failed (fail and error both count as failed).
  const summary = page.getByTestId('selftest-summary');
  await expect(summary).toHaveText(/^\d+ passed, 0 failed, \d+ skipped$/, { timeout: 150_000 });
  const seconds = (Date.now() - started) / 1000;
  console.log(`GPU self-test: ${total} cases in ${seconds.toFixed(1)} s`);
  await expect(page.getByTestId('diagnostics').locator('tr[data-status="pending"]')).toHaveCount(0);

  // SwiftShader has no shader-f16: exactly the cases that need it are skipped (not failed), every other one passes.
  const statuses = await rows.evaluateAll((trs) => trs.map((tr) => ({ id: tr.dataset.testid, status: tr.dataset.status, requires: tr.dataset.requires ?? '' })));
  const needF16 = statuses.filter((r) => r.requires.split(' ').includes('shader-f16'));
  expect(needF16.length).toBeGreaterThan(0);
  expect(statuses.filter((r) => r.status === 'skipped').map((r) => r.id)).toEqual(needF16.map((r) => r.id));
  expect(statuses.filter((r) => r.status === 'pass').length).toBe(total - needF16.length);
  await expect(summary).toHaveText(`${total - needF16.length} passed, 0 failed, ${needF16.length} skipped`);
  for (const r of needF16) await expect(page.getByTestId(r.id!)).toContainText('this GPU has no shader-f16');

  const f32 = page.getByTestId('selftest-linear-f32');
  await expect(f32.getByText('PASS', { exact: true })).toBeVisible();
  const maxAbs = Number(await page.getByTestId('selftest-linear-f32-maxabs').innerText());
  expect(maxAbs).toBeLessThan(1e-4);
  expect(errors).toEqual([]);
  await page.screenshot({ path: `${SHOTS}/selftest-pass.png`, fullPage: true });
  await page.screenshot({ path: `${SHOTS}/diagnostics.png`, fullPage: true });
});

test('without WebGPU the page says so and what to do', async ({ page }) => {
  await page.addInitScript(() => {
    Object.defineProperty(Navigator.prototype, 'gpu', { value: undefined, configurable: true });
    Object.defineProperty(navigator, 'gpu', { value: undefined, configurable: true });
  });
  await page.goto('/');
  const alert = page.getByTestId('gpu-unavailable');
  await expect(alert).toBeVisible();
  await expect(alert).toHaveAttribute('role', 'alert');
  await expect(alert.getByRole('heading')).toHaveText('WebGPU is not available in this browser');
  await expect(alert).toContainText('Chrome or Edge (version 113 or later)');
  await expect(alert).toContainText('chrome://flags/#enable-unsafe-webgpu');
  await expect(alert).toContainText('http://localhost');
  await page.screenshot({ path: `${SHOTS}/no-webgpu.png`, fullPage: true });
  await page.getByRole('link', { name: 'GPU diagnostics' }).click();
  await expect(page.getByTestId('diagnostics-page').getByTestId('gpu-unavailable')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Run GPU self-test' })).toBeDisabled();
});

test('narrow window and dark mode stay usable', async ({ page }) => {
  await page.setViewportSize({ width: 380, height: 900 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/');
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeVisible();
  await expect(page.getByTestId('load-model')).toBeEnabled();
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  // The demo model's whole name fits the picker at 380 px too (it was cut to "LLaVA-Mini demo (tin").
  expect(await pickerRoom(page)).toBeGreaterThanOrEqual(0);
  await page.screenshot({ path: `${SHOTS}/narrow-dark-chat.png`, fullPage: true });
  await page.goto('/#/model');
  await expect(page.getByTestId('model-name')).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  await page.goto('/#/diagnostics');
  await expect(page.getByTestId('adapter-summary')).toBeVisible();
  await page.getByRole('button', { name: 'Run GPU self-test' }).click();
  await expect(page.getByTestId('selftest-linear-f32')).toHaveAttribute('data-status', 'pass');
  // nothing wider than the viewport
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: `${SHOTS}/narrow-dark.png`, fullPage: true });
});

test('the demo model is found, validated through HTTP range reads, and labelled as random weights', async ({ page }) => {
  await page.goto('/#/model');
  await expect(page.getByTestId('model-name')).toHaveText(/demo/i);
  await expect(page.getByTestId('model-label')).toHaveText('random weights, for trying the pipeline');
  await expect(page.getByTestId('model-vision')).toContainText('576 CLIP rows → 1 token for the LLM');
  await expect(page.getByTestId('model-llm')).toContainText('vocabulary 128256');
  await page.screenshot({ path: `${SHOTS}/model-panel.png`, fullPage: true });
});

test('before downloading the real 8B model, the page says whether this GPU can run it and in which format', async ({ page }) => {
  await page.goto('/#/downloads');
  const check = page.getByTestId('real-model-check');
  // SwiftShader: no shader-f16 -> q4f32_1; a software adapter -> "slowly"; its 1 GiB binding limit holds the 250.5 MiB embedding.
  await expect(check).toHaveAttribute('data-format', 'q4f32_1');
  await expect(check).toHaveAttribute('data-verdict', 'slow');
  await check.getByText('LLaVA-Mini 8B (Llama-3.1-8B) on this GPU').click();
  await expect(check).toContainText('Format q4f32_1');
  await expect(check).toContainText('This GPU has no shader-f16');
  await expect(check).toContainText('software (CPU) adapter');
  await expect(check.locator('.kv-row', { hasText: 'LLM KV cache (4096 tokens)' })).toContainText('1 GiB'); // f32 KV: 32 layers x 2 x 4096 x 1024 x 4 B
  await check.screenshot({ path: `${SHOTS}/real-model-check.png` });
});
