// The LLM in MLC format: bytes against an independent int4 packing, the parameter list WebLLM's Llama library
// loads, tvmjs shard layout, md5, dequantization error, tied embeddings and mlc-chat-config.json.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type Checkpoint } from '../checkpoint/checkpoint.ts';
import { f16ToNumber, numberToF16 } from '../checkpoint/dtype.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import type { TensorCacheFile, TensorCacheShard } from '../format/tensor-cache.ts';
import { convertDir, readMlc, tinyCheckpoint, tmp } from './convert.testing.ts';

const CAP = 8192; // small shards: out-of-band shards, commits, several files
// blockElements 256: every tensor streams in many row blocks (4 rows of the embedding at a time)
const QUANTS = ['q4f16_1', 'q4f32_1'] as const;
type Quant = (typeof QUANTS)[number];

const toF16 = (x: number): number => f16ToNumber(numberToF16(x));

/** MLC int4 packing written from the rule alone: scale = max|w|/7, q = clamp(round(w/scale + 7), 0, 14). */
function referenceQ4(w: Float32Array, N: number, K: number, quant: Quant): { words: Uint32Array; scales: Float64Array } {
  const r = quant === 'q4f16_1' ? toF16 : Math.fround; // every step in the model dtype
  const words = new Uint32Array((N * K) / 8);
  const scales = new Float64Array((N * K) / 32);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < K / 32; g++) {
      const vals: number[] = [];
      for (let i = 0; i < 32; i++) vals.push(r(w[n * K + g * 32 + i]!));
      const scale = r(Math.max(...vals.map(Math.abs)) / 7);
      scales[n * (K / 32) + g] = scale;
      vals.forEach((v, i) => {
        let q = 7;
        if (scale !== 0) {
          const t = r(r(v / scale) + 7);
          const rounded = Math.sign(t) * Math.floor(Math.abs(t) + 0.5); // half away from zero
          q = Math.min(14, Math.max(0, rounded));
        }
        const e = n * K + g * 32 + i; // element e -> word e/8, nibble e%8 (lower index, lower nibble)
        words[e >> 3] = (words[e >> 3]! | (q << (4 * (e & 7)))) >>> 0;
      });
    }
  }
  return { words, scales };
}

function scaleBytes(scales: Float64Array, quant: Quant): Buffer {
  if (quant === 'q4f32_1') return Buffer.from(Float32Array.from(scales).buffer);
  return Buffer.from(Uint16Array.from(scales, (s) => numberToF16(s)).buffer);
}

