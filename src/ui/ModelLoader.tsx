// Load the model into the engine worker: precision, progress (bytes, rate, ETA, stage), GPU memory per component.
import { formatBytes } from '../gpu/device.ts';
import { PRECISIONS, type Precision } from '../weights/policy.ts';
import type { EngineMemory } from '../engine/engine.ts';
import { blobFilesFromFileList } from '../checkpoint/index.ts';
import { useEngineStore } from './engine-store.ts';
import { ProgressLine } from './ProgressLine.tsx';

function MemoryTable({ memory }: { memory: EngineMemory }) {
  const rows: [string, number][] = [
    ...Object.entries(memory.weights).map(([part, b]) => [`${part} weights`, b] as [string, number]),
    ['image side buffers', memory.imageSide],
    ['pre-fusion buffers', memory.prefusion],
    ['LLM KV cache and buffers', memory.llm],
    ['encoded images', memory.imageStates ?? 0],
  ];
  return (
    <dl className="kv" data-testid="engine-memory">
      {rows.map(([k, v]) => (
        <div className="kv-row" key={k}>
          <dt>{k}</dt>
          <dd>{formatBytes(v)}</dd>
        </div>
      ))}
      <div className="kv-row">
        <dt>total on the GPU</dt>
        <dd data-testid="engine-memory-total" data-bytes={memory.total}>
          {formatBytes(memory.total)}
        </dd>
      </div>
    </dl>
  );
}

export function ModelLoader({ demoUrl }: { demoUrl: string | null }) {
  const { status, precision, load, unload, setPrecision, modelUrl, setModelUrl } = useEngineStore();
  const loading = status.kind === 'loading';
  const loadFolder = (list: FileList | null) => {
    if (!list?.length) return;
    const folder = blobFilesFromFileList([...list]);
    void load({ name: folder.name, files: [...folder.files] });
  };
  return (
    <div className="model-loader">
      <div className="row">
        <label>
          Precision{' '}
          <select value={precision} disabled={loading} onChange={(e) => setPrecision(e.target.value as Precision)} aria-label="Weight precision">
            {PRECISIONS.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
        {status.kind === 'ready' ? (
          <button type="button" onClick={() => void unload()}>
            Unload
          </button>
        ) : (
          demoUrl && (
            <button type="button" disabled={loading} onClick={() => void load({ url: demoUrl })} data-testid="load-model">
              {loading ? 'Loading…' : 'Load demo model'}
            </button>
          )
        )}
      </div>
      {status.kind !== 'ready' && (
        <div className="row">
          <label>
            Or a checkpoint folder (pick it, or drop it on the page){' '}
            <input
              type="file"
              disabled={loading}
              data-testid="model-folder"
              aria-label="Checkpoint folder"
              onChange={(e) => loadFolder(e.target.files)}
              {...({ webkitdirectory: '', directory: '' } as object)}
            />
          </label>
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault();
              if (modelUrl.trim()) void load({ url: new URL(modelUrl.trim().replace(/\/?$/, '/'), window.location.href).href });
            }}
          >
            <input type="text" inputMode="url" placeholder="https://…/llava-mini/ (folder URL)" aria-label="Model URL" value={modelUrl} onChange={(e) => setModelUrl(e.target.value)} disabled={loading} />
            <button type="submit" disabled={loading || !modelUrl.trim()}>
              Load from URL
            </button>
          </form>
        </div>
      )}
      {status.kind === 'loading' && <LoadProgressBar status={status} />}
      {status.kind === 'ready' && (
        <>
          <p role="status" data-testid="engine-ready">
            Ready: {status.model.name} at {status.model.precision} on {status.model.adapter.vendor || 'this GPU'}, LLM on{' '}
            {status.model.llm === 'webllm' ? 'WebLLM' : 'our kernels'}.
          </p>
          <MemoryTable memory={status.model.memory} />
        </>
      )}
      {status.kind === 'error' && (
        <p className="notice notice-error" role="alert" data-testid="engine-error">
          {status.message}
        </p>
      )}
    </div>
  );
}

function LoadProgressBar({ status }: { status: Extract<ReturnType<typeof useEngineStore.getState>['status'], { kind: 'loading' }> }) {
  const { loadedBytes, totalBytes, stage, tensor } = status.progress;
  if (stage === 'llm') {
    // WebLLM reports a fraction and a sentence (library download / compile, weights from its cache).
    return (
      <div role="status" data-testid="load-progress">
        <progress max={totalBytes || 1} value={loadedBytes} aria-label="Model loading progress" />
        <p className="muted">WebLLM: {tensor}</p>
      </div>
    );
  }
  const what = stage === 'opening' ? 'Opening the checkpoint…' : stage === 'kernels' ? 'Building GPU kernels…' : `Uploading ${tensor ?? ''}`;
  return <ProgressLine label="Model loading progress" what={what} done={loadedBytes} total={totalBytes} startedAt={status.startedAt} testId="load-progress" />;
}
