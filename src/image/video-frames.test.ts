import { describe, expect, it } from 'vitest';
import { nominalFrameRate, sampleFrameIndices } from './video-frames.ts';

// Expected values are worked out by hand from the reference (get_seq_frames in LLaVA-Mini's
// llavamini/eval/run_llava_mini.py): num_frm = min(N, N // fps), s = (N-1)/num_frm,
// frame i = (round(s*i) + round(s*(i+1))) // 2 with np.round (halves to even).
describe('sampleFrameIndices', () => {
  it('90 frames at 30 fps: 3 frames', () => {
    // s = 89/3 = 29.67: rounds 0, 30, 59, 89 -> (0+30)//2, (30+59)//2, (59+89)//2
    expect(sampleFrameIndices(90, 30)).toEqual([15, 44, 74]);
  });

  it('a video under 1 s gives one frame, the middle one (the reference divides by zero)', () => {
    expect(sampleFrameIndices(10, 30)).toEqual([4]); // (0 + 9) // 2
    expect(sampleFrameIndices(29, 30)).toEqual([14]);
    expect(sampleFrameIndices(1, 30)).toEqual([0]);
    expect(sampleFrameIndices(1, 0.5)).toEqual([0]);
  });

  it('rounds halves to even like np.round', () => {
    // N=10, fps 2.5: 4 frames, s = 2.25: rounds 0, 2, round(4.5)=4, round(6.75)=7, 9
    // (Math.round would make the third frame (5+7)//2 = 6)
    expect(sampleFrameIndices(10, 2.5)).toEqual([1, 3, 5, 8]);
    // N=2, fps 1: 2 frames, s = 0.5: rounds 0, round(0.5)=0, 1 -> [0, 0]
    expect(sampleFrameIndices(2, 1)).toEqual([0, 0]);
  });

  it('fractional fps', () => {
    // 100 // 29.97 = 3, s = 33: rounds 0, 33, 66, 99
    expect(sampleFrameIndices(100, 29.97)).toEqual([16, 49, 82]);
    // 61 frames at 30000/1001 fps: 2 frames, s = 30: rounds 0, 30, 60
    expect(sampleFrameIndices(61, 30000 / 1001)).toEqual([15, 45]);
  });

  it('uses Python float floor division, not floor of the rounded quotient', () => {
    // 1499 / 14.99 rounds to 100.0 in doubles, but 1499 // 14.99 is 99.0 in Python
    const idx = sampleFrameIndices(1499, 14.99);
    expect(idx).toHaveLength(99);
    // s = 1498/99 = 15.13: rounds 0, 15, 30 -> 7, 22
    expect(idx.slice(0, 2)).toEqual([7, 22]);
    // last: round(s*98) = round(1482.87) = 1483, round(1498) -> (1483+1498)//2
    expect(idx[98]).toBe(1490);
  });

  it('fps under 1: at most one sample per frame, repeats kept as in the reference', () => {
    // 5 // 0.5 = 10, capped to 5; s = 0.8: rounds 0, 1, 2, 2, 3, 4
    expect(sampleFrameIndices(5, 0.5)).toEqual([0, 1, 2, 2, 3]);
  });

  it('a long video: one frame per second', () => {
    // 1 hour at 25 fps: 3600 frames, s = 89999/3600 = 24.9997
    const idx = sampleFrameIndices(90_000, 25);
    expect(idx).toHaveLength(3600);
    expect(idx.slice(0, 3)).toEqual([12, 37, 62]); // rounds 0, 25, 50, 75
    // round(s*3598) = round(89949.0006) = 89949, round(s*3599) = 89974, round(s*3600) = 89999
    expect(idx.slice(-2)).toEqual([89961, 89986]);
    for (let i = 1; i < idx.length; i++) expect(idx[i]).toBeGreaterThan(idx[i - 1]);
  });

  it('rejects bad input', () => {
    expect(() => sampleFrameIndices(0, 30)).toThrow(/frame count must be a positive integer, got 0/);
    expect(() => sampleFrameIndices(-3, 30)).toThrow(/positive integer/);
    expect(() => sampleFrameIndices(2.5, 30)).toThrow(/positive integer, got 2.5/);
    expect(() => sampleFrameIndices(Number.NaN, 30)).toThrow(/positive integer/);
    expect(() => sampleFrameIndices(10, 0)).toThrow(/fps must be a finite number > 0, got 0/);
    expect(() => sampleFrameIndices(10, -1)).toThrow(/fps must be/);
    expect(() => sampleFrameIndices(10, Number.POSITIVE_INFINITY)).toThrow(/fps must be/);
    expect(() => sampleFrameIndices(10, Number.NaN)).toThrow(/fps must be/);
  });

  it('caps the count like the demo server: 100 s at 10 fps with at most 4 frames -> the middles of 4 segments', () => {
    // s = 999 / 4 = 249.75; bounds round to 0, 250, 500, 749, 999 -> middles 125, 375, 624, 874
    expect(sampleFrameIndices(1000, 10, 4)).toEqual([125, 375, 624, 874]);
    expect(sampleFrameIndices(1000, 10, 16)).toHaveLength(16);
    expect(() => sampleFrameIndices(1000, 10, 0)).toThrow(/maxFrames/);
  });
});

describe('nominalFrameRate', () => {
  it('snaps rates measured from float timestamps to the nominal integer or NTSC rate', () => {
    expect(nominalFrameRate(1 / 0.09999999999999998)).toBe(10);
    expect(sampleFrameIndices(30, nominalFrameRate(1 / 0.09999999999999998))).toEqual([5, 14, 24]);
    expect(sampleFrameIndices(30, 1 / 0.09999999999999998)).toHaveLength(2); // why it is needed
    expect(nominalFrameRate(1 / 0.033367)).toBe(30000 / 1001);
    expect(nominalFrameRate(1 / 0.0417)).toBe(24000 / 1001);
    expect(nominalFrameRate(25.01)).toBe(25);
    expect(nominalFrameRate(12.3)).toBe(12.3); // no nominal rate near it: kept
    expect(() => nominalFrameRate(0)).toThrow(/rate > 0/);
  });
});
