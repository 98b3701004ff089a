// Reading the app's per-answer stats table (src/ui/Chat.tsx: one row per figure, its name in th, its value in td).
// Durations are written "850 ms" below 10 s and "12.3 s" from there on; rates below 10 tokens/s with two
// significant digits.

/** The first duration in a stats cell, in ms (NaN when there is none). */
export function durationMs(cell: string | undefined): number {
  const m = /(\d+(?:\.\d+)?)\s*(ms|s)\b/.exec(cell ?? '');
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

/** The decode rate in a stats cell ("6 tokens in 12.3 s: 0.49 tokens/s, 2.0 s per token (stopped by …)"). */
export function tokensPerSecond(cell: string | undefined): number {
  const m = /(\d+(?:\.\d+)?(?:e[-+]?\d+)?) tokens\/s/.exec(cell ?? '');
  return m ? Number(m[1]) : NaN;
}
