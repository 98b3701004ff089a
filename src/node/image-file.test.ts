import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { encode as encodeBmp } from 'bmp-ts';
import jpeg from 'jpeg-js';
import { GifWriter } from 'omggif';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  applyExifOrientation,
  decodeImageBytes,
  decodeImageFile,
  detectImageFormat,
  ImageFileError,
  jpegExifOrientation,
  webpExifOrientation,
  type DecodedImage,
} from './image-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'image-file-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function write(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

// ------------------------------------------------------------------ a minimal PNG writer (for the formats pngjs cannot write)
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}
/** rows: the raw (unfiltered) bytes of each scanline. */
function makePng(w: number, h: number, depth: number, colorType: number, rows: number[][], extra: Buffer[] = []): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = colorType;
  const raw = Buffer.from(rows.flatMap((r) => [0, ...r]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...extra,
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}
const px = (img: DecodedImage, x: number, y: number): number[] => [...img.data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4)];

// ------------------------------------------------------------------ EXIF injection
function exifApp1(orientation: number, littleEndian: boolean): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  const u16 = (v: number, o: number) => (littleEndian ? tiff.writeUInt16LE(v, o) : tiff.writeUInt16BE(v, o));
  const u32 = (v: number, o: number) => (littleEndian ? tiff.writeUInt32LE(v, o) : tiff.writeUInt32BE(v, o));
  tiff.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(8, 4); // IFD0 right after the header
  u16(1, 8); // one entry
  u16(0x0112, 10); // Orientation
  u16(3, 12); // SHORT
  u32(1, 14); // count 1
  u16(orientation, 18); // value, left-justified in the 4-byte field
  u32(0, 22); // no next IFD
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const seg = Buffer.alloc(4);
  seg[0] = 0xff;
  seg[1] = 0xe1;
  seg.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([seg, payload]);
}
function withExif(jpg: Uint8Array, orientation: number, littleEndian = false): Buffer {
  const b = Buffer.from(jpg);
  return Buffer.concat([b.subarray(0, 2), exifApp1(orientation, littleEndian), b.subarray(2)]);
}

/** 16x8 JPEG: left half red, right half blue. */
function redBlueJpeg(): Buffer {
  const w = 16;
  const h = 8;
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) data.set(x < 8 ? [255, 0, 0, 255] : [0, 0, 255, 255], (y * w + x) * 4);
  return jpeg.encode({ width: w, height: h, data }, 95).data;
}
const isRed = (p: number[]) => p[0] > 200 && p[1] < 60 && p[2] < 60;
const isBlue = (p: number[]) => p[2] > 200 && p[0] < 60 && p[1] < 60;

