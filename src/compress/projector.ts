// The multimodal projector on the GPU (spec section 3), mirroring src/reference/projector.ts:
//   mlp2x_gelu: y = W2 gelu(W0 x + b0) + b2 (exact erf GELU); linear: y = W0 x + b0.  x [rows, mm] -> y [rows, H].
import type { LlavaMiniConfig } from '../checkpoint/types.ts';
import { createStorageBuffer, totalBytes } from '../gpu/buffers.ts';
import { recordCompute, type GpuTarget } from '../gpu/dispatch.ts';
import { LinearKernels, loadF32Tensor } from '../gpu/gpu-linear.ts';
import { ActivationKernel } from '../gpu/kernels/elementwise.ts';
import type { GpuTensor, GpuWeights } from '../weights/gpu-weights.ts';

interface Layer {
  w: GpuTensor;
  b: GpuTensor;
}

export class ProjectorGpu {
  private constructor(
    readonly config: LlavaMiniConfig,
    /** Largest row count one run takes (the hidden scratch is sized for it). */
    readonly maxRows: number,
    private readonly first: Layer,
    /** mlp2x_gelu only: the second linear, the GELU and the hidden [maxRows, H] scratch. */
    private readonly mlp: { second: Layer; gelu: ActivationKernel; hidden: GPUBuffer } | null,
    private readonly linear: LinearKernels,
    private readonly owned: GPUBuffer[],
  ) {}

  /** Loads the projector for runs of up to maxRows rows; `linear` may be shared (destroy() leaves it alone). */
  static async load(weights: GpuWeights, linear: LinearKernels, maxRows: number, rowCounts: readonly number[] = [maxRows]): Promise<ProjectorGpu> {
    const config = weights.source.config;
    const owned: GPUBuffer[] = [];
    const layer = async (prefix: string): Promise<Layer> => ({ w: await weights.load(`${prefix}.weight`), b: await loadF32Tensor(weights, `${prefix}.bias`, owned) });
    if (config.projectorType === 'linear') {
      const first = await layer('model.mm_projector');
      await linear.prepare([first.w], rowCounts);
      return new ProjectorGpu(config, maxRows, first, null, linear, owned);
    }
    const first = await layer('model.mm_projector.0');
    const second = await layer('model.mm_projector.2');
    const gelu = new ActivationKernel(weights.device, 'gelu');
    await Promise.all([linear.prepare([first.w, second.w], rowCounts), gelu.init()]);
    const hidden = createStorageBuffer(weights.device, maxRows * first.w.rows * 4, `projector hidden [${maxRows}, ${first.w.rows}]`);
    owned.push(hidden);
    return new ProjectorGpu(config, maxRows, first, { second, gelu, hidden }, linear, owned);
  }

  /** Records y [rows, H] = projector(x [rows, mm]). x and y are different buffers. */
  record(target: GpuTarget, x: GPUBuffer, rows: number, y: GPUBuffer): void {
    if (rows > this.maxRows) throw new Error(`projector: ${rows} rows, loaded for at most ${this.maxRows}`);
    const { first, mlp, linear } = this;
    recordCompute(target, 'projector', (pass) => {
      if (!mlp) {
        linear.record(pass, x, first.w, first.b, y, rows);
        return;
      }
      linear.record(pass, x, first.w, first.b, mlp.hidden, rows);
      mlp.gelu.run(pass, mlp.hidden, mlp.hidden, rows * first.w.rows);
      linear.record(pass, mlp.hidden, mlp.second.w, mlp.second.b, y, rows);
    });
  }

  /** GPU bytes this stage owns: activations and f32 copies of its small tensors (weights count in GpuWeights). */
  bytes(): number {
    return totalBytes(this.owned);
  }

  destroy(): void {
    this.mlp?.gelu.destroy();
    for (const b of this.owned) b.destroy();
    this.owned.length = 0;
  }
}
