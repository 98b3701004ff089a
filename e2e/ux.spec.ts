// The app as people use it, in Chromium on SwiftShader: the chat-first layout in every state (screenshots in
// e2e/screenshots/ and an axe scan of each view), messages that stay in view, nothing lost (a reload mid-answer,
// two tabs, a lost GPU device), controls that say what they do, and the production server opening offline.
import AxeBuilder from '@axe-core/playwright';
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { PNG } from 'pngjs';
import { expectModelLoaded } from './model-loaded.ts';
import { pickerRoom } from './picker-room.ts';

const SHOTS = 'e2e/screenshots';

/** axe on the page as it is: no serious or critical violation (each one listed when there are). */
async function expectAccessible(page: Page, view: string): Promise<void> {
  const { violations } = await new AxeBuilder({ page }).analyze();
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  expect(bad.map((v) => `${view}: ${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)).toEqual([]);
}

function photoPng(width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  for (let i = 0; i < width * height; i++) {
    const [x, y] = [i % width, Math.floor(i / width)];
    png.data.set([(x * 5) & 255, (y * 4) & 255, 160, 255], i * 4);
  }
  return PNG.sync.write(png);
}

async function dropFile(page: Page, name: string, bytes: Buffer, type: string): Promise<void> {
  const dt = await page.evaluateHandle(
    ({ name, data, type }) => {
      const t = new DataTransfer();
      t.items.add(new File([Uint8Array.from(atob(data), (c) => c.charCodeAt(0))], name, { type }));
      return t;
    },
    { name, data: bytes.toString('base64'), type },
  );
  await page.dispatchEvent('main', 'drop', { dataTransfer: dt });
}

/**
 * Writes a saved conversation of `turns` questions and answers straight into the app's IndexedDB (idb-keyval
 * layout), last written `updatedAt` (default now), at the end of the list, and opened; each answer starts with
 * `answer` when given.
 */
async function seedConversation(page: Page, id: string, turns: number, opts: { updatedAt?: number; answer?: string } = {}): Promise<void> {
  const { updatedAt = Date.now(), answer = 'Answer' } = opts;
  await page.evaluate(
    ({ id, turns, updatedAt, answer }) =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('llava-mini');
        open.onupgradeneeded = () => open.result.createObjectStore('chats');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const tx = open.result.transaction('chats', 'readwrite');
          const chats = tx.objectStore('chats');
          const messages = Array.from({ length: turns }, (_, i) => [
            { id: `${id}-q${i}`, role: 'user', text: `Question ${i + 1} about the picture`, images: [], status: 'done' },
            { id: `${id}-a${i}`, role: 'assistant', text: `${answer} ${i + 1}: ${'a long line of words '.repeat(8)}`, images: [], status: 'done' },
          ]).flat();
          chats.put(messages, `chat:${id}`);
          const index = chats.get('index');
          index.onsuccess = () => chats.put([...((index.result as object[] | undefined) ?? []), { id, title: `Question 1 about the picture (${id})`, updatedAt }], 'index');
          chats.put(id, 'current');
          tx.oncomplete = () => resolve();
          tx.onerror = () => reject(tx.error);
        };
      }),
    { id, turns, updatedAt, answer },
  );
}

/** A second tab beside `page`, both showing a seeded one-turn conversation `id`. */
async function twoTabsOn(page: Page, context: BrowserContext, id: string): Promise<Page> {
  await page.goto('/');
  await seedConversation(page, id, 1);
  await page.reload();
  const other = await context.newPage();
  await other.goto('/');
  for (const p of [page, other]) await expect(p.getByTestId('msg-user')).toHaveCount(1);
  return other;
}

/** The page as a 390 px phone in dark mode, its sidebar drawer open. */
async function phoneDarkDrawer(page: Page): Promise<void> {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.reload();
  await page.getByRole('button', { name: 'Show the sidebar' }).click();
}

test('first run, the views, phone and dark: screenshots, and axe finds no serious or critical problem', async ({ page }) => {
  test.setTimeout(180_000);
  await page.goto('/');
  await expect(page.getByTestId('load-model')).toBeEnabled();
  await expect(page.getByTestId('empty-thread')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/first-run.png` });
  await expectAccessible(page, 'chat');
  for (const [view, testId] of [
    ['model', 'model-page'],
    ['downloads', 'downloads-page'],
    ['diagnostics', 'diagnostics-page'],
  ] as const) {
    await page.goto(`/#/${view}`);
    await expect(page.getByTestId(testId)).toBeVisible();
    if (view === 'downloads') await expect(page.getByTestId('real-model-check')).toBeVisible();
    await page.screenshot({ path: `${SHOTS}/${view}.png`, fullPage: true });
    await expectAccessible(page, view);
  }
  // Precision: f16 is offered only where the adapter has shader-f16, and says why not.
  await page.goto('/#/model');
  const f16 = page.getByLabel("Precision of a checkpoint's weights").locator('option[value="f16"]');
  const shaderF16 = await page.evaluate(async () => Boolean((await navigator.gpu.requestAdapter())?.features.has('shader-f16')));
  if (shaderF16) await expect(f16).toBeEnabled();
  else {
    await expect(f16).toBeDisabled();
    await expect(f16).toContainText('needs shader-f16');
  }

  // A 390 px phone in dark mode: the chat (composer in view), the sidebar as a drawer, and axe on both.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/');
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeInViewport();
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  // The model picker shows the whole name of the selected model (it was cut to "LLaVA-Mini de…").
  expect(await pickerRoom(page)).toBeGreaterThanOrEqual(0);
  await page.screenshot({ path: `${SHOTS}/phone-dark.png` });
  await expectAccessible(page, 'phone chat (dark)');
  await page.getByRole('button', { name: 'Show the sidebar' }).click();
  await expect(page.getByRole('dialog')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/phone-dark-drawer.png` });
  await expectAccessible(page, 'phone drawer (dark)');
  await page.getByRole('link', { name: 'GPU diagnostics' }).click();
  await expect(page.getByRole('dialog')).toHaveCount(0);
  await expect(page.getByTestId('diagnostics-page')).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/phone-dark-diagnostics.png` });
});

