// The largest image the app and the CLI take (width * height), checked from the file's header before decoding:
// a 64-megapixel RGBA image is already 256 MB on the CPU and again on the GPU.
export const MAX_IMAGE_PIXELS = 64_000_000;
