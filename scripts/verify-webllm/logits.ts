// Comparing the first answer token's logits (logits0) of two engines on the same input: the app reports each
// answer's highest logits with `?logits=K` (data-top-logits0). A turn whose first tokens differ is explained when
// logits0 agree within the tolerance and the two tokens are tied within it: then which one wins is rounding.
import type { TopLogit } from '../../src/engine/conversation.ts';

/** Relative tolerance for logits0 of two f32 engines (the bar). */
export const LOGITS0_RTOL = 1e-3;

export interface Logits0Comparison {
  /** Ids in both engines' top lists. */
  common: number;
  /** max |a - b| / max(|a|, |b|) over those ids. */
  maxRelDiff: number;
  /** The first tokens differ, and each engine ranks the other's token within the tolerance of its own. */
  tie: boolean;
  /** Each engine's own first token's margin over the other's token, relative (NaN when a token is not in a list). */
  margins: [number, number];
}

const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30);

export function compareLogits0(a: readonly TopLogit[], b: readonly TopLogit[], rtol = LOGITS0_RTOL): Logits0Comparison {
  const inB = new Map(b.map((t) => [t.id, t.logit]));
  let common = 0;
  let maxRelDiff = 0;
  for (const t of a) {
    const other = inB.get(t.id);
    if (other === undefined) continue;
    common++;
    maxRelDiff = Math.max(maxRelDiff, rel(t.logit, other));
  }
  const inA = new Map(a.map((t) => [t.id, t.logit]));
  const [x, y] = [a[0]?.id, b[0]?.id];
  const margin = (own: Map<number, number>, mine: number | undefined, theirs: number | undefined) =>
    mine === undefined || theirs === undefined || !own.has(theirs) ? NaN : rel(own.get(mine)!, own.get(theirs)!);
  const margins: [number, number] = [margin(inA, x, y), margin(inB, y, x)];
  const tie = x !== y && margins.every((m) => m <= rtol) && maxRelDiff <= rtol;
  return { common, maxRelDiff, tie, margins };
}

/** Logits as the log shows them: "id:logit" for the first n. */
export function formatTop(top: readonly TopLogit[] | undefined, n = 4): string {
  return top?.length ? top.slice(0, n).map((t) => `${t.id}:${t.logit.toFixed(5)}`).join(' ') : 'n/a';
}
