import { describe, expect, it } from 'vitest';
import { ageLabel, groupByAge } from './conversation-groups.ts';

// Local times: the groups follow the user's calendar days, not 24-hour windows.
const now = new Date(2026, 11, 7, 9, 30); // 7 December 2026, 09:30
const at = (month: number, day: number, hour = 12) => new Date(2026, month, day, hour).getTime();

describe('conversation groups by age', () => {
  it('labels by local calendar day: today from midnight, yesterday, 7 and 30 days, then the month', () => {
    expect(ageLabel(new Date(2026, 11, 7, 0, 0).getTime(), now)).toBe('Today');
    expect(ageLabel(at(11, 8), now)).toBe('Today'); // a clock set back
    expect(ageLabel(new Date(2026, 11, 6, 23, 59).getTime(), now)).toBe('Yesterday');
    expect(ageLabel(new Date(2026, 11, 6, 0, 0).getTime(), now)).toBe('Yesterday');
    expect(ageLabel(at(11, 5), now)).toBe('Previous 7 days');
    expect(ageLabel(at(10, 30), now)).toBe('Previous 7 days');
    expect(ageLabel(at(10, 29), now)).toBe('Previous 30 days');
    expect(ageLabel(at(10, 7), now)).toBe('Previous 30 days');
    expect(ageLabel(at(10, 6), now, 'en-US')).toBe('November 2026');
    expect(ageLabel(new Date(2025, 0, 15).getTime(), now, 'en-US')).toBe('January 2025');
  });

  it('keeps the list order inside each group and orders groups as they first appear', () => {
    const entries = [
      { id: 'a', title: 'a', updatedAt: at(11, 7, 9) },
      { id: 'b', title: 'b', updatedAt: at(11, 7, 8) },
      { id: 'c', title: 'c', updatedAt: at(11, 3) },
      { id: 'd', title: 'd', updatedAt: at(8, 1) },
      { id: 'e', title: 'e', updatedAt: at(8, 2) },
    ];
    expect(groupByAge(entries, now, 'en-US').map((g) => [g.label, g.conversations.map((c) => c.id)])).toEqual([
      ['Today', ['a', 'b']],
      ['Previous 7 days', ['c']],
      ['September 2026', ['d', 'e']],
    ]);
    expect(groupByAge([], now)).toEqual([]);
  });
});
