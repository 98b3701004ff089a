// Loads a stored model with its LLM on WebLLM: WebLLM's stock Llama-3.1-8B library of the pinned version runs the
// LLM from WebLLM's own cache (where the installer put it), on the GPUDevice WebLLM creates; our image side and
// pre-fusion are built on that same device and feed WebLLM's KV cache straight from our GPU buffers.
import { MLCEngine } from '@mlc-ai/web-llm';
import type { MlcQuantization } from '../convert/index.ts';
import { storedModelAppConfig } from '../download/stored-models.ts';
import { LlavaMiniEngine } from '../engine/engine.ts';
import { fitsStockLlamaLibrary } from '../engine/open-model.ts';
import { adapterSummary, type AdapterSummary } from '../gpu/device.ts';
import { pipelineOf, WebLlmBackend } from '../llm/webllm/webllm-backend.ts';
import type { ConvertedModel } from '../weights/converted-model.ts';

export interface WebLlmLoaded {
  engine: LlavaMiniEngine;
  summary: AdapterSummary;
  release(): Promise<void>;
}

export async function loadWithWebLlm(
  id: string,
  format: MlcQuantization,
  model: ConvertedModel,
  onProgress: (fraction: number, text: string) => void,
  onTensor: (tensor: string, done: number, total: number) => void,
): Promise<WebLlmLoaded> {
  if (!fitsStockLlamaLibrary(model.config)) {
    throw new Error("this model's LLM does not have Llama-3.1-8B's shapes, which WebLLM's stock library is compiled for: choose the native engine");
  }
  const { appConfig, modelId } = storedModelAppConfig(id, format);
  const mlc = new MLCEngine({ appConfig, initProgressCallback: (r) => onProgress(r.progress, r.text) });
  try {
    await mlc.reload(modelId);
  } catch (e) {
    await mlc.unload().catch(() => undefined);
    throw new Error(
      `WebLLM could not load the model (${e instanceof Error ? e.message : String(e)}). Its model library (${appConfig.model_list[0]!.model_lib}) is downloaded once, so the first load needs the network; or choose the native engine.`,
    );
  }
  try {
    const backend = await WebLlmBackend.attach(pipelineOf(mlc as never, modelId), { hidden: model.config.llm.hiddenSize });
    const device = backend.device;
    const engine = await LlavaMiniEngine.load(device, model, { precision: 'q4', externalLlm: backend, onProgress: onTensor });
    const info = (device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    const summary = adapterSummary({ info, features: device.features, limits: device.limits } as unknown as GPUAdapter);
    return { engine, summary, release: () => mlc.unload() };
  } catch (e) {
    await mlc.unload().catch(() => undefined);
    throw e;
  }
}
