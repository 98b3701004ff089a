// Minimal buffer helpers shared by every kernel (browser and Node): upload, allocate, read back.
// Sizes are rounded up to 4 bytes (WebGPU requires it for mapping, copies and storage bindings), so an
// f16 array with an odd element count can be bound as array<f16>.

/** Default usage of a storage buffer: bound to shaders, and copyable both ways (uploads, readback). */
export function storageUsage(): GPUBufferUsageFlags {
  // A function, not a constant: in Node the GPU* globals exist only once src/node/gpu.ts has installed them.
  return GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
}

/** n rounded up to a multiple of 4. */
/** Sum of the sizes of `buffers` (GPU memory accounting). */
export function totalBytes(buffers: Iterable<GPUBuffer>): number {
  let n = 0;
  for (const b of buffers) n += b.size;
  return n;
}

export function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

function viewBytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A buffer holding a copy of `data` (any typed array), written at creation (no queue round trip). */
export function bufferFrom(device: GPUDevice, data: ArrayBufferView, usage: GPUBufferUsageFlags, label?: string): GPUBuffer {
  const size = Math.max(4, align4(data.byteLength));
  const buffer = device.createBuffer({ label, size, usage, mappedAtCreation: true });
  new Uint8Array(buffer.getMappedRange()).set(viewBytes(data));
  buffer.unmap();
  return buffer;
}

/** Storage buffer initialised from `data` (Float32Array, Uint16Array of f16 bits, Uint32Array...). */
export function storageBufferFrom(device: GPUDevice, data: ArrayBufferView, label?: string, extraUsage: GPUBufferUsageFlags = 0): GPUBuffer {
  return bufferFrom(device, data, storageUsage() | extraUsage, label);
}

/** Zero-filled storage buffer of at least `byteLength` bytes. */
export function createStorageBuffer(device: GPUDevice, byteLength: number, label?: string, extraUsage: GPUBufferUsageFlags = 0): GPUBuffer {
  return device.createBuffer({ label, size: Math.max(4, align4(byteLength)), usage: storageUsage() | extraUsage });
}

/** Uniform buffer holding `data` (its contents are fixed: make a new one, or writeBuffer, to change them). */
export function uniformBufferFrom(device: GPUDevice, data: ArrayBufferView, label?: string): GPUBuffer {
  // Uniform blocks are read in 16-byte units: pad so a struct of any size is fully backed.
  const padded = new Uint8Array(Math.max(16, Math.ceil(data.byteLength / 16) * 16));
  padded.set(viewBytes(data));
  return bufferFrom(device, padded, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label);
}

/**
 * Copies `byteLength` bytes of `buffer` (needs COPY_SRC) starting at `byteOffset` into a fresh ArrayBuffer,
 * through a MAP_READ staging buffer. Waits for all work submitted before it.
 */
export async function readBuffer(device: GPUDevice, buffer: GPUBuffer, byteLength: number = buffer.size, byteOffset = 0): Promise<ArrayBuffer> {
  if (byteOffset % 4 !== 0) throw new Error(`readBuffer(${buffer.label || 'buffer'}): byteOffset ${byteOffset} is not a multiple of 4`);
  const copyLength = align4(byteLength);
  if (byteOffset + copyLength > buffer.size) {
    throw new Error(`readBuffer(${buffer.label || 'buffer'}): ${byteLength} bytes at ${byteOffset} exceed the buffer's ${buffer.size} bytes`);
  }
  if (copyLength === 0) return new ArrayBuffer(0);
  const staging = device.createBuffer({
    label: `readback of ${buffer.label || 'buffer'}`,
    size: copyLength,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  try {
    const encoder = device.createCommandEncoder({ label: 'readback' });
    encoder.copyBufferToBuffer(buffer, byteOffset, staging, 0, copyLength);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    return staging.getMappedRange().slice(0, byteLength);
  } finally {
    // destroy() also unmaps; the ArrayBuffer returned above is an independent copy.
    staging.destroy();
  }
}

/** Reads `count` f32 values (default: the whole buffer) starting at element `offset`. */
export async function readF32(device: GPUDevice, buffer: GPUBuffer, count: number = Math.floor(buffer.size / 4), offset = 0): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, count * 4, offset * 4));
}

/** One bind group entry per buffer, numbered 0, 1, 2... in order. A GPUBufferBinding picks offset/size. */
export function bindBuffers(
  device: GPUDevice,
  layout: GPUBindGroupLayout,
  buffers: readonly (GPUBuffer | GPUBufferBinding)[],
  label?: string,
): GPUBindGroup {
  return device.createBindGroup({
    label,
    layout,
    entries: buffers.map((b, binding) => ({ binding, resource: 'buffer' in b ? b : { buffer: b } })),
  });
}
