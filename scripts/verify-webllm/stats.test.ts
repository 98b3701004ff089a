import { describe, expect, it } from 'vitest';
import { durationMs, tokensPerSecond } from './stats.ts';

describe('verify:webllm reads the answer stats as the app writes them', () => {
  it('durations in ms or s, the first one in the cell', () => {
    expect(durationMs('850 ms (text pre-fusion 12 ms, then prefill and first token 838 ms)')).toBe(850);
    expect(durationMs('126.4 s (text pre-fusion 1.2 s, then prefill and first token 125.2 s)')).toBeCloseTo(126_400);
    expect(durationMs('12.0 s for 40 new tokens (0 reused from the previous turn)')).toBe(12_000);
    expect(durationMs(undefined)).toBeNaN();
    expect(durationMs('none')).toBeNaN();
  });

  it('the decode rate, not the token count', () => {
    expect(tokensPerSecond('6 tokens in 96.0 s: 0.062 tokens/s, 16.0 s per token (stopped by length)')).toBeCloseTo(0.062);
    expect(tokensPerSecond('8 tokens in 250 ms: 32.0 tokens/s (stopped by stop id)')).toBe(32);
    expect(tokensPerSecond(undefined)).toBeNaN();
  });
});
