// Image chat in Chromium with the demo checkpoint (tiny, random weights, real tokenizer) on SwiftShader:
// load the model into the engine worker, drop a PNG, ask; the streamed answer's token ids equal the Node CLI's
// greedy tokens for the same image, prompt and checkpoint. Bad files give a clear message and the chat goes on.
import { execFile } from 'node:child_process';
import { writeFile, mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';
import { expect, test, type Page } from '@playwright/test';
import { PNG } from 'pngjs';

const SHOTS = 'e2e/screenshots';
const FIXTURES = 'test-results/fixtures';
const MAX_NEW_TOKENS = 6;

function gradientPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const [x, y] = [i % width, Math.floor(i / width)];
    png.data.set([(x * 7) & 255, (y * 3) & 255, ((x + y) * 5) & 255, 255], i * 4);
  }
  return PNG.sync.write(png);
}

/** A DataTransfer in the page holding one file. */
function fileTransfer(page: Page, name: string, bytes: Buffer, type: string) {
  return page.evaluateHandle(
    ({ name, data, type }) => {
      const dt = new DataTransfer();
      dt.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name, { type }));
      return dt;
    },
    { name, data: bytes.toString('base64'), type },
  );
}

/** Drops a file on the page as a user dragging it from the desktop does. */
async function dropFile(page: Page, name: string, bytes: Buffer, type: string): Promise<void> {
  await page.dispatchEvent('main', 'drop', { dataTransfer: await fileTransfer(page, name, bytes, type) });
}

/** Pastes a file as Ctrl+V of a copied image does. */
async function pasteFile(page: Page, name: string, bytes: Buffer, type: string): Promise<void> {
  const dt = await fileTransfer(page, name, bytes, type);
  await page.evaluate((clipboardData) => window.dispatchEvent(new ClipboardEvent('paste', { clipboardData, bubbles: true })), dt);
}

/** The Node CLI (GPU engine through Dawn) on the checkpoint the app serves: its --json output. */
function nodeCli(args: string[]): Promise<{ tokens: number[]; turns: { tokens: number[] }[] }> {
  return promisify(execFile)(process.execPath, ['--import', './scripts/node-register.mjs', 'src/cli/main.ts', 'generate', '--model', 'public/models/demo', '--precision', 'q4', '--max-new-tokens', String(MAX_NEW_TOKENS), '--greedy', '--json', ...args], {
    maxBuffer: 64 << 20,
  }).then((r) => JSON.parse(r.stdout));
}

async function ask(page: Page, question: string): Promise<{ tokens: number[]; reusedRows: number; llmRows: number; newImages: number }> {
  const before = await page.getByTestId('msg-assistant').count();
  await page.getByRole('textbox', { name: 'Message' }).fill(question);
  await page.keyboard.press('Enter');
  const answer = page.getByTestId('msg-assistant').nth(before);
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  return {
    tokens: (await answer.getAttribute('data-token-ids'))!.split(' ').map(Number),
    reusedRows: Number(await answer.getAttribute('data-reused-rows')),
    llmRows: Number(await answer.getAttribute('data-llm-rows')),
    newImages: Number(await answer.getAttribute('data-new-images')),
  };
}

async function loadModel(page: Page): Promise<void> {
  await page.goto('/');
  await page.evaluate(() => localStorage.setItem('llava-mini-engine', JSON.stringify({ state: { precision: 'q4', settings: { systemPrompt: '', temperature: 0, topP: 1, maxNewTokens: 6 } }, version: 0 })));
  await page.reload();
  await page.getByTestId('load-model').click();
  await expect(page.getByTestId('engine-ready')).toBeVisible({ timeout: 240_000 });
}

test('drop a PNG and ask: the streamed answer has the Node CLI greedy tokens', async ({ page }) => {
  test.setTimeout(600_000);
  await mkdir(FIXTURES, { recursive: true });
  const png = gradientPng(300, 220);
  await writeFile(`${FIXTURES}/photo.png`, png);
  const question = 'What is in this image?';
  const followUp = 'And what colours does it have?';
  // The Node CLI on the same checkpoint, image and questions (a two-turn conversation), in parallel with the page.
  const node = nodeCli(['--image', `${FIXTURES}/photo.png`, '--prompt', question, '--prompt', followUp]);

  await loadModel(page);
  await expect(page.getByTestId('engine-memory-total')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/empty.png`, fullPage: true });
  await dropFile(page, 'photo.png', png, 'image/png');
  await expect(page.getByTestId('attachments').locator('[data-status="ready"]')).toHaveCount(1, { timeout: 240_000 });
  const first = await ask(page, question);
  expect(first.newImages).toBe(1);
  // The follow-up reuses the image's cached rows and the LLM cache of the first prompt: no vision work.
  const second = await ask(page, followUp);
  expect(second.newImages).toBe(0);
  expect(second.reusedRows).toBe(first.llmRows); // the whole first prompt stayed in the LLM cache
  const cli = await node;
  expect(first.tokens).toEqual(cli.turns[0]!.tokens);
  expect(second.tokens).toEqual(cli.turns[1]!.tokens);
  await page.getByTestId('msg-assistant').last().getByText('Stats').click();
  await expect(page.getByTestId('answer-stats').last()).toContainText('none this turn: cached rows reused');
  await page.screenshot({ path: `${SHOTS}/image-chat.png`, fullPage: true });
  await page.screenshot({ path: `${SHOTS}/stats.png`, fullPage: false });

  // Bad files: a clear notice, and the chat keeps working.
  await dropFile(page, 'notes.png', Buffer.from('just text, not pixels\n'), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('notes.png is not an image this browser can read');
  await dropFile(page, 'broken.png', png.subarray(0, 200), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('broken.png is not an image this browser can read');
  await expect(page.getByTestId('send')).toBeEnabled();
});

test('paste one image and drop another: two images in one question; Stop mid-answer', async ({ page }) => {
  test.setTimeout(600_000);
  await mkdir(FIXTURES, { recursive: true });
  const a = gradientPng(200, 150);
  const b = gradientPng(120, 260);
  await writeFile(`${FIXTURES}/a.png`, a);
  await writeFile(`${FIXTURES}/b.png`, b);
  const question = 'Compare the two pictures.';
  const node = nodeCli(['--image', `${FIXTURES}/a.png`, '--image', `${FIXTURES}/b.png`, '--prompt', question]);
  await loadModel(page);
  await pasteFile(page, 'a.png', a, 'image/png');
  await dropFile(page, 'b.png', b, 'image/png');
  await expect(page.getByTestId('attachments').locator('[data-status="ready"]')).toHaveCount(2, { timeout: 240_000 });
  const answer = await ask(page, question);
  expect(answer.newImages).toBe(2);
  expect(answer.tokens).toEqual((await node).tokens);

  // Stop: a long answer, stopped while it streams; the chat then goes on.
  await page.getByText('Settings').click();
  await page.getByLabel('Max new tokens').fill('400');
  await page.getByRole('textbox', { name: 'Message' }).fill('Tell me everything.');
  await page.keyboard.press('Enter');
  const long = page.getByTestId('msg-assistant').last();
  await expect(long).toHaveAttribute('data-status', 'streaming');
  await page.waitForTimeout(3000);
  await page.getByTestId('stop').click();
  await expect(long).toHaveAttribute('data-status', 'stopped', { timeout: 15_000 });
  await expect(page.getByTestId('send')).toBeEnabled();
});
