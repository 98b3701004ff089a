// Command-line values shared by the bench scripts.

/** `s` (the value of --flag) as a positive integer, or an Error naming the flag. */
export function positiveArg(flag: string, s: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer, got "${s}"`);
  return n;
}
