#!/usr/bin/env bash
# The one test command (README, .ci/run): installs everything on a fresh Debian machine with
# Node 20 + npm, then runs the typecheck, every unit/GPU test (Vitest, Dawn on SwiftShader) and
# every browser test (Playwright, Debian's Chromium on SwiftShader).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund --loglevel=error
npx tsc -p .
rm -rf test-reports && mkdir -p test-reports
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-reports/vitest.json || status=1
PLAYWRIGHT_JSON_OUTPUT_FILE=test-reports/playwright.json npx playwright test --reporter=list,json || status=1
node scripts/test-summary.mjs
exit $status
