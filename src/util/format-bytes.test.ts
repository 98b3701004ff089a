import { describe, expect, it } from 'vitest';
import { formatBytes } from './format-bytes.ts';

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(1073741824)).toBe('1 GiB');
    expect(formatBytes(32768)).toBe('32 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(100)).toBe('100 B');
    expect(formatBytes(4294967292)).toBe('4.0 GiB');
  });
});
