import { describe, expect, it } from 'vitest';
import { clipEmbeddings, clipEncoderLayer, clipVisionFeatures, patchify } from './clip.ts';
import { randomPixelValues, randomWeights, tinyConfig } from './random-weights.testing.ts';

describe('CLIP', () => {
  it('patchify: patch gy*G+gx, vector in (c, ky, kx) order', () => {
    // 2 channels, 4x4, patch 2: value = c*100 + y*10 + x
    const pv = new Float32Array(2 * 16);
    for (let c = 0; c < 2; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) pv[c * 16 + y * 4 + x] = c * 100 + y * 10 + x;
    const p = patchify(pv, 2, 4, 2);
    expect(p.length).toBe(4 * 8);
    // patch 1 = (gy 0, gx 1): c0 rows 0-1 cols 2-3, then c1
    expect([...p.subarray(8, 16)]).toEqual([2, 3, 12, 13, 102, 103, 112, 113]);
    // patch 2 = (gy 1, gx 0)
    expect([...p.subarray(16, 20)]).toEqual([20, 21, 30, 31]);
  });

  it('features = the first visionLayersUsed layers on the embeddings, class token dropped', async () => {
    const cfg = tinyConfig();
    const w = randomWeights(cfg, 2);
    const pv = randomPixelValues(cfg, 4);
    const D = cfg.vision.hiddenSize;
    const feats = await clipVisionFeatures(w, pv);
    expect(feats.length).toBe(4 * D);
    let x = await clipEmbeddings(w, pv);
    expect(x.length).toBe(5 * D);
    for (let i = 0; i < cfg.visionLayersUsed; i++) x = await clipEncoderLayer(w, i, x, 5);
    expect([...feats]).toEqual([...x.subarray(D)]);
    // cls_patch keeps the class row
    const w2 = randomWeights(tinyConfig({ selectFeature: 'cls_patch' }), 2);
    expect([...(await clipVisionFeatures(w2, pv))]).toEqual([...x]);
    // the unused last layer is never read
    w.tensors.delete(`model.vision_tower.vision_tower.vision_model.encoder.layers.${cfg.vision.numLayers - 1}.mlp.fc1.weight`);
    expect([...(await clipVisionFeatures(w, pv))]).toEqual([...feats]);
  });
});