test('a notice is in view, next to the composer, after a 30-message thread', async ({ page }) => {
  await page.goto('/');
  await seedConversation(page, 'long', 15);
  await page.reload();
  await expect(page.getByTestId('msg-assistant')).toHaveCount(15);
  // The thread scrolls, the composer does not: the user reads the end of the thread.
  await page.getByTestId('msg-assistant').last().scrollIntoViewIfNeeded();
  await dropFile(page, 'notes.png', Buffer.from('just text, not pixels\n'), 'image/png');
  const notice = page.getByTestId('chat-notice');
  await expect(notice).toContainText('notes.png is not an image this browser can read');
  await expect(notice).toBeInViewport();
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeInViewport();
  await page.screenshot({ path: `${SHOTS}/error-notice.png` });
  await expectAccessible(page, 'long thread with a notice');
});

test('the sidebar groups conversations by age; a long list scrolls inside it, the views stay in place', async ({ page }) => {
  await page.goto('/');
  const day = 24 * 60 * 60 * 1000;
  const ages = [0, 0, 1, 3, 5, 12, 20, 45, 80, 120, 200, 300, 400];
  for (const [i, age] of ages.entries()) await seedConversation(page, `c${i}`, 1, { updatedAt: Date.now() - age * day, answer: i % 4 === 0 ? 'A red bicycle' : 'Answer' });
  await page.reload();
  const groups = page.getByTestId('conversations').locator('section');
  await expect(groups.first()).toHaveAccessibleName('Today');
  const labels = await groups.locator('h3').allTextContents();
  expect(labels.slice(0, 4)).toEqual(['Today', 'Yesterday', 'Previous 7 days', 'Previous 30 days']);
  expect(labels.slice(4).every((l) => /^[A-Z][a-z]+ \d{4}$/.test(l))).toBe(true);
  await expect(page.getByTestId('conversations').locator('li')).toHaveCount(ages.length);
  await expect(groups.first().locator('li')).toHaveCount(2);
  // 13 conversations overflow the 900 px sidebar: the list scrolls, the views stay in view.
  await expect(page.getByRole('link', { name: 'GPU diagnostics' })).toBeInViewport();
  await page.getByTestId('conversations').locator('li').last().scrollIntoViewIfNeeded();
  await expect(page.getByRole('link', { name: 'GPU diagnostics' })).toBeInViewport();
  await expect(page.getByRole('button', { name: 'New chat' })).toBeInViewport();
  await page.screenshot({ path: `${SHOTS}/conversation-groups.png` });
  await expectAccessible(page, 'conversation groups');
  // A row's rename button shows on hover or focus only (the open conversation's always): a Tab from the title
  // reaches it.
  const rename = page.getByRole('button', { name: 'Rename Question 1 about the picture (c0)' });
  await expect(rename).toBeHidden();
  await page.getByRole('button', { name: 'Question 1 about the picture (c0)', exact: true }).focus();
  await page.keyboard.press('Tab');
  await expect(rename).toBeFocused();

  // Search: titles and messages, case-insensitive, the groups kept; Escape clears it, then the whole list is back.
  const search = page.getByRole('searchbox', { name: 'Search conversations' });
  await search.fill('RED BICYCLE');
  const titles = page.getByTestId('conversations').locator('li');
  await expect(titles).toHaveText(['c0', 'c4', 'c8', 'c12'].map((id) => `Question 1 about the picture (${id})`));
  await expect(groups.locator('h3')).toHaveText(['Today', 'Previous 7 days', /^\w+ \d{4}$/, /^\w+ \d{4}$/]);
  await search.fill('(c11)');
  await expect(titles).toHaveText(['Question 1 about the picture (c11)']);
  await page.screenshot({ path: `${SHOTS}/conversation-search.png` });
  await search.fill('giraffe');
  await expect(page.getByText('No conversation mentions “giraffe”.')).toBeVisible();
  await expect(page.getByTestId('conversations')).toHaveCount(0);
  await expectAccessible(page, 'conversation search, nothing found');
  await search.press('Escape');
  await expect(search).toHaveValue('');
  await expect(titles).toHaveCount(ages.length);
});

