// Where each prompt id's row lands in the LLM input (spec sections 5 and 7): text rows keep their order, and the
// s-th <image> slot (id -200) is replaced by the vision rows of its visual: C^2 rows per image, T * C^2 for a video
// of T frames. Pure bookkeeping shared by the GPU assembly and multi-turn cache reuse.
import { IMAGE_TOKEN_INDEX } from '../text/image-tokens.ts';

export type LlmSegment =
  /** Prompt ids [from, to) are text: LLM rows [llmRow, llmRow + to - from) are their fused rows. */
  | { kind: 'text'; from: number; to: number; llmRow: number }
  /** The <image> slot at prompt index `at` holds visual `slot`: `rows` LLM rows from llmRow. */
  | { kind: 'vision'; at: number; slot: number; llmRow: number; rows: number };

export interface LlmLayout {
  segments: LlmSegment[];
  /** LLM input rows before truncation. */
  rows: number;
}

/** The layout of `ids` when slot s holds visionRowsPerSlot[s] rows. */
export function llmLayout(ids: readonly number[], visionRowsPerSlot: readonly number[]): LlmLayout {
  const segments: LlmSegment[] = [];
  let row = 0;
  let from = 0;
  let slot = 0;
  const closeText = (to: number) => {
    if (to > from) segments.push({ kind: 'text', from, to, llmRow: row });
    row += to - from;
  };
  ids.forEach((id, i) => {
    if (id !== IMAGE_TOKEN_INDEX) return;
    closeText(i);
    const rows = visionRowsPerSlot[slot];
    if (rows === undefined) throw new Error(`LLM input: the prompt has more <image> slots than the ${visionRowsPerSlot.length} visual(s) given`);
    segments.push({ kind: 'vision', at: i, slot, llmRow: row, rows });
    row += rows;
    slot++;
    from = i + 1;
  });
  closeText(ids.length);
  if (slot !== visionRowsPerSlot.length) throw new Error(`LLM input: the prompt has ${slot} <image> slot(s) for ${visionRowsPerSlot.length} visual(s)`);
  return { segments, rows: row };
}

/** The LLM row where prompt id `index` starts (index = ids.length: the end of the prompt). */
export function llmRowOf(layout: LlmLayout, index: number): number {
  for (const s of layout.segments) {
    if (s.kind === 'text' && index < s.to) return s.llmRow + Math.max(0, index - s.from);
    if (s.kind === 'vision' && index <= s.at) return s.llmRow;
  }
  return layout.rows;
}

/** Length of the common prefix of two id lists. */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}
