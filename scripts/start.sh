#!/usr/bin/env bash
# The one start command (README): installs the npm packages, prepares the demo model (random weights, generated
# once, no network needed), builds the app and serves the production build on http://localhost:5173, so its
# service worker registers and the page opens offline afterwards. `npm run dev` is the development server.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
node --import tsx scripts/prepare-demo-model.ts
npm run build
exec npx vite preview --host localhost --port "${PORT:-5173}" --strictPort