describe('decodeImageFile: PNG', () => {
  it('decodes an RGBA PNG written by pngjs', async () => {
    const png = new pngjs.PNG({ width: 3, height: 2 });
    for (let i = 0; i < 6; i++) png.data.set([i * 10, i * 20, i * 30, 200 + i], i * 4);
    const img = await decodeImageFile(write('rgba.png', pngjs.PNG.sync.write(png)));
    expect([img.width, img.height]).toEqual([3, 2]);
    expect(img.data).toBeInstanceOf(Uint8ClampedArray);
    expect([...img.data]).toEqual([...png.data]);
  });

  it('expands palette (with tRNS), 4-bit grey, 16-bit RGB, grey+alpha and colour-keyed RGB', () => {
    const plte = chunk('PLTE', Uint8Array.from([255, 0, 0, 0, 255, 0, 0, 0, 255]));
    const trns = chunk('tRNS', Uint8Array.from([255, 128]));
    const pal = decodeImageBytes(makePng(3, 1, 8, 3, [[0, 1, 2]], [plte, trns]), 'pal.png');
    expect([...pal.data]).toEqual([255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 255]);

    const grey4 = decodeImageBytes(makePng(2, 1, 4, 0, [[0x0f]]), 'g4.png'); // pixels 0 and 15
    expect([...grey4.data]).toEqual([0, 0, 0, 255, 255, 255, 255, 255]);

    const rgb16 = decodeImageBytes(makePng(1, 1, 16, 2, [[0x12, 0x34, 0x80, 0xff, 0xff, 0x00]]), 'rgb16.png');
    expect([...rgb16.data]).toEqual([0x12, 0x80, 0xff, 255]); // high byte of each sample

    const ga = decodeImageBytes(makePng(1, 1, 8, 4, [[77, 99]]), 'ga.png');
    expect([...ga.data]).toEqual([77, 77, 77, 99]);

    const key = chunk('tRNS', Uint8Array.from([0, 10, 0, 20, 0, 30]));
    const rgbKey = decodeImageBytes(makePng(2, 1, 8, 2, [[10, 20, 30, 1, 2, 3]], [key]), 'key.png');
    expect([...rgbKey.data]).toEqual([10, 20, 30, 0, 1, 2, 3, 255]); // colour kept, alpha 0
  });

  it('honours a PNG eXIf orientation', () => {
    const tiff = exifApp1(6, true).subarray(4 + 6); // the TIFF block without the APP1 header and "Exif\0\0"
    const img = decodeImageBytes(makePng(2, 1, 8, 0, [[10, 20]], [chunk('eXIf', tiff)]), 'exif.png');
    expect([img.width, img.height]).toEqual([1, 2]);
    expect([px(img, 0, 0)[0], px(img, 0, 1)[0]]).toEqual([10, 20]);
  });

  it('rejects a text file named .png, by its content', async () => {
    const p = write('photo.png', 'hello, I am text\n');
    await expect(decodeImageFile(p)).rejects.toThrow(/^photo\.png is not a PNG, JPEG, WebP, GIF or BMP image$/);
    await expect(decodeImageFile(p)).rejects.toMatchObject({ kind: 'not-an-image' });
    await expect(decodeImageFile(write('empty.png', ''))).rejects.toThrow('empty.png is empty, not a PNG, JPEG, WebP, GIF or BMP image');
  });

  it('rejects a truncated or corrupt PNG', async () => {
    const png = new pngjs.PNG({ width: 64, height: 64 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 7919) % 251;
    const bytes = pngjs.PNG.sync.write(png);
    const truncated = write('cut.png', bytes.subarray(0, Math.floor(bytes.length / 2)));
    await expect(decodeImageFile(truncated)).rejects.toThrow('cut.png is a corrupt or truncated PNG (the data ends early)');
    await expect(decodeImageFile(truncated)).rejects.toMatchObject({ kind: 'corrupt' });
    await expect(decodeImageFile(write('head.png', bytes.subarray(0, 20)))).rejects.toThrow(/head\.png is a corrupt or truncated PNG/);
    const badCrc = Buffer.from(bytes);
    badCrc[40] ^= 0xff;
    await expect(decodeImageFile(write('crc.png', badCrc))).rejects.toThrow(/crc\.png is a corrupt or truncated PNG/);
  });

  it('rejects images over the pixel limit before decoding, naming size and limit', async () => {
    const huge = makePng(10000, 8000, 8, 0, []); // header only matters
    await expect(decodeImageFile(write('huge.png', huge))).rejects.toThrow(
      'huge.png is 10000x8000 (80 megapixels), over the limit of 64 megapixels',
    );
    await expect(decodeImageFile(write('huge.png', huge))).rejects.toMatchObject({ kind: 'too-large' });
    expect(() => decodeImageBytes(redBlueJpeg(), 'small.jpg', { maxPixels: 100 })).toThrow(
      'small.jpg is 16x8 (128 pixels), over the limit of 100 pixels',
    );
  });

  it('reports unreadable paths', async () => {
    await expect(decodeImageFile(join(dir, 'missing.png'))).rejects.toThrow('cannot read missing.png: no such file');
    await expect(decodeImageFile(dir)).rejects.toBeInstanceOf(ImageFileError);
  });
});

describe('decodeImageFile: JPEG', () => {
  it('decodes a jpeg-js encoded file (magic bytes, not the name)', async () => {
    const img = await decodeImageFile(write('actually-a-jpeg.png', redBlueJpeg()));
    expect([img.width, img.height]).toEqual([16, 8]);
    expect(isRed(px(img, 2, 4))).toBe(true);
    expect(isBlue(px(img, 13, 4))).toBe(true);
    expect(px(img, 2, 4)[3]).toBe(255);
    expect(detectImageFormat(redBlueJpeg())).toBe('jpeg');
  });

  it('applies EXIF orientation 6 (rotate 90 clockwise), big- and little-endian EXIF', async () => {
    for (const le of [false, true]) {
      const bytes = withExif(redBlueJpeg(), 6, le);
      expect(jpegExifOrientation(bytes)).toBe(6);
      const img = await decodeImageFile(write(`rot6-${le}.jpg`, bytes));
      expect([img.width, img.height]).toEqual([8, 16]);
      // The left (red) half of the stored image is now on top, the right (blue) half at the bottom.
      expect(isRed(px(img, 4, 2))).toBe(true);
      expect(isBlue(px(img, 4, 13))).toBe(true);
      // Exactly the rotation of the un-rotated decode.
      const plain = decodeImageBytes(redBlueJpeg(), 'plain.jpg');
      for (let y = 0; y < 16; y++) for (let x = 0; x < 8; x++) expect(px(img, x, y)).toEqual(px(plain, y, 8 - 1 - x));
    }
    const img8 = decodeImageBytes(withExif(redBlueJpeg(), 8), 'rot8.jpg');
    expect([img8.width, img8.height]).toEqual([8, 16]);
    expect(isBlue(px(img8, 4, 2))).toBe(true);
    expect(decodeImageBytes(withExif(redBlueJpeg(), 1), 'rot1.jpg').width).toBe(16);
  });

  it('rejects truncated JPEGs and accepts trailing bytes after the end marker', () => {
    const bytes = redBlueJpeg();
    expect(() => decodeImageBytes(bytes.subarray(0, bytes.length - 40), 'cut.jpg')).toThrow(
      /^cut\.jpg is a corrupt or truncated JPEG \(.+\)$/,
    );
    const noise = Buffer.alloc(64 * 64 * 4);
    for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
    const big = jpeg.encode({ width: 64, height: 64, data: noise }, 90).data;
    expect(() => decodeImageBytes(big.subarray(0, Math.floor(big.length * 0.7)), 'scan.jpg')).toThrow(
      'scan.jpg is a corrupt or truncated JPEG (no end-of-image marker)',
    );
    expect(() => decodeImageBytes(bytes.subarray(0, 30), 'head.jpg')).toThrow(/head\.jpg is a corrupt or truncated JPEG/);
    const trailing = Buffer.concat([bytes, Buffer.from('trailing garbage')]);
    expect(decodeImageBytes(trailing, 'tail.jpg').width).toBe(16);
  });
});

// Chromium's own WebP encoder (canvas.convertToBlob) wrote these 16x8 red | blue files: lossy (VP8) and lossless (VP8L).
const webpFile = (kind: 'lossy' | 'lossless') => readFileSync(new URL(`./testdata/red-blue-${kind}.webp`, import.meta.url));

/** The WebP with an EXIF chunk (VP8X flag 0x08 set, chunk appended, RIFF size updated). */
function webpWithExif(webp: Buffer, orientation: number): Buffer {
  const tiff = exifApp1(orientation, true).subarray(4 + 6); // the TIFF block alone, as the WebP spec stores it
  const head = Buffer.alloc(8);
  head.write('EXIF', 0, 'latin1');
  head.writeUInt32LE(tiff.length, 4);
  const out = Buffer.concat([webp, head, tiff, Buffer.alloc(tiff.length & 1)]);
  if (out.toString('latin1', 12, 16) !== 'VP8X') throw new Error('fixture has no VP8X header');
  out[20] |= 0x08;
  out.writeUInt32LE(out.length - 8, 4);
  return out;
}

describe('decodeImageFile: WebP, GIF, BMP (what the browser also accepts)', () => {
  it('decodes lossy and lossless WebP through libwebp', async () => {
    for (const kind of ['lossy', 'lossless'] as const) {
      const img = await decodeImageFile(write(`red-blue-${kind}.bin`, webpFile(kind)));
      expect(detectImageFormat(webpFile(kind))).toBe('webp');
      expect([img.width, img.height]).toEqual([16, 8]);
      expect(isRed(px(img, 2, 4))).toBe(true);
      expect(isBlue(px(img, 13, 4))).toBe(true);
      expect(px(img, 2, 4)[3]).toBe(255);
    }
    expect(px(decodeImageBytes(webpFile('lossless'), 'l.webp'), 0, 0)).toEqual([255, 0, 0, 255]); // lossless: exact
  });

  it('applies a WebP EXIF chunk orientation, exactly as the rotation of the plain decode', () => {
    const rotated = webpWithExif(webpFile('lossless'), 6);
    expect(webpExifOrientation(rotated)).toBe(6);
    expect(webpExifOrientation(webpFile('lossless'))).toBe(1);
    const img = decodeImageBytes(rotated, 'rot6.webp');
    const plain = decodeImageBytes(webpFile('lossless'), 'plain.webp');
    expect([img.width, img.height]).toEqual([8, 16]);
    for (let y = 0; y < 16; y++) for (let x = 0; x < 8; x++) expect(px(img, x, y)).toEqual(px(plain, y, 8 - 1 - x));
  });

  it('rejects a truncated WebP and a WebP over the pixel limit with one line', () => {
    const bytes = webpFile('lossy');
    expect(() => decodeImageBytes(bytes.subarray(0, 60), 'cut.webp')).toThrow(/^cut\.webp is a corrupt or truncated WebP \(.+\)$/);
    expect(() => decodeImageBytes(bytes, 'small.webp', { maxPixels: 100 })).toThrow('small.webp is 16x8 (128 pixels), over the limit of 100 pixels');
  });

  it('decodes the first frame of an animated GIF, transparent pixels transparent black', () => {
    const [w, h] = [6, 4];
    const buf = new Uint8Array(4096);
    const gif = new GifWriter(buf, w, h, { palette: [0xff0000, 0x00ff00, 0x0000ff, 0x000000], loop: 0 });
    gif.addFrame(0, 0, w, h, Array.from({ length: w * h }, (_, i) => (i % w < 3 ? 0 : i % w === 5 ? 3 : 2)), { delay: 10, transparent: 3 });
    gif.addFrame(0, 0, w, h, Array.from({ length: w * h }, () => 1), { delay: 10 });
    const bytes = Buffer.from(buf.subarray(0, gif.end()));
    expect(detectImageFormat(bytes)).toBe('gif');
    const img = decodeImageBytes(bytes, 'anim.gif');
    expect([img.width, img.height]).toEqual([w, h]);
    expect(px(img, 1, 2)).toEqual([255, 0, 0, 255]); // frame 1, not frame 2's green
    expect(px(img, 4, 2)).toEqual([0, 0, 255, 255]);
    expect(px(img, 5, 0)).toEqual([0, 0, 0, 0]);
    expect(() => decodeImageBytes(bytes.subarray(0, 30), 'cut.gif')).toThrow(/^cut\.gif is a corrupt or truncated GIF \(.+\)$/);
  });

  it('decodes 24-bit BMP (bottom-up rows) as opaque RGBA', () => {
    const [w, h] = [5, 3]; // 5 * 3 bytes per row: padded rows
    const abgr = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) abgr.set([0, (i * 40) & 255, (i * 17) & 255, i * 5], i * 4); // A B G R
    const bytes = encodeBmp({ data: abgr, width: w, height: h, bitPP: 24 }).data;
    expect(detectImageFormat(bytes)).toBe('bmp');
    const img = decodeImageBytes(bytes, 'p.bmp');
    expect([img.width, img.height]).toEqual([w, h]);
    for (let i = 0; i < w * h; i++) expect(px(img, i % w, Math.floor(i / w))).toEqual([i * 5, (i * 17) & 255, (i * 40) & 255, 255]);
    expect(() => decodeImageBytes(bytes, 'big.bmp', { maxPixels: 10 })).toThrow('big.bmp is 5x3 (15 pixels), over the limit of 10 pixels');
    expect(() => decodeImageBytes(bytes.subarray(0, 40), 'cut.bmp')).toThrow(/^cut\.bmp is a corrupt or truncated BMP/);
  });
});

describe('applyExifOrientation', () => {
  // 3x2 image whose pixels are 0..5 (in the red channel), row-major.
  const img: DecodedImage = { width: 3, height: 2, data: new Uint8ClampedArray([0, 1, 2, 3, 4, 5].flatMap((v) => [v, 0, 0, 255])) };
  const red = (o: DecodedImage): number[][] =>
    Array.from({ length: o.height }, (_, y) => Array.from({ length: o.width }, (_, x) => px(o, x, y)[0]));
  it.each([
    [1, [[0, 1, 2], [3, 4, 5]]],
    [2, [[2, 1, 0], [5, 4, 3]]],
    [3, [[5, 4, 3], [2, 1, 0]]],
    [4, [[3, 4, 5], [0, 1, 2]]],
    [5, [[0, 3], [1, 4], [2, 5]]],
    [6, [[3, 0], [4, 1], [5, 2]]],
    [7, [[5, 2], [4, 1], [3, 0]]],
    [8, [[2, 5], [1, 4], [0, 3]]],
  ])('orientation %i', (o, expected) => {
    expect(red(applyExifOrientation(img, o))).toEqual(expected);
  });
});
