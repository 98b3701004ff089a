// Node-only image file decoding: PNG (pngjs), JPEG (jpeg-js), WebP (libwebp through @jsquash/webp's wasm), GIF
// (omggif: the first frame, as an <img> shows it) and BMP (bmp-ts) to 8-bit RGBA, EXIF orientation applied: the
// formats the browser app accepts. The format comes from the file's magic bytes, never from its name.
//
// Conversions (chosen to match what PIL's Image.open(...).convert('RGB') sees, alpha aside):
// - PNG palette / grey / grey+alpha / RGB / RGBA, bit depths 1-16, interlaced or not -> RGBA 8-bit;
//   16-bit samples keep their high byte (PIL's ";16B" raw modes); 1/2/4-bit grey is scaled to 0..255;
//   a tRNS colour key makes those pixels' alpha 0 but keeps their colour (pngjs would zero it).
// - JPEG grey / YCbCr / Adobe RGB / CMYK via jpeg-js (its IDCT and chroma upsampling are not libjpeg's: a
//   few levels of difference from PIL are expected).
// - WebP lossy / lossless / with alpha via libwebp (the browser's own decoder library).
// - GIF: the first frame composited on a transparent canvas of the logical screen size (video-file.ts has the rest).
// - BMP 1/4/8/16/24/32-bit: opaque (PIL opens BMP as RGB), bottom-up or top-down rows.
// - EXIF orientation 2-8 (JPEG APP1 "Exif", PNG eXIf chunk, WebP EXIF chunk) is applied, as PIL's
//   ImageOps.exif_transpose.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import webpDecoderFactory from '@jsquash/webp/codec/dec/webp_dec.js';
import { decode as decodeBmpBytes } from 'bmp-ts';
import jpeg from 'jpeg-js';
import { GifReader } from 'omggif';
import pngjs from 'pngjs';
import { MAX_IMAGE_PIXELS } from '../image/limits.ts';
import { InputFileError } from './input-file-error.ts';
import { readLocalFile } from './read-local-file.ts';

// libwebp's wasm, instantiated once from the package's file (Node's fetch cannot read file: URLs).
const webpWasm = await WebAssembly.compile(await readFile(createRequire(import.meta.url).resolve('@jsquash/webp/codec/dec/webp_dec.wasm')));
const webp = await webpDecoderFactory({
  noInitialRun: true,
  instantiateWasm: (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
    const instance = new WebAssembly.Instance(webpWasm, imports);
    done(instance);
    return instance.exports;
  },
});

export interface DecodedImage {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, row-major, width * height * 4 bytes. */
  data: Uint8ClampedArray;
}

export interface DecodeImageOptions {
  /** Largest accepted width * height. Default MAX_IMAGE_PIXELS (64 megapixels). */
  maxPixels?: number;
}

export type ImageFileErrorKind = 'unreadable' | 'not-an-image' | 'corrupt' | 'too-large';

export class ImageFileError extends InputFileError<ImageFileErrorKind> {
  override readonly name = 'ImageFileError';
}

export type ImageFormat = 'png' | 'jpeg' | 'webp' | 'gif' | 'bmp';

const FORMATS_SENTENCE = 'a PNG, JPEG, WebP, GIF or BMP image';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format from the magic bytes, or null. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | null {
  if (bytes.length >= 8 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 'RIFF') && ascii(bytes, 8, 'WEBP')) return 'webp';
  if (bytes.length >= 6 && (ascii(bytes, 0, 'GIF87a') || ascii(bytes, 0, 'GIF89a'))) return 'gif';
  if (bytes.length >= 26 && ascii(bytes, 0, 'BM')) return 'bmp';
  return null;
}

const ascii = (b: Uint8Array, o: number, s: string): boolean => [...s].every((c, k) => b[o + k] === c.charCodeAt(0));

