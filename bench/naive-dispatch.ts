// The naive baselines' dispatch (shaders/matmul-naive.wgsl, matmul-q4-naive.wgsl): one invocation per output,
// 16x16 workgroups over the [M, N] output grid, one bind group built once. Shared by bench:kernels and bench:peer.
import { bindBuffers } from '../src/gpu/buffers.ts';
import type { ComputeProgram } from '../src/gpu/pipeline.ts';

/** A function that submits one naive [M, N] product with these bindings (uniforms first, as the program lists them). */
export function naiveDispatch(device: GPUDevice, program: ComputeProgram, buffers: GPUBuffer[], M: number, N: number): () => void {
  const bind = bindBuffers(device, program.layout, buffers);
  const gx = Math.ceil(N / 16);
  const gy = Math.ceil(M / 16);
  const maxWg = device.limits.maxComputeWorkgroupsPerDimension;
  if (gx > maxWg) throw new Error(`naive baseline: ${gx} workgroups in x exceed ${maxWg}`);
  return () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(program.pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
    device.queue.submit([enc.finish()]);
  };
}
