// Loads a stored model with its LLM on WebLLM: a WebLLM model library of the pinned version (0.2.79, library ABI
// v0_2_48) runs the LLM from WebLLM's own cache (where the installer put it), on the GPUDevice WebLLM creates;
// our image side and pre-fusion are built on that same device and feed WebLLM's KV cache straight from our GPU
// buffers. The 8B model gets the stock Llama-3.1-8B library for its format; any other LLM needs a library
// compiled for its shapes (modelLib).
import { MLCEngine, modelVersion } from '@mlc-ai/web-llm';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import type { MlcQuantization } from '../convert/index.ts';
import { storedModelAppConfig } from '../download/stored-models.ts';
import { LlavaMiniEngine } from '../engine/engine.ts';
import { fitsStockLlamaLibrary } from '../engine/open-model.ts';
import { adapterSummary, type AdapterSummary } from '../gpu/device.ts';
import { LibraryAbiError, LibraryMismatchError, withDirectWeightLoading, type DirectLoadTrace } from '../llm/webllm/direct-weight-loader.ts';
import { pipelineOf, WebLlmBackend } from '../llm/webllm/webllm-backend.ts';
import type { ConvertedModel } from '../weights/converted-model.ts';

export interface WebLlmLoaded {
  engine: LlavaMiniEngine;
  summary: AdapterSummary;
  release(): Promise<void>;
}

const NATIVE = 'choose the native engine (our kernels run any Llama shapes)';

function shapesOf(config: LlavaMiniConfig): string {
  const l = config.llm;
  return `${l.numLayers} layers, hidden ${l.hiddenSize}, ${l.numHeads}x${l.headDim} heads (${l.numKvHeads} KV), FFN ${l.intermediateSize}, vocab ${l.vocabSize}${l.tieWordEmbeddings ? ', tied embeddings' : ''}`;
}

/** One sentence for a failed WebLLM load, naming the library and the model and the way out. */
export function webLlmLoadError(e: unknown, lib: string, modelName: string): Error {
  const msg = e instanceof Error ? e.message : String(e);
  const trace = (e as { trace?: DirectLoadTrace }).trace;
  if (e instanceof LibraryMismatchError) return new Error(`${msg}. Use a library compiled for this LLM, or ${NATIVE}.`);
  const wasm = e instanceof WebAssembly.CompileError || e instanceof WebAssembly.LinkError || e instanceof WebAssembly.RuntimeError;
  if (e instanceof LibraryAbiError || wasm || (trace?.instantiated && !trace.checked)) {
    return new Error(
      `WebLLM 0.2.79 (library ABI ${modelVersion}) cannot run the model library ${lib} for ${modelName} (${msg}): is it a library of another WebLLM version? Use a ${modelVersion} library, or ${NATIVE}.`,
    );
  }
  return new Error(`WebLLM could not load ${modelName} with the model library ${lib} (${msg}). The library is downloaded once, so the first load needs the network; or ${NATIVE}.`);
}

export async function loadWithWebLlm(
  id: string,
  name: string,
  format: MlcQuantization,
  model: ConvertedModel,
  modelLib: string | undefined,
  onProgress: (fraction: number, text: string) => void,
  onTensor: (tensor: string, done: number, total: number) => void,
): Promise<WebLlmLoaded> {
  if (!modelLib && !fitsStockLlamaLibrary(model.config, format)) {
    throw new Error(`this model's LLM (${shapesOf(model.config)}, ${format}) does not have Llama-3.1-8B's shapes in int4, which WebLLM's stock library is compiled for: give a model library compiled for it, or ${NATIVE}`);
  }
  const { appConfig, modelId } = storedModelAppConfig(id, format, modelLib);
  const lib = appConfig.model_list[0]!.model_lib;
  const mlc = new MLCEngine({ appConfig, initProgressCallback: (r) => onProgress(r.progress, r.text) });
  try {
    await withDirectWeightLoading({ library: lib, model: `${name}: ${shapesOf(model.config)}` }, () => mlc.reload(modelId));
  } catch (e) {
    await mlc.unload().catch(() => undefined);
    throw webLlmLoadError(e, lib, name);
  }
  try {
    const backend = await WebLlmBackend.attach(pipelineOf(mlc as never, modelId), { hidden: model.config.llm.hiddenSize });
    const device = backend.device;
    const engine = await LlavaMiniEngine.load(device, model, { precision: model.precision, externalLlm: backend, onProgress: onTensor });
    const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const summary = adapterSummary({ info, features: device.features, limits: device.limits } as unknown as GPUAdapter);
    return { engine, summary, release: () => mlc.unload() };
  } catch (e) {
    await mlc.unload().catch(() => undefined);
    throw e;
  }
}