test('files dragged over any view: the page says what a drop does; a drop on another view opens the chat; an image dropped before a model waits for one', async ({ page }) => {
  await page.goto('/#/model');
  await expect(page.getByTestId('model-page')).toBeVisible();
  const drag = (what: 'file' | 'text') =>
    page.evaluateHandle((what) => {
      const t = new DataTransfer();
      if (what === 'file') t.items.add(new File(['x'], 'photo.png', { type: 'image/png' }));
      else t.setData('text/plain', 'some words');
      return t;
    }, what);
  const overlay = page.getByTestId('drop-overlay');
  await page.dispatchEvent('main', 'dragenter', { dataTransfer: await drag('file') });
  await expect(overlay).toBeVisible();
  await expect(overlay).toContainText('Drop to add to your question');
  await page.screenshot({ path: `${SHOTS}/drop-overlay.png` });
  // Leaving the window (no relatedTarget) or Escape hides it; dragged text never shows it.
  await page.dispatchEvent('main', 'dragleave', { dataTransfer: await drag('file') });
  await expect(overlay).toHaveCount(0);
  await page.dispatchEvent('main', 'dragenter', { dataTransfer: await drag('file') });
  await page.keyboard.press('Escape');
  await expect(overlay).toHaveCount(0);
  await page.dispatchEvent('main', 'dragenter', { dataTransfer: await drag('text') });
  await expect(overlay).toHaveCount(0);
  // A 390 px phone in dark mode. The window narrowed past the phone width (a tablet turned to portrait) closes the
  // sidebar instead of opening it as a drawer over the page.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.emulateMedia({ colorScheme: 'dark' });
  await expect(page.getByRole('button', { name: 'Show the sidebar' })).toBeVisible();
  await expect(page.getByRole('dialog')).toHaveCount(0);
  await page.dispatchEvent('main', 'dragenter', { dataTransfer: await drag('file') });
  await expect(overlay).toBeVisible();
  await page.screenshot({ path: `${SHOTS}/phone-dark-drop-overlay.png` });
  // The drop: the overlay goes, and the chat opens with the file's fate (here: not an image) by the composer.
  await dropFile(page, 'notes.png', Buffer.from('just text, not pixels\n'), 'image/png');
  await expect(overlay).toHaveCount(0);
  await expect(page.getByTestId('chat')).toBeVisible();
  expect(new URL(page.url()).hash).toBe('#/');
  await expect(page.getByTestId('chat-notice')).toContainText('notes.png is not an image this browser can read');

  // An image dropped before any model is loaded waits for one (it used to be dropped with "no model is loaded"),
  // and is encoded as soon as a model is.
  test.setTimeout(600_000);
  await dropFile(page, 'photo.png', photoPng(320, 240), 'image/png');
  const attachment = page.getByTestId('attachments').locator('li');
  await expect(attachment).toHaveAttribute('data-status', 'waiting');
  await expect(attachment).toContainText('waits for a model: load one (top bar)');
  await page.screenshot({ path: `${SHOTS}/phone-dark-image-waiting.png` });
  await page.getByTestId('load-model').click();
  await expectModelLoaded(page, 600_000);
  await expect(attachment).toHaveAttribute('data-status', 'ready', { timeout: 240_000 });
});

