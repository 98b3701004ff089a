// The top bar: the sidebar toggle, the model picker with the model's state (load progress, ready, error) and the
// GPU status. Everything else about models lives on the Model and Downloads views.
import { LoaderCircle, Menu, PanelLeftClose, Power } from 'lucide-react';
import { useEffect, useState } from 'react';
import { storedModelSource, useDownloadsStore } from './downloads-store.ts';
import { useEngineStore, type EngineStatus } from './engine-store.ts';
import { GpuStatus } from './GpuPanel.tsx';
import { useModelStore } from './model-store.ts';
import { formatBytes } from '../util/format-bytes.ts';

/** What the load is doing, with counts that are measured (bytes, pipelines), never a guessed time. */
export function loadProgressText(status: Extract<EngineStatus, { kind: 'loading' }>): { text: string; fraction: number | null } {
  const { stage, loadedBytes, totalBytes, tensor, pipelines } = status.progress;
  if (stage === 'opening') return { text: 'Opening the model…', fraction: null };
  if (stage === 'llm') return { text: `WebLLM: ${tensor ?? ''}`, fraction: loadedBytes / (totalBytes || 1) };
  if (stage === 'kernels') {
    const p = pipelines ?? { requested: 0, built: 0 };
    return { text: `Building GPU kernels: ${p.built} of ${p.requested} pipelines built so far`, fraction: p.requested ? p.built / p.requested : null };
  }
  // A time left only once the upload rate has been measured for a while (never from the time spent opening).
  const measuredS = (performance.now() - status.stage.startedAt) / 1000;
  const moved = loadedBytes - status.stage.startBytes;
  const eta = measuredS >= 3 && moved > totalBytes * 0.05 ? (totalBytes - loadedBytes) / (moved / measuredS) : 0;
  return {
    text: `Uploading weights: ${formatBytes(loadedBytes)} of ${formatBytes(totalBytes)}${eta > 1 ? `, about ${Math.ceil(eta)} s left` : ''}${tensor ? ` (${tensor})` : ''}`,
    fraction: loadedBytes / (totalBytes || 1),
  };
}

function ModelPicker() {
  const { status, load, unload } = useEngineStore();
  const demo = useModelStore((s) => s.model);
  const stored = useDownloadsStore((s) => s.models).filter((m) => m.state === 'complete');
  const llmChoice = useDownloadsStore((s) => s.llmChoice);
  const webllmLib = useDownloadsStore((s) => s.webllmLib);
  const [choice, setChoice] = useState('demo');
  const [, tick] = useState(0);
  useEffect(() => {
    void useModelStore.getState().check();
    void useDownloadsStore.getState().refresh();
  }, []);
  // Loading: redraw each second so rates stay current between progress reports.
  useEffect(() => {
    if (status.kind !== 'loading') return;
    const t = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [status.kind]);

  const loadChoice = () => {
    if (choice === 'demo' && demo.kind === 'ready') void load({ url: demo.model.url, ...(demo.model.files ? { files: demo.model.files } : {}) });
    const m = stored.find((x) => `stored:${x.id}` === choice);
    if (m) void load(storedModelSource(m, llmChoice, webllmLib));
  };

  if (status.kind === 'ready') {
    const m = status.model;
    return (
      <div className="picker">
        <span className="chip chip-ok model-state" role="status" data-testid="engine-ready" title={`${m.name} at ${m.precision}, LLM on ${m.llm === 'webllm' ? 'WebLLM' : 'our kernels'}`}>
          <span className="dot" aria-hidden /> <span className="model-state-name">{m.name}</span>
          <span className="wide-only">
            {' '}
            · {m.precision} · LLM on {m.llm === 'webllm' ? 'WebLLM' : 'our kernels'}
          </span>
        </span>
        <button type="button" className="button button-quiet" onClick={() => void unload()} aria-label="Unload" title="Unload the model (frees the GPU)">
          <Power aria-hidden size={16} />
          <span className="wide-only">Unload</span>
        </button>
      </div>
    );
  }
  if (status.kind === 'loading') {
    const { text, fraction } = loadProgressText(status);
    return (
      <div className="picker load-progress" role="status" data-testid="load-progress" data-stage={status.progress.stage}>
        <LoaderCircle aria-hidden size={16} className="spin" />
        <div className="load-progress-body">
          <progress max={1} value={fraction ?? undefined} aria-label="Model loading progress" />
          <span className="small load-progress-text">{text}</span>
        </div>
      </div>
    );
  }
  return (
    <div className="picker">
      <select className="select" aria-label="Model to load" value={choice} onChange={(e) => setChoice(e.target.value)}>
        {demo.kind === 'ready' && <option value="demo">{demo.model.name}</option>}
        {stored.map((m) => (
          <option key={m.id} value={`stored:${m.id}`}>
            {m.name} ({m.format})
          </option>
        ))}
        {demo.kind !== 'ready' && stored.length === 0 && <option value="demo">No model yet</option>}
      </select>
      <button type="button" className="button button-primary" onClick={loadChoice} disabled={demo.kind !== 'ready' && stored.length === 0} data-testid="load-model">
        Load
      </button>
      {status.kind === 'error' && (
        <span className="chip chip-bad model-error" role="alert" data-testid="engine-error" title={status.message}>
          {status.message}
        </span>
      )}
    </div>
  );
}

export function TopBar({ onMenu, sidebarOpen }: { onMenu(): void; sidebarOpen: boolean }) {
  return (
    <header className="topbar">
      <button type="button" className="icon-button" onClick={onMenu} aria-label={sidebarOpen ? 'Hide the sidebar' : 'Show the sidebar'} aria-expanded={sidebarOpen}>
        {sidebarOpen ? <PanelLeftClose aria-hidden size={20} /> : <Menu aria-hidden size={20} />}
      </button>
      <h1 className="brand">
        LLaVA-Mini<span className="xl-only tagline"> — runs on your GPU, in your browser</span>
      </h1>
      <ModelPicker />
      <GpuStatus />
    </header>
  );
}
