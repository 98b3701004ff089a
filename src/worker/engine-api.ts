// What the engine worker offers the UI (through Comlink): plain data in and out, callbacks for progress and
// streaming. The worker owns the GPUDevice, the weights, every encoded image and every conversation.
import type { AdapterSummary } from '../gpu/device.ts';
import type { EncodeStage, EngineMemory, VisualTimings } from '../engine/engine.ts';
import type { ContextUsage, TopLogit, TurnTimings } from '../engine/conversation.ts';
import type { PipelineBuilds } from '../gpu/pipeline.ts';
import type { SamplingOptions } from '../llm/llama-runtime.ts';
import type { Precision } from '../precision/policy.ts';

/**
 * Where the model comes from: a folder URL (HTTP range reads; `files` its listing when an index gave one), picked files with their relative paths, or a model
 * stored in this browser (by id; see model-store-api.ts).
 */
export type ModelSource =
  | { url: string; files?: readonly string[] }
  | { name: string; files: [string, Blob][] }
  /** modelLib (with llm 'webllm'): the WebLLM model library URL to run the LLM on, instead of the stock 8B one. */
  | { cached: string; name: string; llm?: LlmChoice; modelLib?: string };

/** Who runs the LLM of a stored model: WebLLM's compiled library (the 8B model's default), or our own kernels. */
export type LlmChoice = 'auto' | 'webllm' | 'native';

export interface LoadProgress {
  /** 'llm': WebLLM loading its library and the LLM weights (loadedBytes/totalBytes are then its fraction x 1e6). */
  stage: 'opening' | 'llm' | 'weights' | 'kernels';
  /** Bytes of checkpoint tensors uploaded so far / in all (weights stage). */
  loadedBytes: number;
  totalBytes: number;
  tensor?: string;
  /** Kernels stage: GPU pipelines requested so far and built. */
  pipelines?: PipelineBuilds;
}

/** Which stage an image is in while it is encoded (engine.ts EncodeStage). */
export type { EncodeStage };

/** The context a conversation uses with a draft question (UI: shown before sending; refused over the limit). */
export interface ContextRequest {
  conversationId: string;
  systemPrompt?: string;
  /** The saved turns (used when the worker does not hold the conversation): frames per visual of each turn. */
  history: { question: string; answer: string; images: number[] }[];
  question: string;
  /** Frames of each visual attached to the draft (an image: 1). */
  frames: number[];
}

export interface LoadedModel {
  name: string;
  precision: Precision;
  /** Which runtime answers: WebLLM's library or our kernels. */
  llm: 'webllm' | 'native';
  adapter: AdapterSummary;
  memory: EngineMemory;
  /** C^2: LLM rows per image. */
  visionTokenRows: number;
}

export interface EncodedImageInfo {
  id: string;
  timings: VisualTimings;
  bytes: number;
}

/** A visual as the page saved it: an image file, or a video's sampled frames (`blob` is then its first frame). */
export interface SavedVisual {
  name: string;
  blob: Blob;
  frames?: Blob[];
}

/** A completed turn as the page saved it. */
export interface SavedTurn {
  question: string;
  answer: string;
  images: SavedVisual[];
}

export interface AskRequest {
  conversationId: string;
  question: string;
  /** New visuals of this turn: each an image id, or a video's frame ids. */
  images: (string | string[])[];
  maxNewTokens: number;
  sampling: SamplingOptions;
  systemPrompt?: string;
  /**
   * The earlier turns as saved. Used only when the worker does not hold the conversation (after a reload, a switch
   * of conversation or a lost device): it re-encodes their images and re-opens the conversation from them.
   */
  history?: SavedTurn[];
  /** Also report the k highest logits of the first answer token (the app's `?logits=K`: comparing engines). */
  topLogits?: number;
}

export interface AnswerStats {
  tokens: number[];
  text: string;
  stopped: 'eos' | 'length' | 'aborted';
  promptIds: number[];
  llmRows: number;
  /** LLM rows the images took (C^2 per image / frame) and the rest (text). */
  imageRows: number;
  reusedRows: number;
  /** Images this turn brought, and their image side + vision pre-fusion time (spent when they were attached). */
  newImages: number;
  imageWorkMs: number;
  timings: TurnTimings;
  memory: EngineMemory;
  /** With AskRequest.topLogits: the first answer token's k highest logits, highest first. */
  topLogits0?: TopLogit[];
}

/**
 * How an answer ended: complete (end of sequence or the token limit), stopped (by the user, or by a lost GPU
 * device: `reason` says which; `stats` when the stop came between decode steps), or failed with a reason.
 */
export type AnswerOutcome =
  | { kind: 'done'; stats: AnswerStats }
  | { kind: 'stopped'; reason: string; stats?: AnswerStats }
  | { kind: 'failed'; reason: string };

export interface EngineApi {
  load(source: ModelSource, precision: Precision, onProgress: (p: LoadProgress) => void): Promise<LoadedModel>;
  /** Encodes an image (or a video frame) and fuses its vision rows; the bitmap is transferred. */
  encodeImage(bitmap: ImageBitmap, mode: 'image' | 'video', onStage?: (stage: EncodeStage) => void): Promise<EncodedImageInfo>;
  /** LLM rows the conversation would take with the draft, and the limit (tokenizer and template only, no GPU work). */
  contextUsage(req: ContextRequest): Promise<ContextUsage & { refusal?: string }>;
  /**
   * Calls `onLost` when the loaded model's GPU device is lost (driver reset, out of memory, destroyed) other than by
   * unload(): the worker has then dropped the model, its images and conversations; the UI reloads the model and
   * resumes the conversation from its saved history.
   */
  watchDeviceLoss(onLost: (message: string) => void): void;
  releaseImage(id: string): Promise<void>;
  /** Answers, streaming the text; never rejects: a stop or a failure is its outcome. */
  ask(req: AskRequest, onText: (delta: string) => void, onToken?: (id: number) => void): Promise<AnswerOutcome>;
  /** Aborts the running ask (between decode steps or prefill chunks). */
  stop(): void;
  /**
   * Forgets the conversation's last question and answer (regenerate / edit). False when the worker does not hold
   * the conversation (its images' ids are then gone too).
   */
  undoLastTurn(conversationId: string): Promise<boolean>;
  dropConversation(conversationId: string): Promise<void>;
  memory(): Promise<EngineMemory | null>;
  unload(): Promise<void>;
}
