import { describe, expect, it } from 'vitest';
import { parseLlavaMiniConfig } from './config.ts';
import { expectedTensors, requiredTensors } from './expected-tensors.ts';
import { RELEASED_8B_CONFIG_JSON } from './released-config.ts';

/** The released ICTNLP/llava-mini-llama-3.1-8b config (a fresh copy per test). */
const released = (): Record<string, unknown> => structuredClone(RELEASED_8B_CONFIG_JSON) as Record<string, unknown>;

const withChange = (patch: Record<string, unknown>, drop: string[] = []) => {
  const c = { ...released(), ...patch };
  for (const k of drop) delete c[k];
  return c;
};

describe('parseLlavaMiniConfig', () => {
  it('parses the released model config and derives the rest', () => {
    const c = parseLlavaMiniConfig(released());
    expect(c.llm).toEqual({
      hiddenSize: 4096,
      intermediateSize: 14336,
      numLayers: 32,
      numHeads: 32,
      numKvHeads: 8,
      headDim: 128,
      vocabSize: 128256,
      rmsNormEps: 1e-5,
      ropeTheta: 500000,
      ropeScaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
      maxPositionEmbeddings: 131072,
      tieWordEmbeddings: false,
    });
    expect(c.vision).toMatchObject({ hiddenSize: 1024, numLayers: 24, numHeads: 16, imageSize: 336, patchSize: 14, hiddenAct: 'quick_gelu' });
    expect(c.visionLayersUsed).toBe(23);
    expect(c.compressorHeads).toBe(8);
    expect(c.compressorSize).toBe(1);
    expect(c.prefusionLayerNum).toBe(4);
    expect(c.projectorType).toBe('mlp2x_gelu');
    expect(c.imageAspectRatio).toBe('pad');
    expect(c.bosTokenId).toBe(128000);
    expect(c.eosTokenIds).toEqual([128009, 128001, 128008]);
  });

  it('derives the tensor table of the released model', () => {
    const c = parseLlavaMiniConfig(released());
    const all = expectedTensors(c);
    const req = requiredTensors(c);
    const v = 'model.vision_tower.vision_tower.vision_model.';
    expect(all.get(`${v}embeddings.patch_embedding.weight`)).toEqual([1024, 3, 14, 14]);
    expect(all.get(`${v}embeddings.position_embedding.weight`)).toEqual([577, 1024]);
    expect(all.has(`${v}encoder.layers.23.mlp.fc1.weight`)).toBe(true);
    expect(req.has(`${v}encoder.layers.23.mlp.fc1.weight`)).toBe(false);
    expect(req.has(`${v}encoder.layers.22.mlp.fc1.weight`)).toBe(true);
    expect(req.has(`${v}post_layernorm.weight`)).toBe(false);
    expect(all.get('model.mm_projector.0.weight')).toEqual([4096, 1024]);
    expect(all.get('model.mm_projector.2.weight')).toEqual([4096, 4096]);
    expect(all.get('model.compressor.query')).toEqual([1, 1024]);
    expect(all.get('model.compressor.attn.in_proj_weight')).toEqual([3072, 1024]);
    expect(all.get('model.prefusion_layers.3.self_attn.k_proj.weight')).toEqual([1024, 4096]);
    expect(all.get('model.layers.31.mlp.down_proj.weight')).toEqual([4096, 14336]);
    expect(all.get('lm_head.weight')).toEqual([128256, 4096]);
    const linear = parseLlavaMiniConfig(withChange({ mm_projector_type: 'linear' }));
    expect(expectedTensors(linear).get('model.mm_projector.weight')).toEqual([4096, 1024]);
    expect(expectedTensors(linear).has('model.mm_projector.0.weight')).toBe(false);
  });

  it('uses vision_config when present and supports non-negative select layers', () => {
    const c = parseLlavaMiniConfig(
      withChange({
        mm_hidden_size: 256,
        mm_vision_select_layer: 2,
        vision_config: {
          hidden_size: 256, intermediate_size: 512, num_hidden_layers: 3, num_attention_heads: 4,
          image_size: 224, patch_size: 16, hidden_act: 'gelu',
        },
      }),
    );
    expect(c.vision).toEqual({
      hiddenSize: 256, intermediateSize: 512, numLayers: 3, numHeads: 4, imageSize: 224, patchSize: 16,
      numChannels: 3, layerNormEps: 1e-5, hiddenAct: 'gelu',
    });
    expect(c.visionLayersUsed).toBe(2);
    expect(c.compressorHeads).toBe(2);
  });

  it('applies Llama defaults (kv heads, rope, tie) and eos lists', () => {
    const c = parseLlavaMiniConfig(
      withChange({ eos_token_id: [128001, 128009], vocab_size: 128002 }, ['num_key_value_heads', 'rope_scaling', 'rope_theta']),
    );
    expect(c.llm.numKvHeads).toBe(32);
    expect(c.llm.ropeScaling).toBeNull();
    expect(c.llm.ropeTheta).toBe(10000);
    expect(c.eosTokenIds).toEqual([128001, 128009]); // 128008 is outside vocab 128002 and not in the config
  });

  const cases: Array<[string, Record<string, unknown>, string[], RegExp]> = [
    ['missing field', {}, ['hidden_size'], /^config\.json: missing "hidden_size"$/],
    ['missing compressor_size', {}, ['compressor_size'], /^config\.json: missing "compressor_size"$/],
    ['unknown projector', { mm_projector_type: 'mlp3x_gelu' }, [], /config\.json: mm_projector_type "mlp3x_gelu" is not supported/],
    ['hidden not divisible by heads', { hidden_size: 4100 }, [], /hidden_size 4100 is not divisible by num_attention_heads 32/],
    ['heads not divisible by kv heads', { num_key_value_heads: 5 }, [], /num_attention_heads 32 is not divisible by num_key_value_heads 5/],
    ['non-integer compressor size', { compressor_size: 1.5 }, [], /compressor_size must be a positive integer \(the compressor emits a C x C grid/],
    ['zero compressor size', { compressor_size: 0 }, [], /compressor_size must be a positive integer/],
    ['mm width vs vision width', { mm_hidden_size: 768 }, [], /mm_hidden_size 768 differs from the vision tower's hidden_size 1024/],
    ['select layer out of range', { mm_vision_select_layer: -26 }, [], /mm_vision_select_layer -26 is out of range for a 24-layer vision tower/],
    ['select feature', { mm_vision_select_feature: 'cls' }, [], /mm_vision_select_feature "cls" is not supported/],
    ['rope type', { rope_scaling: { rope_type: 'yarn', factor: 4 } }, [], /rope_scaling type "yarn" is not supported/],
    ['wrong type', { num_hidden_layers: '32' }, [], /"num_hidden_layers" must be an integer, got "32"/],
    ['attention bias', { attention_bias: true }, [], /attention_bias true is not supported/],
    [
      'patches not tiling the image',
      { vision_config: { hidden_size: 1024, intermediate_size: 4096, num_hidden_layers: 24, num_attention_heads: 16, image_size: 336, patch_size: 15 } },
      [],
      /vision_config: image_size 336 is not a multiple of patch_size 15: the patches do not tile a square grid/,
    ],
    [
      'compressor width not a multiple of 128',
      { mm_hidden_size: 192, vision_config: { hidden_size: 192, intermediate_size: 384, num_hidden_layers: 2, num_attention_heads: 3, image_size: 28, patch_size: 14 } },
      [],
      /mm_hidden_size 192 is not divisible by 128, the compressor's head width/,
    ],
  ];
  for (const [what, patch, drop, err] of cases) {
    it(`rejects: ${what}`, () => {
      expect(() => parseLlavaMiniConfig(withChange(patch, drop))).toThrow(err);
    });
  }

  it('rejects non-objects', () => {
    expect(() => parseLlavaMiniConfig([1])).toThrow(/config\.json: not a JSON object/);
  });
});
