// Node has no built-in GPU: point Dawn's Vulkan backend at Chromium's SwiftShader when no
// driver is configured, so tests run the real WebGPU stack on a GPU-less machine.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES) {
  const { existsSync } = await import('node:fs');
  if (existsSync(swiftshader)) process.env.VK_ICD_FILENAMES = swiftshader;
}
export {};
