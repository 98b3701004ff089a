// LLM input assembly on the GPU (spec sections 5 and 7): LLM_in = F[0:k] ++ V ++ F[k+1:], where F is the fused
// text (the mean over every image / frame of its fused rows; one image: its rows as they are) and slot s holds
// the V rows of its visual's frames in order. Text-only prompts use the plain token embeddings. Only rows from
// `fromRow` on are written: multi-turn keeps the LLM cache of the rows before.
import { createStorageBuffer, readF32 } from '../gpu/buffers.ts';
import type { AddKernel } from '../gpu/kernels/elementwise.ts';
import type { TokenEmbedding } from '../llm/token-embedding.ts';
import type { PrefusionState } from '../prefuse/prefusion.ts';
import type { LlmLayout } from './llm-layout.ts';

export class LlmInputAssembler {
  /** [maxRows, H] f32: the rows LlamaRuntime.prefill reads. */
  readonly input: GPUBuffer;
  /** Mean of several states' fused text [maxTextRows, H]. */
  private readonly mean: GPUBuffer;
  /** i32 prompt ids (text-only prompts' embedding gather). */
  private readonly ids: GPUBuffer;

  constructor(
    readonly device: GPUDevice,
    readonly hidden: number,
    readonly maxRows: number,
    readonly maxTextRows: number,
    private readonly embedding: TokenEmbedding,
    private readonly add: AddKernel,
  ) {
    this.input = createStorageBuffer(device, maxRows * hidden * 4, `llm input [${maxRows}, ${hidden}]`);
    this.mean = createStorageBuffer(device, maxTextRows * hidden * 4, `mean fused text [${maxTextRows}, ${hidden}]`);
    this.ids = createStorageBuffer(device, Math.max(maxRows, maxTextRows) * 4, 'llm input ids');
  }

  /**
   * Writes LLM input rows [fromRow, toRow) of prompt `ids` laid out by `layout`; `slots[s]` are the frames of slot
   * s (their states have fused exactly `ids`). Returns the command buffer to submit before the prefill.
   */
  assemble(ids: readonly number[], layout: LlmLayout, slots: readonly (readonly PrefusionState[])[], fromRow: number, toRow: number): GPUCommandBuffer {
    const H = this.hidden;
    const rowBytes = H * 4;
    const L = ids.length;
    if (toRow > this.maxRows) throw new Error(`LLM input: ${toRow} rows exceed the ${this.maxRows} rows of the context`);
    const states = slots.flat();
    for (const s of states) {
      if (s.textRows !== L) throw new Error(`LLM input: an image state fused ${s.textRows} text rows, the prompt has ${L}`);
    }
    const encoder = this.device.createCommandEncoder({ label: 'llm input' });
    // Copies rows [dst, dst + n) of the input, clipped to [fromRow, toRow), from `src` starting at row srcRow.
    const copyRows = (src: GPUBuffer, srcRow: number, dst: number, n: number) => {
      const a = Math.max(dst, fromRow);
      const b = Math.min(dst + n, toRow);
      if (b > a) encoder.copyBufferToBuffer(src, (srcRow + a - dst) * rowBytes, this.input, a * rowBytes, (b - a) * rowBytes);
    };

    const fused = states.length === 0 ? null : states.length === 1 ? states[0]!.fusedText : this.meanOf(encoder, states, L);
    if (!fused) {
      if (L * 4 > this.ids.size) throw new Error(`LLM input: ${L} prompt ids exceed the context`);
      this.device.queue.writeBuffer(this.ids, 0, Int32Array.from(ids));
    }
    for (const seg of layout.segments) {
      if (seg.kind === 'vision') {
        slots[seg.slot]!.forEach((frame, f) => copyRows(frame.visionToken, 0, seg.llmRow + f * frame.compressedRows, frame.compressedRows));
      } else if (fused) {
        copyRows(fused, seg.from, seg.llmRow, seg.to - seg.from);
      } else {
        const a = Math.max(seg.llmRow, fromRow);
        const b = Math.min(seg.llmRow + seg.to - seg.from, toRow);
        if (b > a) this.embedding.record(encoder, this.ids, this.input, b - a, { idsOffset: seg.from + a - seg.llmRow, outRowOffset: a });
      }
    }
    return encoder.finish();
  }

  /** The mean fused text [L, H] of the last assemble() over several states. */
  readMean(L: number): Promise<Float32Array> {
    return readF32(this.device, this.mean, L * this.hidden);
  }

  /** GPU bytes held. */
  bytes(): number {
    return this.input.size + this.mean.size + this.ids.size;
  }

  destroy(): void {
    this.input.destroy();
    this.mean.destroy();
    this.ids.destroy();
  }

  /** mean_s F_s over the first L rows, accumulated in f32 (spec section 7). */
  private meanOf(encoder: GPUCommandEncoder, states: readonly PrefusionState[], L: number): GPUBuffer {
    const n = L * this.hidden;
    if (L > this.maxTextRows) throw new Error(`LLM input: ${L} text rows exceed ${this.maxTextRows}`);
    encoder.copyBufferToBuffer(states[0]!.fusedText, 0, this.mean, 0, n * 4);
    const pass = encoder.beginComputePass({ label: 'mean fused text' });
    for (const s of states.slice(1)) this.add.run(pass, s.fusedText, this.mean, n);
    this.add.runScale(pass, this.mean, n, 1 / states.length);
    pass.end();
    return this.mean;
  }
}
