// One quantized format, two runtimes: the native engine loads the converter's output (MLC LLM + our pack) and holds
// exactly the bytes, and gives exactly the greedy tokens, of the raw checkpoint at q4 quantized the same way.
// Tiny checkpoint (f16 weights, so the pack's f16 casts are lossless), the real Llama-3 tokenizer and vocabulary,
// Dawn on the adapter the test gets. Both LLM formats are loaded: q4f32_1 goes up byte for byte; q4f16_1 goes up
// byte for byte with shader-f16 and with its f16 scales widened to f32 without it; the pack's pre-fusion matrices
// are q4f16_1 codes either way.
import { cp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, gradientPng } from '../cli/cli.testing.ts';
import { loadModelDir, type LoadedModel } from '../cli/load-model.ts';
import { convertDir, readTree, tinyCheckpoint, tmp } from '../convert/convert.testing.ts';
import { Conversation } from '../engine/conversation.ts';
import { LlavaMiniEngine } from '../engine/engine.ts';
import { textSideOf } from '../engine/text-side.ts';
import type { GpuContext } from '../gpu/device.ts';
import { readBuffer } from '../gpu/buffers.ts';
import { nodeCheckpointFiles } from '../node/file-source.ts';
import { createNodeGpu } from '../node/gpu.ts';
import { decodeImageFile } from '../node/image-file.ts';
import type { RgbaImage } from '../model/constants.ts';
import { BlobCheckpointFiles } from '../checkpoint/byte-source.ts';
import { ConvertedModel, openConvertedModel, openModelFolder } from './converted-model.ts';
import { encodeRows, q4ScaleDType, widenRows } from '../gpu/storage.ts';
import { uploadStorage } from './encoded-source.ts';
import { GpuWeightsPolicy } from '../precision/policy-table.ts';
import type { GpuTensor } from './gpu-weights.ts';
import { GpuWeights } from './gpu-weights.ts';

const STEPS = 16;
const QUESTION = 'What is in this image?';

let ctx: GpuContext;
/** Whether the device has shader-f16: q4f16 storage (MLC q4f16_1) with it, q4f32 without. */
let hasF16: boolean;
let ckpt: string;
let out: string;
let raw: LoadedModel;

let png: string;
let image: RgbaImage;

beforeAll(async () => {
  ctx = await createNodeGpu();
  hasF16 = ctx.device.features.has('shader-f16');
  // The real vocabulary (the tokenizer's ids), tiny widths (every LLM input width a multiple of 32).
  ckpt = await tinyCheckpoint({ vocab: 128256, dtype: 'f16', visionDtype: 'f16', seed: 5 });
  out = join(await tmp(), 'converted');
  await convertDir(ckpt, out);
  raw = await loadModelDir(ckpt);
  png = join(await tmp(), 'photo.png');
  await writeFile(png, gradientPng(60, 44));
  image = await decodeImageFile(png);
});
afterAll(() => ctx?.device.destroy());

async function greedyTokens(engine: LlavaMiniEngine, text: ReturnType<typeof textSideOf>): Promise<number[]> {
  const encoded = await engine.encodeImage(image);
  const conv = new Conversation(engine, text);
  const turn = await conv.ask(QUESTION, { images: [encoded], maxNewTokens: STEPS, sampling: { greedy: true } });
  conv.destroy();
  encoded.destroy();
  return turn.tokens;
}

async function blockBytes(device: GPUDevice, t: GpuTensor): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const b of t.blocks) {
    out.push(new Uint8Array(await readBuffer(device, b.data)));
    if (b.scales) out.push(new Uint8Array(await readBuffer(device, b.scales)));
  }
  return out;
}

/** Every used tensor of two loaded weight sets: storage, row blocks and GPU bytes identical. Returns bytes compared. */
async function expectSameGpuBytes(a: GpuWeights, b: GpuWeights): Promise<number> {
  let bytes = 0;
  for (const { name } of a.policy.usedTensors()) {
    const [ta, tb] = [a.get(name), b.get(name)];
    expect({ name, storage: tb.storage, blocks: tb.blocks.length }).toEqual({ name, storage: ta.storage, blocks: ta.blocks.length });
    const [ba, bb] = [await blockBytes(a.device, ta), await blockBytes(b.device, tb)];
    for (let i = 0; i < ba.length; i++) {
      expect(bb[i]!.length).toBe(ba[i]!.length);
      const first = ba[i]!.findIndex((v, k) => v !== bb[i]![k]);
      expect({ name, buffer: i, firstDiff: first }).toEqual({ name, buffer: i, firstDiff: -1 });
      bytes += ba[i]!.length;
    }
  }
  return bytes;
}

