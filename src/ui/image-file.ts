// A user's file -> an ImageBitmap with the file's raw pixels (no colour management, no premultiplication: what
// the reference's PIL sees), or an Error with one clear sentence.
/** The same limit as the CLI (src/node/image-file.ts). */
export const MAX_IMAGE_PIXELS = 64_000_000;

export async function decodeImageForEngine(file: Blob & { name?: string }): Promise<ImageBitmap> {
  const name = file.name ?? 'the image';
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' });
  } catch {
    throw new Error(`${name} is not an image this browser can read (not an image, or a corrupt one)`);
  }
  const pixels = bitmap.width * bitmap.height;
  if (pixels > MAX_IMAGE_PIXELS) {
    bitmap.close();
    throw new Error(`${name} is ${bitmap.width}x${bitmap.height} (${(pixels / 1e6).toFixed(0)} megapixels), over the limit of ${MAX_IMAGE_PIXELS / 1e6} megapixels: downscale it first`);
  }
  return bitmap;
}
