// The model-store worker: installs (downloads, conversion) and the stored-model list behind Comlink.
import * as Comlink from 'comlink';
import { ModelStoreHost } from './model-store-host.ts';

Comlink.expose(new ModelStoreHost());
