// The GPU vision side on the default tiny checkpoint (336 px -> 576 CLIP rows, CLIP width 256 x 4 heads, 2 of 3
// layers used), written to a temporary folder and opened with openCheckpoint, against the CPU reference; prints
// the GPU time per stage. Tolerance and metric: image-encoder.testing.ts (max err / max|ref| <= 1e-4).
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { GpuContext } from '../gpu/device.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { checkImageEncoder, tinyCheckpointSource } from './image-encoder.testing.ts';

let ctx: GpuContext;
const dirs: string[] = [];
beforeAll(async () => {
  ctx = await createNodeGpu();
});
afterAll(async () => {
  ctx?.device.destroy();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('image encoder on the default tiny checkpoint (336 px, 576 CLIP rows)', () => {
  it('C = 1 at f32, with the GPU time per stage', async () => {
    await checkImageEncoder(ctx.device, await tinyCheckpointSource(dirs), 'tiny checkpoint C=1', { profile: true });
  });

  it('C = 2 at q4', async () => {
    await checkImageEncoder(ctx.device, await tinyCheckpointSource(dirs, { compressorSize: 2, seed: 3 }), 'tiny checkpoint C=2', { precision: 'q4' });
  });
});
