// Node-only video input for the CLI: an animated GIF, decoded (omggif) and composited into full RGBA frames
// as browsers show them, then sampled at about 1 fps (spec section 7, sampleFrameIndices).
// Real video containers (mp4, webm, ...) need a video decoder: the browser app has one (<video>), Node here
// has none, so they get a one-line error. The format comes from the magic bytes, never from the name.
//
// Browser behaviour followed (Chrome and Firefox agree):
// - the canvas starts transparent black; disposal 2 clears the frame's rectangle to transparent black (the
//   background colour index is ignored), 3 restores what was under it, 0/1 and 4-7 leave the frame in place;
// - a delay of 0 or 1 (1/100 s; also a frame with no Graphic Control Extension) plays as 100 ms;
// - a Graphic Control Extension applies to the next image only (omggif carries it over to later images);
// - parts of a frame outside the logical screen are clipped.
// fps is the average over the whole GIF: frames / total duration.

import { GifReader, type Frame } from 'omggif';
import { sampleFrameIndices } from '../image/video-frames.ts';
import type { RgbaImage } from '../model/constants.ts';
import { MAX_IMAGE_PIXELS } from '../image/limits.ts';
import { InputFileError } from './input-file-error.ts';
import { readLocalFile } from './read-local-file.ts';

export interface DecodedVideo {
  /** The sampled frames, RGBA 8-bit, in frameIndices order (a repeated index repeats the same object). */
  frames: RgbaImage[];
  frameIndices: number[];
  totalFrames: number;
  fps: number;
}

export interface DecodeVideoOptions {
  /** Largest accepted width * height * 4 * sampled frames. Default MAX_VIDEO_BYTES (1 GiB). */
  maxBytes?: number;
}

export const MAX_VIDEO_BYTES = 2 ** 30;

export type VideoFileErrorKind = 'unreadable' | 'not-a-video' | 'unsupported-format' | 'corrupt' | 'too-large';

export class VideoFileError extends InputFileError<VideoFileErrorKind> {
  override readonly name = 'VideoFileError';
}

export type VideoFormat = 'gif' | 'mp4' | 'mov' | '3gp' | 'webm' | 'mkv' | 'ogg' | 'avi' | 'flv' | 'wmv' | 'mpeg' | 'ts';

/** Formats a browser's <video> plays (so the app can take them). */
const BROWSER_FORMATS: ReadonlySet<VideoFormat> = new Set(['mp4', 'mov', '3gp', 'webm', 'mkv', 'ogg']);
/** ISO-BMFF brands of still images (HEIF, AVIF), which share mp4's `ftyp` box. */
const IMAGE_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1', 'avif', 'avis']);

const ascii = (b: Uint8Array, from: number, to: number): string =>
  b.length >= to ? String.fromCharCode(...b.subarray(from, to)) : '';

