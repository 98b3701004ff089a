// The engine behind EngineApi: one GPUDevice, one loaded model, encoded images and conversations by id. Runs in
// the engine worker (engine.worker.ts is the Comlink shell); it is plain TypeScript over the engine core.
import type { Checkpoint } from '../checkpoint/checkpoint.ts';
import { BlobCheckpointFiles, UrlCheckpointFiles, type CheckpointFiles } from '../checkpoint/index.ts';
import { DTYPE_BYTES, numel } from '../checkpoint/safetensors.ts';
import type { MlcQuantization } from '../convert/index.ts';
import { openStoredModel, storedModelInfo } from '../download/stored-models.ts';
import { Conversation, measureContext, overContextMessage, type ContextUsage, type TextSide } from '../engine/conversation.ts';
import { LlavaMiniEngine, type EncodedImage, type EncodeStage, type EngineMemory } from '../engine/engine.ts';
import { llmRuntimeFor, loadPrecision, openModel, type OpenedModel } from '../engine/open-model.ts';
import { requestGpuDevice, type AdapterSummary } from '../gpu/device.ts';
import { decodeImageForEngine } from '../image/image-bitmap.ts';
import { ConvertedModel } from '../weights/converted-model.ts';
import type { Precision } from '../precision/policy.ts';
import { loadWithWebLlm } from './webllm-loader.ts';
import type { AnswerOutcome, AskRequest, ContextRequest, EncodedImageInfo, EngineApi, LoadedModel, LoadProgress, ModelSource, SavedVisual } from './engine-api.ts';

interface Loaded {
  engine: LlavaMiniEngine;
  text: TextSide;
  summary: AdapterSummary;
  /** Gives the GPU back (our device, or WebLLM's engine and its device). */
  release(): Promise<void>;
}

/** A stored model, opened as stored (it holds one format; its LLM's files come from WebLLM's cache). */
async function openStored(id: string, name: string): Promise<{ model: OpenedModel; format: MlcQuantization }> {
  const info = await storedModelInfo(id);
  if (info?.state !== 'complete') throw new Error(`${name} is not completely stored in this browser: resume or repeat its download`);
  const files = await (await openStoredModel(id, info.format)).checkpointFiles();
  return { model: await openModel(files, { hasF16: info.format === 'q4f16_1' || info.format === 'q0f16', llm: info.format }), format: info.format };
}

const messageOf = (e: unknown) => (e && typeof e === 'object' && 'message' in e ? String(e.message) : String(e));

function filesOf(source: Exclude<ModelSource, { cached: string }>): CheckpointFiles {
  return 'url' in source ? new UrlCheckpointFiles(source.url, source.files ? { files: source.files } : {}) : new BlobCheckpointFiles(source.files, source.name);
}

export class EngineHost implements EngineApi {
  private loaded: Loaded | null = null;
  private readonly images = new Map<string, EncodedImage>();
  private readonly conversations = new Map<string, Conversation>();
  private running: AbortController | null = null;
  private nextId = 1;
  private onDeviceLost: ((message: string) => void) | null = null;

  constructor(private readonly gpu: GPU | undefined) {}

  async load(source: ModelSource, precision: Precision, onProgress: (p: LoadProgress) => void): Promise<LoadedModel> {
    await this.unload();
    onProgress({ stage: 'opening', loadedBytes: 0, totalBytes: 0 });
    const stored = 'cached' in source ? await openStored(source.cached, source.name) : null;
    const name = 'url' in source ? (source.url.replace(/\/$/, '').split('/').pop() ?? source.url) : source.name;
    if (stored && 'cached' in source && stored.model.source instanceof ConvertedModel && llmRuntimeFor(stored.model, source.llm ?? 'auto', true) === 'webllm') {
      const model = stored.model.source;
      const w = await loadWithWebLlm(source.cached, source.name, stored.format, model, source.llm === 'webllm' ? source.modelLib : undefined, (f, text) => onProgress({ stage: 'llm', loadedBytes: Math.round(f * 1e6), totalBytes: 1e6, tensor: text }), this.progressOf(model, onProgress));
      this.loaded = { engine: w.engine, text: stored.model.text, summary: w.summary, release: w.release };
      this.watchDevice(this.loaded);
      return this.loadedModel(name, model.precision, 'webllm');
    }
    const ctx = await requestGpuDevice(this.gpu);
    try {
      const opened = stored?.model ?? (await openModel(filesOf(source as Exclude<ModelSource, { cached: string }>), { hasF16: ctx.features.has('shader-f16') }));
      const model = opened.source;
      const used = loadPrecision(opened, precision);
      const totalBytes = model.totalBytes();
      const engine = await LlavaMiniEngine.load(ctx.device, model, {
        precision: used,
        onProgress: this.progressOf(model, onProgress),
        onPipelines: (pipelines) => onProgress({ stage: 'kernels', loadedBytes: totalBytes, totalBytes, pipelines }),
      });
      this.loaded = { engine, text: opened.text, summary: ctx.summary, release: async () => ctx.device.destroy() };
      this.watchDevice(this.loaded);
      return this.loadedModel(name, used, 'native');
    } catch (e) {
      ctx.device.destroy();
      throw e;
    }
  }

