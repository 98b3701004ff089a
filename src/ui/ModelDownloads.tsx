// The real model onto this machine: from Hugging Face (converted here as it streams in), from a converted folder at
// a URL, or from a local folder; progress with rate and ETA; stored models with their size, load / resume / delete.
import { useEffect, useState } from 'react';
import { blobFilesFromFileList } from '../checkpoint/index.ts';
import { mlcQuantizationFor } from '../format/mlc.ts';
import { formatBytes } from '../util/format-bytes.ts';
import type { LlmChoice } from '../worker/engine-api.ts';
import type { InstallRequest, StoredModel } from '../worker/model-store-api.ts';
import { Trash2 } from 'lucide-react';
import { ConfirmDelete } from './ConfirmDelete.tsx';
import { storedModelSource, useDownloadsStore, type SourceKind } from './downloads-store.ts';
import { useEngineStore } from './engine-store.ts';
import { ProgressLine } from './ProgressLine.tsx';
import { RealModelCheck } from './RealModelCheck.tsx';
import { useAppStore } from './store.ts';

const SOURCES: [SourceKind, string][] = [
  ['hub', 'Hugging Face'],
  ['url', 'Converted folder at a URL'],
  ['folder', 'Local folder'],
];

const STAGE: Record<string, string> = { checking: 'Checking the checkpoint and the free storage…', converting: 'Converting', downloading: 'Downloading', done: 'Finishing…' };

function StoredRow({ m }: { m: StoredModel }) {
  const { remove, start, install, llmChoice, webllmLib } = useDownloadsStore();
  const { load, status } = useEngineStore();
  const busy = install.kind === 'running' || status.kind === 'loading';
  return (
    <li className="stored-model" data-testid="stored-model" data-state={m.state} data-id={m.id} data-webllm={m.state === 'complete' ? String(m.webllm) : undefined}>
      <div className="stored-model-what">
        <strong>{m.name}</strong> <code>{m.format}</code> {formatBytes(m.bytes)} <span className="muted small">{m.source}</span>{' '}
        {m.state === 'complete' && m.webllm && (
          <span className="badge badge-pass" title="The LLM is in WebLLM's own cache: WebLLM loads it with no network">
            WebLLM cache ready
          </span>
        )}
        {m.state !== 'complete' && <span className="badge badge-skipped">unfinished</span>}
      </div>
      <div className="stored-model-actions">
        {m.state === 'complete' ? (
          <button type="button" disabled={busy} onClick={() => void load(storedModelSource(m, llmChoice, webllmLib))}>
            Load
          </button>
        ) : m.resume ? (
          <button type="button" disabled={busy} onClick={() => void start(m.resume!, m.format)}>
            Resume
          </button>
        ) : (
          <span className="muted small">pick the folder again to resume</span>
        )}
        <ConfirmDelete
          title={`Delete ${m.name}?`}
          detail={
            m.state === 'complete'
              ? `Its ${formatBytes(m.bytes)} leave this browser's storage; using it again means downloading it again.`
              : `The ${formatBytes(m.bytes)} stored so far leave this browser's storage; the download would start over.`
          }
          onConfirm={() => void remove(m.id)}
          trigger={
            <button type="button" className="button button-quiet button-danger-text" disabled={busy} aria-label={`Delete ${m.name}`}>
              <Trash2 aria-hidden size={15} /> Delete
            </button>
          }
        />
      </div>
    </li>
  );
}