/** Read and decode an image file (PNG, JPEG, WebP, GIF, BMP) to RGBA, EXIF orientation applied. Errors are ImageFileError. */
export async function decodeImageFile(path: string, opts: DecodeImageOptions = {}): Promise<DecodedImage> {
  const { name, bytes } = await readLocalFile(path).catch((e: Error) => {
    throw new ImageFileError('unreadable', e.message);
  });
  return decodeImageBytes(bytes, name, opts);
}

/** Decode image bytes; `name` is only used in error messages. */
export function decodeImageBytes(bytes: Uint8Array, name: string, opts: DecodeImageOptions = {}): DecodedImage {
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  if (bytes.length === 0) throw new ImageFileError('not-an-image', `${name} is empty, not ${FORMATS_SENTENCE}`);
  const format = detectImageFormat(bytes);
  if (format === null) throw new ImageFileError('not-an-image', `${name} is not ${FORMATS_SENTENCE}`);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decode = { png: decodePng, jpeg: decodeJpeg, webp: decodeWebp, gif: decodeGif, bmp: decodeBmp }[format];
  const orientation = { png: pngExifOrientation, jpeg: jpegExifOrientation, webp: webpExifOrientation, gif: () => 1, bmp: () => 1 }[format];
  return applyExifOrientation(decode(buf, name, maxPixels), orientation(bytes));
}

// ---------------------------------------------------------------------------------------------- limits

function checkSize(name: string, width: number, height: number, maxPixels: number): void {
  const pixels = width * height;
  if (pixels > maxPixels) {
    const mp = (n: number): string =>
      n >= 1e6 ? `${(n / 1e6).toFixed(1).replace(/\.0$/, '')} megapixels` : `${n} pixels`;
    throw new ImageFileError('too-large', `${name} is ${width}x${height} (${mp(pixels)}), over the limit of ${mp(maxPixels)}`);
  }
}

// ---------------------------------------------------------------------------------------------- PNG

interface PngParsed {
  width: number;
  height: number;
  depth: number;
  colorType: number;
  transColor?: number[];
  data: Uint8Array | Uint16Array;
}