test('two tabs: a conversation deleted in one is gone from the other and stays deleted', async ({ page, context }) => {
  const other = await twoTabsOn(page, context, 'shared');
  // On a 390 px phone in dark mode the delete asks from inside the drawer; Escape closes only the question.
  const desktop = other.viewportSize()!;
  await phoneDarkDrawer(other);
  await other.getByRole('button', { name: /^Delete Question 1 about the picture/ }).click();
  await expect(other.getByRole('alertdialog')).toBeVisible();
  await other.screenshot({ path: `${SHOTS}/phone-dark-delete-confirm.png` });
  await expectAccessible(other, 'delete confirmation (phone, dark)');
  await other.keyboard.press('Escape');
  await expect(other.getByRole('alertdialog')).toHaveCount(0);
  await expect(other.getByRole('dialog')).toBeVisible();
  await other.keyboard.press('Escape');
  await expect(other.getByRole('dialog')).toHaveCount(0);
  await other.setViewportSize(desktop);
  await other.emulateMedia({ colorScheme: 'light' });
  await other.reload();
  await expect(other.getByTestId('msg-user')).toHaveCount(1);

  // Deleting asks first: Cancel (and Escape) keep the conversation; only Delete removes it.
  const deleteButton = other.getByRole('button', { name: /^Delete Question 1 about the picture/ });
  await deleteButton.click();
  const confirm = other.getByRole('alertdialog');
  await expect(confirm).toContainText('Its messages and images are removed from this browser, in every tab.');
  await expect(confirm.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await other.screenshot({ path: `${SHOTS}/delete-conversation-confirm.png` });
  await expectAccessible(other, 'delete confirmation');
  await other.keyboard.press('Escape');
  await expect(confirm).toHaveCount(0);
  await deleteButton.click();
  await confirm.getByRole('button', { name: 'Cancel' }).click();
  await expect(other.getByTestId('msg-user')).toHaveCount(1);
  await expect(page.getByTestId('msg-user')).toHaveCount(1);
  await deleteButton.click();
  await confirm.getByRole('button', { name: 'Delete' }).click();
  // The first tab hears of it at once: the list loses it and the open thread closes, with a word on why.
  await expect(page.getByTestId('conversations')).toHaveCount(0);
  await expect(page.getByTestId('msg-user')).toHaveCount(0);
  await expect(page.getByTestId('chat-notice')).toContainText('deleted in another tab');
  // Nothing brings it back: both tabs reloaded still have no conversation.
  for (const p of [page, other]) {
    await p.reload();
    await expect(p.getByTestId('empty-thread')).toBeVisible();
    await expect(p.getByTestId('conversations')).toHaveCount(0);
  }
  await other.close();
});

test('two tabs: a conversation renamed in one is renamed in the other; Escape drops an edit; an empty name gives back the automatic title', async ({ page, context }) => {
  const other = await twoTabsOn(page, context, 'trip');
  const titles = (p: Page) => p.getByTestId('conversations').locator('li');

  // The pencil turns the title into a field holding the whole title, selected: typing replaces it.
  await page.getByRole('button', { name: 'Rename Question 1 about the picture (trip)' }).click();
  const field = page.getByRole('textbox', { name: 'Conversation name' });
  await expect(field).toBeFocused();
  await expect(field).toHaveValue('Question 1 about the picture (trip)');
  await page.keyboard.type('Holiday photos');
  await page.screenshot({ path: `${SHOTS}/rename-conversation.png` });
  await expectAccessible(page, 'renaming a conversation');
  await page.keyboard.press('Enter');
  await expect(titles(page)).toHaveText(['Holiday photos']);
  await expect(page.getByRole('button', { name: 'Holiday photos', exact: true })).toBeFocused();
  // The other tab shows the name at once, and keeps its open thread as it was.
  await expect(titles(other)).toHaveText(['Holiday photos']);
  await expect(other.getByTestId('msg-user')).toHaveCount(1);
  await expect(other.getByTestId('chat-notice')).toHaveCount(0);

  // Escape drops an edit; leaving the field keeps one.
  await page.getByRole('button', { name: 'Rename Holiday photos' }).click();
  await page.keyboard.type('Something else');
  await page.keyboard.press('Escape');
  await expect(titles(page)).toHaveText(['Holiday photos']);
  await page.getByRole('button', { name: 'Rename Holiday photos' }).click();
  await page.keyboard.type('  Beach, day 2  ');
  await page.getByRole('textbox', { name: 'Message' }).click();
  await expect(titles(page)).toHaveText(['Beach, day 2']);
  for (const p of [page, other]) {
    await p.reload();
    await expect(titles(p)).toHaveText(['Beach, day 2']);
  }

  // On a 390 px phone in dark mode the field is in the drawer; Escape drops the edit, not the drawer.
  await phoneDarkDrawer(other);
  await other.getByRole('button', { name: 'Rename Beach, day 2' }).click();
  await expect(other.getByRole('textbox', { name: 'Conversation name' })).toBeFocused();
  await other.screenshot({ path: `${SHOTS}/phone-dark-rename.png` });
  await expectAccessible(other, 'renaming a conversation (phone, dark)');
  await other.keyboard.press('Escape');
  await expect(other.getByRole('textbox', { name: 'Conversation name' })).toHaveCount(0);
  await expect(other.getByRole('dialog')).toBeVisible();
  await expect(titles(other)).toHaveText(['Beach, day 2']);

  // An empty name gives back the automatic title, the first question's start, in both tabs.
  await page.getByRole('button', { name: 'Rename Beach, day 2' }).click();
  await page.keyboard.press('Delete');
  await page.keyboard.press('Enter');
  for (const p of [page, other]) await expect(titles(p)).toHaveText(['Question 1 about the picture']);
  await other.close();
});

test("start.sh's production server registers a service worker and the page reopens offline", async ({ page }) => {
  await page.goto('/');
  expect(await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL)).toMatch(/\/sw\.js$/);
  await page.context().setOffline(true);
  await page.reload();
  await expect(page.getByRole('heading', { level: 1 })).toContainText('LLaVA-Mini');
  await expect(page.getByRole('textbox', { name: 'Message' })).toBeVisible();
  await page.context().setOffline(false);
});

