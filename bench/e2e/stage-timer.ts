// Times bench stages on the GPU: with timestamp-query, an empty compute pass writes a timestamp before and after
// each stage's own submissions (queue order puts the stage's work between them); without it, wall time from the
// stage's first submit to the queue being drained (submit-and-wait). Every stage is waited for either way.

export type TimingMethod = 'timestamp-query' | 'submit-and-wait';

export class StageTimer {
  readonly method: TimingMethod;
  private readonly querySet: GPUQuerySet | null;
  private readonly resolve: GPUBuffer | null;
  private readonly pending: { name: string; index: number; wallMs: number }[] = [];

  constructor(
    private readonly device: GPUDevice,
    private readonly capacity = 256,
  ) {
    this.method = device.features.has('timestamp-query') ? 'timestamp-query' : 'submit-and-wait';
    this.querySet = this.method === 'timestamp-query' ? device.createQuerySet({ type: 'timestamp', count: 2 * capacity }) : null;
    this.resolve = this.querySet ? device.createBuffer({ size: 16 * capacity, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) : null;
  }

  private marker(index: number, end: boolean): void {
    if (!this.querySet) return;
    const cmd = this.device.createCommandEncoder({ label: 'stage timer' });
    const writes: GPUComputePassTimestampWrites = end ? { querySet: this.querySet, endOfPassWriteIndex: index } : { querySet: this.querySet, beginningOfPassWriteIndex: index };
    cmd.beginComputePass({ timestampWrites: writes }).end();
    this.device.queue.submit([cmd.finish()]);
  }

  /** Runs `work` (which submits the stage's GPU work) and waits for the queue; the time is in results(). */
  async time<T>(name: string, work: () => T | Promise<T>): Promise<T> {
    const slot = this.pending.length;
    if (slot >= this.capacity) throw new Error(`StageTimer: more than ${this.capacity} stages`);
    await this.device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    this.marker(2 * slot, false);
    const out = await work();
    this.marker(2 * slot + 1, true);
    await this.device.queue.onSubmittedWorkDone();
    this.pending.push({ name, index: slot, wallMs: performance.now() - t0 });
    return out;
  }

  /** Milliseconds per stage, in the order timed (GPU timestamps where the adapter has them, else wall). */
  async results(): Promise<{ name: string; ms: number; wallMs: number }[]> {
    if (!this.querySet || !this.resolve || this.pending.length === 0) return this.pending.map((p) => ({ name: p.name, ms: p.wallMs, wallMs: p.wallMs }));
    const n = 2 * this.pending.length;
    const read = this.device.createBuffer({ size: n * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const cmd = this.device.createCommandEncoder();
    cmd.resolveQuerySet(this.querySet, 0, n, this.resolve, 0);
    cmd.copyBufferToBuffer(this.resolve, 0, read, 0, n * 8);
    this.device.queue.submit([cmd.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    const ts = new BigUint64Array(read.getMappedRange().slice(0));
    read.destroy();
    return this.pending.map((p) => {
      const ns = Number(ts[2 * p.index + 1]! - ts[2 * p.index]!);
      // A zero or negative span means the adapter's timestamps are not usable here: fall back to wall time.
      return { name: p.name, ms: ns > 0 ? ns / 1e6 : p.wallMs, wallMs: p.wallMs };
    });
  }

  destroy(): void {
    this.querySet?.destroy();
    this.resolve?.destroy();
  }
}
