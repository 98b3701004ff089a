// Modality pre-fusion on the GPU (spec section 4), exploiting causality:
//   fuseVision(G, Vc)     runs the pre-fusion layers over the N + C^2 vision rows ONCE (positions 0 .., causal,
//                         every row kept), keeping each layer's K/V of those rows in a per-image state, and
//                         returns V = the C^2 rows after the last layer. No text is needed: it runs when the
//                         image (or video frame) arrives.
//   fuseText(state, ids)  runs only the L text rows T = embed(max(ids, 0)) against the cached vision K/V (and the
//                         earlier text rows): causal + key-keep mask (pad rows, ids <= 0, are never keys);
//                         positions continue from N + C^2 counting kept rows only (pad rows sit at position 1),
//                         exactly prefusionMaskAndPositions. F = the rows after the last layer, F[pad] = T[pad].
//   appendText(state, ids) continues from the text rows so far (multi-turn): a text row only sees the vision rows
//                         and earlier text, so appending never changes earlier fused rows.
// The result equals the reference's full, uncached pre-fusion (PrefusionReference.run) over [G ; Vc ; T].
import { visionPatchCount } from '../checkpoint/config.ts';
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { createStorageBuffer, readF32 } from '../gpu/buffers.ts';
import type { KvStorage } from '../gpu/storage.ts';
import { checkRows, type GpuRows } from '../gpu/tensor.ts';
import { DecoderStack } from '../llm/decoder-layer.ts';
import type { KvCache } from '../llm/kv-cache.ts';
import { TokenEmbedding } from '../llm/token-embedding.ts';
import { prefusionLayerPrefix } from '../checkpoint/expected-tensors.ts';
import type { GpuWeights } from '../weights/gpu-weights.ts';

export interface PrefusionOptions {
  /** Text rows one image's state holds over a conversation. Default config.tokenizerModelMaxLength. */
  maxTextRows?: number;
  /** Rows per command buffer (activation scratch). Default 128. */
  chunkSize?: number;
  /** KV cache storage. Default 'f32'; 'f16' needs shader-f16. */
  kv?: KvStorage;
}

/** One image's pre-fusion: the cached K/V of its vision rows and of the text fused so far. */
export class PrefusionState {
  /** Prompt ids fused so far. */
  readonly ids: number[] = [];
  /** Kept rows so far = the position of the next kept row. */
  nextPosition: number;
  /** Per cache row: token id (text rows), RoPE position, keep flag. */
  readonly rowIds: GPUBuffer;
  readonly positions: GPUBuffer;
  readonly keep: GPUBuffer;

  constructor(
    readonly device: GPUDevice,
    readonly cache: KvCache,
    /** N + C^2. */
    readonly visionRows: number,
    /** C^2. */
    readonly compressedRows: number,
    readonly hidden: number,
    /** V [C^2, H] after the last pre-fusion layer. */
    readonly visionToken: GPUBuffer,
    /** F [maxTextRows, H]; rows [0, textRows) hold the fused text. */
    readonly fusedText: GPUBuffer,
  ) {
    const cap = cache.capacity;
    this.rowIds = createStorageBuffer(device, cap * 4, 'prefusion ids');
    this.positions = createStorageBuffer(device, cap * 4, 'prefusion positions');
    this.keep = createStorageBuffer(device, cap * 4, 'prefusion keep');
    this.nextPosition = visionRows;
  }

  get textRows(): number {
    return this.ids.length;
  }

  get maxTextRows(): number {
    return this.cache.capacity - this.visionRows;
  }

  /** V as [C^2, H]. */
  readVisionToken(): Promise<Float32Array> {
    return readF32(this.device, this.visionToken, this.compressedRows * this.hidden);
  }

  /** F rows [0, textRows) as [textRows, H]. */
  readFusedText(): Promise<Float32Array> {
    return readF32(this.device, this.fusedText, this.textRows * this.hidden);
  }

  /** GPU bytes held (KV cache, V, F and the per-row tables). */
  bytes(): number {
    return this.cache.bytes() + [this.visionToken, this.fusedText, this.rowIds, this.positions, this.keep].reduce((s, b) => s + b.size, 0);
  }

