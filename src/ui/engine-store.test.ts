// The engine store against a scripted worker: load progress arrives on its own message port (a Comlink proxy), so
// a report may come after the load's result or after a newer load began; neither may change what the user sees.
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { LoadedModel, LoadProgress, ModelSource } from '../worker/engine-api.ts';

interface PendingLoad {
  source: ModelSource;
  report(p: LoadProgress): void;
  finish(model: LoadedModel): void;
  fail(e: Error): void;
}

const pending: PendingLoad[] = [];

vi.mock('./engine-client.ts', async (importOriginal) => ({
  ...(await importOriginal<typeof import('./engine-client.ts')>()),
  engineWorker: () => ({
    watchDeviceLoss: () => Promise.resolve(),
    unload: () => Promise.resolve(),
    load: (source: ModelSource, _precision: string, onProgress: (p: LoadProgress) => void) =>
      new Promise<LoadedModel>((resolve, reject) => pending.push({ source, report: onProgress, finish: resolve, fail: reject })),
  }),
}));

// The settings persist in window.localStorage, which Node lacks.
const saved = new Map<string, string>();
vi.stubGlobal('window', { localStorage: { getItem: (k: string) => saved.get(k) ?? null, setItem: (k: string, v: string) => saved.set(k, v), removeItem: (k: string) => saved.delete(k) } });
const { useEngineStore } = await import('./engine-store.ts');

const model = (name: string) =>
  ({ name, precision: 'q4', llm: 'native', adapter: { isFallbackAdapter: false }, memory: {}, visionTokenRows: 1 }) as unknown as LoadedModel;
const kernels = (built: number): LoadProgress => ({ stage: 'kernels', loadedBytes: 10, totalBytes: 10, pipelines: { requested: 52, built } });
const status = () => useEngineStore.getState().status;

describe('engine store: load progress and results', () => {
  beforeEach(() => {
    pending.length = 0;
    useEngineStore.setState({ status: { kind: 'idle' } });
  });

  it('shows progress while the load runs, and stays ready when the last report arrives after the result', async () => {
    const loading = useEngineStore.getState().load({ url: '/models/demo/' });
    pending[0]!.report(kernels(51));
    expect(status()).toMatchObject({ kind: 'loading', progress: { stage: 'kernels', pipelines: { built: 51 } } });
    pending[0]!.finish(model('demo'));
    await loading;
    pending[0]!.report(kernels(52)); // sent before the result, delivered after it
    expect(status()).toMatchObject({ kind: 'ready', model: { name: 'demo' } });
  });

  it('a load replaced by a newer one changes nothing when its reports, result or error arrive', async () => {
    const store = useEngineStore.getState();
    const first = store.load({ url: '/models/first/' });
    const second = store.load({ url: '/models/second/' });
    const [a, b] = pending;
    a!.report(kernels(3));
    expect(status()).toMatchObject({ kind: 'loading', progress: { stage: 'opening' } });
    a!.finish(model('first'));
    await first;
    expect(status().kind).toBe('loading');
    b!.finish(model('second'));
    await second;
    expect(status()).toMatchObject({ kind: 'ready', model: { name: 'second' } });

    const third = store.load({ url: '/models/third/' });
    const fourth = store.load({ url: '/models/fourth/' });
    pending[2]!.fail(new Error('replaced'));
    await third;
    expect(status().kind).toBe('loading');
    pending[3]!.fail(new Error('no config.json'));
    await fourth;
    expect(status()).toEqual({ kind: 'error', message: 'no config.json' });
  });
});
