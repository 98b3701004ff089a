// The token embedding table (model.embed_tokens.weight) as uploaded by GpuWeights, gathered with EmbeddingKernel:
// the GpuTensor's row blocks (f32 / f16 / int4 with scales) are the kernel's table blocks as they are.
import { EmbeddingKernel, type EmbeddingRunOptions, type EmbeddingTable } from '../gpu/kernels/embedding.ts';
import type { GpuTarget } from '../gpu/kernels/linear.ts';
import type { GpuTensor, GpuWeights } from '../weights/gpu-weights.ts';

export const EMBED_TOKENS = 'model.embed_tokens.weight';

/** An EmbeddingTable view of an uploaded [vocab, H] tensor (no copy). */
export function embeddingTableOf(t: GpuTensor): EmbeddingTable {
  return {
    format: t.storage,
    vocab: t.rows,
    hidden: t.cols,
    blocks: t.blocks.map((b) => (b.scales ? { rows: b.rows, qWeight: b.data, qScale: b.scales } : { rows: b.rows, table: b.data })),
  };
}

export class TokenEmbedding {
  private constructor(
    readonly tensor: GpuTensor,
    private readonly table: EmbeddingTable,
    private readonly kernel: EmbeddingKernel,
  ) {}

  static async create(weights: GpuWeights): Promise<TokenEmbedding> {
    const tensor = await weights.load(EMBED_TOKENS);
    return new TokenEmbedding(tensor, embeddingTableOf(tensor), await EmbeddingKernel.create(weights.device, tensor.storage));
  }

  /** Records out[outRowOffset + r] = embed_tokens[ids[idsOffset + r]] for r < rows (ids: i32; negative ids read row 0). */
  record(target: GpuTarget, ids: GPUBuffer, out: GPUBuffer, rows: number, opts: EmbeddingRunOptions = {}): void {
    this.kernel.run(target, ids, this.table, out, rows, opts);
  }

  destroy(): void {
    this.kernel.destroy();
  }
}
