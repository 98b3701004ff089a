import { describe, expect, it } from 'vitest';
import { progressText } from './ProgressLine.tsx';

describe('progressText', () => {
  it('says starting until the size is known', () => {
    expect(progressText('demo: Converting', 0, 0, 0.2)).toBe('demo: Converting: starting…');
    expect(progressText('demo: Converting', 0, 0, 0)).toBe('demo: Converting: starting…');
  });

  it('says starting while no byte of a known size has flowed', () => {
    expect(progressText('demo: Downloading', 0, 2048, 0.5)).toBe('demo: Downloading 0 B of 2 KiB, starting…');
  });

  it('gives the rate and the time left once bytes flow', () => {
    expect(progressText('demo: Downloading', 1024, 4096, 1)).toBe('demo: Downloading 1 KiB of 4 KiB, 1 KiB/s, about 3 s left');
  });

  it('counts the rate from the bytes of this session only (a resumed download)', () => {
    // 3 KiB were already stored when it resumed; 1 KiB flowed in 2 s.
    expect(progressText('x', 4096, 8192, 2, 3072)).toBe('x 4 KiB of 8 KiB, 512 B/s, about 8 s left');
  });

  it('shows the bytes without a rate when a resumed download has not moved yet', () => {
    expect(progressText('x', 3072, 8192, 1, 3072)).toBe('x 3 KiB of 8 KiB');
  });

  it('drops the time left when done', () => {
    expect(progressText('x', 4096, 4096, 2)).toBe('x 4 KiB of 4 KiB, 2 KiB/s');
  });
});
