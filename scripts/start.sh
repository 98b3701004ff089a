#!/usr/bin/env bash
# The one start command (README): installs the npm packages, prepares the demo model (random
# weights, generated once, no network needed) and serves the app on http://localhost:5173.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec npm run dev