async function rowsConcat(ck: Checkpoint, names: string[]): Promise<Float32Array> {
  const parts = await Promise.all(names.map((n) => ck.readF32(n)));
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

let ckptDir: string;
let ck: Checkpoint;
let outDir: string;
const mlc = new Map<Quant, Awaited<ReturnType<typeof readMlc>>>();

beforeAll(async () => {
  ckptDir = await tinyCheckpoint({ shards: 2 });
  ck = await openCheckpoint(nodeCheckpointFiles(ckptDir));
  outDir = await tmp();
  await convertDir(ckptDir, outDir, { outputs: ['llm-q4f16_1', 'llm-q4f32_1'], shardCapBytes: CAP, blockElements: 256 });
  for (const q of QUANTS) mlc.set(q, await readMlc(join(outDir, `llm-${q}`)));
});

/** Every parameter WebLLM's Llama library looks up by name, from the config (spec page formulas). */
function expectedParams(quant: Quant, tied: boolean, c: { V: number; H: number; I: number; L: number; nh: number; nkv: number; hd: number }): Map<string, string> {
  const sd = quant === 'q4f16_1' ? 'float16' : 'float32';
  const m = new Map<string, string>();
  const q4 = (base: string, N: number, K: number): void => {
    m.set(`${base}.q_weight`, `[${N},${K / 8}] uint32`);
    m.set(`${base}.q_scale`, `[${N},${K / 32}] ${sd}`);
  };
  q4('model.embed_tokens', c.V, c.H);
  for (let i = 0; i < c.L; i++) {
    const p = `model.layers.${i}.`;
    q4(`${p}self_attn.qkv_proj`, (c.nh + 2 * c.nkv) * c.hd, c.H);
    q4(`${p}self_attn.o_proj`, c.H, c.nh * c.hd);
    q4(`${p}mlp.gate_up_proj`, 2 * c.I, c.H);
    q4(`${p}mlp.down_proj`, c.H, c.I);
    m.set(`${p}input_layernorm.weight`, `[${c.H}] ${sd}`);
    m.set(`${p}post_attention_layernorm.weight`, `[${c.H}] ${sd}`);
  }
  m.set('model.norm.weight', `[${c.H}] ${sd}`);
  if (!tied) q4('lm_head', c.V, c.H);
  return m;
}

function listed(cache: TensorCacheFile): Map<string, string> {
  return new Map(cache.records.flatMap((s) => s.records.map((r) => [r.name, `[${r.shape.join(',')}] ${r.dtype}`] as const)));
}

const TINY_DIMS = { V: 300, H: 64, I: 96, L: 2, nh: 4, nkv: 2, hd: 16 };

describe.each(QUANTS)('MLC %s', (quant) => {
  const QUANTIZED: Array<[string, string[]]> = [
    ['model.embed_tokens', ['model.embed_tokens.weight']],
    ['model.layers.1.self_attn.qkv_proj', ['q_proj', 'k_proj', 'v_proj'].map((s) => `model.layers.1.self_attn.${s}.weight`)],
    ['model.layers.0.mlp.gate_up_proj', ['gate_proj', 'up_proj'].map((s) => `model.layers.0.mlp.${s}.weight`)],
    ['model.layers.0.self_attn.o_proj', ['model.layers.0.self_attn.o_proj.weight']],
    ['model.layers.1.mlp.down_proj', ['model.layers.1.mlp.down_proj.weight']],
    ['lm_head', ['lm_head.weight']],
  ];

  it.each(QUANTIZED)('%s: q_weight and q_scale bytes equal an independent packing of the (concatenated) source', async (base, sources) => {
    const { bytes } = mlc.get(quant)!;
    const w = await rowsConcat(ck, sources);
    const K = ck.info(sources[0]!).shape[1]!;
    const N = w.length / K;
    const ref = referenceQ4(w, N, K, quant);
    expect((await bytes(`${base}.q_weight`)).equals(Buffer.from(ref.words.buffer))).toBe(true);
    expect((await bytes(`${base}.q_scale`)).equals(scaleBytes(ref.scales, quant))).toBe(true);
  });

  it('norms are the source in the model dtype', async () => {
    const { bytes } = mlc.get(quant)!;
    for (const name of ['model.layers.0.input_layernorm.weight', 'model.layers.1.post_attention_layernorm.weight', 'model.norm.weight']) {
      const src = await ck.readF32(name);
      const want = quant === 'q4f32_1' ? Buffer.from(src.buffer) : Buffer.from(Uint16Array.from(src, (v) => numberToF16(v)).buffer);
      expect((await bytes(name)).equals(want), name).toBe(true);
    }
  });

  it('ndarray-cache.json lists exactly the parameters of the Llama library, with their shapes and dtypes', () => {
    const { cache } = mlc.get(quant)!;
    expect(listed(cache)).toEqual(expectedParams(quant, false, TINY_DIMS));
    expect(cache.metadata.ParamSize).toBe(listed(cache).size);
  });

  it('shards follow the tvmjs layout: contiguous records, sizes, md5, cap, out-of-band tensors', async () => {
    const { cache } = mlc.get(quant)!;
    const bytesPer: Record<string, number> = { uint32: 4, float16: 2, float32: 4 };
    let total = 0;
    cache.records.forEach((s: TensorCacheShard, k) => {
      expect(s.dataPath).toBe(`params_shard_${k}.bin`);
      expect(s.format).toBe('raw-shard');
      let off = 0;
      for (const r of s.records) {
        expect(r.format).toBe('raw');
        expect(r.nbytes).toBe(r.shape.reduce((a, b) => a * b, 1) * bytesPer[r.dtype]!);
        expect(r.byteOffset).toBe(off);
        off += r.nbytes;
      }
      expect(s.nbytes).toBe(off);
      if (s.records.length > 1) expect(s.nbytes).toBeLessThan(CAP);
      total += s.nbytes;
    });
    expect(cache.metadata.ParamBytes).toBe(total);
    for (const s of cache.records) {
      const file = await readFile(join(outDir, `llm-${quant}`, s.dataPath));
      expect(file.byteLength).toBe(s.nbytes);
      expect(createHash('md5').update(file).digest('hex')).toBe(s.md5sum);
    }
    // The same layout, simulated the way tvmjs does it (shard files numbered in commit order).
    const order = [...expectedParams(quant, false, TINY_DIMS).keys()]; // MLC's module order
    const nbytes = new Map(cache.records.flatMap((s) => s.records.map((r) => [r.name, r.nbytes] as const)));
    const sim: string[][] = [];
    let cur: string[] = [];
    let curBytes = 0;
    for (const name of order) {
      const n = nbytes.get(name)!;
      if (curBytes + n >= CAP && 2 * n >= CAP) {
        sim.push([name]);
        continue;
      }
      if (curBytes + n >= CAP) {
        sim.push(cur);
        cur = [];
        curBytes = 0;
      }
      cur.push(name);
      curBytes += n;
    }
    if (cur.length) sim.push(cur);
    expect(cache.records.map((s) => s.records.map((r) => r.name))).toEqual(sim);
    // The tiny model exercises both: an out-of-band shard (the embedding) and several multi-record ones.
    expect(cache.records[0]!.records.map((r) => r.name)).toEqual(['model.embed_tokens.q_weight']);
    expect(cache.records.filter((s) => s.records.length > 1).length).toBeGreaterThan(2);
  });

  it('dequantizing reproduces every quantized source within half a step per group', async () => {
    const { cache, bytes } = mlc.get(quant)!;
    const names = new Set(cache.records.flatMap((s) => s.records.map((r) => r.name)));
    for (const [base, sources] of QUANTIZED) {
      expect(names.has(`${base}.q_weight`)).toBe(true);
      const w = await rowsConcat(ck, sources);
      const K = ck.info(sources[0]!).shape[1]!;
      const qw = await bytes(`${base}.q_weight`);
      const words = new Uint32Array(qw.buffer.slice(qw.byteOffset, qw.byteOffset + qw.byteLength));
      const sb = await bytes(`${base}.q_scale`);
      const sbuf = sb.buffer.slice(sb.byteOffset, sb.byteOffset + sb.byteLength);
      const scales = quant === 'q4f32_1' ? new Float32Array(sbuf) : Float32Array.from(new Uint16Array(sbuf), f16ToNumber);
      let worst = 0;
      for (let e = 0; e < w.length; e++) {
        const q = (words[e >> 3]! >>> (4 * (e & 7))) & 15;
        const s = scales[Math.floor(e / 32)]!;
        const deq = (q - 7) * s;
        const eps = quant === 'q4f32_1' ? 1e-6 * s + 1e-7 * Math.abs(w[e]!) : s / 128 + Math.abs(w[e]!) / 1024;
        worst = Math.max(worst, Math.abs(w[e]! - deq) - (s / 2 + eps));
        expect(q).toBeLessThanOrEqual(14);
      }
      expect(worst, base).toBeLessThanOrEqual(0);
      void K;
    }
  });

  it('mlc-chat-config.json: Llama-3.1 template, ctx4k_cs1k, the model config; tokenizer files copied', async () => {
    const dir = join(outDir, `llm-${quant}`);
    const c = JSON.parse(await readFile(join(dir, 'mlc-chat-config.json'), 'utf8'));
    expect(c).toMatchObject({
      version: '0.1.0',
      model_type: 'llama',
      quantization: quant,
      vocab_size: 300,
      context_window_size: 4096,
      prefill_chunk_size: 1024,
      tensor_parallel_shards: 1,
      bos_token_id: 128000,
      eos_token_id: [128001, 128008, 128009],
      pad_token_id: 0,
      tokenizer_files: ['tokenizer.json', 'tokenizer_config.json'],
      model_config: {
        hidden_size: 64,
        intermediate_size: 96,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        num_hidden_layers: 2,
        head_dim: 16,
        vocab_size: 300,
        rms_norm_eps: 1e-5,
        position_embedding_base: 500000,
        rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
        context_window_size: 4096,
        prefill_chunk_size: 1024,
        tensor_parallel_shards: 1,
      },
      conv_template: {
        name: 'llama-3_1',
        system_template: '<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>',
        roles: { user: '<|start_header_id|>user', assistant: '<|start_header_id|>assistant', tool: '<|start_header_id|>ipython' },
        seps: ['<|eot_id|>'],
        role_content_sep: '<|end_header_id|>\n\n',
        stop_str: [],
        stop_token_ids: [128001, 128008, 128009],
        system_prefix_token_ids: [128000],
      },
    });
    expect(typeof c.temperature).toBe('number');
    expect(typeof c.top_p).toBe('number');
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      expect((await readFile(join(dir, f))).equals(await readFile(join(ckptDir, f))), f).toBe(true);
    }
  });
});