function u32be(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

function decodePng(buf: Buffer, name: string, maxPixels: number): DecodedImage {
  const corrupt = (why: string): ImageFileError => new ImageFileError('corrupt', `${name} is a corrupt or truncated PNG (${why})`);
  if (buf.length < 33 || buf.toString('latin1', 12, 16) !== 'IHDR') throw corrupt('no IHDR header');
  const w = u32be(buf, 16);
  const h = u32be(buf, 20);
  if (w === 0 || h === 0) throw corrupt(`size ${w}x${h}`);
  checkSize(name, w, h, maxPixels);

  let png: PngParsed;
  try {
    png = pngjs.PNG.sync.read(buf, { skipRescale: true }) as unknown as PngParsed;
  } catch (e) {
    const msg = oneLine(e);
    // pngjs' wording for data that stops early / fails its checksum
    throw corrupt(/read requests|end of input/i.test(msg) ? 'the data ends early' : /crc/i.test(msg) ? 'checksum mismatch' : msg);
  }
  const { width, height, depth, colorType } = png;
  const n = width * height * 4;
  if (!png.data || png.data.length < n) throw corrupt('pixel data too short');

  const out = new Uint8ClampedArray(n);
  const src = png.data;
  if (colorType === 3 || depth === 8) {
    out.set(src.subarray(0, n));
  } else if (depth === 16) {
    for (let i = 0; i < n; i++) out[i] = src[i] >>> 8;
  } else {
    const scale = 255 / ((1 << depth) - 1); // 1-, 2-, 4-bit grey: 255, 85, 17
    for (let i = 0; i < n; i++) out[i] = src[i] * scale;
  }
  // pngjs sets tRNS colour-keyed pixels to (0,0,0,0); put their colour back (alpha stays 0).
  if (png.transColor && (colorType === 0 || colorType === 2)) {
    const to8 = (v: number): number => (depth === 16 ? v >>> 8 : depth === 8 ? v : v * (255 / ((1 << depth) - 1)));
    const t = png.transColor.map(to8);
    const [r, g, b] = t.length === 1 ? [t[0], t[0], t[0]] : t;
    for (let i = 0; i < n; i += 4) {
      if (out[i + 3] === 0) {
        out[i] = r;
        out[i + 1] = g;
        out[i + 2] = b;
      }
    }
  }
  return { width, height, data: out };
}

// ---------------------------------------------------------------------------------------------- JPEG

interface JpegSegment {
  marker: number;
  /** Offset of the segment's payload (after the 2-byte length). */
  start: number;
  /** Payload length. */
  length: number;
}

/** The marker segments before the first SOS (inclusive), or an error string. */
function jpegSegments(b: Uint8Array): { segments: JpegSegment[]; sosEnd: number } | string {
  const segments: JpegSegment[] = [];
  let o = 2;
  for (;;) {
    if (o >= b.length) return 'ends before the image data';
    if (b[o] !== 0xff) return `no marker at byte ${o}`;
    while (o < b.length && b[o] === 0xff) o++; // fill bytes
    if (o >= b.length) return 'ends before the image data';
    const marker = b[o++];
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // standalone markers
    if (marker === 0xd9) return 'ends before the image data';
    if (o + 2 > b.length) return 'ends inside a marker segment';
    const length = ((b[o] << 8) | b[o + 1]) - 2;
    if (length < 0 || o + 2 + length > b.length) return 'ends inside a marker segment';
    segments.push({ marker, start: o + 2, length });
    o += 2 + length;
    if (marker === 0xda) return { segments, sosEnd: o };
  }
}

const isSof = (m: number): boolean => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

function decodeJpeg(buf: Buffer, name: string, maxPixels: number): DecodedImage {
  const corrupt = (why: string): ImageFileError => new ImageFileError('corrupt', `${name} is a corrupt or truncated JPEG (${why})`);
  const parsed = jpegSegments(buf);
  if (typeof parsed === 'string') throw corrupt(parsed);
  const sof = parsed.segments.find((s) => isSof(s.marker));
  if (!sof || sof.length < 6) throw corrupt('no frame header');
  const h = (buf[sof.start + 1] << 8) | buf[sof.start + 2];
  const w = (buf[sof.start + 3] << 8) | buf[sof.start + 4];
  if (w === 0 || h === 0) throw corrupt(`size ${w}x${h}`);
  checkSize(name, w, h, maxPixels);
  // jpeg-js silently fills a truncated scan with grey: require the end-of-image marker after the scan data
  // (entropy-coded data never contains FF D9; trailing bytes after it are allowed).
  if (buf.indexOf(Buffer.from([0xff, 0xd9]), parsed.sosEnd) < 0) throw corrupt('no end-of-image marker');

  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(buf, {
      useTArray: true,
      formatAsRGBA: true,
      tolerantDecoding: true,
      maxResolutionInMP: maxPixels / 1e6,
      maxMemoryUsageInMB: Math.max(512, Math.ceil((maxPixels * 12) / 2 ** 20)),
    });
  } catch (e) {
    throw corrupt(oneLine(e));
  }
  if (img.width !== w || img.height !== h || img.data.length !== w * h * 4) throw corrupt('decoded size mismatch');
  return { width: w, height: h, data: new Uint8ClampedArray(img.data.buffer, img.data.byteOffset, img.data.length) };
}

// ---------------------------------------------------------------------------------------------- WebP, GIF, BMP

const u32le = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

/** The RIFF chunks of a WebP file (type, payload offset, payload length); stops at the first truncated one. */
function webpChunks(b: Uint8Array): { type: string; start: number; length: number }[] {
  const chunks: { type: string; start: number; length: number }[] = [];
  for (let o = 12; o + 8 <= b.length; ) {
    const length = u32le(b, o + 4);
    if (o + 8 + length > b.length) break;
    chunks.push({ type: String.fromCharCode(b[o], b[o + 1], b[o + 2], b[o + 3]), start: o + 8, length });
    o += 8 + length + (length & 1);
  }
  return chunks;
}

