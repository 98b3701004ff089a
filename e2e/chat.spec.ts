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

/** Drops files on the page as a user dragging them from the desktop does. */
async function dropFile(page: Page, name: string, bytes: Buffer, type: string): Promise<void> {
  const data = bytes.toString('base64');
  const transfer = await page.evaluateHandle(
    ({ name, data, type }) => {
      const dt = new DataTransfer();
      const raw = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      dt.items.add(new File([raw], name, { type }));
      return dt;
    },
    { name, data, type },
  );
  await page.dispatchEvent('main', 'drop', { dataTransfer: transfer });
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
  // The Node CLI on the same checkpoint (the files the app serves), image and question, in parallel with the page.
  const node = promisify(execFile)(
    process.execPath,
    ['--import', './scripts/node-register.mjs', 'src/cli/main.ts', 'generate', '--model', 'public/models/demo', '--image', `${FIXTURES}/photo.png`, '--prompt', question, '--precision', 'q4', '--max-new-tokens', String(MAX_NEW_TOKENS), '--greedy', '--json'],
    { maxBuffer: 64 << 20 },
  );

  await loadModel(page);
  await expect(page.getByTestId('engine-memory-total')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/empty.png`, fullPage: true });
  await dropFile(page, 'photo.png', png, 'image/png');
  await expect(page.getByTestId('attachments').locator('[data-status="ready"]')).toHaveCount(1, { timeout: 240_000 });
  await page.getByRole('textbox', { name: 'Message' }).fill(question);
  await page.keyboard.press('Enter');
  const answer = page.getByTestId('msg-assistant').last();
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  const browserTokens = (await answer.getAttribute('data-token-ids'))!.split(' ').map(Number);
  const cli = JSON.parse((await node).stdout);
  expect(browserTokens).toEqual(cli.tokens);
  await answer.getByText('Stats').click();
  await page.screenshot({ path: `${SHOTS}/image-chat.png`, fullPage: true });

  // Bad files: a clear notice, and the chat keeps working.
  await dropFile(page, 'notes.png', Buffer.from('just text, not pixels\n'), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('notes.png is not an image this browser can read');
  await dropFile(page, 'broken.png', png.subarray(0, 200), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('broken.png is not an image this browser can read');
  await expect(page.getByTestId('send')).toBeEnabled();
});
