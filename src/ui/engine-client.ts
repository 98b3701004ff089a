// The UI's handle on the engine worker (one per page, started on first use).
import * as Comlink from 'comlink';
import type { EngineApi } from '../worker/engine-api.ts';

let remote: Comlink.Remote<EngineApi> | null = null;

export function engineWorker(): Comlink.Remote<EngineApi> {
  remote ??= Comlink.wrap<EngineApi>(new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'llava-mini engine' }));
  return remote;
}

/** Makes a callback a worker call reports through (progress, stages, streamed text). */
export type Reporter = <A extends unknown[]>(report: (...args: A) => void) => ((...args: A) => void) & Comlink.ProxyMarked;

/**
 * Runs one worker call whose callbacks `call` makes with the given Reporter. Each proxied callback has its own
 * message port, and ports are not ordered against each other, so a report can arrive after the call's result:
 * once the call has settled, later reports are dropped instead of undoing the result.
 */
export async function withReports<T>(call: (reporter: Reporter) => Promise<T>): Promise<T> {
  let open = true;
  const reporter: Reporter = (report) =>
    Comlink.proxy((...args) => {
      if (open) report(...args);
    });
  try {
    return await call(reporter);
  } finally {
    open = false;
  }
}

export { Comlink };
