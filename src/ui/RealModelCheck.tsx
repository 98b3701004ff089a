// Before the multi-GB download of the real model: can this GPU run it, in which format, and how much memory and
// storage it takes (from the released config alone, nothing fetched).
import { useMemo } from 'react';
import { parseLlavaMiniConfig } from '../checkpoint/config.ts';
import { RELEASED_8B_CONFIG_JSON } from '../checkpoint/released-config.ts';
import { checkCapability, weightBytesByPart } from '../engine/capability.ts';
import { formatBytes } from '../util/format-bytes.ts';
import { useAppStore } from './store.ts';

const RELEASED_8B = parseLlavaMiniConfig(RELEASED_8B_CONFIG_JSON);
const CONTEXT_WINDOW = 4096;
const VERDICT: Record<string, string> = { ok: 'can run it', slow: 'can run it, slowly', 'too-small': 'cannot run it' };

export function RealModelCheck() {
  const gpu = useAppStore((s) => s.gpu);
  const report = useMemo(() => {
    if (gpu.kind !== 'ready') return null;
    const deviceMemoryGiB = (navigator as { deviceMemory?: number }).deviceMemory;
    return checkCapability(gpu.summary, RELEASED_8B, { llm: 'webllm', contextWindow: CONTEXT_WINDOW, ...(deviceMemoryGiB ? { deviceMemoryGiB } : {}) });
  }, [gpu]);
  if (!report) return null;
  const stored = Object.values(weightBytesByPart(RELEASED_8B, report.format === 'q4f16_1')).reduce((a, b) => a + b, 0);
  return (
    <details className="real-model" data-testid="real-model-check" data-verdict={report.verdict} data-format={report.format}>
      <summary>
        LLaVA-Mini 8B (Llama-3.1-8B) on this GPU:{' '}
        <span className={`badge ${report.verdict === 'too-small' ? 'badge-fail' : report.verdict === 'ok' ? 'badge-pass' : 'badge-skipped'}`}>{VERDICT[report.verdict]}</span>
      </summary>
      <p>
        Format <code>{report.format}</code>, about {formatBytes(stored)} stored on this device, about {formatBytes(report.totalBytes)} of GPU memory with a{' '}
        {CONTEXT_WINDOW}-token context.
      </p>
      {report.problems.length > 0 && (
        <ul className="notice notice-error" role="alert">
          {report.problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      <ul>
        {report.notes.map((n) => (
          <li key={n}>{n}</li>
        ))}
      </ul>
      <dl className="kv">
        {report.needs.map((n) => (
          <div className="kv-row" key={n.part}>
            <dt>{n.part}</dt>
            <dd>{formatBytes(n.bytes)}</dd>
          </div>
        ))}
      </dl>
    </details>
  );
}