/** The container format from the magic bytes, or null. */
export function detectVideoFormat(b: Uint8Array): VideoFormat | null {
  const head6 = ascii(b, 0, 6);
  if (head6 === 'GIF87a' || head6 === 'GIF89a') return 'gif';
  const box = ascii(b, 4, 8);
  if (box === 'ftyp') {
    const brand = ascii(b, 8, 12);
    if (IMAGE_BRANDS.has(brand)) return null;
    return brand === 'qt  ' ? 'mov' : brand.startsWith('3g') ? '3gp' : 'mp4';
  }
  if (['moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].includes(box)) return 'mov'; // QuickTime without ftyp
  if (b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) {
    return ascii(b, 0, Math.min(b.length, 64)).includes('webm') ? 'webm' : 'mkv'; // EBML DocType
  }
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'AVI ') return 'avi';
  if (ascii(b, 0, 4) === 'OggS') return 'ogg';
  if (ascii(b, 0, 3) === 'FLV' && b[3] === 1) return 'flv';
  const asf = [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11];
  if (b.length >= 8 && asf.every((x, i) => b[i] === x)) return 'wmv';
  if (b[0] === 0 && b[1] === 0 && b[2] === 1 && (b[3] === 0xba || b[3] === 0xb3)) return 'mpeg';
  if (b.length > 376 && b[0] === 0x47 && b[188] === 0x47 && b[376] === 0x47) return 'ts';
  return null;
}

/** Read an animated GIF and return the frames sampled at about 1 fps. Errors are VideoFileError. */
export async function decodeVideoFile(path: string, opts: DecodeVideoOptions = {}): Promise<DecodedVideo> {
  const { name, bytes } = await readLocalFile(path).catch((e: Error) => {
    throw new VideoFileError('unreadable', e.message);
  });
  return decodeVideoBytes(bytes, name, opts);
}

/** As decodeVideoFile, from bytes; `name` is only used in error messages. */
export function decodeVideoBytes(bytes: Uint8Array, name: string, opts: DecodeVideoOptions = {}): DecodedVideo {
  const format = detectVideoFormat(bytes);
  if (format === null) {
    const what = bytes.length === 0 ? ' (the file is empty)' : '';
    throw new VideoFileError('not-a-video', `${name} is not a video this CLI can decode (animated GIF)${what}`);
  }
  if (format !== 'gif') {
    throw new VideoFileError(
      'unsupported-format',
      BROWSER_FORMATS.has(format)
        ? `${name}: decoding ${format} video needs a browser (the app decodes it with <video>); in Node pass an animated GIF`
        : `${name}: decoding ${format} video is not supported (browsers cannot play it either); convert it to mp4 or webm for the app, or to an animated GIF for this CLI`,
    );
  }
  return decodeGif(bytes, name, opts.maxBytes ?? MAX_VIDEO_BYTES);
}

// ---------------------------------------------------------------------------------------------- GIF

function decodeGif(bytes: Uint8Array, name: string, maxBytes: number): DecodedVideo {
  const corrupt = (why: string): VideoFileError => new VideoFileError('corrupt', `${name} is a corrupt or truncated GIF (${why})`);
  let reader: GifReader;
  try {
    reader = new GifReader(bytes);
  } catch (e) {
    throw corrupt(oneLine(e));
  }
  const { width, height } = reader;
  if (width === 0 || height === 0) throw corrupt(`size ${width}x${height}`);
  const totalFrames = reader.numFrames();
  if (totalFrames === 0) throw corrupt('no frames');

  const hasGce = framesWithOwnGce(bytes);
  const infos: Frame[] = [];
  let canvasW = width;
  let canvasH = height;
  let centiseconds = 0;
  for (let k = 0; k < totalFrames; k++) {
    const f = reader.frameInfo(k);
    if (hasGce.length === totalFrames && !hasGce[k]) {
      // frameInfo hands back omggif's own record, which its blit reads: undo the carried-over extension.
      f.delay = 0;
      f.disposal = 0;
      f.transparent_index = null;
    }
    if (f.palette_offset === null) throw corrupt(`frame ${k} has no colour table`);
    canvasW = Math.max(canvasW, f.x + f.width);
    canvasH = Math.max(canvasH, f.y + f.height);
    centiseconds += f.delay <= 1 ? 10 : f.delay;
    infos.push(f);
  }
  const fps = (totalFrames * 100) / centiseconds;
  const frameIndices = sampleFrameIndices(totalFrames, fps);

  const frameBytes = width * height * 4;
  if (frameBytes * frameIndices.length > maxBytes) {
    const mib = (n: number): string => (n < 2 ** 20 ? `${n} bytes` : `${Math.ceil(n / 2 ** 20)} MiB`);
    throw new VideoFileError(
      'too-large',
      `${name}: ${frameIndices.length} sampled frame${frameIndices.length === 1 ? '' : 's'} of ${width}x${height} need ${mib(frameBytes * frameIndices.length)}, over the limit of ${mib(maxBytes)}`,
    );
  }
  if (canvasW * canvasH > MAX_IMAGE_PIXELS || canvasW > 0xffff || canvasH > 0xffff) {
    throw corrupt(`a frame reaches ${canvasW}x${canvasH}, far outside the ${width}x${height} screen`);
  }
  if (canvasW !== width || canvasH !== height) {
    // Frames reaching past the screen: omggif blits into a canvas as wide as the header says, so widen it
    // (a copy with a patched header) and crop each output frame back to the screen.
    const wide = new Uint8Array(bytes);
    wide[6] = canvasW & 0xff;
    wide[7] = canvasW >> 8;
    wide[8] = canvasH & 0xff;
    wide[9] = canvasH >> 8;
    reader = new GifReader(wide);
    for (let k = 0; k < totalFrames; k++) Object.assign(reader.frameInfo(k), infos[k]);
  }

  const canvas = new Uint8ClampedArray(canvasW * canvasH * 4);
  const frames: RgbaImage[] = [];
  let saved: Uint8ClampedArray | null = null;
  const last = frameIndices[frameIndices.length - 1];
  const log = console.log;
  console.log = () => {}; // omggif logs (and tolerates) LZW data shorter or longer than the frame; keep stdout clean
  try {
    for (let k = 0, next = 0; k <= last; k++) {
      const f = infos[k];
      if (f.disposal === 3) saved = copyRect(canvas, canvasW, f, null);
      try {
        reader.decodeAndBlitFrameRGBA(k, canvas);
      } catch (e) {
        throw corrupt(`frame ${k}: ${oneLine(e)}`);
      }
      if (frameIndices[next] === k) {
        const img = { width, height, data: crop(canvas, canvasW, width, height) };
        while (frameIndices[next] === k) {
          frames.push(img);
          next++;
        }
      }
      if (f.disposal === 2) fillRect(canvas, canvasW, f);
      else if (f.disposal === 3 && saved) copyRect(canvas, canvasW, f, saved);
    }
  } finally {
    console.log = log;
  }
  return { frames, frameIndices, totalFrames, fps };
}

/** Which images (in order) have a Graphic Control Extension of their own, from a walk over the blocks. */
function framesWithOwnGce(b: Uint8Array): boolean[] {
  const out: boolean[] = [];
  const skipSubBlocks = (p: number): number => {
    while (p < b.length && b[p] !== 0) p += b[p] + 1;
    return p + 1;
  };
  let p = 13 + (b[10] & 0x80 ? 3 << ((b[10] & 7) + 1) : 0);
  let gce = false;
  while (p < b.length) {
    const block = b[p];
    if (block === 0x21) {
      if (b[p + 1] === 0xf9) gce = true;
      p = skipSubBlocks(p + 2);
    } else if (block === 0x2c) {
      const packed = b[p + 9];
      p += 10 + (packed & 0x80 ? 3 << ((packed & 7) + 1) : 0);
      p = skipSubBlocks(p + 1); // after the LZW minimum code size
      out.push(gce);
      gce = false;
    } else {
      break; // trailer (or what omggif stopped at)
    }
  }
  return out;
}

function crop(canvas: Uint8ClampedArray, canvasW: number, w: number, h: number): Uint8ClampedArray {
  if (canvasW === w && canvas.length === w * h * 4) return canvas.slice();
  const out = new Uint8ClampedArray(w * h * 4);
  for (let y = 0; y < h; y++) out.set(canvas.subarray(y * canvasW * 4, (y * canvasW + w) * 4), y * w * 4);
  return out;
}

/** Copy frame f's rectangle out of the canvas (from === null, returns it) or back into it (from given). */
function copyRect(canvas: Uint8ClampedArray, canvasW: number, f: Frame, from: Uint8ClampedArray | null): Uint8ClampedArray {
  const row = f.width * 4;
  const buf = from ?? new Uint8ClampedArray(row * f.height);
  for (let y = 0; y < f.height; y++) {
    const at = ((f.y + y) * canvasW + f.x) * 4;
    if (from) canvas.set(from.subarray(y * row, (y + 1) * row), at);
    else buf.set(canvas.subarray(at, at + row), y * row);
  }
  return buf;
}

function fillRect(canvas: Uint8ClampedArray, canvasW: number, f: Frame): void {
  for (let y = 0; y < f.height; y++) {
    const at = ((f.y + y) * canvasW + f.x) * 4;
    canvas.fill(0, at, at + f.width * 4);
  }
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0].trim() || 'unknown error';
}
