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

/**
 * The line under the bar. Until the size is known and the first byte has flowed it says "starting…": "0 B of 0 B,
 * 0 B/s" reads as a stalled download. The rate and time left appear once bytes flow.
 */
export function progressText(what: string, done: number, total: number, seconds: number, startBytes = 0): string {
  const flowed = Math.max(0, done - startBytes);
  if (total <= 0) return `${what}: starting…`;
  const of = `${what} ${formatBytes(done)} of ${formatBytes(total)}`;
  if (flowed === 0 || seconds <= 0) return done === 0 ? `${of}, starting…` : of;
  const rate = flowed / seconds;
  const eta = total > done ? (total - done) / rate : 0;
  return `${of}, ${formatBytes(rate)}/s${eta > 0 ? `, about ${Math.ceil(eta)} s left` : ''}`;
}

export function ProgressLine({ label, what, done, total, startedAt, startBytes = 0, testId }: ProgressLineProps) {
  const seconds = (performance.now() - startedAt) / 1000;
  return (
    <div role="status" data-testid={testId} data-done={done} data-total={total}>
      {/* No value while the size is unknown: an indeterminate bar, not an empty one. */}
      <progress max={total || 1} value={total > 0 ? done : undefined} aria-label={label} />
      <p className="muted">{progressText(what, done, total, seconds, startBytes)}</p>
    </div>
  );
}
