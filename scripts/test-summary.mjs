// Prints one closing line "N passed, N failed, N skipped" over the Vitest and Playwright JSON reports,
// so a CI log shows the total of every test that ran.
import { readFileSync, existsSync } from 'node:fs';

const totals = { passed: 0, failed: 0, skipped: 0 };
const vitest = 'test-reports/vitest.json';
if (existsSync(vitest)) {
  const r = JSON.parse(readFileSync(vitest, 'utf8'));
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests;
  totals.skipped += r.numPendingTests + r.numTodoTests;
}
const playwright = 'test-reports/playwright.json';
if (existsSync(playwright)) {
  const s = JSON.parse(readFileSync(playwright, 'utf8')).stats;
  totals.passed += s.expected + s.flaky;
  totals.failed += s.unexpected;
  totals.skipped += s.skipped;
}
console.log(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
