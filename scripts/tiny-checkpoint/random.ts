// Small deterministic PRNG (mulberry32) + Box-Muller normals. Same seed -> same numbers on every platform
// running V8 (Math.log/sqrt/sin/cos are deterministic there).
import { mulberry32 } from '../../src/util/seeded-random.ts';

/** FNV-1a over a string, mixed with a seed: an independent stream per tensor name. */
export function hashSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ (seed >>> 0)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32)
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export class Rng {
  /** Uniform in [0, 1), 32 bits. */
  readonly uniform: () => number;
  constructor(seed: number) {
    this.uniform = mulberry32(seed);
  }

  /** Fill `out` with mean + std * N(0, 1). */
  fillNormal(out: Float32Array, mean: number, std: number): Float32Array {
    const n = out.length;
    let i = 0;
    while (i < n) {
      const u1 = 1 - this.uniform(); // (0, 1]
      const u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(u1));
      const a = 2 * Math.PI * u2;
      out[i++] = mean + std * r * Math.cos(a);
      if (i < n) out[i++] = mean + std * r * Math.sin(a);
    }
    return out;
  }
}
