#!/usr/bin/env bash
# Debian packages the tests need: Chromium (browser tests, and its SwiftShader Vulkan driver), the Vulkan
# loader, and Mesa's lavapipe with the headers and compiler that build the shared shader-f16 shim
# (../shared/tools/lavapipe-f16: Dawn in Node on an adapter with shader-f16). Installs only what is missing.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
ls /usr/share/vulkan/icd.d/lvp_icd.*.json >/dev/null 2>&1 || need+=(mesa-vulkan-drivers)
[ -f /usr/include/vulkan/vulkan.h ] || need+=(libvulkan-dev)
command -v gcc >/dev/null || need+=(gcc)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${need[*]} (apt-get)…"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