describe('tie_word_embeddings', () => {
  it('has no lm_head (MLC reuses the quantized embedding), everything else as untied', async () => {
    const dir = await tinyCheckpoint({ tieWordEmbeddings: true, layers: 1, prefusionLayers: 1 });
    const out = await tmp();
    await convertDir(dir, out, { outputs: ['llm-q4f16_1'] });
    const { cache } = await readMlc(join(out, 'llm-q4f16_1'));
    expect(listed(cache)).toEqual(expectedParams('q4f16_1', true, { ...TINY_DIMS, L: 1 }));
    const c = JSON.parse(await readFile(join(out, 'llm-q4f16_1', 'mlc-chat-config.json'), 'utf8'));
    expect(c.model_config.tie_word_embeddings).toBe(true);
  });
});

describe('unquantized q0f32 / q0f16 (what the Llama-3.2-1B q0f32 library loads)', () => {
  /** The parameter list of MLC's no-quantization Llama: `.weight` names, the same fusions, the model dtype. */
  function expectedDense(dtype: string, tied: boolean, c: typeof TINY_DIMS): Map<string, string> {
    const m = new Map<string, string>();
    m.set('model.embed_tokens.weight', `[${c.V},${c.H}] ${dtype}`);
    for (let i = 0; i < c.L; i++) {
      const p = `model.layers.${i}.`;
      m.set(`${p}self_attn.qkv_proj.weight`, `[${(c.nh + 2 * c.nkv) * c.hd},${c.H}] ${dtype}`);
      m.set(`${p}self_attn.o_proj.weight`, `[${c.H},${c.nh * c.hd}] ${dtype}`);
      m.set(`${p}mlp.gate_up_proj.weight`, `[${2 * c.I},${c.H}] ${dtype}`);
      m.set(`${p}mlp.down_proj.weight`, `[${c.H},${c.I}] ${dtype}`);
      m.set(`${p}input_layernorm.weight`, `[${c.H}] ${dtype}`);
      m.set(`${p}post_attention_layernorm.weight`, `[${c.H}] ${dtype}`);
    }
    m.set('model.norm.weight', `[${c.H}] ${dtype}`);
    if (!tied) m.set('lm_head.weight', `[${c.V},${c.H}] ${dtype}`);
    return m;
  }

  it.each([
    ['q0f32', 'float32'],
    ['q0f16', 'float16'],
  ] as const)('%s: every parameter is the (concatenated) source in %s, tied embeddings have no lm_head', async (q, dtype) => {
    const dir = await tinyCheckpoint({ tieWordEmbeddings: true, dtype: 'f32' });
    const tied = await openCheckpoint(nodeCheckpointFiles(dir));
    const out = await tmp();
    await convertDir(dir, out, { outputs: [`llm-${q}`], shardCapBytes: CAP, blockElements: 256 });
    const { cache, bytes } = await readMlc(join(out, `llm-${q}`));
    expect(listed(cache)).toEqual(expectedDense(dtype, true, TINY_DIMS));
    const enc = (v: Float32Array) => (dtype === 'float32' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : Buffer.from(Uint16Array.from(v, (x) => numberToF16(x)).buffer));
    for (const [name, sources] of [
      ['model.embed_tokens.weight', ['model.embed_tokens.weight']],
      ['model.layers.1.self_attn.qkv_proj.weight', ['q_proj', 'k_proj', 'v_proj'].map((s) => `model.layers.1.self_attn.${s}.weight`)],
      ['model.layers.0.mlp.gate_up_proj.weight', ['gate_proj', 'up_proj'].map((s) => `model.layers.0.mlp.${s}.weight`)],
      ['model.layers.0.mlp.down_proj.weight', ['model.layers.0.mlp.down_proj.weight']],
      ['model.norm.weight', ['model.norm.weight']],
    ] as const) {
      expect((await bytes(name)).equals(enc(await rowsConcat(tied, [...sources]))), name).toBe(true);
    }
    const c = JSON.parse(await readFile(join(out, `llm-${q}`, 'mlc-chat-config.json'), 'utf8'));
    expect([c.quantization, c.model_config.tie_word_embeddings]).toEqual([q, true]);
  });

  it('is not written unless asked for (the default outputs are the int4 formats and both packs)', async () => {
    const out = await tmp();
    const s = await convertDir(await tinyCheckpoint({ layers: 1, prefusionLayers: 1 }), out);
    expect(s.outputs.map((o) => o.dir)).toEqual(['llm-q4f16_1', 'llm-q4f32_1', 'mm-f16', 'mm-q4']);
  });
});
