// ONNX Runtime Web's WebGPU execution provider in Node, on OUR GPUDevice (src/node/gpu.ts, Dawn's `webgpu`
// package): same adapter, same device, same queue.
//
// How ORT gets the device. onnxruntime-web 1.31's WebGPU EP is the native C++ EP compiled to wasm. It takes a
// device two ways: (1) `executionProviders: [{ name: 'webgpu', device }]` registers the device under a new device
// id (1, 2, ...), but tensors made with Tensor.fromGpuBuffer are always created on device id 0, so a session on a
// registered device refuses GPU-resident inputs ("no data transfer registered for copying tensors from
// Device:[... DeviceId:0] to Device:[... DeviceId:1]"); (2) device id 0 is the one its wasm creates itself, by
// calling navigator.gpu.requestAdapter() and adapter.requestDevice(). (`ort.env.webgpu.device` and
// `env.webgpu.adapter` are not read by this EP: ORT writes the device it made into the former.) So navigator.gpu
// here is a small GPU object whose requestAdapter() returns a stand-in for our adapter: its features and limits
// are our DEVICE's (so ORT asks for nothing the device lacks), its info is the adapter's, and requestDevice()
// returns our device. ORT then installs its own onuncapturederror handler on the device (errors from our kernels
// end up in ORT's log instead of ours while the bench runs).
//
// Two adaptations for Node/Dawn, both outside ORT:
// - ORT's WebAssembly build always runs on shared memory (SharedArrayBuffer), and it uploads initializers with
//   queue.writeBuffer(buffer, offset, <view of wasm memory>). Dawn's Node binding rejects views of a
//   SharedArrayBuffer ("Invalid argument"), so GPUQueue.prototype.writeBuffer copies such a view first (other
//   calls are untouched: our kernels never pass shared memory).
// - env.wasm.numThreads = 1: the bench times GPU kernels; ORT's CPU threads would only compete with Dawn's.
//
// Inputs and outputs are GPU-resident (Tensor.fromGpuBuffer for x and for a preallocated y): a timed run()
// uploads and downloads nothing, like ours. ORT's own per-call work (wasm, building its command buffer, its
// uniform writes) is inside the time, as bind-group creation and uniform look-up are inside ours.
import type * as OrtModule from 'onnxruntime-web';
import type { GpuContext } from '../../src/gpu/device.ts';

export type Ort = typeof OrtModule;

let ortPromise: Promise<Ort> | null = null;
let boundDevice: GPUDevice | null = null;

function patchSharedWriteBuffer(device: GPUDevice): void {
  const proto = Object.getPrototypeOf(device.queue) as { writeBuffer: GPUQueue['writeBuffer']; __peerPatched?: boolean };
  if (proto.__peerPatched) return;
  const orig = proto.writeBuffer;
  proto.writeBuffer = function (this: GPUQueue, buffer: GPUBuffer, offset: number, data: BufferSource | SharedArrayBuffer, dataOffset?: number, size?: number) {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) {
      const el = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1;
      const start = data.byteOffset + (dataOffset ?? 0) * el;
      const len = size !== undefined ? size * el : data.byteLength - (dataOffset ?? 0) * el;
      return orig.call(this, buffer, offset, new Uint8Array(data.buffer, start, len).slice());
    }
    if (data instanceof SharedArrayBuffer) return orig.call(this, buffer, offset, new Uint8Array(data).slice(), dataOffset, size);
    return orig.call(this, buffer, offset, data as BufferSource, dataOffset, size);
  } as GPUQueue['writeBuffer'];
  proto.__peerPatched = true;
}

/** A GPU object whose only adapter hands out `ctx.device` (see the header). */
function gpuServing(ctx: GpuContext): GPU {
  const { device, adapter } = ctx;
  const standIn = {
    features: device.features,
    limits: device.limits,
    info: adapter.info,
    isFallbackAdapter: ctx.summary.isFallbackAdapter,
    async requestDevice(desc?: GPUDeviceDescriptor): Promise<GPUDevice> {
      const missing = [...(desc?.requiredFeatures ?? [])].filter((f) => !device.features.has(f));
      if (missing.length) throw new TypeError(`bench/peer: ORT asked for features the device lacks: ${missing.join(', ')}`);
      return device;
    },
  };
  return {
    requestAdapter: async () => standIn as unknown as GPUAdapter,
    getPreferredCanvasFormat: () => 'rgba8unorm',
    wgslLanguageFeatures: new Set<string>() as unknown as WGSLLanguageFeatures,
  } as unknown as GPU;
}

/** onnxruntime-web (its WebGPU build), set up to run on `ctx.device` (one device per process). */
export function ortOnDevice(ctx: GpuContext): Promise<Ort> {
  const { device } = ctx;
  if (boundDevice && boundDevice !== device) throw new Error('ortOnDevice: ORT is already bound to another GPUDevice in this process');
  boundDevice = device;
  ortPromise ??= (async () => {
    const nav = ((globalThis as { navigator?: object }).navigator ??= {}) as { gpu?: GPU };
    Object.defineProperty(nav, 'gpu', { value: gpuServing(ctx), configurable: true });
    patchSharedWriteBuffer(device);
    const ort = (await import('onnxruntime-web/webgpu')) as unknown as Ort;
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = 'error';
    return ort;
  })();
  return ortPromise;
}

export type OrtDType = 'float32' | 'float16';

export interface OrtGraphIo {
  /** The serialized model (bench/peer/onnx-model.ts). */
  model: Uint8Array;
  /** x [M, K] on the GPU, of `dtype`. */
  x: GPUBuffer;
  /** y [M, N], preallocated on the GPU, of `dtype`. */
  y: GPUBuffer;
  M: number;
  K: number;
  N: number;
  dtype: OrtDType;
}

/** An ORT session over one single-node graph, with x and y bound to our GPU buffers. */
export class OrtGraph {
  private constructor(
    private readonly session: OrtModule.InferenceSession,
    private readonly feeds: Record<string, OrtModule.Tensor>,
    private readonly fetches: Record<string, OrtModule.Tensor>,
  ) {}

  static async create(ort: Ort, io: OrtGraphIo): Promise<OrtGraph> {
    const session = await ort.InferenceSession.create(io.model, {
      executionProviders: ['webgpu'],
      graphOptimizationLevel: 'all',
      preferredOutputLocation: 'gpu-buffer',
    });
    const x = ort.Tensor.fromGpuBuffer(io.x, { dataType: io.dtype, dims: [io.M, io.K] });
    const y = ort.Tensor.fromGpuBuffer(io.y, { dataType: io.dtype, dims: [io.M, io.N] });
    return new OrtGraph(session, { x }, { y });
  }

  /** Runs the graph (ORT records and submits; the caller waits on the queue for the GPU to finish). */
  async run(): Promise<void> {
    await this.session.run(this.feeds, this.fetches);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
