// Browser side of the KV-cache probe (kv-probe.ts): the stored verification model on the real WebLLM library,
// driven through our EmbeddingPrefill with random rows. Each experiment's last logits are compared with a fresh
// prefill of all rows (the truth: turn 1 of the verify run agrees with our runtime within 8e-6): rows after cached
// ones (as EmbeddingPrefill feeds them), after a pop, and (--library-prefill) the library's own prefill over cached
// rows, which EmbeddingPrefill avoids.
import { MLCEngine } from '@mlc-ai/web-llm';
import { storedModelAppConfig, storedModelInfo, MODELS_DIR } from '../../src/download/stored-models.ts';
import { storageBufferFrom } from '../../src/gpu/buffers.ts';
import { relativeError } from '../../src/gpu/compare.ts';
import { withDirectWeightLoading } from '../../src/llm/webllm/direct-weight-loader.ts';
import { EmbeddingPrefill } from '../../src/llm/webllm/embedding-prefill.ts';
import { pipelineOf } from '../../src/llm/webllm/webllm-backend.ts';
import { mulberry32, randomF32 } from '../../src/util/seeded-random.ts';

export interface ProbeStep {
  name: string;
  /** The library's own prefill over cached rows (which EmbeddingPrefill avoids). */
  libraryPrefill: boolean;
  ms: number;
  maxAbsDiff: number;
  maxRelDiff: number;
}

async function storedModel(): Promise<{ id: string; format: string }> {
  const root = await navigator.storage.getDirectory();
  const models = await root.getDirectoryHandle(MODELS_DIR);
  for await (const id of (models as unknown as { keys(): AsyncIterable<string> }).keys()) {
    const info = await storedModelInfo(id);
    if (info?.state === 'complete') return { id, format: info.format };
  }
  throw new Error('no complete stored model in this profile (run npm run verify:webllm first)');
}

function relativeDiff(a: Float32Array, truth: Float32Array): { maxAbsDiff: number; maxRelDiff: number } {
  const e = relativeError(a, truth);
  return { maxAbsDiff: e.maxErr, maxRelDiff: e.rel };
}

async function probe(libUrl: string, cached: number, added: number, decoded: number, withLibraryPrefill: boolean, log: (s: string) => void): Promise<ProbeStep[]> {
  const { id, format } = await storedModel();
  const { appConfig, modelId } = storedModelAppConfig(id, format as never, libUrl);
  const mlc = new MLCEngine({ appConfig });
  await withDirectWeightLoading({ library: libUrl, model: id }, () => mlc.reload(modelId));
  const pipeline = pipelineOf(mlc as never, modelId);
  const hidden = Number(pipeline.config.model_config?.hidden_size);
  const ep = await EmbeddingPrefill.create(pipeline, { hidden });
  log(`loaded ${id} (${format}), hidden ${hidden}, prefill chunk ${pipeline.prefillChunkSize}`);
  const rows = cached + added;
  const random = (n: number, seed: number) => storageBufferFrom(ep.device, randomF32(n * hidden, mulberry32(seed), 1), `probe rows ${seed}`);
  const input = random(rows, 1);
  const other = random(decoded, 2);
  const logitsOf = async (t: Awaited<ReturnType<EmbeddingPrefill['run']>>) => {
    const v = await ep.readLogits(t);
    t.dispose();
    return v;
  };
  const steps: ProbeStep[] = [];
  let truth: Float32Array | null = null;
  const experiment = async (name: string, body: () => Promise<Float32Array>, libraryPrefill = false) => {
    ep.rollback(0);
    const t0 = performance.now();
    const v = await body();
    const step = { name, libraryPrefill, ms: performance.now() - t0, ...relativeDiff(v, truth ?? v) };
    truth ??= v;
    steps.push(step);
    log(`${name}: ${(step.ms / 1000).toFixed(0)} s, max |diff| ${step.maxAbsDiff.toExponential(2)}, relative ${step.maxRelDiff.toExponential(2)}`);
  };
  await experiment(`fresh prefill of ${rows} rows (the truth)`, async () => logitsOf(await ep.run(input, rows)));
  await experiment(`prefill ${cached}, then the ${added} more through EmbeddingPrefill (one row at a time)`, async () => {
    (await ep.run(input, cached)).dispose();
    return logitsOf(await ep.run(input, added, { inputRowOffset: cached }));
  });
  await experiment(`prefill ${cached}, decode ${decoded} other rows, pop them, then the ${added} more`, async () => {
    (await ep.run(input, cached)).dispose();
    (await ep.run(other, decoded)).dispose();
    ep.rollback(cached);
    return logitsOf(await ep.run(input, added, { inputRowOffset: cached }));
  });
  if (withLibraryPrefill) {
    await experiment(`prefill ${cached}, then the library's prefill of ${added} more over them`, async () => {
      (await ep.run(input, cached)).dispose();
      return logitsOf(ep.forward(input, cached, added));
    }, true);
  }
  ep.destroy();
  await mlc.unload();
  return steps;
}

(globalThis as unknown as { kvProbe: typeof probe }).kvProbe = probe;
