// Adapter and device for the engine, from any GPU object: navigator.gpu in the browser, Dawn's in Node
// (src/node/gpu.ts). Asks for the adapter's full buffer / workgroup limits and for shader-f16 when present,
// summarises the adapter for the UI and the CLI, and turns a lost device into a readable reason.
import { formatBytes } from '../util/format-bytes.ts';

/** Limits the engine asks for at their adapter maximum (and shows in summaries). */
export const REQUESTED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
] as const;

/** Optional features requested whenever the adapter has them. */
export const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
  /** Every adapter feature, sorted. */
  features: string[];
  shaderF16: boolean;
  subgroups: boolean;
  timestampQuery: boolean;
  subgroupMinSize?: number;
  subgroupMaxSize?: number;
  limits: {
    maxBufferSize: number;
    maxStorageBufferBindingSize: number;
    maxComputeWorkgroupStorageSize: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupsPerDimension: number;
    maxStorageBuffersPerShaderStage: number;
  };
  /** Every adapter limit by its WebGPU name, sorted (for the diagnostics page). */
  allLimits: [string, number][];
}

export interface DeviceLostReport {
  reason: string;
  message: string;
  /** A sentence for people: what happened and what to do. */
  text: string;
}

export interface GpuContext {
  adapter: GPUAdapter;
  device: GPUDevice;
  summary: AdapterSummary;
  /** Features the device was created with (shader-f16 only when the adapter has it). */
  features: ReadonlySet<string>;
  /** Settles when the device is lost (including an intentional destroy(): reason 'destroyed'). */
  lost: Promise<DeviceLostReport>;
}

export type GpuUnavailableKind = 'no-webgpu' | 'no-adapter' | 'device-failed';

/** What to do when WebGPU is missing in a browser. */
export const WEBGPU_HELP: readonly string[] = [
  'Use a current Chrome or Edge (version 113 or later) — WebGPU is on by default on Windows, macOS and ChromeOS.',
  'On Linux, enable chrome://flags/#enable-unsafe-webgpu (and chrome://flags/#enable-vulkan), then restart the browser.',
  'Open the page from https:// or http://localhost: WebGPU exists only in a secure context.',
  'Firefox 141+ (Windows) and Safari 26+ also ship WebGPU; older versions need it enabled in their settings.',
];

/** WebGPU missing, no adapter, or the device refused: `help` says what to do. */
export class GpuUnavailableError extends Error {
  constructor(
    readonly kind: GpuUnavailableKind,
    message: string,
    readonly help: readonly string[],
  ) {
    super(message);
    this.name = 'GpuUnavailableError';
  }
}

/** navigator.gpu where it exists (browser, worker, Node 21+ with a WebGPU polyfill), else undefined. */
export function browserGpu(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu ?? undefined;
}

/** Devices on a CPU adapter told to take the kernels' GPU shapes anyway (useGpuKernelShapes). */
const gpuShaped = new WeakSet<GPUDevice>();

/**
 * Makes isCpuDevice(device) false on a CPU adapter, so every kernel takes the shape it takes on a GPU (tiled linears
 * with f16 arithmetic where shader-f16, 64-lane matvec, tiled / splitk attention): tests and the CLI check the path a
 * GPU runs, end to end, on lavapipe (LLAVA_KERNEL_SHAPES=gpu in Node). Slower there, never wrong.
 */
export function useGpuKernelShapes(device: GPUDevice): void {
  gpuShaped.add(device);
}

/**
 * Whether `device` runs on a CPU (SwiftShader, lavapipe: a fallback adapter), from its adapter info. Kernels pick
 * their shape by it where CPUs and GPUs want opposite things: a CPU runs a workgroup's invocations as a few SIMD
 * fibers, where cross-lane sums and barriers cost more than the parallelism they buy.
 */
