// The GPU check's results: the JSON shape written to results.json and its Markdown tables (results.md, and the
// tables pasted into docs/PERFORMANCE.md).
import { flopsWords, speedWords } from '../../bench/e2e/flops.ts';
import type { AdapterSummary } from '../../src/gpu/device.ts';

export interface StepResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  seconds: number;
  detail: string;
}

/** What bench:e2e --json prints (the fields the tables use). */
export interface E2eResult {
  model: string;
  precision: string;
  timing: string;
  config: { llmLayers: number; clipLayers: number; prefusionLayers: number };
  load: { weightsMs: number; pipelineBuildMs: number; totalMs: number };
  stages: { name: string; part: string; ms: number; flops?: number; fractionOfLimit?: number }[];
  question: { tokens: number; promptRows: number; llmRows: number };
  ttftMs: number;
  decode: { tokens: number; tokensPerSecond: number; msPerToken: number; bytesPerToken: number };
  memory: { weights: Record<string, number>; imageSide: number; prefusion: number; llm: number; imageState: number; total: number };
  baselines: {
    llava15: { rows: number; ttftMs: number; ttftFlops: number } | null;
    limits: { copyGBps: number; peakF32Gflops: number; peakF16Gflops: number | null } | null;
  };
  /** The FMA peak the non-decode stages are measured against (absent in results from before it was recorded: f32). */
  peakKind?: 'f32' | 'f16';
  ours: { ttftFlops: number };
  ratios: { ttftSpeedup: number; ttftFlopsRatio: number; endToEndSpeedup: number; endToEndFlopsRatio: number } | null;
  wallMs: number;
}

export interface CheckResults {
  date: string;
  commit: string;
  scale: 'full' | 'local';
  adapter: AdapterSummary;
  steps: StepResult[];
  /** The kernel, decode and attention benches' output, as printed. */
  kernels: string | null;
  decode: string | null;
  attention: string | null;
  e2e: E2eResult[];
  wallSeconds: number;
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const pct = (f: number | undefined) => (f === undefined ? '' : `${(100 * f).toFixed(1)}%`);

export function adapterLine(a: AdapterSummary): string {
  return `${[a.vendor, a.architecture].filter(Boolean).join(' / ')}${a.description ? ` (${a.description})` : ''}${a.isFallbackAdapter ? ', fallback adapter' : ''}; shader-f16 ${a.shaderF16 ? 'yes' : 'no'}, timestamp-query ${a.timestampQuery ? 'yes' : 'no'}, maxStorageBufferBindingSize ${mib(a.limits.maxStorageBufferBindingSize)}`;
}

/** One bench:e2e run as Markdown: the stage table, memory per component, baselines and ratios. */
export function formatE2eMarkdown(r: E2eResult): string {
  const lines = [
    `**${r.model} at ${r.precision}** (CLIP ${r.config.clipLayers} layers, ${r.config.prefusionLayers} pre-fusion layers, LLM ${r.config.llmLayers} layers; stage times by ${r.timing}; question ${r.question.tokens} tokens, ${r.question.llmRows} LLM rows)`,
    '',
    '| stage | ms | GFLOP | of limit |',
    '|---|---:|---:|---:|',
    ...r.stages.map((s) => `| ${s.name} | ${s.ms.toFixed(1)} | ${s.flops ? (s.flops / 1e9).toFixed(1) : ''} | ${pct(s.fractionOfLimit)} |`),
    `| time to first token (question) | ${r.ttftMs.toFixed(1)} | ${(r.ours.ttftFlops / 1e9).toFixed(1)} | |`,
    '',
    `Decode ${r.decode.tokensPerSecond.toFixed(2)} tokens/s over ${r.decode.tokens} tokens (${mib(r.decode.bytesPerToken)} read per token). Load ${(r.load.totalMs / 1000).toFixed(1)} s: weights ${(r.load.weightsMs / 1000).toFixed(1)} s, pipeline build and buffers ${(r.load.pipelineBuildMs / 1000).toFixed(1)} s. Wall time ${(r.wallMs / 1000).toFixed(1)} s.`,
    '',
    `GPU memory: ${Object.entries(r.memory.weights).map(([k, v]) => `${k} weights ${mib(v)}`).join(', ')}; image side ${mib(r.memory.imageSide)}, pre-fusion ${mib(r.memory.prefusion)}, LLM runtime (KV cache, scratch, input rows) ${mib(r.memory.llm)}, one image's state ${mib(r.memory.imageState)}; total ${mib(r.memory.total + r.memory.imageState)}.`,
  ];
  const l = r.baselines.limits;
  if (l) lines.push('', `Device limits (b), measured in the same process: copy ${l.copyGBps.toFixed(1)} GB/s (read + write), peak FMA f32 ${l.peakF32Gflops.toFixed(0)} GFLOP/s${l.peakF16Gflops !== null ? `, f16 ${l.peakF16Gflops.toFixed(0)} GFLOP/s` : ''}. Decode is bytes per token over time against the copy bandwidth; the other stages FLOPs over time against the ${r.peakKind ?? 'f32'} peak (f16 where the linears compute in f16).`);
  const a = r.baselines.llava15;
  if (a && r.ratios) {
    lines.push(
      '',
      `LLaVA-v1.5 way (a): ${a.rows} LLM rows, time to first token ${a.ttftMs.toFixed(1)} ms, ${(a.ttftFlops / 1e9).toFixed(1)} GFLOP. Ours is **${speedWords(r.ratios.ttftSpeedup)}** to the first token with ${flopsWords(r.ratios.ttftFlopsRatio)}; image + question together ${speedWords(r.ratios.endToEndSpeedup)}, ${flopsWords(r.ratios.endToEndFlopsRatio)}.`,
    );
  }
  return lines.join('\n');
}

export function formatResultsMarkdown(r: CheckResults): string {
  const out = [
    `# GPU check (${r.scale})`,
    '',
    `Adapter: ${adapterLine(r.adapter)}  `,
    `Date: ${r.date}  `,
    `Commit: ${r.commit}  `,
    `Wall time: ${r.wallSeconds.toFixed(0)} s`,
    '',
    '| step | result | s | detail |',
    '|---|---|---:|---|',
    ...r.steps.map((s) => `| ${s.name} | ${s.status} | ${s.seconds.toFixed(1)} | ${s.detail.split('\n').at(-1)!.replace(/\|/g, '\\|').slice(0, 160)} |`),
  ];
  for (const e of r.e2e) out.push('', formatE2eMarkdown(e));
  for (const [title, text] of [['Kernel bench', r.kernels], ['Decode bench', r.decode], ['Attention bench', r.attention]] as const) {
    if (text) out.push('', `## ${title}`, '', '```', text.trim(), '```');
  }
  return out.join('\n') + '\n';
}
