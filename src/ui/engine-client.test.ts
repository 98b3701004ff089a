// withReports: a worker call's callbacks are Comlink proxies, and once the call has settled they fall silent.
import { describe, expect, it } from 'vitest';
import { Comlink, withReports } from './engine-client.ts';

describe('withReports', () => {
  it('passes reports on until the call settles, then drops them', async () => {
    const seen: string[] = [];
    let onDelta!: (a: string, b: number) => void;
    const result = await withReports(async (report) => {
      onDelta = report((a: string, b: number) => seen.push(`${a}${b}`));
      expect((onDelta as typeof onDelta & Comlink.ProxyMarked)[Comlink.proxyMarker]).toBe(true); // travels to the worker as a callback, not a copy
      onDelta('x', 1);
      onDelta('y', 2);
      return 'done';
    });
    onDelta('late', 3);
    expect(result).toBe('done');
    expect(seen).toEqual(['x1', 'y2']);
  });

  it('a failed call drops its late reports too, and the error reaches the caller', async () => {
    const seen: number[] = [];
    let late!: (n: number) => void;
    const failed = withReports(async (report) => {
      late = report((n: number) => seen.push(n));
      late(1);
      throw new Error('lost device');
    });
    await expect(failed).rejects.toThrow('lost device');
    late(2);
    expect(seen).toEqual([1]);
  });

  it('each call has its own: one settled leaves another open', async () => {
    const seen: number[] = [];
    let b!: (n: number) => void;
    let finishSecond!: () => void;
    const second = withReports(async (report) => {
      b = report((n: number) => seen.push(n));
      await new Promise<void>((resolve) => (finishSecond = resolve));
    });
    let a!: (n: number) => void;
    await withReports(async (report) => {
      a = report((n: number) => seen.push(n));
    });
    a(1);
    b(2);
    finishSecond();
    await second;
    expect(seen).toEqual([2]);
  });
});