/** Width and height from the VP8X / VP8 / VP8L header, or null. */
function webpSize(b: Uint8Array): { width: number; height: number } | null {
  const c = webpChunks(b)[0];
  if (!c) return null;
  const p = c.start;
  if (c.type === 'VP8X' && c.length >= 10) return { width: 1 + (b[p + 4] | (b[p + 5] << 8) | (b[p + 6] << 16)), height: 1 + (b[p + 7] | (b[p + 8] << 8) | (b[p + 9] << 16)) };
  if (c.type === 'VP8 ' && c.length >= 10) return { width: (b[p + 6] | (b[p + 7] << 8)) & 0x3fff, height: (b[p + 8] | (b[p + 9] << 8)) & 0x3fff };
  if (c.type === 'VP8L' && c.length >= 5) {
    const bits = u32le(b, p + 1);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  return null;
}

function decodeWebp(buf: Buffer, name: string, maxPixels: number): DecodedImage {
  const corrupt = (why: string): ImageFileError => new ImageFileError('corrupt', `${name} is a corrupt or truncated WebP (${why})`);
  const size = webpSize(buf);
  if (!size) throw corrupt('no image header');
  checkSize(name, size.width, size.height, maxPixels);
  const img = webp.decode(buf) as { width: number; height: number; data: Uint8ClampedArray } | null;
  if (!img) throw corrupt('libwebp could not decode it');
  return { width: img.width, height: img.height, data: new Uint8ClampedArray(img.data) };
}

function decodeGif(buf: Buffer, name: string, maxPixels: number): DecodedImage {
  const corrupt = (why: string): ImageFileError => new ImageFileError('corrupt', `${name} is a corrupt or truncated GIF (${why})`);
  if (buf.length < 13) throw corrupt('no screen descriptor');
  const [w, h] = [buf[6] | (buf[7] << 8), buf[8] | (buf[9] << 8)];
  if (w === 0 || h === 0) throw corrupt(`size ${w}x${h}`);
  checkSize(name, w, h, maxPixels);
  const data = new Uint8ClampedArray(w * h * 4); // transparent black, as a browser's canvas before frame 1
  try {
    const reader = new GifReader(buf);
    if (reader.numFrames() === 0) throw new Error('no frames');
    reader.decodeAndBlitFrameRGBA(0, data);
  } catch (e) {
    throw corrupt(oneLine(e));
  }
  return { width: w, height: h, data };
}

function decodeBmp(buf: Buffer, name: string, maxPixels: number): DecodedImage {
  const corrupt = (why: string): ImageFileError => new ImageFileError('corrupt', `${name} is a corrupt or truncated BMP (${why})`);
  const w = buf.readInt32LE(18);
  const h = Math.abs(buf.readInt32LE(22)); // negative: rows stored top-down
  if (w <= 0 || h === 0) throw corrupt(`size ${w}x${h}`);
  checkSize(name, w, h, maxPixels);
  let data: Uint8ClampedArray;
  try {
    const bmp = decodeBmpBytes(buf, { toRGBA: true });
    if (bmp.width !== w || bmp.height !== h || bmp.data.length < w * h * 4) throw new Error('pixel data too short');
    data = new Uint8ClampedArray(bmp.data.subarray(0, w * h * 4));
  } catch (e) {
    throw corrupt(oneLine(e));
  }
  for (let i = 3; i < data.length; i += 4) data[i] = 255;
  return { width: w, height: h, data };
}

// ---------------------------------------------------------------------------------------------- EXIF

/** Orientation (1-8) from a TIFF/EXIF block (as in APP1 after "Exif\0\0", or a PNG eXIf chunk); 1 if absent. */
export function exifOrientationFromTiff(t: Uint8Array): number {
  if (t.length < 8) return 1;
  const le = t[0] === 0x49 && t[1] === 0x49; // "II"
  const be = t[0] === 0x4d && t[1] === 0x4d; // "MM"
  if (!le && !be) return 1;
  const u16 = (o: number): number => (le ? t[o] | (t[o + 1] << 8) : (t[o] << 8) | t[o + 1]);
  const u32 = (o: number): number => (le ? (t[o] | (t[o + 1] << 8) | (t[o + 2] << 16) | (t[o + 3] << 24)) >>> 0 : u32be(t, o));
  if (u16(2) !== 42) return 1;
  const ifd = u32(4);
  if (ifd + 2 > t.length) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > t.length) return 1;
    if (u16(e) !== 0x0112) continue;
    const type = u16(e + 2);
    // SHORT (3) as written by everyone; tolerate LONG (4) too.
    const v = type === 3 ? u16(e + 8) : type === 4 ? u32(e + 8) : 0;
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

/** EXIF orientation of a JPEG (1 when there is none or it is unreadable). */
export function jpegExifOrientation(bytes: Uint8Array): number {
  const parsed = jpegSegments(bytes);
  if (typeof parsed === 'string') return 1;
  for (const s of parsed.segments) {
    if (s.marker !== 0xe1 || s.length < 14) continue;
    const id = String.fromCharCode(...bytes.subarray(s.start, s.start + 6));
    if (id !== 'Exif\0\0') continue;
    return exifOrientationFromTiff(bytes.subarray(s.start + 6, s.start + s.length));
  }
  return 1;
}

/** EXIF orientation of a PNG from its eXIf chunk (1 when there is none). */
export function pngExifOrientation(bytes: Uint8Array): number {
  let o = 8;
  while (o + 8 <= bytes.length) {
    const len = u32be(bytes, o);
    const type = String.fromCharCode(bytes[o + 4], bytes[o + 5], bytes[o + 6], bytes[o + 7]);
    if (o + 12 + len > bytes.length) return 1;
    if (type === 'eXIf') return exifOrientationFromTiff(bytes.subarray(o + 8, o + 8 + len));
    if (type === 'IEND') return 1;
    o += 12 + len;
  }
  return 1;
}

/** EXIF orientation of a WebP from its EXIF chunk (1 when there is none). */
export function webpExifOrientation(bytes: Uint8Array): number {
  const exif = webpChunks(bytes).find((c) => c.type === 'EXIF');
  if (!exif) return 1;
  let tiff = bytes.subarray(exif.start, exif.start + exif.length);
  if (ascii(tiff, 0, 'Exif\0\0')) tiff = tiff.subarray(6); // some writers keep JPEG's APP1 prefix
  return exifOrientationFromTiff(tiff);
}

/**
 * Apply an EXIF orientation (1-8) so that the result is upright, as PIL's ImageOps.exif_transpose:
 * 2 mirror, 3 rotate 180, 4 flip vertically, 5 transpose, 6 rotate 90 clockwise, 7 transverse,
 * 8 rotate 90 counter-clockwise. 5-8 swap width and height. 1 (or anything else) returns the image as is.
 */
export function applyExifOrientation(img: DecodedImage, orientation: number): DecodedImage {
  if (!Number.isInteger(orientation) || orientation < 2 || orientation > 8) return img;
  const { width: w, height: h } = img;
  const swap = orientation >= 5;
  const W = swap ? h : w;
  const H = swap ? w : h;
  const d = img.data;
  const src =
    d.byteOffset % 4 === 0
      ? new Uint32Array(d.buffer, d.byteOffset, w * h)
      : new Uint32Array(d.buffer.slice(d.byteOffset, d.byteOffset + w * h * 4));
  const dst = new Uint32Array(w * h);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      let sx: number;
      let sy: number;
      switch (orientation) {
        case 2: sx = w - 1 - x; sy = y; break;
        case 3: sx = w - 1 - x; sy = h - 1 - y; break;
        case 4: sx = x; sy = h - 1 - y; break;
        case 5: sx = y; sy = x; break;
        case 6: sx = y; sy = h - 1 - x; break;
        case 7: sx = w - 1 - y; sy = h - 1 - x; break;
        default: sx = w - 1 - y; sy = x; break; // 8
      }
      dst[y * W + x] = src[sy * w + sx];
    }
  }
  return { width: W, height: H, data: new Uint8ClampedArray(dst.buffer) };
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0].trim() || 'unknown error';
}
