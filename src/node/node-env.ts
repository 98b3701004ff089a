// Node has no GPU on CI machines: point Dawn's Vulkan backend at Chromium's SwiftShader when the machine has
// no GPU device node, so tests and the CLI run the real WebGPU stack without a GPU.
// Imported by src/node/gpu.ts and used as Vitest's setup file (vite.config.ts).
// - An explicitly set VK_ICD_FILENAMES / VK_DRIVER_FILES is never overridden (set it to choose a driver).
// - With a GPU (/dev/dri/renderD* or /dev/nvidia0 present) the Vulkan loader picks the installed driver.
// - LLAVA_FORCE_SWIFTSHADER=1 uses SwiftShader even on a machine with a GPU.
// - With SwiftShader, an unset XDG_RUNTIME_DIR is set to a private temp dir (silences a harmless warning).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';

export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

function hasGpuDeviceNode(): boolean {
  if (existsSync('/dev/nvidia0')) return true;
  try {
    return readdirSync('/dev/dri').some((f) => f.startsWith('renderD'));
  } catch {
    return false;
  }
}

if (
  process.env.VK_ICD_FILENAMES === undefined &&
  process.env.VK_DRIVER_FILES === undefined &&
  existsSync(SWIFTSHADER_ICD) &&
  (process.env.LLAVA_FORCE_SWIFTSHADER === '1' || (process.platform === 'linux' && !hasGpuDeviceNode()))
) {
  process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  // SwiftShader's window-system probe prints "XDG_RUNTIME_DIR is invalid or not set" on headless machines:
  // give this process a private runtime dir (as Qt does) to keep test and CLI logs clean.
  if (!process.env.XDG_RUNTIME_DIR && typeof process.getuid === 'function') {
    const dir = `${tmpdir()}/runtime-${process.getuid()}`;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      process.env.XDG_RUNTIME_DIR = dir;
    } catch {
      // cosmetic only
    }
  }
}
