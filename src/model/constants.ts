// Facts the spec fixes (sections 1 and 3), shared by the GPU engine, the Node shells and the CPU reference.
// Constants and types only: each side keeps its own arithmetic, so a slip shows up as a parity failure.

/** RGBA pixels, row-major, 4 bytes a pixel (canvas ImageData layout). */
export interface RgbaImage {
  width: number;
  height: number;
  data: Uint8ClampedArray | Uint8Array;
}

/** OPENAI_CLIP_MEAN / OPENAI_CLIP_STD. */
export const CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
/** expand2square background: tuple(int(x * 255) for x in image_mean). */
export const PAD_COLOR: readonly [number, number, number] = [122, 116, 104];
/** CLIPImageProcessor rescale_factor (1/255 as a Python float). */
export const RESCALE_FACTOR = 1 / 255;
/** nn.LayerNorm default eps: the compressor's ln_q and ln_kv (spec section 3). */
export const COMPRESSOR_LN_EPS = 1e-5;
