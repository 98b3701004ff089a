// The UI's handle on the engine worker (one per page, started on first use).
import * as Comlink from 'comlink';
import type { EngineApi } from '../worker/engine-api.ts';

let remote: Comlink.Remote<EngineApi> | null = null;

export function engineWorker(): Comlink.Remote<EngineApi> {
  remote ??= Comlink.wrap<EngineApi>(new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'llava-mini engine' }));
  return remote;
}

/**
 * The callbacks one worker call reports through (progress, stages, streamed text). Each proxied callback has its
 * own message port, and ports are not ordered against each other, so a report can arrive after the call's
 * result: `end()` once the call has settled, and anything later is dropped instead of undoing the result.
 */
export class CallReports {
  private open = true;

  proxy<A extends unknown[]>(report: (...args: A) => void): ((...args: A) => void) & Comlink.ProxyMarked {
    return Comlink.proxy((...args: A) => {
      if (this.open) report(...args);
    });
  }

  end(): void {
    this.open = false;
  }
}

export { Comlink };
