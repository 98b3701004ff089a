// Image chat in Chromium with the demo checkpoint (tiny, random weights, real tokenizer) on SwiftShader:
// load the model into the engine worker, drop a PNG, ask; the streamed answer's token ids equal the Node CLI's
// greedy tokens for the same image, prompt and checkpoint. Bad files give a clear message and the chat goes on.
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { crc32, deflateSync } from 'node:zlib';
import { expect, test, type Page } from '@playwright/test';
import { GifWriter } from 'omggif';
import { PNG } from 'pngjs';
import { CLIP_SIZE } from './camera-clip.ts';
import { expectModelLoaded } from './model-loaded.ts';

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

/** A valid, all-black RGB PNG of any size: its zero rows deflate to almost nothing. */
function hugePng(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([Buffer.from(type), data])));
    return Buffer.concat([len, Buffer.from(type), data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const raw = Buffer.alloc(height * (1 + width * 3)); // filter byte 0 + black pixels per row
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
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

/** Opens the app with greedy 6-token settings, not yet loaded. */
async function openApp(page: Page): Promise<void> {
  await page.goto('/');
  await page.evaluate(() => localStorage.setItem('llava-mini-engine', JSON.stringify({ state: { precision: 'q4', settings: { systemPrompt: '', temperature: 0, topP: 1, maxNewTokens: 6 } }, version: 0 })));
  await page.reload();
}

async function loadModel(page: Page, opened = false): Promise<void> {
  if (!opened) await openApp(page);
  await page.getByTestId('load-model').click();
  await expectModelLoaded(page);
}

test('drop a PNG and ask: the streamed answer has the Node CLI greedy tokens', async ({ page }) => {
  test.setTimeout(600_000);
  await mkdir(FIXTURES, { recursive: true });
  const png = gradientPng(300, 220);
  await writeFile(`${FIXTURES}/photo.png`, png);
  const question = 'What is in this image?';
  const followUp = 'And what colours does it have?';
  const afterReload = 'Anything else?';
  // The Node CLI on the same checkpoint, image and questions (a three-turn conversation), in parallel with the page.
  const node = nodeCli(['--image', `${FIXTURES}/photo.png`, '--prompt', question, '--prompt', followUp, '--prompt', afterReload]);

  await loadModel(page);
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
  await page.getByTestId('answer-stats').last().locator('summary').click();
  await expect(page.getByTestId('answer-stats').last()).toContainText('none this turn: cached rows reused');
  await page.screenshot({ path: `${SHOTS}/image-chat.png`, fullPage: true });
  await page.screenshot({ path: `${SHOTS}/stats.png`, fullPage: false });

  // Reload: the conversation is still there (IndexedDB); a question after it re-encodes the saved image and
  // continues exactly where the conversation was.
  await page.reload();
  await expect(page.getByTestId('msg-assistant')).toHaveCount(2);
  await expect(page.getByTestId('msg-user').first().locator('img')).toHaveCount(1);
  await page.getByTestId('load-model').click();
  await expectModelLoaded(page);
  const third = await ask(page, afterReload);
  expect(third.tokens).toEqual(cli.turns[2]!.tokens);

  // Bad files: a clear notice, and the chat keeps working.
  await dropFile(page, 'notes.png', Buffer.from('just text, not pixels\n'), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('notes.png is not an image this browser can read');
  await dropFile(page, 'broken.png', png.subarray(0, 200), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('broken.png is not an image this browser can read');
  await dropFile(page, 'huge.png', hugePng(12000, 9000), 'image/png');
  await expect(page.getByTestId('chat-notice')).toContainText('huge.png is 12000x9000 (108 megapixels), over the limit of 64 megapixels');
  await expect(page.getByTestId('attachments')).toHaveCount(0);
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

  // Regenerate: the same question and images again (greedy: the same answer, from the cached rows); then edit it.
  await page.getByTestId('regenerate').click();
  const again = page.getByTestId('msg-assistant');
  await expect(again).toHaveCount(1);
  await expect(again).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  expect((await again.getAttribute('data-token-ids'))!.split(' ').map(Number)).toEqual(answer.tokens);
  expect(Number(await again.getAttribute('data-reused-rows'))).toBe(Number(await again.getAttribute('data-llm-rows')) - 1);
  await page.getByRole('button', { name: 'Edit', exact: true }).click();
  await page.getByRole('textbox', { name: 'Edit question' }).fill('Which one is brighter?');
  await page.getByRole('button', { name: 'Send edited' }).click();
  await expect(page.getByTestId('msg-user')).toHaveCount(1);
  await expect(page.getByTestId('msg-user')).toContainText('Which one is brighter?');
  await expect(page.getByTestId('msg-assistant')).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  await expect(page.getByTestId('msg-user').locator('img')).toHaveCount(2);

  // Stop: a long answer, stopped while it streams; the chat then goes on.
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByLabel('Max new tokens').fill('400');
  await page.getByRole('textbox', { name: 'Message' }).fill('Tell me everything.');
  await page.keyboard.press('Enter');
  const long = page.getByTestId('msg-assistant').last();
  await expect(long).toHaveAttribute('data-status', 'streaming');
  await page.waitForTimeout(3000);
  await page.getByTestId('stop').click();
  await expect(long).toHaveAttribute('data-status', 'stopped', { timeout: 15_000 });
  await expect(page.getByTestId('send')).toBeEnabled();
  // Reload: the stopped conversation is still there.
  await page.reload();
  await expect(page.getByTestId('msg-assistant')).toHaveCount(2);
  await expect(page.getByTestId('msg-assistant').last()).toHaveAttribute('data-status', 'stopped');
  await expect(page.getByTestId('msg-user').last()).toContainText('Tell me everything.');
});

test('webcam (Chromium fake camera playing our clip), offline: ask about a frame; live mode with flat GPU memory over 20 rounds', async ({ page }) => {
  test.setTimeout(900_000);
  await mkdir(FIXTURES, { recursive: true });
  await loadModel(page);
  // Everything from here on runs with the network off: the model is in the worker, the camera is local.
  await page.context().setOffline(true);
  await page.getByTestId('camera-toggle').click();
  await page.getByTestId('start-camera').click();
  await expect.poll(() => page.locator('video.camera').evaluate((v: HTMLVideoElement) => v.videoWidth)).toBe(CLIP_SIZE.width);
  // "Ask about this frame" asks: the frame is attached and the question in the message box is sent about it.
  const question = 'What is on the camera?';
  await page.getByRole('textbox', { name: 'Message' }).fill(question);
  const answersBefore = await page.getByTestId('msg-assistant').count();
  await page.getByTestId('capture-frame').click();
  // This question's answer by position (`.last()` could be an earlier, finished answer before it renders).
  const answer = page.getByTestId('msg-assistant').nth(answersBefore);
  await expect(answer).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  await expect(page.getByTestId('msg-user').last()).toContainText(question);
  // The open camera panel took the composer's room, and the thread still shows the end of the answer: its actions
  // row (it appears when the answer ends, after the last text) is in view, not under the panel.
  await expect(answer.getByRole('button', { name: 'Copy' })).toBeInViewport({ ratio: 1 });
  const frame = { tokens: (await answer.getAttribute('data-token-ids'))!.split(' ').map(Number), newImages: Number(await answer.getAttribute('data-new-images')) };
  expect(frame.newImages).toBe(1);

  // The frame frozen into the thread is our clip's (red left half, blue right half), and the browser's answer
  // about it equals the Node CLI's on the same PNG.
  const frozen = await page
    .getByTestId('msg-user')
    .last()
    .locator('img')
    .evaluate(async (img: HTMLImageElement) => {
      const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
      return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
    });
  const png = PNG.sync.read(Buffer.from(frozen, 'base64'));
  expect([png.width, png.height]).toEqual([CLIP_SIZE.width, CLIP_SIZE.height]);
  const rgb = (x: number, y: number) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 3)];
  const [left, right] = [rgb(40, 180), rgb(280, 180)];
  expect(left[0]! - left[2]!).toBeGreaterThan(120); // red
  expect(right[2]! - right[0]!).toBeGreaterThan(120); // blue
  await writeFile(`${FIXTURES}/camera-frame.png`, Buffer.from(frozen, 'base64'));
  expect(frame.tokens).toEqual((await nodeCli(['--image', `${FIXTURES}/camera-frame.png`, '--prompt', question])).tokens);

  await page.getByLabel('Every').fill('1');
  await page.getByTestId('live-start').click();
  const status = page.getByTestId('live-status');
  await expect(status).toHaveAttribute('data-rounds', '2', { timeout: 240_000 });
  const memoryAt2 = await status.getAttribute('data-memory');
  await expect(status).toHaveAttribute('data-rounds', '5', { timeout: 240_000 });
  // The camera panel stays short (preview beside live mode, its own scroll): the message box under it and live
  // mode's latest answer are both in view.
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeInViewport();
  await expect(page.getByTestId('live-answer')).toBeInViewport();
  await page.screenshot({ path: `${SHOTS}/webcam-live.png`, fullPage: true });
  await expect(status).toHaveAttribute('data-rounds', '20', { timeout: 600_000 });
  expect(await status.getAttribute('data-memory')).toBe(memoryAt2);
  await expect(status).toContainText(/stale frames dropped/);
  await page.getByTestId('live-stop').click();
});

test('a denied camera gives a clear message', async ({ page }) => {
  // The user's "Block" answer to the permission prompt, which headless Chromium cannot click.
  await page.addInitScript(() => {
    navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  });
  await page.goto('/');
  await page.getByTestId('camera-toggle').click();
  await page.getByTestId('start-camera').click();
  await expect(page.getByTestId('camera-error')).toContainText('Camera permission was denied');
});

/** 3 s at 2 fps: 6 full frames, each a gradient shifted by its index; sampled: frames 1, 2 and 4 (spec section 7). */
function gradientGif(): Buffer {
  const [w, h] = [64, 48];
  const palette = Array.from({ length: 256 }, (_, i) => (i << 16) | ((255 - i) << 8) | ((i * 3) & 255));
  const buf = new Uint8Array(w * h * 6 * 2 + 8192);
  const gw = new GifWriter(buf, w, h, { palette, loop: 0 });
  for (let k = 0; k < 6; k++) gw.addFrame(0, 0, w, h, Array.from({ length: w * h }, (_, i) => ((i % w) * 3 + Math.floor(i / w) + k * 40) & 255), { delay: 50 });
  return Buffer.from(buf.slice(0, gw.end()));
}

test('a video (animated GIF), picked before the model is loaded: frames sampled at 1 fps, a frame strip, and the Node CLI --video answer', async ({ page }) => {
  test.setTimeout(600_000);
  await mkdir(FIXTURES, { recursive: true });
  await writeFile(`${FIXTURES}/clip.gif`, gradientGif());
  const question = 'What happens in the video?';
  // --check: Node's frames (torch's nearest resize of the 64x48 frames) and tokens agree with the CPU reference,
  // so the page's tokens equal to Node's say its WebCodecs frames went through the same resize.
  const node = nodeCli(['--video', `${FIXTURES}/clip.gif`, '--prompt', question, '--check']);
  // Picked before the model is loaded: the frames are sampled at once and wait for a model, then are encoded.
  await openApp(page);
  await page.getByTestId('video-input').setInputFiles(`${FIXTURES}/clip.gif`);
  const attachment = page.getByTestId('attachments').locator('li');
  await expect(attachment).toHaveAttribute('data-status', 'waiting', { timeout: 60_000 });
  await expect(attachment.locator('img.frame')).toHaveCount(3);
  await loadModel(page, true);
  await expect(attachment).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
  await expect(attachment).toHaveAttribute('data-frames', '3');
  await expect(attachment.locator('img.frame')).toHaveCount(3);
  const answer = await ask(page, question);
  expect(answer.newImages).toBe(3);
  expect(answer.tokens).toEqual((await node).tokens);
});

/**
 * A WebM (VP8) clip encoded in the page with WebCodecs and mediabunny: 3 s at 10 fps, frame k a flat colour with
 * red = 8k, so a sampled frame tells which frame it is.
 */
async function webmClip(page: Page): Promise<Buffer> {
  const mediabunny = await readFile('node_modules/mediabunny/dist/bundles/mediabunny.min.mjs', 'utf8');
  const base64 = await page.evaluate(async (src) => {
    const M = await import(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
    const canvas = new OffscreenCanvas(160, 120);
    const ctx = canvas.getContext('2d')!;
    const output = new M.Output({ format: new M.WebMOutputFormat(), target: new M.BufferTarget() });
    const source = new M.CanvasSource(canvas, { codec: 'vp8', bitrate: 2e6 });
    output.addVideoTrack(source, { frameRate: 10 });
    await output.start();
    for (let k = 0; k < 30; k++) {
      ctx.fillStyle = `rgb(${8 * k}, ${255 - 8 * k}, 128)`;
      ctx.fillRect(0, 0, 160, 120);
      await source.add(k / 10, 1 / 10, { keyFrame: k % 10 === 0 });
    }
    await output.finalize();
    const bytes = new Uint8Array(output.target.buffer as ArrayBuffer);
    return btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
  }, mediabunny);
  return Buffer.from(base64, 'base64');
}

test('a video (WebM): frames sampled at 1 fps from the right moments, a frame strip, and an answer', async ({ page }) => {
  test.setTimeout(600_000);
  await loadModel(page);
  const clip = await webmClip(page);
  await page.getByTestId('video-input').setInputFiles({ name: 'clip.webm', mimeType: 'video/webm', buffer: clip });
  const attachment = page.getByTestId('attachments').locator('li');
  await expect(attachment).toHaveAttribute('data-status', 'ready', { timeout: 300_000 });
  await expect(attachment.getByTestId('video-sampling')).toHaveText('3 of 30 frames (10.0 fps, 3.0 s)');
  // 30 frames at 10 fps: num_frm = 30 // 10 = 3, frames (0+10)//2 = 5, (10+19)//2 = 14 and (19+29)//2 = 24 (spec 7).
  await expect(attachment).toHaveAttribute('data-frames', '3');
  const reds = await attachment.locator('img.frame').evaluateAll(async (imgs: HTMLImageElement[]) =>
    Promise.all(
      imgs.map(async (img) => {
        const bitmap = await createImageBitmap(await (await fetch(img.src)).blob());
        const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d')!;
        ctx.drawImage(bitmap, 0, 0);
        return ctx.getImageData(bitmap.width >> 1, bitmap.height >> 1, 1, 1).data[0]!;
      }),
    ),
  );
  expect(reds.map((r) => Math.round(r / 8))).toEqual([5, 14, 24]);
  const answer = await ask(page, 'What happens in the video?');
  expect(answer.newImages).toBe(3);
  expect(answer.tokens).toHaveLength(MAX_NEW_TOKENS);
});

test('model sources: a picked or dropped checkpoint folder, a URL (remembered), and a URL with no model', async ({ page }) => {
  test.setTimeout(600_000);
  await page.goto('/#/model');
  await page.getByTestId('model-folder').setInputFiles('public/models/demo');
  await expectModelLoaded(page);
  await expect(page.getByTestId('engine-memory-total')).toBeVisible();
  await page.getByRole('button', { name: 'Unload' }).click();

  // The checkpoint's files dropped on the page (as selected in a file manager) load as the model.
  // The files come from disk through a file input the test adds, as a file manager hands them to a drop.
  const names = await readdir('public/models/demo');
  await page.evaluate(() => {
    const input = Object.assign(document.createElement('input'), { type: 'file', multiple: true, id: 'drop-source', hidden: true });
    document.body.append(input);
  });
  await page.setInputFiles('#drop-source', names.map((n) => `public/models/demo/${n}`));
  const checkpointDrop = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    for (const f of (document.getElementById('drop-source') as HTMLInputElement).files!) dt.items.add(f);
    return dt;
  });
  await page.dispatchEvent('main', 'drop', { dataTransfer: checkpointDrop });
  await expectModelLoaded(page);
  await expect(page.getByTestId('engine-ready')).toContainText('dropped checkpoint');
  await expect(page.getByTestId('attachments')).toHaveCount(0);
  // With a model loaded, a dropped checkpoint (its files' names are what count) says what to do instead of
  // replacing the model under the chat.
  const another = await page.evaluateHandle(() => {
    const dt = new DataTransfer();
    for (const n of ['config.json', 'model.safetensors']) dt.items.add(new File(['{}'], n));
    return dt;
  });
  await page.dispatchEvent('main', 'drop', { dataTransfer: another });
  await expect(page.getByTestId('chat-notice')).toContainText('unload the current model first');
  await page.getByRole('button', { name: 'Unload' }).click();

  await page.getByLabel('Model URL').fill('/models/nothing-here/');
  await page.getByRole('button', { name: 'Load from URL' }).click();
  await expect(page.getByTestId('engine-error')).toContainText(/config\.json/);

  await page.getByLabel('Model URL').fill('/models/demo/');
  await page.getByRole('button', { name: 'Load from URL' }).click();
  await expectModelLoaded(page);
  await page.reload();
  await expect(page.getByLabel('Model URL')).toHaveValue('/models/demo/');
});