/** `names` on the GPU from the converted folder: byte for byte what the raw checkpoint at plain q4 uploads. */
async function expectPlainQ4Upload(converted: ConvertedModel, names: string[]): Promise<void> {
  const a = new GpuWeights(ctx.device, raw.checkpoint, 'q4');
  const b = new GpuWeights(ctx.device, converted, 'q4');
  for (const n of names) {
    const [ba, bb] = [await blockBytes(ctx.device, await a.load(n)), await blockBytes(ctx.device, await b.load(n))];
    expect({ n, bytes: bb.map((x) => Buffer.from(x).toString('base64')) }).toEqual({ n, bytes: ba.map((x) => Buffer.from(x).toString('base64')) });
  }
  a.destroy();
  b.destroy();
}

describe.each(['q4f32_1', 'q4f16_1'] as const)('a converted folder with llm-%s on this GPU', (llm) => {
  let converted: ConvertedModel;
  beforeAll(async () => {
    converted = await openConvertedModel(nodeCheckpointFiles(out), { hasF16, llm });
  });

  it('loads as stored: int4 words and scales from the shards (f16 scales widened only without shader-f16), the fused qkv / gate_up split by rows', async () => {
    const w = new GpuWeights(ctx.device, converted, 'q4');
    const name = 'model.layers.1.self_attn.k_proj.weight';
    expect(converted.storedAs(name)).toBe(llm === 'q4f16_1' ? 'q4f16' : 'q4f32');
    expect(w.plan(name).storage).toBe(llm === 'q4f16_1' && hasF16 ? 'q4f16' : 'q4f32');
    // Unquantized tensors: q4f16_1 stores them f16, q4f32_1 f32; widened to f32 only without shader-f16.
    expect(w.plan('model.layers.0.input_layernorm.weight').storage).toBe(llm === 'q4f16_1' && hasF16 ? 'f16' : 'f32');
    // k_proj = rows [heads * headDim, +kvHeads * headDim) of qkv_proj: its words are that byte range of the shard record.
    const l = converted.config.llm;
    const enc = await converted.readEncodedRows(name, 0, l.numKvHeads * l.headDim);
    const cache = JSON.parse(await readFile(join(out, `llm-${llm}/ndarray-cache.json`), 'utf8')) as { records: Array<{ dataPath: string; records: Array<{ name: string; byteOffset: number }> }> };
    const shard = cache.records.find((s) => s.records.some((r) => r.name === 'model.layers.1.self_attn.qkv_proj.q_weight'))!;
    const rec = shard.records.find((r) => r.name === 'model.layers.1.self_attn.qkv_proj.q_weight')!;
    const file = await readFile(join(out, `llm-${llm}`, shard.dataPath));
    const rowBytes = l.hiddenSize / 2;
    const start = rec.byteOffset + l.numHeads * l.headDim * rowBytes;
    expect(Buffer.from(enc.data).equals(file.subarray(start, start + enc.data.length))).toBe(true);
    w.destroy();
  });

  it('the same GPU bytes for every tensor and the same greedy tokens as the raw checkpoint quantized alike', async ({ skip }) => {
    // With shader-f16 the raw checkpoint at q4 is stored q4f16 (f16 scales), which q4f32_1 codes cannot be: no twin.
    if (hasF16 && llm === 'q4f32_1') skip('with shader-f16 the raw checkpoint stores q4f16, llm-q4f32_1 keeps f32 scales (the test above covers it)');
    const t0 = performance.now();
    const fromConverted = await LlavaMiniEngine.load(ctx.device, converted, { precision: 'q4', chunkSize: 16, maxContext: 512 });
    const loadConvertedMs = performance.now() - t0;
    // The raw checkpoint quantized with the converted folder's int4 arithmetic per tensor (q4f16_1 or q4f32_1 codes).
    const q4Quantizer = (name: string) => (converted.has(name) ? q4ScaleDType(converted.storedAs(name)) : undefined);
    const fromRaw = await LlavaMiniEngine.load(ctx.device, raw.checkpoint, { precision: 'q4', chunkSize: 16, maxContext: 512, q4Quantizer });
    try {
      const bytes = await expectSameGpuBytes(fromRaw.weights, fromConverted.weights);
      expect(bytes).toBeGreaterThan(5e6); // the 128256-row embedding and lm_head alone: 2 x 5 MB
      const rawTokens = await greedyTokens(fromRaw, raw.text);
      const convertedTokens = await greedyTokens(fromConverted, textSideOf(converted));
      expect(convertedTokens).toHaveLength(STEPS);
      expect(convertedTokens).toEqual(rawTokens);
      console.info(`llm-${llm}: ${bytes} GPU bytes identical, ${STEPS} tokens identical; converted load ${loadConvertedMs.toFixed(0)} ms`);
    } finally {
      fromRaw.destroy();
      fromConverted.destroy();
    }
  });
});