export function isCpuDevice(device: GPUDevice): boolean {
  if (gpuShaped.has(device)) return false;
  const info = (device as { adapterInfo?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).adapterInfo;
  return info ? isCpuAdapter(info) : false;
}

/** Whether an adapter (its info or summary) is a CPU one: a fallback adapter, SwiftShader or lavapipe. */
export function isCpuAdapter(info: { architecture: string; description: string; isFallbackAdapter?: boolean }): boolean {
  return Boolean(info.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe/i.test(`${info.architecture} ${info.description}`);
}

/** Copies an adapter's info (a getter-only object in Dawn and Chrome) into a plain summary. */
export function adapterSummary(adapter: GPUAdapter): AdapterSummary {
  const info = (adapter as { info?: GPUAdapterInfo }).info;
  const features = [...adapter.features].map(String).sort();
  const l = adapter.limits;
  const extra = info as (GPUAdapterInfo & { isFallbackAdapter?: boolean; subgroupMinSize?: number; subgroupMaxSize?: number }) | undefined;
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: Boolean(extra?.isFallbackAdapter ?? (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features,
    shaderF16: adapter.features.has('shader-f16'),
    subgroups: adapter.features.has('subgroups'),
    timestampQuery: adapter.features.has('timestamp-query'),
    subgroupMinSize: extra?.subgroupMinSize || undefined,
    subgroupMaxSize: extra?.subgroupMaxSize || undefined,
    limits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
    allLimits: allLimits(l),
  };
}

/** GPUSupportedLimits' attributes live on its prototype: `for…in` walks them (Object.keys would not). */
function allLimits(l: GPUSupportedLimits): [string, number][] {
  const out: [string, number][] = [];
  for (const key in l) {
    const v = (l as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') out.push([key, v]);
  }
  return out.sort(([a], [b]) => a.localeCompare(b));
}

/** Multi-line text for logs and the CLI. */
export function formatAdapterSummary(s: AdapterSummary): string {
  const yes = (b: boolean) => (b ? 'yes' : 'no');
  const sub = s.subgroups ? `yes${s.subgroupMinSize ? ` (size ${s.subgroupMinSize}-${s.subgroupMaxSize})` : ''}` : 'no';
  return [
    `adapter: ${[s.vendor, s.architecture].filter(Boolean).join(' / ') || 'unknown'}${s.isFallbackAdapter ? ' (fallback adapter)' : ''}`,
    `device: ${s.device || '-'}  description: ${s.description || '-'}`,
    `shader-f16: ${yes(s.shaderF16)}  subgroups: ${sub}  timestamp-query: ${yes(s.timestampQuery)}`,
    `maxBufferSize: ${formatBytes(s.limits.maxBufferSize)}  maxStorageBufferBindingSize: ${formatBytes(s.limits.maxStorageBufferBindingSize)}`,
    `maxComputeWorkgroupStorageSize: ${formatBytes(s.limits.maxComputeWorkgroupStorageSize)}  maxComputeInvocationsPerWorkgroup: ${s.limits.maxComputeInvocationsPerWorkgroup}`,
  ].join('\n');
}

function lostText(reason: string, message: string): string {
  if (reason === 'destroyed') return 'The GPU device was released.';
  return (
    `The GPU device was lost${message ? `: ${message}` : ''}. ` +
    'This happens when the GPU driver resets (a kernel ran too long, or GPU memory ran out) or another program took the GPU. ' +
    'Reload the page (or restart the command) to start again; close other GPU-heavy tabs if it repeats.'
  );
}

export interface RequestDeviceOptions {
  powerPreference?: GPUPowerPreference;
  /** Called once if the device is lost for any reason other than destroy(). */
  onLost?: (report: DeviceLostReport) => void;
  /** Called for GPU errors no error scope caught (default: console.error). */
  onUncapturedError?: (message: string) => void;
  /** Optional features not to request even where the adapter has them (to run the fallbacks, e.g. f32 without shader-f16). */
  withoutFeatures?: readonly string[];
}

/**
 * Requests a high-performance adapter and a device with the adapter's maximum buffer, binding and workgroup
 * limits, plus shader-f16 / subgroups / timestamp-query when the adapter has them (less `withoutFeatures`).
 * Throws GpuUnavailableError when `gpu` is missing, there is no adapter, or the device request fails.
 */
export async function requestGpuDevice(gpu: GPU | undefined | null, opts: RequestDeviceOptions = {}): Promise<GpuContext> {
  if (!gpu) throw new GpuUnavailableError('no-webgpu', 'WebGPU is not available in this browser.', WEBGPU_HELP);
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? 'high-performance' });
  } catch (e) {
    throw new GpuUnavailableError('no-adapter', `Requesting a WebGPU adapter failed: ${e instanceof Error ? e.message : String(e)}`, WEBGPU_HELP);
  }
  if (!adapter) {
    throw new GpuUnavailableError(
      'no-adapter',
      'WebGPU is present but no GPU adapter is available (the GPU may be blocklisted or disabled).',
      [
        'Check chrome://gpu for "WebGPU: Hardware accelerated"; update the graphics driver.',
        'On Linux, enable chrome://flags/#enable-unsafe-webgpu and chrome://flags/#enable-vulkan.',
        ...WEBGPU_HELP.slice(2),
      ],
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of REQUESTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number | undefined>)[name];
    if (typeof v === 'number' && v > 0) requiredLimits[name] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && !opts.withoutFeatures?.includes(f));
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ label: 'llava-mini', requiredLimits, requiredFeatures });
  } catch (e) {
    throw new GpuUnavailableError(
      'device-failed',
      `The GPU adapter refused to create a device: ${e instanceof Error ? e.message : String(e)}`,
      ['Close other GPU-heavy tabs or programs and reload.', 'Update the browser and the graphics driver.'],
    );
  }
  const lost = device.lost.then((info) => {
    const report: DeviceLostReport = { reason: String(info.reason ?? 'unknown'), message: info.message ?? '', text: '' };
    report.text = lostText(report.reason, report.message);
    if (report.reason !== 'destroyed') opts.onLost?.(report);
    return report;
  });
  device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
    const message = `Uncaptured WebGPU ${ev.error.constructor?.name ?? 'error'}: ${ev.error.message}`;
    if (opts.onUncapturedError) opts.onUncapturedError(message);
    else console.error(message);
  };
  return { adapter, device, summary: adapterSummary(adapter), features: new Set([...device.features].map(String)), lost };
}
