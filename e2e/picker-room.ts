// How many pixels the top bar's model picker has to spare around the selected model's whole name (negative: the
// name is cut). Measured with the select's own font, less its padding and the native arrow.
import type { Page } from '@playwright/test';

export function pickerRoom(page: Page): Promise<number> {
  return page.getByRole('combobox', { name: 'Model to load' }).evaluate((el) => {
    const select = el as HTMLSelectElement;
    const style = getComputedStyle(select);
    const ctx = document.createElement('canvas').getContext('2d')!;
    ctx.font = style.font;
    const text = ctx.measureText(select.selectedOptions[0]?.text ?? '').width;
    const inner = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    return inner - 16 - text; // 16 px: the native arrow
  });
}