  destroy(): void {
    this.cache.destroy();
    for (const b of [this.visionToken, this.fusedText, this.rowIds, this.positions, this.keep]) b.destroy();
  }
}

export class PrefusionRuntime {
  readonly config: LlavaMiniConfig;
  /** N: projected CLIP rows (576). */
  readonly patchRows: number;
  /** C^2: compressed rows. */
  readonly compressedRows: number;
  readonly maxTextRows: number;

  private constructor(
    readonly device: GPUDevice,
    readonly stack: DecoderStack,
    private readonly embedding: TokenEmbedding,
    config: LlavaMiniConfig,
    maxTextRows: number,
  ) {
    this.config = config;
    this.patchRows = visionPatchCount(config.vision);
    this.compressedRows = config.compressorSize ** 2;
    this.maxTextRows = maxTextRows;
  }

  /** Uploads (once) the pre-fusion layers and the token embedding from `weights`. */
  static async create(weights: GpuWeights, opts: PrefusionOptions = {}): Promise<PrefusionRuntime> {
    const config = weights.source.config;
    const maxText = opts.maxTextRows ?? config.tokenizerModelMaxLength;
    const capacity = visionPatchCount(config.vision) + config.compressorSize ** 2 + maxText;
    const prefixes = Array.from({ length: config.prefusionLayerNum }, (_, i) => prefusionLayerPrefix(i));
    const stack = await DecoderStack.create(weights, prefixes, { maxRows: opts.chunkSize ?? 128, maxPositions: capacity, kv: opts.kv });
    return new PrefusionRuntime(weights.device, stack, await TokenEmbedding.create(weights), config, maxText);
  }

  get visionRows(): number {
    return this.patchRows + this.compressedRows;
  }

  /**
   * G [N, H] (projected CLIP rows) and Vc [C^2, H] (projected compressed rows), f32 on the GPU -> a state holding
   * the pre-fusion K/V of the N + C^2 vision rows and V [C^2, H] (state.visionToken).
   */
  async fuseVision(gRows: GpuRows, vcRows: GpuRows, opts: { signal?: AbortSignal } = {}): Promise<PrefusionState> {
    const H = this.config.llm.hiddenSize;
    const N = this.patchRows;
    const C2 = this.compressedRows;
    const rowBytes = H * 4;
    checkRows('PrefusionRuntime.fuseVision', 'G', gRows, { rows: N, cols: H });
    checkRows('PrefusionRuntime.fuseVision', 'Vc', vcRows, { rows: C2, cols: H });
    const { buffer: G, rowStart: gRow } = gRows;
    const { buffer: Vc, rowStart: vcRow } = vcRows;
    const cache = this.stack.createCache(N + C2 + this.maxTextRows, 'prefusion kv');
    const state = new PrefusionState(
      this.device,
      cache,
      N + C2,
      C2,
      H,
      createStorageBuffer(this.device, C2 * rowBytes, 'prefusion V'),
      createStorageBuffer(this.device, this.maxTextRows * rowBytes, 'prefusion F'),
    );
    try {
      this.device.queue.writeBuffer(state.positions, 0, Int32Array.from({ length: N + C2 }, (_, i) => i));
      this.device.queue.writeBuffer(state.keep, 0, new Uint32Array(N + C2).fill(1));
      const x = this.stack.scratch.x;
      await this.stack.runChunks(N + C2, opts.signal, (encoder, r, n) => {
        // Input rows [r, r + n) of [G ; Vc].
        const fromG = Math.max(0, Math.min(n, N - r));
        if (fromG > 0) encoder.copyBufferToBuffer(G, (gRow + r) * rowBytes, x, 0, fromG * rowBytes);
        if (n > fromG) encoder.copyBufferToBuffer(Vc, (vcRow + r + fromG - N) * rowBytes, x, fromG * rowBytes, (n - fromG) * rowBytes);
        const pass = encoder.beginComputePass({ label: 'prefusion vision chunk' });
        this.stack.record(pass, cache, { rows: n, positions: state.positions, positionOffset: r, keep: null });
        pass.end();
        // The compressed rows of this chunk after the last layer are V.
        if (n > fromG) encoder.copyBufferToBuffer(x, fromG * rowBytes, state.visionToken, (r + fromG - N) * rowBytes, (n - fromG) * rowBytes);
      });
    } catch (e) {
      state.destroy();
      throw e;
    }
    return state;
  }

