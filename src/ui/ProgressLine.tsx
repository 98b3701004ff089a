// A progress bar with what is happening, bytes done of all, the rate and the time left.
import { formatBytes } from '../util/format-bytes.ts';

export interface ProgressLineProps {
  label: string;
  what: string;
  done: number;
  total: number;
  /** performance.now() when the bytes counted from `startBytes` began to flow. */
  startedAt: number;
  startBytes?: number;
  testId: string;
}

export function ProgressLine({ label, what, done, total, startedAt, startBytes = 0, testId }: ProgressLineProps) {
  const seconds = (performance.now() - startedAt) / 1000;
  const rate = seconds > 0 ? Math.max(0, done - startBytes) / seconds : 0;
  const eta = rate > 0 && total > done ? (total - done) / rate : 0;
  return (
    <div role="status" data-testid={testId} data-done={done} data-total={total}>
      <progress max={total || 1} value={done} aria-label={label} />
      <p className="muted">
        {what} {formatBytes(done)} of {formatBytes(total)}, {formatBytes(rate)}/s{eta > 0 ? `, about ${Math.ceil(eta)} s left` : ''}
      </p>
    </div>
  );
}
