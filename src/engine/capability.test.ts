import { describe, expect, it } from 'vitest';
import { parseLlavaMiniConfig } from '../checkpoint/config.ts';
import { RELEASED_8B_CONFIG_JSON } from '../checkpoint/released-config.ts';
import { checkCapability, largestMlcTensorBytes, weightBytesByPart, type AdapterCapabilities } from './capability.ts';

const config = parseLlavaMiniConfig(RELEASED_8B_CONFIG_JSON);
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** A discrete GPU as Chrome reports one (WebLLM asks for these limits). */
const discrete = (patch: Partial<AdapterCapabilities> = {}, limits: Partial<AdapterCapabilities['limits']> = {}): AdapterCapabilities => ({
  shaderF16: true,
  isFallbackAdapter: false,
  ...patch,
  limits: { maxBufferSize: 4 * GiB, maxStorageBufferBindingSize: 2 * GiB - 4, maxComputeWorkgroupStorageSize: 32768, maxStorageBuffersPerShaderStage: 10, ...limits },
});

describe('checkCapability on the released 8B model', () => {
  it('sizes the weights from the shapes: int4 + scales for the LLM, f16 for CLIP', () => {
    const w = weightBytesByPart(config, true);
    // Llama-3.1-8B: 32 layers of (q,k,v,o 4096x(4096+1024+1024+4096) + 3 x 4096x14336) + embed + lm_head, int4 with one
    // f16 scale per 32 weights = 0.5625 bytes per weight, plus f16 norms.
    const perLayer = 4096 * (4096 + 1024 + 1024 + 4096) + 3 * 4096 * 14336;
    const params = 32 * perLayer + 2 * 128256 * 4096;
    expect(w.llm).toBe(params * 0.5625 + (32 * 2 + 1) * 4096 * 2);
    expect(w.prefusion).toBe(4 * perLayer * 0.5625 + 4 * 2 * 4096 * 2);
    // 23 CLIP layers run: about 0.3 B parameters in f16.
    expect(w.vision / GiB).toBeGreaterThan(0.5);
    expect(w.vision / GiB).toBeLessThan(0.6);
    // Without shader-f16 the scales and the CLIP weights are f32.
    expect(weightBytesByPart(config, false).llm).toBeGreaterThan(w.llm);
    expect(weightBytesByPart(config, false).vision).toBeCloseTo(w.vision * 2, -6);
  });

  it('the largest MLC tensor is the embedding q_weight, 128256 x 512 u32', () => {
    expect(largestMlcTensorBytes(config)).toBe(128256 * 512 * 4);
  });

  it('a discrete GPU with shader-f16: q4f16_1, ok, about 6-7 GiB', () => {
    const r = checkCapability(discrete(), config, { llm: 'webllm', contextWindow: 4096 });
    expect(r.format).toBe('q4f16_1');
    expect(r.verdict).toBe('ok');
    expect(r.problems).toEqual([]);
    expect(r.needs.find((n) => n.part.startsWith('LLM KV'))!.bytes).toBe(32 * 2 * 4096 * 8 * 128 * 2); // 512 MiB
    expect(r.totalBytes / GiB).toBeGreaterThan(5.5);
    expect(r.totalBytes / GiB).toBeLessThan(8);
  });

  it('no shader-f16: picks q4f32_1 and says so', () => {
    const r = checkCapability(discrete({ shaderF16: false }), config, { llm: 'webllm', contextWindow: 4096 });
    expect(r.format).toBe('q4f32_1');
    expect(r.verdict).toBe('ok');
    expect(r.notes.join(' ')).toMatch(/no shader-f16: the model runs in q4f32_1/);
    expect(r.totalBytes).toBeGreaterThan(checkCapability(discrete(), config, { llm: 'webllm', contextWindow: 4096 }).totalBytes);
  });

  it('a 128 MiB binding limit rules out WebLLM (the 250.5 MiB embedding) but not the native engine', () => {
    const small = discrete({}, { maxStorageBufferBindingSize: 128 * MiB, maxBufferSize: 256 * MiB });
    const r = checkCapability(small, config, { llm: 'webllm', contextWindow: 4096 });
    expect(r.verdict).toBe('too-small');
    expect(r.problems).toEqual([
      "The LLM's largest tensor is 250.5 MiB and this GPU's maxStorageBufferBindingSize is 128.0 MiB: WebLLM's library needs it in one buffer. The native engine splits it and can run here.",
    ]);
    expect(checkCapability(small, config, { llm: 'native', contextWindow: 4096 }).verdict).toBe('ok');
  });

  it('names every missing WebLLM limit, flags software adapters and small shared memory', () => {
    const r = checkCapability(discrete({}, { maxComputeWorkgroupStorageSize: 16384, maxStorageBuffersPerShaderStage: 8 }), config, { llm: 'webllm', contextWindow: 4096 });
    expect(r.problems).toHaveLength(2);
    expect(r.problems[0]).toMatch(/32 KiB of workgroup memory and this GPU offers 16 KiB/);
    expect(r.problems[1]).toMatch(/10 storage buffers per shader stage and this GPU offers 8/);
    const soft = checkCapability(discrete({ isFallbackAdapter: true }), config, { llm: 'native', contextWindow: 4096, deviceMemoryGiB: 4 });
    expect(soft.verdict).toBe('slow');
    expect(soft.notes.join(' ')).toMatch(/about 4 GiB of memory/);
    expect(soft.notes.join(' ')).toMatch(/software \(CPU\) adapter/);
  });
});
