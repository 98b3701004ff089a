// A user's file -> an ImageBitmap with the file's raw pixels (no colour management, no premultiplication: what
// the reference's PIL sees), or an Error with one clear sentence. Oversized images are refused from their header,
// before any pixel is decoded. Browser only (createImageBitmap): the page decodes attachments with it, the engine
// worker the saved images of a conversation it re-opens.
import { imageDimensions } from './image-header.ts';
import { MAX_IMAGE_PIXELS } from './limits.ts';

function checkSize(name: string, width: number, height: number): void {
  const pixels = width * height;
  if (pixels > MAX_IMAGE_PIXELS) {
    throw new Error(`${name} is ${width}x${height} (${(pixels / 1e6).toFixed(0)} megapixels), over the limit of ${MAX_IMAGE_PIXELS / 1e6} megapixels: downscale it first`);
  }
}

export async function decodeImageForEngine(file: Blob & { name?: string }): Promise<ImageBitmap> {
  const name = file.name ?? 'the image';
  const header = imageDimensions(new Uint8Array(await file.slice(0, 1 << 16).arrayBuffer()));
  if (header) checkSize(name, header.width, header.height);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${name} is not an image this browser can read (not an image, or a corrupt one)`);
  }
  try {
    checkSize(name, bitmap.width, bitmap.height);
  } catch (e) {
    bitmap.close();
    throw e;
  }
  return bitmap;
}
