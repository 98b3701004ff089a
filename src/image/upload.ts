// Image pixels -> a packed RGBA buffer on the GPU, the preprocess kernel's input: from bytes (Node decoders,
// ImageData) or through an rgba8unorm texture (browser ImageBitmap, canvas, video frame), tile by tile. Images
// larger than maxBufferSize are refused with the sizes named.
import { align4, storageBufferFrom } from '../gpu/buffers.ts';
import type { RgbaImage } from '../model/constants.ts';

/** Packed RGBA pixels in a GPU buffer: pixel (x, y) is the u32 at y * rowStride + x (R in the low byte). */
export interface PackedRgba {
  buffer: GPUBuffer;
  width: number;
  height: number;
  rowStride: number;
}

function checkImageBufferSize(device: GPUDevice, bytes: number, width: number, height: number): void {
  const max = device.limits.maxBufferSize;
  if (bytes > max) {
    throw new Error(`image ${width}x${height} needs a ${bytes}-byte RGBA buffer, more than this device's maxBufferSize (${max}); downscale it before upload`);
  }
}

/** RGBA bytes (ImageData, a decoded file) -> a packed GPU buffer (rowStride = width). */
export function uploadRgba(device: GPUDevice, img: RgbaImage, label = 'rgba image'): PackedRgba {
  const { width, height, data } = img;
  if (data.length !== width * height * 4) throw new Error(`uploadRgba: ${data.length} bytes for a ${width}x${height} RGBA image`);
  checkImageBufferSize(device, data.length, width, height);
  return { buffer: storageBufferFrom(device, data, label), width, height, rowStride: width };
}

/**
 * Fills a packed RGBA buffer through an rgba8unorm texture, tile by tile (tiles <= maxTextureDimension2D):
 * `writeTile` puts the image's pixels [x, x + w) x [y, y + h) at the texture's origin, then copyTextureToBuffer
 * moves the raw bytes (no float conversion: exact) into the buffer. rowStride is a multiple of 64 pixels
 * (copyTextureToBuffer needs bytesPerRow % 256 == 0).
 */
export function uploadThroughTexture(
  device: GPUDevice,
  width: number,
  height: number,
  writeTile: (texture: GPUTexture, x: number, y: number, w: number, h: number) => void,
  opts: { maxTile?: number; label?: string } = {},
): PackedRgba {
  const rowStride = Math.ceil(width / 64) * 64;
  const bytes = align4(((height - 1) * rowStride + width) * 4);
  checkImageBufferSize(device, bytes, width, height);
  const tile = Math.min(opts.maxTile ?? Infinity, device.limits.maxTextureDimension2D);
  const buffer = device.createBuffer({
    label: opts.label ?? 'rgba image',
    size: bytes,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
  });
  const texture = device.createTexture({
    label: 'rgba upload tile',
    size: [Math.min(width, tile), Math.min(height, tile)],
    format: 'rgba8unorm',
    usage: GPUTextureUsage.COPY_DST | GPUTextureUsage.COPY_SRC | GPUTextureUsage.RENDER_ATTACHMENT,
  });
  try {
    for (let y = 0; y < height; y += tile) {
      for (let x = 0; x < width; x += tile) {
        const w = Math.min(tile, width - x);
        const h = Math.min(tile, height - y);
        writeTile(texture, x, y, w, h);
        // Queue order: this copy runs after writeTile's queue operation and before the next tile's.
        const encoder = device.createCommandEncoder({ label: 'rgba upload' });
        encoder.copyTextureToBuffer({ texture }, { buffer, offset: (y * rowStride + x) * 4, bytesPerRow: rowStride * 4, rowsPerImage: h }, [w, h]);
        device.queue.submit([encoder.finish()]);
      }
    }
  } finally {
    texture.destroy(); // deferred by WebGPU until the submitted copies are done
  }
  return { buffer, width, height, rowStride };
}

/**
 * Browser: an ImageBitmap (or canvas, video frame, ...) -> packed RGBA buffer, via copyExternalImageToTexture.
 * The pixels must be the file's raw bytes for bit-exactness with the reference (PIL applies no color management
 * and drops alpha without compositing): create the bitmap with
 * `createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' })`.
 */
export function uploadImageBitmap(
  device: GPUDevice,
  source: ImageBitmap | HTMLCanvasElement | OffscreenCanvas | HTMLVideoElement | VideoFrame | HTMLImageElement | ImageData,
  opts: { maxTile?: number; label?: string } = {},
): PackedRgba {
  const size = sourceSize(source);
  return uploadThroughTexture(
    device,
    size.width,
    size.height,
    (texture, x, y, w, h) =>
      device.queue.copyExternalImageToTexture({ source, origin: { x, y }, flipY: false }, { texture, premultipliedAlpha: false, colorSpace: 'srgb' }, [w, h]),
    opts,
  );
}

function sourceSize(s: object): { width: number; height: number } {
  const o = s as { displayWidth?: number; displayHeight?: number; videoWidth?: number; videoHeight?: number; naturalWidth?: number; naturalHeight?: number; width?: number; height?: number };
  const width = o.displayWidth ?? (o.videoWidth || undefined) ?? (o.naturalWidth || undefined) ?? o.width ?? 0;
  const height = o.displayHeight ?? (o.videoHeight || undefined) ?? (o.naturalHeight || undefined) ?? o.height ?? 0;
  if (!(width > 0 && height > 0)) throw new Error(`uploadImageBitmap: the source has no size (${width}x${height})`);
  return { width, height };
}

