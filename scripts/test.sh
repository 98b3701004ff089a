#!/usr/bin/env bash
# The one test command (README, .ci/run): installs everything on a fresh Debian machine with
# Node 20 + npm, then runs the typecheck, every unit/GPU test (Vitest, Dawn on SwiftShader) and
# every browser test (Playwright, Debian's Chromium on SwiftShader).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund --loglevel=error
npx tsc -p .
npx vitest run
npx playwright test
