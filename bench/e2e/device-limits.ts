// The device's limits measured in the bench's own process (baseline (b)): buffer copy bandwidth, and the peak
// FMA rate in f32 (and f16 with shader-f16) from shaders/peak-fma.wgsl. Each is the best of a few runs after a
// warm-up, timed like the stages (StageTimer).
import peakFmaWgsl from '../../shaders/peak-fma.wgsl?raw';
import { bindBuffers, createStorageBuffer } from '../../src/gpu/buffers.ts';
import { foldGrid, recordDispatch, workgroupLimit } from '../../src/gpu/dispatch.ts';
import { computeProgram, specializeWgsl } from '../../src/gpu/pipeline.ts';
import { StageTimer } from './stage-timer.ts';

export interface DeviceLimits {
  /** GB/s of a buffer-to-buffer copy, counting bytes read + bytes written. */
  copyGBps: number;
  peakF32Gflops: number;
  /** null without shader-f16. */
  peakF16Gflops: number | null;
}

export interface LimitOptions {
  /** Bytes copied (default 256 MiB, capped by maxBufferSize). */
  copyBytes?: number;
  /** Invocations of the FMA probe (default 2^20). */
  fmaInvocations?: number;
  reps?: number;
}

async function best(device: GPUDevice, reps: number, run: () => void): Promise<number> {
  const timer = new StageTimer(device, reps + 1);
  for (let i = 0; i <= reps; i++) await timer.time(`rep ${i}`, run);
  const ms = (await timer.results()).slice(1).map((r) => r.ms);
  timer.destroy();
  return Math.min(...ms);
}

async function peakFma(device: GPUDevice, f16: boolean, invocations: number, reps: number): Promise<number> {
  const iters = 256;
  const code = f16 ? specializeWgsl(peakFmaWgsl, { enable: ['f16'], aliases: { T: 'f16' } }) : peakFmaWgsl;
  const program = await computeProgram(device, { name: `peak-fma.wgsl (${f16 ? 'f16' : 'f32'})`, code, bindings: ['storage'], constants: { ITERS: iters } });
  const grid = foldGrid(invocations / 256, workgroupLimit(device), 'peak FMA probe');
  const out = createStorageBuffer(device, grid[0] * grid[1] * 256 * 4, 'peak fma out');
  const bind = bindBuffers(device, program.layout, [out]);
  const ms = await best(device, reps, () => recordDispatch(device, 'peak fma', program, bind, grid));
  out.destroy();
  return (grid[0] * grid[1] * 256 * iters * 8 * 4 * 2) / ms / 1e6;
}

export async function measureDeviceLimits(device: GPUDevice, opts: LimitOptions = {}): Promise<DeviceLimits> {
  const reps = opts.reps ?? 3;
  const bytes = Math.min(opts.copyBytes ?? 256 << 20, device.limits.maxBufferSize) & ~3;
  const src = createStorageBuffer(device, bytes, 'copy src', GPUBufferUsage.COPY_SRC);
  const dst = createStorageBuffer(device, bytes, 'copy dst', GPUBufferUsage.COPY_DST);
  const copyMs = await best(device, reps, () => {
    const cmd = device.createCommandEncoder({ label: 'copy bandwidth' });
    cmd.copyBufferToBuffer(src, 0, dst, 0, bytes);
    device.queue.submit([cmd.finish()]);
  });
  src.destroy();
  dst.destroy();
  const invocations = opts.fmaInvocations ?? 1 << 20;
  const peakF32Gflops = await peakFma(device, false, invocations, reps);
  const peakF16Gflops = device.features.has('shader-f16') ? await peakFma(device, true, invocations, reps) : null;
  return { copyGBps: (2 * bytes) / copyMs / 1e6, peakF32Gflops, peakF16Gflops };
}
