// Closing lines of ./scripts/test.sh: per adapter pass, how many tests ran, passed, failed and skipped (with the
// skipped tests' names where they matter), then the total. Reads test-reports/: each Vitest pass writes
// vitest-<pass>.json and adapter-<pass>.json (`npm run cli -- gpu --json`), Playwright writes playwright.json.
import { existsSync, readdirSync, readFileSync } from 'node:fs';

const REPORTS = 'test-reports';
const read = (f) => JSON.parse(readFileSync(`${REPORTS}/${f}`, 'utf8'));
const total = { ran: 0, passed: 0, failed: 0, skipped: 0 };
const lines = [];

function add(label, c, skippedNames = []) {
  for (const k of Object.keys(total)) total[k] += c[k];
  lines.push(`${label}: ${c.ran} ran, ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
  for (const n of skippedNames) lines.push(`    skipped: ${n}`);
}

function adapterLabel(pass) {
  const f = `adapter-${pass}.json`;
  if (!existsSync(`${REPORTS}/${f}`)) return `${pass} (adapter unknown)`;
  const a = read(f);
  const f16 = a.deviceFeatures.includes('shader-f16') ? 'shader-f16' : 'no shader-f16';
  return `Node/Dawn on ${a.vendor} / ${a.architecture} (${f16}${a.shaderF16 && !a.deviceFeatures.includes('shader-f16') ? ' requested' : ''})`;
}

for (const file of existsSync(REPORTS) ? readdirSync(REPORTS).filter((f) => /^vitest-.*\.json$/.test(f)).sort() : []) {
  const pass = file.slice('vitest-'.length, -'.json'.length);
  const r = read(file);
  const skipped = r.testResults.flatMap((f) => f.assertionResults.filter((t) => t.status === 'pending' || t.status === 'skipped' || t.status === 'todo').map((t) => t.fullName));
  add(`${adapterLabel(pass)} [${pass}]`, {
    ran: r.numTotalTests,
    passed: r.numPassedTests,
    failed: r.numFailedTests,
    skipped: r.numPendingTests + r.numTodoTests,
  }, skipped);
}
if (existsSync(`${REPORTS}/playwright.json`)) {
  const s = read('playwright.json').stats;
  const passed = s.expected + s.flaky;
  add('Chromium, headless (browser tests) [playwright]', { ran: passed + s.unexpected + s.skipped, passed, failed: s.unexpected, skipped: s.skipped });
}
console.log(`\n${lines.join('\n')}\n${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
