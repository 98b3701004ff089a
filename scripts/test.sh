#!/usr/bin/env bash
# The one test command (README, .ci/run): installs everything on a fresh Debian machine with Node 20 + npm, then
# runs the typecheck, the Vitest suite (unit + GPU through Dawn in Node) and the browser tests (Playwright).
#
# GPU tests run on every adapter this machine offers, each asserting what the engine must do on the adapter it got:
# - lavapipe (Mesa's CPU Vulkan driver through ../shared/tools/lavapipe-f16: shader-f16, subgroups, 128 MiB
#   bindings like many real GPUs): the whole Vitest suite, so every f16 / q4f16 kernel variant runs;
# - lavapipe with the device requested WITHOUT shader-f16 (LLAVA_DISABLE_FEATURES): the GPU test files again,
#   so every f32 fallback runs;
# - SwiftShader: the browser tests (headless Chromium only offers SwiftShader), which include the in-page kernel
#   self-test against the CPU reference. Without the lavapipe tool, the Vitest suite runs once on SwiftShader.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
npm ci --no-audit --no-fund --loglevel=error
npx tsc -p .
rm -rf test-reports && mkdir -p test-reports
status=0
LAVAPIPE=${LAVAPIPE_F16_WRAPPER:-../shared/tools/lavapipe-f16/with-lavapipe.sh}
# Test files that create a GPU device (directly, through the test helpers gpu.testing.ts and webllm/*.testing.ts,
# or by running the CLI), for the pass without shader-f16; the split-tensor test is left to the first pass, where its
# f32 and f16 tensors exceed lavapipe's 128 MiB binding (without shader-f16 it would only repeat the f32 case). The
# convert and reference commands never open a device, so their tests would only repeat the first pass.
gpu_test_files() {
  grep -rlE "createNodeGpu|nodeGpu\(|cli\.testing|gpu\.testing|fake-pipeline\.testing|webllm-lib\.testing" src scripts --include='*.test.ts' \
    | grep -vE "generate-split-tensors|convert-command|reference-command" | sort
}

# vitest_pass NAME [--require FEATURE] -- COMMAND-PREFIX… -- [FILES…]: records the adapter, then runs Vitest.
vitest_pass() {
  local name=$1; shift
  local require=()
  [ "$1" = --require ] && { require=(--require "$2"); shift 2; }
  shift # --
  local prefix=()
  while [ "$1" != -- ]; do prefix+=("$1"); shift; done
  shift
  echo "== Vitest [$name] =="
  if ! "${prefix[@]}" npm run -s cli -- gpu --json "${require[@]}" > "test-reports/adapter-$name.json"; then
    echo "the $name adapter is not what this pass needs (see above)"; status=1; return
  fi
  "${prefix[@]}" npx vitest run --reporter=default --reporter=json --outputFile.json="test-reports/vitest-$name.json" "$@" || status=1
}

if [ -x "$LAVAPIPE" ]; then
  vitest_pass lavapipe-f16 --require shader-f16 -- "$LAVAPIPE" --
  vitest_pass lavapipe-f32 -- env LLAVA_DISABLE_FEATURES=shader-f16 "$LAVAPIPE" -- $(gpu_test_files)
else
  echo "!! $LAVAPIPE not found: the f16 kernels cannot run here; Vitest runs on the default adapter only"
  vitest_pass default -- env --
fi
PLAYWRIGHT_JSON_OUTPUT_FILE=test-reports/playwright.json npx playwright test --reporter=list,json || status=1
node scripts/test-summary.mjs
exit $status
