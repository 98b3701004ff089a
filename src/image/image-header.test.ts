// Image dimensions from file headers, checked against real encoders (pngjs, jpeg-js, omggif).
import jpeg from 'jpeg-js';
import { GifWriter } from 'omggif';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { imageDimensions } from './image-header.ts';

describe('imageDimensions', () => {
  it('reads PNG, JPEG and GIF sizes as their encoders wrote them', () => {
    const png = PNG.sync.write(new PNG({ width: 37, height: 11 }));
    expect(imageDimensions(png)).toEqual({ format: 'png', width: 37, height: 11 });
    const data = Buffer.alloc(53 * 29 * 4, 128);
    const jpg = jpeg.encode({ data, width: 53, height: 29 }, 80).data;
    expect(imageDimensions(jpg)).toEqual({ format: 'jpeg', width: 53, height: 29 });
    const buf = new Uint8Array(4096);
    const gw = new GifWriter(buf, 300, 7, { palette: [0, 0xffffff] });
    gw.addFrame(0, 0, 300, 7, new Array(2100).fill(1));
    expect(imageDimensions(buf.slice(0, gw.end()))).toEqual({ format: 'gif', width: 300, height: 7 });
  });

  it('gives null for text, a truncated header, or an unknown format', () => {
    expect(imageDimensions(new TextEncoder().encode('just text, not pixels'))).toBeNull();
    expect(imageDimensions(Uint8Array.from([0x89, 0x50, 0x4e, 0x47]))).toBeNull();
    expect(imageDimensions(Uint8Array.from([0xff, 0xd8, 0xff]))).toBeNull();
  });
});
