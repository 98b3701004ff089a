// Other models into the engine worker (a picked folder, a URL), the precision (f16 only with shader-f16), and the
// loaded model's GPU memory per component. Load / unload and progress are in the top bar.
import { formatBytes } from '../util/format-bytes.ts';
import { PRECISIONS, type Precision } from '../precision/policy.ts';
import type { EngineMemory } from '../engine/engine.ts';
import { blobFilesFromFileList } from '../checkpoint/index.ts';
import { useEffect } from 'react';
import { useEngineStore } from './engine-store.ts';
import { useAppStore } from './store.ts';

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

/** Why a precision cannot be picked on this adapter (null: it can). */
function precisionBlocked(p: Precision, shaderF16: boolean | null): string | null {
  return p === 'f16' && shaderF16 === false ? 'needs shader-f16, which this GPU lacks' : null;
}

export function ModelLoader() {
  const { status, precision, load, setPrecision, modelUrl, setModelUrl } = useEngineStore();
  const gpu = useAppStore((s) => s.gpu);
  const shaderF16 = gpu.kind === 'ready' ? gpu.summary.shaderF16 : null;
  const loading = status.kind === 'loading';
  const blocked = precisionBlocked(precision, shaderF16);
  // A precision saved on another GPU that this one cannot run falls back to the default.
  useEffect(() => {
    if (blocked) setPrecision('q4');
  }, [blocked, setPrecision]);
  const loadFolder = (list: FileList | null) => {
    if (!list?.length) return;
    const folder = blobFilesFromFileList([...list]);
    void load({ name: folder.name, files: [...folder.files] });
  };
  return (
    <div className="model-loader">
      <div className="field">
        <label htmlFor="precision">Precision of a checkpoint&apos;s weights</label>
        <select id="precision" className="select" value={precision} disabled={loading} onChange={(e) => setPrecision(e.target.value as Precision)} aria-describedby="precision-note">
          {PRECISIONS.map((p) => (
            <option key={p} value={p} disabled={precisionBlocked(p, shaderF16) !== null}>
              {p}
              {precisionBlocked(p, shaderF16) ? ` (${precisionBlocked(p, shaderF16)})` : ''}
            </option>
          ))}
        </select>
        <p id="precision-note" className="muted small" data-testid="precision-note">
          q4: int4 LLM and pre-fusion, f16 elsewhere (the default); f32: exact, for checking.{' '}
          {shaderF16 === false ? 'f16 is off: this GPU has no shader-f16 (its f16 weights would be stored as f32 anyway).' : ''}
        </p>
      </div>
      {status.kind !== 'ready' && (
        <>
          <div className="field">
            <label htmlFor="model-folder">A checkpoint folder (pick it, or drop it on the page)</label>
            <input
              id="model-folder"
              className="input"
              type="file"
              disabled={loading}
              data-testid="model-folder"
              aria-label="Checkpoint folder"
              onChange={(e) => loadFolder(e.target.files)}
              {...({ webkitdirectory: '', directory: '' } as object)}
            />
          </div>
          <form
            className="field"
            onSubmit={(e) => {
              e.preventDefault();
              if (modelUrl.trim()) void load({ url: new URL(modelUrl.trim().replace(/\/?$/, '/'), window.location.href).href });
            }}
          >
            <label htmlFor="model-url">Or a folder served over HTTP</label>
            <div className="row">
              <input id="model-url" className="input grow" type="text" inputMode="url" placeholder="https://…/llava-mini/ (folder URL)" aria-label="Model URL" value={modelUrl} onChange={(e) => setModelUrl(e.target.value)} disabled={loading} />
              <button type="submit" className="button" disabled={loading || !modelUrl.trim()}>
                Load from URL
              </button>
            </div>
          </form>
        </>
      )}
      {status.kind === 'ready' && (
        <>
          <h3>GPU memory</h3>
          <p className="muted small">
            {status.model.name} at {status.model.precision} on {status.model.adapter.vendor || 'this GPU'}, LLM on {status.model.llm === 'webllm' ? 'WebLLM' : 'our kernels'}.
          </p>
          <MemoryTable memory={status.model.memory} />
        </>
      )}
    </div>
  );
}