test('with the demo model: honest progress, stats, a lost GPU device recovered, and a reload mid-answer', async ({ page }) => {
  test.setTimeout(1_800_000);
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto('/');
  await page.getByTestId('load-model').click();
  // Progress says what is measured: uploads in bytes, then pipelines counted as they are built.
  const progress = page.getByTestId('load-progress');
  await expect(progress).toHaveAttribute('data-stage', 'kernels', { timeout: 300_000 });
  await expect(progress).toContainText(/Building GPU kernels: \d+ of \d+ pipelines built so far/);
  await page.screenshot({ path: `${SHOTS}/loading.png` });
  await expectModelLoaded(page, 600_000);
  // Loading the demo model probed for no file that is not there: no 404s, no errors.
  expect(consoleErrors).toEqual([]);
  const fallback = await page.evaluate(async () => {
    const adapter = (await navigator.gpu.requestAdapter()) as (GPUAdapter & { isFallbackAdapter?: boolean }) | null;
    return Boolean((adapter?.info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? adapter?.isFallbackAdapter);
  });
  await page.getByRole('button', { name: 'Settings' }).click();
  if (fallback) {
    // A software adapter: the demo answers in 64 tokens by default, and the notice says why.
    await expect(page.getByTestId('chat-notice')).toContainText('software (CPU) adapter');
    await expect(page.getByLabel('Max new tokens')).toHaveValue('64');
  }
  await page.getByLabel('Max new tokens').fill('4');
  await page.getByRole('button', { name: 'Settings' }).click();

  // An over-long prompt: the composer shows it over the context before sending, and Enter says what to do.
  const box = page.getByRole('textbox', { name: 'Message' });
  await box.fill('word '.repeat(4500));
  const meter = page.getByTestId('context-usage');
  await expect(meter).toContainText('too long');
  await box.press('Enter');
  await expect(page.getByTestId('chat-notice')).toContainText(/This message is \d+ tokens long and the model's context holds \d+: shorten it by at least \d+ tokens/);
  await expect(box).not.toHaveValue(''); // the text stays, to be shortened
  await box.fill('');

  // An image: encoded as soon as it is attached, its stage shown; then a question and its stats.
  await dropFile(page, 'photo.png', photoPng(320, 240), 'image/png');
  const attachment = page.getByTestId('attachments').locator('li');
  await expect(attachment).toHaveAttribute('data-stage', /image side|vision pre-fusion/);
  await page.screenshot({ path: `${SHOTS}/image-encoding.png` });
  await expect(attachment).toHaveAttribute('data-status', 'ready', { timeout: 240_000 });
  const before = Number(await meter.getAttribute('data-rows'));
  await box.fill('What is in this image?');
  await expect.poll(async () => Number(await meter.getAttribute('data-rows'))).toBeGreaterThan(before);
  await box.press('Enter');
  const first = page.getByTestId('msg-assistant').first();
  await expect(first).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  // A name given to the conversation stays over the answers saved after it (checked at the end).
  await page.getByRole('button', { name: 'Rename What is in this image?' }).click();
  await page.keyboard.type('Test photo');
  await page.keyboard.press('Enter');
  const stats = first.getByTestId('answer-stats');
  await expect(stats.locator('summary')).toContainText(/TTFT \d+ ms.*tok\/s.*images 1 tok.*text \d+ tok/);
  await stats.locator('summary').click();
  // The table's cells keep their width: labels on one line, values wider than a few letters.
  const cells = await stats.locator('th, td').evaluateAll((els) =>
    els.map((e) => {
      const text = document.createRange();
      text.selectNodeContents(e);
      const lines = new Set([...text.getClientRects()].map((r) => Math.round(r.top))).size;
      return { tag: e.tagName, text: e.textContent ?? '', width: e.getBoundingClientRect().width, lines };
    }),
  );
  expect(cells.length).toBe(10);
  for (const c of cells) {
    if (c.tag === 'TH') {
      expect(c.width, c.text).toBeGreaterThan(60);
      expect(c.lines, c.text).toBe(1); // never a letter per line
    } else expect(c.width, c.text).toBeGreaterThan(200);
  }
  await page.screenshot({ path: `${SHOTS}/chat-with-image-and-stats.png` });
  await expectAccessible(page, 'chat with an answer and stats');
  // The image in the thread opens larger.
  await page.getByTestId('msg-user').first().getByRole('button', { name: 'Open photo.png larger' }).click();
  const large = page.getByTestId('lightbox').locator('img');
  await expect(large).toBeVisible();
  expect((await large.boundingBox())!.width).toBeGreaterThan(300);
  await page.screenshot({ path: `${SHOTS}/image-large.png` });
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('lightbox')).toHaveCount(0);

  // The GPU device is lost mid-conversation (destroyed in the engine worker): the app says so, loads the model
  // again on a new device, and the next question is answered in the same conversation.
  const answersThen = await page.getByTestId('msg-assistant').count();
  await box.fill('What colour is it?');
  await box.press('Enter');
  await expect(page.getByTestId('msg-assistant').nth(answersThen)).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  const worker = page.workers().find((w) => w.url().includes('engine.worker'));
  expect(worker).toBeTruthy();
  await worker!.evaluate(() => (self as unknown as { engineHostForTests: { gpuDevice(): GPUDevice | null } }).engineHostForTests.gpuDevice()!.destroy());
  await expect(page.getByTestId('chat-notice')).toContainText('The GPU device was lost', { timeout: 30_000 });
  await expectModelLoaded(page, 600_000);
  await expect(page.getByTestId('chat-notice')).toContainText('your conversation goes on');
  await page.screenshot({ path: `${SHOTS}/device-lost-recovered.png` });
  const turnsBefore = await page.getByTestId('msg-user').count();
  const answersBefore = await page.getByTestId('msg-assistant').count();
  await box.fill('And its shape?');
  await box.press('Enter');
  // This question's answer by position: `.last()` could still be the previous, finished answer before the new one renders.
  const after = page.getByTestId('msg-assistant').nth(answersBefore);
  await expect(after).toHaveAttribute('data-status', 'done', { timeout: 300_000 });
  await expect(page.getByTestId('msg-user')).toHaveCount(turnsBefore + 1);
  await expect(page.getByTestId('conversations').locator('li')).toHaveText(['Test photo']);
  // The whole history went into the resumed conversation: the prompt holds every earlier turn and the image.
  expect(Number(await after.getAttribute('data-llm-rows'))).toBeGreaterThan(Number(await first.getAttribute('data-llm-rows')) + 10);

  // A long answer; Enter during it queues the next message visibly; a reload mid-answer keeps the partial text.
  await page.getByRole('button', { name: 'Settings' }).click();
  await page.getByLabel('Max new tokens').fill('400');
  await page.getByRole('button', { name: 'Settings' }).click();
  await box.fill('Tell me everything.');
  await box.press('Enter');
  const long = page.getByTestId('msg-assistant').last();
  await expect(long).toHaveAttribute('data-status', 'streaming');
  await box.fill('And then?');
  await box.press('Enter');
  await expect(page.getByTestId('queued')).toContainText('And then?');
  await expect(page.getByTestId('send')).toHaveText('Queue');
  await expect.poll(async () => (await long.getByTestId('answer-text').innerText()).length, { timeout: 120_000 }).toBeGreaterThan(20);
  await page.waitForTimeout(1500); // the answer is saved as it grows (at least once a second)
  const partial = await long.getByTestId('answer-text').innerText();
  await page.reload();
  const kept = page.getByTestId('msg-assistant').last();
  await expect(kept).toHaveAttribute('data-status', 'stopped');
  const keptText = await kept.getByTestId('answer-text').innerText();
  expect(keptText.length).toBeGreaterThan(10);
  expect(partial.startsWith(keptText) || keptText.startsWith(partial)).toBe(true);
  await expect(kept.getByTestId('continue')).toBeVisible();
  await expect(kept.getByTestId('regenerate')).toBeVisible();
  await expect(kept.getByTestId('continue')).toBeInViewport(); // the reopened thread shows its latest messages
  await page.screenshot({ path: `${SHOTS}/reloaded-mid-answer.png` });
});
