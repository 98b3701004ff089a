// The UI's handle on the model-store worker (installs and stored models), started on first use.
import * as Comlink from 'comlink';
import type { ModelStoreApi } from '../worker/model-store-api.ts';

let remote: Comlink.Remote<ModelStoreApi> | null = null;

export function modelStoreWorker(): Comlink.Remote<ModelStoreApi> {
  remote ??= Comlink.wrap<ModelStoreApi>(new Worker(new URL('../worker/model-store.worker.ts', import.meta.url), { type: 'module', name: 'llava-mini model store' }));
  return remote;
}
