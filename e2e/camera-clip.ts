// The clip Chromium's fake camera plays in the browser tests (--use-file-for-fake-video-capture): a Y4M file
// (4:2:0, full-range BT.601) the tests recognise in a captured frame: the left half red, the right half blue, and
// a bright bar at the top whose width grows frame by frame, so consecutive frames differ.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export const CAMERA_CLIP = 'e2e/generated/camera.y4m';
export const CLIP_SIZE = { width: 320, height: 240 };
const FRAMES = 20;
const FPS = 10;

const RED = [220, 30, 30] as const;
const BLUE = [30, 40, 220] as const;
const WHITE = [250, 250, 250] as const;

function yuv([r, g, b]: readonly [number, number, number]): [number, number, number] {
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  return [clamp(0.299 * r + 0.587 * g + 0.114 * b), clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b), clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)];
}

function colourAt(x: number, y: number, frame: number, { width, height } = CLIP_SIZE): readonly [number, number, number] {
  if (y < height / 8 && x < ((frame + 1) * width) / FRAMES) return WHITE;
  return x < width / 2 ? RED : BLUE;
}

export function writeCameraClip(path = CAMERA_CLIP): void {
  const { width, height } = CLIP_SIZE;
  const parts: Buffer[] = [Buffer.from(`YUV4MPEG2 W${width} H${height} F${FPS}:1 Ip A1:1 C420jpeg\n`)];
  for (let f = 0; f < FRAMES; f++) {
    const y = Buffer.alloc(width * height);
    const u = Buffer.alloc((width / 2) * (height / 2));
    const v = Buffer.alloc((width / 2) * (height / 2));
    for (let row = 0; row < height; row++) for (let col = 0; col < width; col++) y[row * width + col] = yuv(colourAt(col, row, f))[0];
    for (let row = 0; row < height / 2; row++)
      for (let col = 0; col < width / 2; col++) {
        const [, cu, cv] = yuv(colourAt(col * 2, row * 2, f));
        u[row * (width / 2) + col] = cu;
        v[row * (width / 2) + col] = cv;
      }
    parts.push(Buffer.from('FRAME\n'), y, u, v);
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, Buffer.concat(parts));
}
