// Converter throughput at the real model's shapes, on this CPU: the int4 quantization of one Llama-3.1-8B
// gate_proj block (q4f16_1, q4f32_1), the f16 encoding the image-side pack uses, and md5 of the output (the shard
// hash), against a plain copy of the same values measured in the same run (the floor any conversion pays).
// Then the whole 8B conversion's CPU time extrapolated from the parameter counts (network time not included):
//   npm run bench:convert -- [--rows N] [--reps N]
import { md5 } from '@noble/hashes/legacy.js';
import { f32ToF16Bytes } from '../src/checkpoint/dtype.ts';
import { parseLlavaMiniConfig } from '../src/checkpoint/config.ts';
import { expectedTensorList } from '../src/checkpoint/expected-tensors.ts';
import { RELEASED_8B_CONFIG_JSON } from '../src/checkpoint/released-config.ts';
import { quantizeQ4 } from '../src/quant/q4.ts';
import { mulberry32, randomF32 } from '../src/util/seeded-random.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const K = 4096;
const N = opt('rows', 1024); // rows of gate_proj [14336, 4096] per measurement
const reps = opt('reps', 3);
const w = randomF32(N * K, mulberry32(1), 0.05);

function best(fn: () => unknown): number {
  let ms = Infinity;
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    fn();
    ms = Math.min(ms, performance.now() - t);
  }
  return ms;
}

const copyMs = best(() => new Float32Array(w));
const rows: [string, number][] = [
  ['copy (baseline)', copyMs],
  ['int4 q4f32_1', best(() => quantizeQ4(w, N, K, { scaleDType: 'f32' }))],
  ['int4 q4f16_1', best(() => quantizeQ4(w, N, K, { scaleDType: 'f16' }))],
  ['f16 encode', best(() => f32ToF16Bytes(w))],
  ['md5 of int4 output', best(() => md5(new Uint8Array(w.buffer, 0, (N * K) / 2)))],
];
console.log(`converter kernels on one ${N}x${K} block (${((N * K) / 1e6).toFixed(1)} M values), best of ${reps}:`);
for (const [name, ms] of rows) console.log(`  ${name.padEnd(20)} ${ms.toFixed(1).padStart(8)} ms  ${((N * K) / ms / 1e3).toFixed(1).padStart(7)} M values/s  ${(ms / copyMs).toFixed(1).padStart(6)}x copy`);

// The released model: LLM linear + embedding tensors are quantized twice (q4f16_1 and q4f32_1 outputs), the
// pre-fusion matrices once (mm-q4) and everything of the image side encoded to f16 (mm-f16, mm-q4).
const config = parseLlavaMiniConfig(RELEASED_8B_CONFIG_JSON);
const count = (pred: (t: ReturnType<typeof expectedTensorList>[number]) => boolean) =>
  expectedTensorList(config).filter((t) => t.used && pred(t)).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
const llm = count((t) => t.part === 'llm' && (t.role === 'linear' || t.role === 'embedding'));
const prefusion = count((t) => t.part === 'prefusion' && t.role === 'linear');
const imageSide = count((t) => t.part !== 'llm');
const per = (name: string) => rows.find(([n]) => n === name)![1] / (N * K);
const f16 = per('f16 encode');
// npm run convert: both LLM formats, mm-f16 (everything of the image side in f16) and mm-q4 (pre-fusion int4).
const allSeconds = (llm * (per('int4 q4f16_1') + per('int4 q4f32_1')) + prefusion * per('int4 q4f16_1') + (2 * imageSide - prefusion) * f16) / 1000;
// The browser's install keeps one LLM format and mm-q4.
const installSeconds = (format: 'int4 q4f16_1' | 'int4 q4f32_1') => (llm * per(format) + prefusion * per('int4 q4f16_1') + (imageSide - prefusion) * f16) / 1000;
console.log(
  `released 8B model: ${(llm / 1e9).toFixed(2)} B LLM values, ${(prefusion / 1e9).toFixed(2)} B pre-fusion matrix values, ${(imageSide / 1e9).toFixed(2)} B image-side values (pre-fusion included)`,
);
console.log(`  npm run convert (four outputs): about ${(allSeconds / 60).toFixed(1)} min of one core`);
console.log(`  browser install: about ${(installSeconds('int4 q4f16_1') / 60).toFixed(1)} min (q4f16_1) / ${(installSeconds('int4 q4f32_1') / 60).toFixed(1)} min (q4f32_1) of one core, network not included`);
