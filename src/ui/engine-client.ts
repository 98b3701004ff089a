// The UI's handle on the engine worker (one per page, started on first use).
import * as Comlink from 'comlink';
import type { EngineApi } from '../worker/engine-api.ts';

let remote: Comlink.Remote<EngineApi> | null = null;

export function engineWorker(): Comlink.Remote<EngineApi> {
  remote ??= Comlink.wrap<EngineApi>(new Worker(new URL('../worker/engine.worker.ts', import.meta.url), { type: 'module', name: 'llava-mini engine' }));
  return remote;
}

export { Comlink };
