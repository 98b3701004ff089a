import { SELF_TEST_CASES, SELF_TEST_GROUPS, type SelfTestResult } from '../gpu/selftest.ts';
import { useAppStore } from './store.ts';

const STATUS_LABEL: Record<SelfTestResult['status'], string> = { pass: 'PASS', fail: 'FAIL', skipped: 'SKIPPED', error: 'ERROR' };

function fmtErr(v: number | undefined): string {
  return v === undefined ? '—' : v === 0 ? '0' : v.toExponential(2);
}

export function Diagnostics() {
  const ready = useAppStore((s) => s.gpu.kind === 'ready');
  const { running, results, finishedAt } = useAppStore((s) => s.selfTest);
  const runSelfTest = useAppStore((s) => s.runSelfTest);
  const all = Object.values(results);
  const count = (st: SelfTestResult['status']) => all.filter((r) => r.status === st).length;

  return (
    <section className="panel" aria-labelledby="diag-heading" data-testid="diagnostics">
      <div className="panel-head">
        <h2 id="diag-heading">Kernel self-test</h2>
        <button type="button" className="button" onClick={() => void runSelfTest()} disabled={!ready || running} aria-busy={running}>
          {running ? 'Running…' : 'Run GPU self-test'}
        </button>
      </div>
      <p className="muted">Runs each GPU kernel on random data and compares it with the CPU reference implementation.</p>
      <p className="summary" role="status" aria-live="polite" data-testid="selftest-summary">
        {running
          ? `Running ${all.length + 1} of ${SELF_TEST_CASES.length}…`
          : finishedAt
            ? `${count('pass')} passed, ${count('fail') + count('error')} failed, ${count('skipped')} skipped`
            : ready
              ? 'Not run yet.'
              : 'Needs a working WebGPU adapter.'}
      </p>
      <div className="table-wrap">
        <table className="results">
          <caption className="visually-hidden">GPU self-test results</caption>
          <thead>
            <tr>
              <th scope="col">Kernel</th>
              <th scope="col">Result</th>
              <th scope="col">Max abs error</th>
              <th scope="col">Max rel error</th>
              <th scope="col">GPU time</th>
            </tr>
          </thead>
          {SELF_TEST_GROUPS.map((g) => (
            <tbody key={g.family}>
              <tr className="group-row">
                <th scope="colgroup" colSpan={5}>
                  {g.family}
                </th>
              </tr>
              {g.cases.map((c) => {
                const r = results[c.id];
                return (
                  <tr key={c.id} data-testid={`selftest-${c.id}`} data-status={r?.status ?? 'pending'} data-requires={c.requires?.join(' ') || undefined}>
                    <th scope="row">
                      <div className="case-name">{c.name}</div>
                      <div className="case-desc">{c.description}</div>
                      {r && r.status !== 'pass' && <div className={`case-detail status-${r.status}`}>{r.detail}</div>}
                    </th>
                    <td>
                      {r ? (
                        <span className={`badge badge-${r.status}`} title={r.detail}>
                          {STATUS_LABEL[r.status]}
                        </span>
                      ) : (
                        <span className="muted">{running ? 'waiting' : '—'}</span>
                      )}
                    </td>
                    <td data-label="max abs" className="num" data-testid={`selftest-${c.id}-maxabs`}>
                      {fmtErr(r?.maxAbs)}
                    </td>
                    <td data-label="max rel" className="num">
                      {fmtErr(r?.maxRel)}
                    </td>
                    <td data-label="time" className="num">
                      {r?.gpuMs !== undefined ? `${r.gpuMs.toFixed(1)} ms` : '—'}
                      {r?.gflops !== undefined && <div className="muted small">{r.gflops.toFixed(2)} GFLOP/s</div>}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          ))}
        </table>
      </div>
    </section>
  );
}
