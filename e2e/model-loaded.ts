// Waits until the model is loaded. A load that fails says why (the top bar's error), and one that does not finish
// says where it stood (the progress line), instead of only "engine-ready not found".
import { expect, type Page } from '@playwright/test';

export async function expectModelLoaded(page: Page, timeout = 240_000): Promise<void> {
  const ready = page.getByTestId('engine-ready');
  const error = page.getByTestId('engine-error');
  try {
    await expect(ready.or(error)).toBeVisible({ timeout });
  } catch (e) {
    const progress = await page.getByTestId('load-progress').textContent({ timeout: 1000 }).catch(() => null);
    throw new Error(`the model did not load in ${timeout / 1000} s: ${progress ? `the top bar still says "${progress}"` : 'no load in progress'}`, { cause: e });
  }
  if (await error.isVisible()) throw new Error(`the model did not load: ${await error.textContent()}`);
}
