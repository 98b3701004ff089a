// Node-only: a WebGPU device through Dawn (the `webgpu` npm package). On a machine without a GPU, Dawn's
// Vulkan backend runs on Chromium's SwiftShader (src/node/node-env.ts points VK_ICD_FILENAMES at it).
import './node-env.ts';
import { create, globals } from 'webgpu';
import { GpuUnavailableError, requestGpuDevice, useGpuKernelShapes, type GpuContext, type RequestDeviceOptions } from '../gpu/device.ts';
import { SWIFTSHADER_ICD } from './node-env.ts';

const instances = new Map<string, GPU>();

/**
 * Dawn's GPU object for the given Dawn flags (default none: the real driver), created once per process and
 * flag set; also installs the WebGPU globals (GPUBufferUsage, ...).
 */
export function nodeGpu(dawnFlags: readonly string[] = []): GPU {
  const key = dawnFlags.join(' ');
  let gpu = instances.get(key);
  if (!gpu) {
    Object.assign(globalThis, globals);
    gpu = create([...dawnFlags]);
    instances.set(key, gpu);
  }
  return gpu;
}

/**
 * A device on Dawn's Null backend: it compiles and validates WGSL and pipelines exactly like the real one and
 * has every feature (shader-f16 included) but executes nothing (buffers read back unchanged). For checking that
 * f16 shaders build on a machine whose GPU (or SwiftShader) lacks shader-f16; never for results.
 */
export function createValidationOnlyGpu(opts: RequestDeviceOptions = {}): Promise<GpuContext> {
  return requestGpuDevice(nodeGpu(['backend=null']), opts);
}

/**
 * Optional features that LLAVA_DISABLE_FEATURES (comma-separated, e.g. `shader-f16`) keeps off the device, so
 * the tests and the CLI can run the f32 fallbacks on an adapter that has shader-f16.
 */
export function disabledFeatures(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.LLAVA_DISABLE_FEATURES ?? '').split(',').map((f) => f.trim()).filter(Boolean);
}

/**
 * LLAVA_KERNEL_SHAPES=gpu: kernels take their GPU shapes even on a CPU adapter (useGpuKernelShapes), so the path a
 * GPU runs is checked on lavapipe / SwiftShader. Anything else (or unset): the adapter's own shapes.
 */
export function kernelShapesFromEnv(env: NodeJS.ProcessEnv = process.env): 'gpu' | 'adapter' {
  const v = env.LLAVA_KERNEL_SHAPES;
  if (v === undefined || v === '' || v === 'adapter') return 'adapter';
  if (v === 'gpu') return 'gpu';
  throw new Error(`LLAVA_KERNEL_SHAPES=${v}: use gpu (the kernels' GPU shapes on any adapter) or adapter (the default)`);
}

/**
 * Adapter + device in Node (same GpuContext as the browser). Throws GpuUnavailableError with setup hints when
 * Dawn finds no adapter. Call `ctx.device.destroy()` when done so the process can exit promptly.
 */
export async function createNodeGpu(opts: RequestDeviceOptions = {}): Promise<GpuContext> {
  try {
    const shapes = kernelShapesFromEnv();
    const ctx = await requestGpuDevice(nodeGpu(), { withoutFeatures: disabledFeatures(), ...opts });
    if (shapes === 'gpu') useGpuKernelShapes(ctx.device);
    return ctx;
  } catch (e) {
    if (e instanceof GpuUnavailableError && e.kind === 'no-adapter') {
      const icd = process.env.VK_ICD_FILENAMES ?? process.env.VK_DRIVER_FILES;
      throw new GpuUnavailableError(
        'no-adapter',
        `Dawn (npm package "webgpu") found no GPU adapter${icd ? ` (VK_ICD_FILENAMES=${icd})` : ' (VK_ICD_FILENAMES is not set)'}.`,
        [
          'Install the Vulkan loader and a Vulkan driver: on Debian/Ubuntu `apt-get install libvulkan1 chromium` (Chromium ships SwiftShader, a CPU Vulkan driver; scripts/install-system-deps.sh does this).',
          `Without a GPU, set VK_ICD_FILENAMES=${SWIFTSHADER_ICD} (done automatically when that file exists and the variable is unset). Mesa's lavapipe is refused by Dawn.`,
          'With a GPU, leave VK_ICD_FILENAMES unset (or point it at the GPU vendor\'s ICD json) and install the vendor Vulkan driver.',
        ],
      );
    }
    throw e;
  }
}