export function ModelDownloads() {
  const store = useDownloadsStore();
  const gpu = useAppStore((s) => s.gpu);
  const [folder, setFolder] = useState<FileList | null>(null);
  const [clipFolder, setClipFolder] = useState<FileList | null>(null);
  const { refresh } = store;
  useEffect(() => {
    void refresh();
  }, [refresh]);
  const format = mlcQuantizationFor(gpu.kind === 'ready' && gpu.summary.shaderF16);
  const running = store.install.kind === 'running';

  const request = (): InstallRequest | null => {
    if (store.sourceKind === 'hub') return store.repo.trim() ? { kind: 'hub', hubUrl: store.hubUrl.trim(), repo: store.repo.trim() } : null;
    if (store.sourceKind === 'url') return store.convertedUrl.trim() ? { kind: 'url', url: new URL(store.convertedUrl.trim(), window.location.href).href } : null;
    if (!folder?.length) return null;
    const picked = blobFilesFromFileList([...folder]);
    const clip = clipFolder?.length ? [...blobFilesFromFileList([...clipFolder]).files] : null;
    return { kind: 'folder', name: picked.name, files: [...picked.files], ...(clip ? { clip } : {}) };
  };

  return (
    <section className="panel" aria-labelledby="downloads-heading" data-testid="downloads">
      <h2 id="downloads-heading">The real model</h2>
      <RealModelCheck />
      <form
        className="download-form"
        onSubmit={(e) => {
          e.preventDefault();
          const r = request();
          if (r) void store.start(r, format);
        }}
      >
        <fieldset disabled={running || gpu.kind !== 'ready'}>
          <legend>Get it from</legend>
          <div className="row">
            {SOURCES.map(([kind, text]) => (
              <label key={kind}>
                <input type="radio" name="source" checked={store.sourceKind === kind} onChange={() => store.setSource({ sourceKind: kind })} /> {text}
              </label>
            ))}
          </div>
          {store.sourceKind === 'hub' && (
            <div className="row">
              <label>
                Hub <input aria-label="Hub URL" value={store.hubUrl} onChange={(e) => store.setSource({ hubUrl: e.target.value })} />
              </label>
              <label>
                Repository <input aria-label="Repository" value={store.repo} onChange={(e) => store.setSource({ repo: e.target.value })} />
              </label>
            </div>
          )}
          {store.sourceKind === 'url' && (
            <label>
              Folder URL <input aria-label="Converted model URL" inputMode="url" placeholder="https://…/llava-mini-converted/" value={store.convertedUrl} onChange={(e) => store.setSource({ convertedUrl: e.target.value })} />
            </label>
          )}
          {store.sourceKind === 'folder' && (
            <div className="row">
              <label>
                Checkpoint or converted folder{' '}
                <input type="file" aria-label="Model folder to install" onChange={(e) => setFolder(e.target.files)} {...({ webkitdirectory: '', directory: '' } as object)} />
              </label>
              <label>
                CLIP folder, if the checkpoint has no vision tower{' '}
                <input type="file" aria-label="CLIP folder" onChange={(e) => setClipFolder(e.target.files)} {...({ webkitdirectory: '', directory: '' } as object)} />
              </label>
            </div>
          )}
          <p className="muted small">
            Stored in this browser as <code>{format}</code>
            {store.sourceKind === 'hub' ? ': the checkpoint is converted as it streams in and only the result is kept.' : '.'} Works offline afterwards.
          </p>
          <button type="submit" data-testid="install">
            {store.sourceKind === 'url' ? 'Download' : 'Download and convert'}
          </button>
        </fieldset>
      </form>
      {store.install.kind === 'running' && (
        <div data-testid="install-status" data-stage={store.install.progress.stage}>
          <ProgressLine
            label="Model download progress"
            what={[`${store.install.label}:`, STAGE[store.install.progress.stage], store.install.progress.item].filter(Boolean).join(' ')}
            done={store.install.progress.bytesDone}
            total={store.install.progress.bytesTotal}
            startedAt={store.install.startedAt}
            startBytes={store.install.startBytes}
            testId="install-progress"
          />
          <button type="button" onClick={store.cancel}>
            Cancel
          </button>
        </div>
      )}
      {store.install.kind === 'error' && (
        <p className="notice notice-error" role="alert" data-testid="install-error">
          {store.install.message}
        </p>
      )}
      <h3>Stored models</h3>
      <label>
        LLM engine{' '}
        <select aria-label="LLM engine" value={store.llmChoice} onChange={(e) => store.setSource({ llmChoice: e.target.value as LlmChoice })}>
          <option value="auto">automatic (WebLLM for the 8B model)</option>
          <option value="webllm">WebLLM</option>
          <option value="native">native (our WGSL kernels)</option>
        </select>
      </label>
      {store.llmChoice === 'webllm' && (
        <label>
          {' '}
          Model library{' '}
          <input aria-label="WebLLM model library URL" placeholder="stock Llama-3.1-8B library" value={store.webllmLib} onChange={(e) => store.setSource({ webllmLib: e.target.value })} />
        </label>
      )}
      {store.models.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <ul className="stored-models" data-testid="stored-models">
          {store.models.map((m) => (
            <StoredRow key={m.id} m={m} />
          ))}
        </ul>
      )}
      {store.storage && (
        <p className="muted small" data-testid="storage-status">
          This site uses {formatBytes(store.storage.usage)} of {formatBytes(store.storage.quota)} the browser allows{store.storage.persisted ? ' (persistent)' : ''}.
        </p>
      )}
    </section>
  );
}