  /** Upload progress in bytes of the stored tensors. */
  private progressOf(model: Checkpoint | ConvertedModel, onProgress: (p: LoadProgress) => void): (tensor: string, done: number, total: number) => void {
    const bytesOf = (tensor: string) => {
      if (model instanceof ConvertedModel) return model.storedBytes(tensor);
      const info = model.info(tensor);
      return numel(info.shape) * (DTYPE_BYTES[info.dtype as keyof typeof DTYPE_BYTES] ?? 4);
    };
    const totalBytes = model.totalBytes();
    let loadedBytes = 0;
    return (tensor, done, total) => {
      loadedBytes += bytesOf(tensor);
      onProgress({ stage: done === total ? 'kernels' : 'weights', loadedBytes, totalBytes, tensor });
    };
  }

  watchDeviceLoss(onLost: (message: string) => void): void {
    this.onDeviceLost = onLost;
  }

  /** A lost device (not given back by unload) drops the model and everything on it, and tells the UI. */
  private watchDevice(loaded: Loaded): void {
    void loaded.engine.device.lost.then((info) => {
      if (this.loaded !== loaded) return; // unloaded (or replaced) on purpose
      this.running?.abort(new DOMException('the GPU device was lost', 'AbortError'));
      this.conversations.clear();
      this.images.clear();
      this.loaded = null;
      void loaded.release().catch(() => undefined);
      this.onDeviceLost?.(info.message || `reason: ${info.reason ?? 'unknown'}`);
    });
  }

  /** The loaded model's GPU device (the e2e tests destroy it to check the recovery). */
  gpuDevice(): GPUDevice | null {
    return this.loaded?.engine.device ?? null;
  }

  private loadedModel(name: string, precision: Precision, llm: LoadedModel['llm']): LoadedModel {
    const { engine, summary } = this.require();
    return { name, precision, llm, adapter: summary, memory: this.withImageStates(engine.memory()), visionTokenRows: engine.visionTokenRows };
  }

  async encodeImage(bitmap: ImageBitmap, mode: 'image' | 'video', onStage?: (stage: EncodeStage) => void): Promise<EncodedImageInfo> {
    const encoded = await this.encodeBitmap(bitmap, mode, onStage);
    const id = `img${this.nextId++}`;
    this.images.set(id, encoded);
    return { id, timings: encoded.timings, bytes: encoded.bytes };
  }

  private async encodeBitmap(bitmap: ImageBitmap, mode: 'image' | 'video', onStage?: (stage: EncodeStage) => void): Promise<EncodedImage> {
    try {
      const { engine } = this.require();
      return await engine.encodeImage(bitmap, { mode, ...(onStage ? { onStage: (s: EncodeStage) => void onStage(s) } : {}) });
    } finally {
      bitmap.close();
    }
  }

  /** A saved visual encoded again, one image or frame after the other. */
  private async encodeSaved(visual: SavedVisual): Promise<EncodedImage | EncodedImage[]> {
    const encode = async (blob: Blob, mode: 'image' | 'video') => this.encodeBitmap(await decodeImageForEngine(new File([blob], visual.name)), mode);
    if (!visual.frames) return encode(visual.blob, 'image');
    const frames: EncodedImage[] = [];
    for (const f of visual.frames) frames.push(await encode(f, 'video'));
    return frames;
  }

  async releaseImage(id: string): Promise<void> {
    // Images a conversation holds are freed with the conversation.
    const image = this.images.get(id);
    if (!image) return;
    this.images.delete(id);
    if (![...this.conversations.values()].some((c) => c.images.some((slot) => slot.includes(image)))) image.destroy();
  }

