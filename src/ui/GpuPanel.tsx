import { formatBytes } from '../util/format-bytes.ts';
import { ROUTE_HASH } from './route.ts';
import { useAppStore } from './store.ts';

function yesNo(b: boolean): string {
  return b ? 'yes' : 'no';
}

/** The GPU state as a chip in the top bar (details on the diagnostics view); problems in full below the bar. */
export function GpuStatus() {
  const gpu = useAppStore((s) => s.gpu);
  if (gpu.kind === 'idle' || gpu.kind === 'requesting') {
    return (
      <span className="chip muted" role="status">
        Looking for a GPU…
      </span>
    );
  }
  if (gpu.kind !== 'ready') {
    return (
      <a className="chip chip-bad" href={ROUTE_HASH.diagnostics}>
        No WebGPU
      </a>
    );
  }
  const s = gpu.summary;
  const name = [s.vendor, s.architecture].filter(Boolean).join(' · ') || 'GPU adapter';
  return (
    <a className="chip chip-ok gpu-status" href={ROUTE_HASH.diagnostics} data-testid="gpu-status" title={`WebGPU ready on ${name}, shader-f16 ${yesNo(s.shaderF16)}: diagnostics and self-test`}>
      <span className="dot" aria-hidden />
      <span className="phone-hidden">WebGPU ready</span>
      <span className="xl-only">
        {' '}
        · {name} · shader-f16 {yesNo(s.shaderF16)}
      </span>
    </a>
  );
}

/** Why there is no GPU, or that it was lost, with what to do. Nothing while looking or once the GPU is ready. */
export function GpuProblem() {
  const gpu = useAppStore((s) => s.gpu);
  return (
    <>
      {(gpu.kind === 'unavailable' || gpu.kind === 'failed') && (
        <div className="notice notice-error" role="alert" data-testid="gpu-unavailable">
          {gpu.kind === 'unavailable' && gpu.reason === 'no-webgpu' ? (
            <>
              <h3>WebGPU is not available in this browser</h3>
              <p>LLaVA-Mini runs its neural network on your GPU through WebGPU, and this browser does not offer it (navigator.gpu is missing).</p>
            </>
          ) : (
            <>
              <h3>The GPU could not be started</h3>
              <p>{gpu.message}</p>
            </>
          )}
          <p className="notice-sub">What to do:</p>
          <ul>
            {gpu.help.map((h) => (
              <li key={h}>{h}</li>
            ))}
          </ul>
        </div>
      )}
      {gpu.kind === 'lost' && (
        <div className="notice notice-error" role="alert" data-testid="gpu-lost">
          <h3>The GPU device was lost</h3>
          <p>{gpu.message}</p>
          <button type="button" className="button" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </div>
      )}
    </>
  );
}

/** The diagnostics page's adapter section: identity, every feature and every limit. */
export function GpuPanel() {
  const ready = useAppStore((s) => s.gpu.kind === 'ready');
  return (
    <section className="panel" aria-labelledby="gpu-heading" data-testid="gpu-panel">
      <h2 id="gpu-heading">GPU</h2>
      {ready ? <AdapterDetails /> : <GpuProblem />}
    </section>
  );
}

function AdapterDetails() {
  const gpu = useAppStore((s) => s.gpu);
  if (gpu.kind !== 'ready') return null;
  const s = gpu.summary;
  const rows: [string, string, string][] = [
    ['vendor', 'Vendor', s.vendor || 'unknown'],
    ['architecture', 'Architecture', s.architecture || 'unknown'],
    ['device', 'Device', s.device || '—'],
    ['description', 'Description', s.description || '—'],
    ['shader-f16', 'shader-f16', yesNo(s.shaderF16)],
    ['subgroups', 'Subgroups', s.subgroups ? `yes${s.subgroupMinSize ? ` (size ${s.subgroupMinSize}–${s.subgroupMaxSize})` : ''}` : 'no'],
    ['maxBufferSize', 'maxBufferSize', formatBytes(s.limits.maxBufferSize)],
    ['maxStorageBufferBindingSize', 'maxStorageBufferBindingSize', formatBytes(s.limits.maxStorageBufferBindingSize)],
    ['maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupStorageSize', formatBytes(s.limits.maxComputeWorkgroupStorageSize)],
    ['maxComputeInvocationsPerWorkgroup', 'maxComputeInvocationsPerWorkgroup', String(s.limits.maxComputeInvocationsPerWorkgroup)],
  ];
  return (
    <>
      <p className="adapter-title">
        <span className="badge badge-ok">WebGPU ready</span>{' '}
        <strong>{[s.vendor, s.architecture].filter(Boolean).join(' · ') || 'GPU adapter'}</strong>
        {s.isFallbackAdapter && <span className="muted"> (software fallback adapter: expect it to be slow)</span>}
      </p>
      <dl className="kv" data-testid="adapter-summary">
        {rows.map(([id, label, value]) => (
          <div className="kv-row" key={id} data-testid={`adapter-${id}`}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      <details className="adapter-more" data-testid="adapter-features">
        <summary>Features ({s.features.length})</summary>
        <ul className="chips">
          {s.features.map((f) => (
            <li key={f}>
              <code>{f}</code>
            </li>
          ))}
        </ul>
      </details>
      <details className="adapter-more" data-testid="adapter-limits">
        <summary>Limits ({s.allLimits.length})</summary>
        <dl className="kv">
          {s.allLimits.map(([name, v]) => (
            <div className="kv-row" key={name}>
              <dt>
                <code>{name}</code>
              </dt>
              <dd>{/Size$/.test(name) ? `${formatBytes(v)} (${v})` : String(v)}</dd>
            </div>
          ))}
        </dl>
      </details>
    </>
  );
}
