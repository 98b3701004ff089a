// The engine worker: the engine core behind Comlink, so inference never blocks the UI thread.
import * as Comlink from 'comlink';
import { EngineHost } from './engine-host.ts';

const host = new EngineHost(navigator.gpu);
Comlink.expose(host);
// The e2e tests reach the engine's GPUDevice through this (Playwright evaluates in the worker) to destroy it
// mid-conversation and check the recovery; nothing in the app uses it.
Object.assign(self, { engineHostForTests: host });
