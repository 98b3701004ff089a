// CallReports: a worker call's callbacks are Comlink proxies, and once the call has settled they fall silent.
import { describe, expect, it } from 'vitest';
import { CallReports, Comlink } from './engine-client.ts';

describe('CallReports', () => {
  it('passes reports on until end(), then drops them', () => {
    const seen: string[] = [];
    const reports = new CallReports();
    const onDelta = reports.proxy((a: string, b: number) => seen.push(`${a}${b}`));
    expect(onDelta[Comlink.proxyMarker]).toBe(true); // travels to the worker as a callback, not a copy
    onDelta('x', 1);
    onDelta('y', 2);
    reports.end();
    onDelta('late', 3);
    expect(seen).toEqual(['x1', 'y2']);
  });

  it('each call has its own: ending one leaves another open', () => {
    const seen: number[] = [];
    const first = new CallReports();
    const second = new CallReports();
    const a = first.proxy((n: number) => seen.push(n));
    const b = second.proxy((n: number) => seen.push(n));
    first.end();
    a(1);
    b(2);
    expect(seen).toEqual([2]);
  });
});