it('the LLM format this GPU picks (q4f16_1 with shader-f16, else q4f32_1) is byte for byte what the raw checkpoint at plain q4 holds on it', async () => {
  const converted = await openConvertedModel(nodeCheckpointFiles(out), { hasF16 });
  expect(converted.llm).toBe(hasF16 ? 'q4f16_1' : 'q4f32_1');
  await expectPlainQ4Upload(converted, ['model.embed_tokens.weight', 'lm_head.weight', 'model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.v_proj.weight', 'model.layers.1.mlp.gate_proj.weight', 'model.layers.1.mlp.up_proj.weight', 'model.layers.1.mlp.down_proj.weight', 'model.norm.weight']);
});

it('mm-f16: its f16 pre-fusion matrices are quantized at load, as the raw (f16) checkpoint at plain q4 is', async () => {
  const converted = await openConvertedModel(nodeCheckpointFiles(out), { hasF16, pack: 'f16' });
  const name = 'model.prefusion_layers.1.mlp.gate_proj.weight';
  expect(converted.storedAs(name)).toBe('f16');
  expect(new GpuWeights(ctx.device, converted, 'q4').plan(name).storage).toBe(hasF16 ? 'q4f16' : 'q4f32');
  await expectPlainQ4Upload(converted, [name]);
});

it('with shader-f16 (the plan, on the CPU): llm-q4f16_1 + mm-q4 are exactly the raw checkpoint at plain q4, tensor by tensor', async () => {
  const converted = await openConvertedModel(nodeCheckpointFiles(out), { hasF16: true });
  expect(converted.llm).toBe('q4f16_1');
  const policy = new GpuWeightsPolicy(converted.config, 'q4', true);
  const counts: Record<string, number> = {};
  for (const { name } of policy.usedTensors()) {
    const { storage, rows, cols } = policy.plan(name);
    const stored = converted.storedAs(name);
    expect({ name, storage: uploadStorage(name, storage, stored, true) }).toEqual({ name, storage });
    const got = widenRows(stored, storage, await converted.readEncodedRows(name, 0, rows));
    const want = encodeRows(storage, await raw.checkpoint.readF32(name), rows, cols);
    expect({ name, data: Buffer.from(got.data).equals(want.data), scales: got.scales && Buffer.from(got.scales).equals(want.scales!) }).toEqual({ name, data: true, scales: want.scales && true });
    counts[storage] = (counts[storage] ?? 0) + 1;
  }
  expect(Object.keys(counts).sort()).toEqual(['f16', 'q4f16']);
});

it('an unquantized llm-q0f32 + mm-f16 (what verify:webllm runs natively) loads at f32: the GPU bytes and greedy tokens of the raw f16 checkpoint at f32', async () => {
  const dense = join(await tmp(), 'converted-q0f32');
  await convertDir(ckpt, dense, { outputs: ['llm-q0f32', 'mm-f16'] });
  const converted = await openConvertedModel(nodeCheckpointFiles(dense), { hasF16 });
  expect([converted.llm, converted.pack, converted.precision]).toEqual(['q0f32', 'f16', 'f32']);
  // The fused qkv_proj / gate_up_proj are served back as the engine's q/k/v and gate/up rows.
  expect(converted.storedAs('model.layers.1.self_attn.k_proj.weight')).toBe('f32');
  const fromConverted = await LlavaMiniEngine.load(ctx.device, converted, { precision: converted.precision, chunkSize: 16, maxContext: 512 });
  const fromRaw = await LlavaMiniEngine.load(ctx.device, raw.checkpoint, { precision: 'f32', chunkSize: 16, maxContext: 512 });
  try {
    expect(await expectSameGpuBytes(fromRaw.weights, fromConverted.weights)).toBeGreaterThan(128256 * 128 * 4);
    const convertedTokens = await greedyTokens(fromConverted, textSideOf(converted));
    expect(convertedTokens).toHaveLength(STEPS);
    expect(convertedTokens).toEqual(await greedyTokens(fromRaw, raw.text));
  } finally {
    fromRaw.destroy();
    fromConverted.destroy();
  }
});

