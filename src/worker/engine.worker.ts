// The engine worker: the engine core behind Comlink, so inference never blocks the UI thread.
import * as Comlink from 'comlink';
import { EngineHost } from './engine-host.ts';

Comlink.expose(new EngineHost(navigator.gpu));
