// The sidebar's conversations grouped by when they were last written to, as chat apps list them: Today,
// Yesterday, Previous 7 days, Previous 30 days, then one group per month. Days are the user's local days.
import type { ConversationEntry } from './chat-db.ts';

export interface ConversationGroup {
  label: string;
  conversations: ConversationEntry[];
}

/** The label of the group a conversation last written at `at` falls in, seen at `now`. */
export function ageLabel(at: number, now: Date, locale?: string): string {
  // Local midnights by the calendar, so that a daylight-saving change does not shift a day's bounds.
  const midnight = (daysAgo: number) => new Date(now.getFullYear(), now.getMonth(), now.getDate() - daysAgo).getTime();
  if (at >= midnight(0)) return 'Today'; // a clock set back counts as today
  if (at >= midnight(1)) return 'Yesterday';
  if (at >= midnight(7)) return 'Previous 7 days';
  if (at >= midnight(30)) return 'Previous 30 days';
  return new Date(at).toLocaleDateString(locale, { month: 'long', year: 'numeric' });
}

/** The entries in their order (most recent first), grouped by ageLabel; groups in the order they first appear. */
export function groupByAge(entries: readonly ConversationEntry[], now: Date, locale?: string): ConversationGroup[] {
  const groups = new Map<string, ConversationEntry[]>();
  for (const c of entries) {
    const label = ageLabel(c.updatedAt, now, locale);
    groups.set(label, [...(groups.get(label) ?? []), c]);
  }
  return [...groups].map(([label, conversations]) => ({ label, conversations }));
}