it('opens the same over Blobs (a folder dropped in the browser): same config, same stored bytes', async () => {
  const tree = await readTree(out);
  const blobs = new BlobCheckpointFiles([...tree].map(([p, b]) => [p, new Blob([new Uint8Array(b)])] as [string, Blob]), 'dropped');
  const [fromBlobs, fromFiles] = [await openModelFolder(blobs, { hasF16: false }), await openConvertedModel(nodeCheckpointFiles(out), { hasF16: false })];
  if (!(fromBlobs instanceof ConvertedModel)) throw new Error('not detected as a converted folder');
  expect(fromBlobs.config).toEqual(fromFiles.config);
  expect(fromBlobs.totalBytes()).toBe(fromFiles.totalBytes());
  for (const name of ['model.layers.0.mlp.up_proj.weight', 'model.prefusion_layers.1.self_attn.v_proj.weight', 'model.mm_projector.0.weight']) {
    const [a, b] = [await fromBlobs.readEncodedRows(name, 1, 3), await fromFiles.readEncodedRows(name, 1, 3)];
    expect(Buffer.from(a.data).equals(b.data) && (a.scales === undefined || Buffer.from(a.scales).equals(b.scales!))).toBe(true);
  }
  expect(await openModelFolder(nodeCheckpointFiles(ckpt), { hasF16: false })).not.toBeInstanceOf(ConvertedModel);
});

describe('bad converted folders', () => {
  async function copy(): Promise<string> {
    const dir = join(await tmp(), 'copy');
    await cp(out, dir, { recursive: true });
    return dir;
  }

  it('a truncated shard: the error names the file and the tensor', async () => {
    const dir = await copy();
    const cache = JSON.parse(await readFile(join(dir, 'llm-q4f32_1/ndarray-cache.json'), 'utf8')) as { records: Array<{ dataPath: string; nbytes: number; records: Array<{ name: string }> }> };
    const shard = cache.records.find((s) => s.records.some((r) => r.name === 'model.layers.1.mlp.down_proj.q_weight'))!;
    await truncate(join(dir, 'llm-q4f32_1', shard.dataPath), shard.nbytes - 100);
    const m = await openConvertedModel(nodeCheckpointFiles(dir), { hasF16: false, llm: 'q4f32_1' });
    const w = new GpuWeights(ctx.device, m, 'q4');
    await expect(w.load('model.layers.1.mlp.down_proj.weight')).rejects.toThrow(
      new RegExp(`llm-q4f32_1/${shard.dataPath} is ${shard.nbytes - 100} bytes, llm-q4f32_1/ndarray-cache.json says ${shard.nbytes} \\(truncated.*reading tensor "model.layers.1.mlp.down_proj.weight"`),
    );
    w.destroy();
  });

  it('config.json (in the pack manifest) that disagrees with the MLC records: the error names the index file and tensor', async () => {
    const dir = await copy();
    const path = join(dir, 'mm-q4/manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8'));
    manifest.config.intermediate_size = 128;
    await writeFile(path, JSON.stringify(manifest));
    await expect(openConvertedModel(nodeCheckpointFiles(dir), { hasF16: false, llm: 'q4f32_1' })).rejects.toThrow(
      'llm-q4f32_1/ndarray-cache.json: tensor "model.layers.0.mlp.gate_up_proj.q_weight" is uint32 [192, 8], config.json implies uint32 [256, 8]',
    );
  });

  it('a pack record of the wrong dtype: the error names the manifest and tensor', async () => {
    const dir = await copy();
    const path = join(dir, 'mm-q4/manifest.json');
    const manifest = JSON.parse(await readFile(path, 'utf8'));
    const t = manifest.tensors.find((x: { name: string }) => x.name === 'model.prefusion_layers.0.self_attn.o_proj.q_scale');
    t.dtype = 'float32';
    await writeFile(path, JSON.stringify(manifest));
    await expect(openConvertedModel(nodeCheckpointFiles(dir), { hasF16: false })).rejects.toThrow(
      'mm-q4/manifest.json: tensor "model.prefusion_layers.0.self_attn.o_proj.q_scale" is float32 [64, 2], config.json implies float16 [64, 2]',
    );
  });
});

describe('cli generate --model <converted dir>', () => {
  it('loads the converted folder (the same greedy tokens as the engine on it) and refuses --precision f32', async () => {
    const args = ['generate', '--model', out, '--image', png, '--prompt', QUESTION, '--max-new-tokens', String(STEPS), '--greedy', '--json', '--max-context', '512'];
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    const cliTokens = JSON.parse(r.stdout).tokens as number[];

    const converted = await openConvertedModel(nodeCheckpointFiles(out), { hasF16 });
    const engine = await LlavaMiniEngine.load(ctx.device, converted, { precision: 'q4', maxContext: 512 });
    try {
      expect(cliTokens).toEqual(await greedyTokens(engine, textSideOf(converted)));
    } finally {
      engine.destroy();
    }

    const f32 = await cli([...args.slice(0, -2), '--precision', 'f32']);
    expect(f32.code).not.toBe(0);
    expect(f32.stderr).toContain('is a converted folder (int4 LLM in MLC format): it loads at --precision q4 only; for f32 give the Hugging Face checkpoint folder');
  });
});

afterAll(() => rm(out, { recursive: true, force: true }));
