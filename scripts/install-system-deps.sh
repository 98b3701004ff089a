#!/usr/bin/env bash
# Debian packages the tests need: Chromium (browser tests, and its SwiftShader Vulkan driver that
# Dawn uses in Node) and the Vulkan loader. Installs only what is missing.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p; } | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${need[*]} (apt-get)…"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
