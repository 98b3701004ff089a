import { formatBytes } from '../util/format-bytes.ts';
import { ModelLoader } from './ModelLoader.tsx';
import { useModelStore, type ModelSummary } from './model-store.ts';

function rows(m: ModelSummary): [string, string, string][] {
  return [
    ['weights', 'Weights', `${formatBytes(m.weightBytes)} in ${m.tensorCount} tensors`],
    ['vision', 'Vision tokens', `${m.visionTokens} CLIP rows → ${m.compressedTokens} token${m.compressedTokens === 1 ? '' : 's'} for the LLM`],
    ['llm', 'LLM', `${m.llmLayers} layers, width ${m.llmHidden}, vocabulary ${m.vocab}`],
    ['prefusion', 'Pre-fusion layers', String(m.prefusionLayers)],
  ];
}

export function ModelPanel() {
  const model = useModelStore((s) => s.model);

  return (
    <section className="panel" aria-labelledby="model-heading" data-testid="model-panel">
      <h2 id="model-heading">Model</h2>
      <p className="muted small">The demo model is listed in the top bar; models stored in this browser are on the Downloads view.</p>
      {model.kind === 'checking' && (
        <p className="muted" role="status">
          Looking for a model…
        </p>
      )}
      {model.kind === 'ready' && (
        <>
          <p className="adapter-title">
            <strong data-testid="model-name">{model.model.name}</strong>{' '}
            {model.model.label && (
              <span className="badge badge-skipped" data-testid="model-label">
                {model.model.label}
              </span>
            )}
          </p>
          <dl className="kv" data-testid="model-summary">
            {rows(model.model).map(([id, label, value]) => (
              <div className="kv-row" key={id} data-testid={`model-${id}`}>
                <dt>{label}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </>
      )}
      {(model.kind === 'missing' || model.kind === 'invalid') && (
        <div className="notice notice-error" role="alert" data-testid="model-problem">
          <h3>{model.kind === 'missing' ? 'No demo model' : 'The demo model folder is not a valid LLaVA-Mini checkpoint'}</h3>
          <p>{model.message}</p>
        </div>
      )}
      {/* Loading other models (folders, URLs) and the loaded model's state need no demo model. */}
      <ModelLoader />
    </section>
  );
}