  async ask(req: AskRequest, onText: (delta: string) => void, onToken?: (id: number) => void): Promise<AnswerOutcome> {
    let controller: AbortController | null = null;
    try {
      const { engine } = this.require();
      if (this.running) throw new Error('an answer is already being generated: stop it first');
      const conv = await this.conversation(req);
      const images = req.images.map((v) => (Array.isArray(v) ? v.map((id) => this.image(id)) : this.image(v)));
      const frames = images.flat();
      const imageWorkMs = frames.reduce((s, e) => s + e.timings.imageMs + e.timings.prefusionMs, 0);
      controller = new AbortController();
      this.running = controller;
      const turn = await conv.ask(req.question, { images, maxNewTokens: req.maxNewTokens, sampling: req.sampling, signal: controller.signal, onText, ...(onToken ? { onToken } : {}), ...(req.topLogits ? { topLogits: req.topLogits } : {}) });
      const imageRows = conv.images.reduce((n, slot) => n + slot.length * engine.visionTokenRows, 0);
      const { captured: _captured, ...rest } = turn;
      const stats = { ...rest, imageRows: Math.min(imageRows, turn.llmRows), newImages: frames.length, imageWorkMs, memory: this.withImageStates(engine.memory()) };
      return turn.stopped === 'aborted' ? { kind: 'stopped', reason: messageOf(controller.signal.reason), stats } : { kind: 'done', stats };
    } catch (e) {
      // Whatever an abort interrupted (a prefill chunk, a read-back of a lost device) ends as a stop.
      if (controller?.signal.aborted) return { kind: 'stopped', reason: messageOf(controller.signal.reason) };
      return { kind: 'failed', reason: messageOf(e) };
    } finally {
      if (controller && this.running === controller) this.running = null;
    }
  }

  /** The conversation of `req`, re-opened from its saved history when this worker does not hold it. */
  private async conversation(req: AskRequest): Promise<Conversation> {
    const held = this.conversations.get(req.conversationId);
    if (held) return held;
    const { engine, text } = this.require();
    const history = [];
    for (const turn of req.history ?? []) {
      const images = [];
      for (const visual of turn.images) images.push(await this.encodeSaved(visual));
      history.push({ question: turn.question, answer: turn.answer, images });
    }
    const conv = Conversation.resume(engine, text, { systemPrompt: req.systemPrompt }, history);
    this.conversations.set(req.conversationId, conv);
    return conv;
  }

  async contextUsage(req: ContextRequest): Promise<ContextUsage & { refusal?: string }> {
    const { engine, text } = this.require();
    const held = this.conversations.get(req.conversationId);
    const usage = held ? held.measure(req.question, req.frames) : measureContext(engine, text, { systemPrompt: req.systemPrompt }, req.history, req.question, req.frames);
    const firstTurn = held ? held.messages.length === 1 : req.history.length === 0;
    return usage.rows > usage.limit ? { ...usage, refusal: overContextMessage(usage.rows, usage.limit, firstTurn) } : usage;
  }

  stop(): void {
    this.running?.abort(new DOMException('stopped by the user', 'AbortError'));
  }

  async undoLastTurn(conversationId: string): Promise<boolean> {
    const conv = this.conversations.get(conversationId);
    conv?.undoLastTurn();
    return conv !== undefined;
  }

  async dropConversation(conversationId: string): Promise<void> {
    const conv = this.conversations.get(conversationId);
    if (!conv) return;
    this.conversations.delete(conversationId);
    for (const slot of conv.images) for (const image of slot) for (const [id, im] of this.images) if (im === image) this.images.delete(id);
    conv.destroy();
  }

  async memory() {
    if (!this.loaded) return null;
    return this.withImageStates(this.loaded.engine.memory());
  }

  /** Engine memory plus every encoded image the worker holds (attached, in conversations, or live frames). */
  private withImageStates(m: EngineMemory): EngineMemory {
    const held = new Set<EncodedImage>(this.images.values());
    for (const conv of this.conversations.values()) for (const slot of conv.images) for (const im of slot) held.add(im);
    const imageStates = [...held].reduce((s, im) => s + im.bytes, 0);
    return { ...m, imageStates, total: m.total + imageStates };
  }

  async unload(): Promise<void> {
    if (!this.loaded) return;
    this.stop();
    for (const id of [...this.conversations.keys()]) await this.dropConversation(id);
    for (const image of this.images.values()) image.destroy();
    this.images.clear();
    const loaded = this.loaded;
    this.loaded = null; // first: the device's loss that follows is not a failure (watchDevice)
    loaded.engine.destroy();
    await loaded.release();
  }

  private require(): Loaded {
    if (!this.loaded) throw new Error('no model is loaded');
    return this.loaded;
  }

  private image(id: string): EncodedImage {
    const image = this.images.get(id);
    if (!image) throw new Error(`image ${id} is not encoded (released, or the model was reloaded)`);
    return image;
  }
}