  /** Fuses a prompt's text rows against the image's cached vision rows (forgetting any text fused before): F [L, H]. */
  fuseText(state: PrefusionState, ids: readonly number[], opts: { signal?: AbortSignal } = {}): Promise<GpuRows> {
    this.rollbackText(state, 0);
    return this.appendText(state, ids, opts);
  }

  /** Fuses more text rows after the existing ones; returns the new F rows (earlier rows are unchanged). */
  async appendText(state: PrefusionState, ids: readonly number[], opts: { signal?: AbortSignal } = {}): Promise<GpuRows> {
    const L = ids.length;
    const V = this.config.llm.vocabSize;
    const H = this.config.llm.hiddenSize;
    if (L < 1) throw new Error('PrefusionRuntime.appendText: no ids');
    for (const id of ids) if (!Number.isInteger(id) || id >= V) throw new Error(`PrefusionRuntime: token id ${id} is not an integer below the vocabulary size ${V}`);
    if (state.textRows + L > state.maxTextRows) {
      throw new Error(`PrefusionRuntime: ${state.textRows} fused text rows + ${L} new rows exceed the ${state.maxTextRows} text rows this state holds (maxTextRows)`);
    }
    const textRow0 = state.textRows;
    const cacheRow0 = state.cache.length;
    const position0 = state.nextPosition;
    // Per new row: pad (ids <= 0) rows are never keys and sit at position 1; kept rows continue the count.
    const positions = new Int32Array(L);
    const keep = new Uint32Array(L);
    let next = position0;
    ids.forEach((id, t) => {
      keep[t] = id > 0 ? 1 : 0;
      positions[t] = id > 0 ? next++ : 1;
    });
    this.device.queue.writeBuffer(state.rowIds, cacheRow0 * 4, Int32Array.from(ids));
    this.device.queue.writeBuffer(state.positions, cacheRow0 * 4, positions);
    this.device.queue.writeBuffer(state.keep, cacheRow0 * 4, keep);
    const x = this.stack.scratch.x;
    const rowBytes = H * 4;
    try {
      await this.stack.runChunks(L, opts.signal, (encoder, r, n) => {
        const c = cacheRow0 + r;
        const pass = encoder.beginComputePass({ label: 'prefusion text chunk' });
        this.embedding.record(pass, state.rowIds, x, n, { idsOffset: c });
        this.stack.record(pass, state.cache, { rows: n, positions: state.positions, positionOffset: c, keep: state.keep });
        pass.end();
        encoder.copyBufferToBuffer(x, 0, state.fusedText, (textRow0 + r) * rowBytes, n * rowBytes);
        // F[pad] = T[pad]: the plain (clamped) embedding.
        for (let t = r; t < r + n; t++) {
          if (!keep[t]) this.embedding.record(encoder, state.rowIds, state.fusedText, 1, { idsOffset: cacheRow0 + t, outRowOffset: textRow0 + t });
        }
      });
    } catch (e) {
      state.cache.rollback(cacheRow0);
      throw e;
    }
    state.ids.push(...ids);
    state.nextPosition = next;
    return { buffer: state.fusedText, rowStart: textRow0, rows: L, cols: this.config.llm.hiddenSize };
  }

  /** Forgets fused text rows from `textRows` on (the vision rows stay cached). */
  rollbackText(state: PrefusionState, textRows: number): void {
    if (!Number.isInteger(textRows) || textRows < 0 || textRows > state.textRows) throw new Error(`PrefusionRuntime.rollbackText: ${textRows} outside 0..${state.textRows}`);
    state.cache.rollback(state.visionRows + textRows);
    state.ids.length = textRows;
    state.nextPosition = state.visionRows + state.ids.reduce((s, id) => s + (id > 0 ? 1 : 0), 0);
  }

  /** GPU bytes of the shared scratch and RoPE table (each state counts its own). */
  bytes(): number {
    return this.stack.bytes();
  }

  destroy(): void {
    this.stack.destroy();
    this.embedding.destroy();
  }
}
