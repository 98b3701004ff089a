// The image stage: RGBA pixels -> pixel_values [3, S, S] f32 on the GPU, a thin shell over PreprocessKernel
// (bit-exact with src/reference/preprocess.ts). Two modes (spec sections 1 and 7):
//   'image': pad to a square with (122,116,104) when config.imageAspectRatio is "pad", bicubic shortest edge -> S,
//            center crop;
//   'video': a video frame, torch's nearest interpolate straight to S x S (as the reference's load_video).
// Inputs: Node / ImageData `{ width, height, data }` (uploadRgba) or, in the browser, an ImageBitmap, canvas or
// video frame (uploadImageBitmap; see there how to create the bitmap for bit-exactness).
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { createStorageBuffer, readF32 } from '../gpu/buffers.ts';
import type { GpuTarget } from '../gpu/dispatch.ts';
import { PreprocessKernel } from './preprocess.ts';
import { uploadImageBitmap, uploadRgba, type PackedRgba } from './upload.ts';
import type { RgbaImage } from '../model/constants.ts';

export type ImageMode = 'image' | 'video';

/** Anything uploadImageBitmap accepts (browser). */
export type BitmapSource = Parameters<typeof uploadImageBitmap>[1];

/** A clear, user-facing error about an input image (empty, malformed, too large for this GPU). */
export class ImageInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageInputError';
  }
}

function checkSize(width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0) {
    throw new ImageInputError(`image size ${width}x${height} is not a pair of whole numbers`);
  }
  if (width === 0 || height === 0) throw new ImageInputError(`the image is empty (${width}x${height} pixels)`);
}

export class ImageInput {
  /** pixel_values [3, S, S] f32, rewritten by every record(). */
  readonly pixelValues: GPUBuffer;
  readonly size: number;

  private constructor(
    readonly device: GPUDevice,
    readonly config: LlavaMiniConfig,
    private readonly kernel: PreprocessKernel,
  ) {
    this.size = config.vision.imageSize;
    this.pixelValues = createStorageBuffer(device, 3 * this.size * this.size * 4, `pixel_values [3, ${this.size}, ${this.size}]`);
  }

  static async create(device: GPUDevice, config: LlavaMiniConfig): Promise<ImageInput> {
    return new ImageInput(device, config, await PreprocessKernel.create(device));
  }

  /** Uploads RGBA bytes (row-major, 4 bytes a pixel). Free the returned buffer after the submit that reads it. */
  upload(img: RgbaImage): PackedRgba {
    checkSize(img.width, img.height);
    const bytes = img.width * img.height * 4;
    const max = this.device.limits.maxBufferSize;
    if (bytes > max) {
      throw new ImageInputError(`the image (${img.width}x${img.height}, ${bytes} bytes of RGBA) is larger than this GPU's maxBufferSize (${max} bytes): downscale it first`);
    }
    if (img.data.length !== bytes) throw new ImageInputError(`the image has ${img.data.length} bytes of pixels, a ${img.width}x${img.height} RGBA image has ${bytes}`);
    return uploadRgba(this.device, img);
  }

  /** Browser: uploads an ImageBitmap / canvas / video frame. Free the returned buffer after the submit that reads it. */
  uploadBitmap(source: BitmapSource): PackedRgba {
    return uploadImageBitmap(this.device, source);
  }

  /** Records pixel_values of an uploaded image (its own pass when target is an encoder). */
  record(target: GpuTarget, src: PackedRgba, mode: ImageMode = 'image'): GPUBuffer {
    checkSize(src.width, src.height);
    this.kernel.preprocessRgba(target, src.buffer, src.width, src.height, this.pixelValues, {
      size: this.size,
      aspectRatio: this.config.imageAspectRatio,
      mode,
      rowStride: src.rowStride,
    });
    return this.pixelValues;
  }

  /** One-shot (tests, dumps): upload, preprocess, read back pixel_values. */
  async preprocess(img: RgbaImage, mode: ImageMode = 'image'): Promise<Float32Array> {
    const src = this.upload(img);
    try {
      this.record(this.device, src, mode);
      return await readF32(this.device, this.pixelValues, 3 * this.size * this.size);
    } finally {
      src.buffer.destroy();
    }
  }

  destroy(): void {
    this.kernel.destroy();
    this.pixelValues.destroy();
  }
}
