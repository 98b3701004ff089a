import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GifWriter, type FrameOptions } from 'omggif';
import pngjs from 'pngjs';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeVideoBytes, decodeVideoFile, detectVideoFormat, VideoFileError } from './video-file.ts';

const dir = mkdtempSync(join(tmpdir(), 'video-file-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function write(name: string, bytes: Uint8Array | string): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

// ------------------------------------------------------------------ GIF writing
interface FrameSpec {
  x?: number;
  y?: number;
  w: number;
  h: number;
  /** one palette index for every pixel, or one per pixel */
  px: number | number[];
  opts?: FrameOptions;
}

const RED = 0xff0000;
const GREEN = 0x00ff00;
const BLUE = 0x0000ff;
const BASIC = [RED, GREEN, BLUE, 0xffffff];

function makeGif(width: number, height: number, palette: number[], frames: FrameSpec[]): Uint8Array {
  const buf = new Uint8Array(4096 + frames.reduce((n, f) => n + f.w * f.h * 2, 0));
  const gw = new GifWriter(buf, width, height, { palette, loop: 0 });
  for (const f of frames) {
    const px = typeof f.px === 'number' ? new Array<number>(f.w * f.h).fill(f.px) : f.px;
    gw.addFrame(f.x ?? 0, f.y ?? 0, f.w, f.h, px, f.opts);
  }
  return buf.slice(0, gw.end());
}

const rgba = (c: number, a = 255): number[] => [c >> 16, (c >> 8) & 0xff, c & 0xff, a];
/** The pixels of a w x h image, from a function of (x, y) to RGBA. */
const image = (w: number, h: number, at: (x: number, y: number) => number[]): number[] =>
  Array.from({ length: w * h }, (_, i) => at(i % w, Math.floor(i / w))).flat();

/**
 * The composited frame k of `frames`: k short fillers are appended so that the GIF lasts under 1 s with
 * 2k+1 frames, where the one sampled frame is the middle one, k.
 */
function compositeAt(width: number, height: number, frames: FrameSpec[], palette = BASIC): number[] {
  const k = frames.length - 1;
  const filler: FrameSpec = { w: 1, h: 1, px: 3, opts: { delay: 2 } };
  const gif = makeGif(width, height, palette, [...frames, ...new Array<FrameSpec>(k).fill(filler)]);
  const v = decodeVideoBytes(gif, 'test.gif');
  expect(v.frameIndices).toEqual([k]);
  return Array.from(v.frames[0].data);
}

// ------------------------------------------------------------------ sampling
describe('decodeVideoFile: sampling', () => {
  // palette colour k for frame k
  const palette = Array.from({ length: 32 }, (_, k) => ((k * 8) << 16) | ((255 - k * 8) << 8) | k);

  it('30 frames at 10 fps: 3 s, frames 5, 14, 24', async () => {
    const frames = Array.from({ length: 30 }, (_, k): FrameSpec => ({ w: 4, h: 3, px: k, opts: { delay: 10 } }));
    const path = write('thirty.gif', makeGif(4, 3, palette, frames));
    const v = await decodeVideoFile(path);
    expect(v.totalFrames).toBe(30);
    expect(v.fps).toBe(10);
    // s = 29/3: rounds 0, 10, 19, 29 -> (0+10)//2, (10+19)//2, (19+29)//2
    expect(v.frameIndices).toEqual([5, 14, 24]);
    expect(v.frames).toHaveLength(3);
    v.frames.forEach((f, i) => {
      expect(f.width).toBe(4);
      expect(f.height).toBe(3);
      expect(f.data).toBeInstanceOf(Uint8ClampedArray);
      expect(Array.from(f.data)).toEqual(image(4, 3, () => rgba(palette[v.frameIndices[i]])));
    });
  });

  it('a delay of 0 plays as 100 ms, as in browsers', () => {
    const frames = Array.from({ length: 25 }, (_, k): FrameSpec => ({ w: 2, h: 2, px: k, opts: { delay: 0 } }));
    const v = decodeVideoBytes(makeGif(2, 2, palette, frames), 'zero.gif');
    expect(v.fps).toBe(10);
    // 25 // 10 = 2 frames, s = 12: rounds 0, 12, 24
    expect(v.frameIndices).toEqual([6, 18]);
    expect(Array.from(v.frames[1].data)).toEqual(image(2, 2, () => rgba(palette[18])));
  });

  it('fps is the average over the whole GIF', () => {
    // 4 frames lasting 0.5 + 1.5 + 1 + 1 s = 4 s: 1 fps, 4 samples, s = 0.75: rounds 0, 1, 2, 2, 3
    const delays = [50, 150, 100, 100];
    const frames = delays.map((delay, k): FrameSpec => ({ w: 1, h: 1, px: k, opts: { delay } }));
    const v = decodeVideoBytes(makeGif(1, 1, palette, frames), 'avg.gif');
    expect(v.fps).toBe(1);
    expect(v.frameIndices).toEqual([0, 1, 2, 2]);
    expect(v.frames[2]).toBe(v.frames[3]);
  });

  it('a single-frame GIF gives that frame', () => {
    const v = decodeVideoBytes(makeGif(2, 1, BASIC, [{ w: 2, h: 1, px: [1, 2] }]), 'still.gif');
    expect(v).toMatchObject({ totalFrames: 1, fps: 10, frameIndices: [0] });
    expect(Array.from(v.frames[0].data)).toEqual([...rgba(GREEN), ...rgba(BLUE)]);
  });
});

// ------------------------------------------------------------------ compositing
describe('decodeVideoFile: compositing', () => {
  const red4 = (disposal = 1): FrameSpec => ({ w: 4, h: 4, px: 0, opts: { delay: 2, disposal } });
  const square = (x: number, y: number): boolean => x >= 1 && x <= 2 && y >= 1 && y <= 2;

  it('a frame smaller than the screen starts on transparent black', () => {
    const got = compositeAt(4, 4, [{ x: 1, y: 1, w: 2, h: 2, px: 1, opts: { delay: 2 } }]);
    expect(got).toEqual(image(4, 4, (x, y) => (square(x, y) ? rgba(GREEN) : [0, 0, 0, 0])));
  });

  it('a patch at an offset draws over the previous frame', () => {
    const got = compositeAt(4, 4, [red4(), { x: 1, y: 1, w: 2, h: 2, px: 1, opts: { delay: 2 } }]);
    expect(got).toEqual(image(4, 4, (x, y) => rgba(square(x, y) ? GREEN : RED)));
  });

  it('disposal 2 clears the frame rectangle to transparent black', () => {
    const got = compositeAt(4, 4, [
      red4(),
      { x: 1, y: 1, w: 2, h: 2, px: 1, opts: { delay: 2, disposal: 2 } },
      { x: 0, y: 0, w: 1, h: 1, px: 2, opts: { delay: 2 } },
    ]);
    expect(got).toEqual(image(4, 4, (x, y) => (x === 0 && y === 0 ? rgba(BLUE) : square(x, y) ? [0, 0, 0, 0] : rgba(RED))));
  });

  it('disposal 3 restores what was under the frame', () => {
    const got = compositeAt(4, 4, [
      { w: 4, h: 4, px: image(4, 4, (x) => [x % 2]).flat(), opts: { delay: 2 } }, // red/green stripes
      { x: 1, y: 1, w: 2, h: 2, px: 2, opts: { delay: 2, disposal: 3 } },
      { x: 3, y: 3, w: 1, h: 1, px: 3, opts: { delay: 2 } },
    ]);
    expect(got).toEqual(image(4, 4, (x, y) => (x === 3 && y === 3 ? rgba(0xffffff) : rgba(x % 2 ? GREEN : RED))));
  });

  it('disposal 1 keeps the frame; transparent pixels show the frame below', () => {
    const checker = image(4, 4, (x, y) => [(x + y) % 2 ? 3 : 1]).flat(); // 3 is transparent
    const got = compositeAt(4, 4, [red4(1), { w: 4, h: 4, px: checker, opts: { delay: 2, transparent: 3 } }]);
    expect(got).toEqual(image(4, 4, (x, y) => rgba((x + y) % 2 ? RED : GREEN)));
  });

  it('a Graphic Control Extension applies to the next image only', () => {
    // frame 1 has no extension: its index 3 is opaque white, not frame 0's transparent index
    const got = compositeAt(4, 4, [
      { w: 4, h: 4, px: 0, opts: { delay: 2, transparent: 3 } },
      { w: 4, h: 4, px: 3 },
    ]);
    expect(got).toEqual(image(4, 4, () => rgba(0xffffff)));
  });

  it('parts of a frame outside the screen are clipped', () => {
    const got = compositeAt(4, 4, [red4(), { x: 2, y: 2, w: 3, h: 3, px: 1, opts: { delay: 2 } }]);
    expect(got).toEqual(image(4, 4, (x, y) => rgba(x >= 2 && y >= 2 ? GREEN : RED)));
  });
});

// ------------------------------------------------------------------ errors
describe('decodeVideoFile: errors', () => {
  const errorOf = async (p: Promise<unknown>): Promise<VideoFileError> => {
    const e = await p.then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(VideoFileError);
    expect((e as Error).message).not.toMatch(/\n/);
    return e as VideoFileError;
  };
  const mp4 = Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom\0\0\0\0isomiso2', 'latin1')]);

  it('an mp4 (by its bytes, whatever its name) needs a browser', async () => {
    const e = await errorOf(decodeVideoFile(write('clip.gif', mp4)));
    expect(e.kind).toBe('unsupported-format');
    expect(e.message).toBe('clip.gif: decoding mp4 video needs a browser (the app decodes it with <video>); in Node pass an animated GIF');
  });

  it('other containers are told apart', () => {
    expect(detectVideoFormat(mp4)).toBe('mp4');
    expect(detectVideoFormat(Buffer.from('\0\0\0\x14ftypqt  \0\0\0\0', 'latin1'))).toBe('mov');
    expect(detectVideoFormat(Buffer.from('\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm', 'latin1'))).toBe('webm');
    expect(detectVideoFormat(Buffer.from('\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska', 'latin1'))).toBe('mkv');
    expect(detectVideoFormat(Buffer.from('RIFF\x10\0\0\0AVI LIST', 'latin1'))).toBe('avi');
    expect(detectVideoFormat(Buffer.from('GIF87a\x01\0\x01\0', 'latin1'))).toBe('gif');
    expect(detectVideoFormat(Buffer.from('\0\0\0\x18ftypheic\0\0\0\0', 'latin1'))).toBeNull(); // HEIF still image
    expect(detectVideoFormat(Buffer.from('RIFF\x10\0\0\0WEBPVP8 ', 'latin1'))).toBeNull();
    expect(() => decodeVideoBytes(Buffer.from('\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm', 'latin1'), 'a.webm')).toThrow(
      'a.webm: decoding webm video needs a browser',
    );
    expect(() => decodeVideoBytes(Buffer.from('RIFF\x10\0\0\0AVI LIST', 'latin1'), 'a.avi')).toThrow(
      'a.avi: decoding avi video is not supported (browsers cannot play it either)',
    );
  });

  it('a PNG is not a video', async () => {
    const png = new pngjs.PNG({ width: 2, height: 2 });
    const e = await errorOf(decodeVideoFile(write('pic.png', pngjs.PNG.sync.write(png))));
    expect(e.kind).toBe('not-a-video');
    expect(e.message).toBe('pic.png is not a video this CLI can decode (animated GIF)');
  });

  it('empty, missing and truncated files', async () => {
    expect((await errorOf(decodeVideoFile(write('empty.gif', '')))).message).toBe(
      'empty.gif is not a video this CLI can decode (animated GIF) (the file is empty)',
    );
    const missing = await errorOf(decodeVideoFile(join(dir, 'nope.gif')));
    expect(missing.message).toBe('cannot read nope.gif: no such file');
    const gif = makeGif(8, 8, BASIC, [{ w: 8, h: 8, px: image(8, 8, (x, y) => [(x * y) % 4]).flat() }]);
    const cut = await errorOf(decodeVideoFile(write('cut.gif', gif.slice(0, gif.length - 8))));
    expect(cut.kind).toBe('corrupt');
    expect(cut.message).toMatch(/^cut\.gif is a corrupt or truncated GIF \(/);
  });

  it('refuses GIFs whose sampled frames would take over 1 GiB', async () => {
    // 40000 x 40000 screen, one 1x1 frame: 6.4 GB for the one sampled frame; refused before decoding
    const big = makeGif(40000, 40000, BASIC, [{ w: 1, h: 1, px: 0 }]);
    const e = await errorOf(decodeVideoFile(write('big.gif', big)));
    expect(e.kind).toBe('too-large');
    expect(e.message).toBe('big.gif: 1 sampled frame of 40000x40000 need 6104 MiB, over the limit of 1024 MiB');
    const frames = Array.from({ length: 30 }, (): FrameSpec => ({ w: 4, h: 3, px: 0, opts: { delay: 10 } }));
    expect(() => decodeVideoBytes(makeGif(4, 3, BASIC, frames), 'small.gif', { maxBytes: 100 })).toThrow(
      'small.gif: 3 sampled frames of 4x3 need 144 bytes, over the limit of 100 bytes',
    );
  });
});
