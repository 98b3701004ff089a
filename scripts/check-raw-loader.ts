// Checks the plain-Node path end to end (used by src/gpu/raw-loader.test.ts, also runnable by hand):
//   node --import ./scripts/node-register.mjs scripts/check-raw-loader.ts [--gpu]
// Prints one JSON line: the length of shaders/matmul.wgsl as imported through `?raw`, and with --gpu the max
// error of a small linear layer run on this machine's WebGPU (Dawn) against the CPU reference.
import matmulWgsl from '../shaders/matmul.wgsl?raw';

const out: Record<string, unknown> = { matmulLength: matmulWgsl.length, firstLine: matmulWgsl.split('\n')[0] };
if (process.argv.includes('--gpu')) {
  const { createNodeGpu } = await import('../src/node/gpu.ts');
  const { linearOnGpu } = await import('../src/gpu/kernels/linear.ts');
  const { linear } = await import('../src/reference/linear.ts');
  const { compareArrays } = await import('../src/gpu/compare.ts');
  const ctx = await createNodeGpu();
  const [M, K, N] = [5, 19, 70];
  const x = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
  const w = Float32Array.from({ length: N * K }, (_, i) => Math.cos(i * 0.7) * 0.3);
  const b = Float32Array.from({ length: N }, (_, i) => i * 0.01);
  const y = await linearOnGpu(ctx.device, x, M, K, w, N, b);
  const c = compareArrays(y, linear(x, M, K, w, N, b), { atol: 1e-5, rtol: 1e-5 });
  out.adapter = `${ctx.summary.vendor}/${ctx.summary.architecture}`;
  out.linearOk = c.ok;
  out.linearMaxAbs = c.maxAbs;
  ctx.device.destroy();
}
console.log(JSON.stringify(out));
