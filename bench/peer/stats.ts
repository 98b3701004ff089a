// Timing statistics for the peer bench: median and spread of repeated runs, and the rotating order that keeps
// any "goes first after the other" effect (caches, clocks, a queue still draining) from favouring one side.

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(samples: readonly number[]): Spread {
  if (samples.length === 0) throw new Error('spread: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

/** The order of `items` in repetition `rep`: rotated left by rep (A B C, B C A, C A B, A B C, ...). */
export function rotation<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** "12.3 ms (11.9-13.0)"; seconds above 10 s. */
export function formatSpread(s: Spread): string {
  const f = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
  return `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
}
