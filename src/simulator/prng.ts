/**
 * Seeded randomness for the simulator. Everything a simulated resident does derives from one
 * seed, so a run can be replayed bit for bit and a test can pin down exact readings.
 */

/** mulberry32 (Tommy Ettinger, public domain): 32-bit state, fast, good enough for simulation. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a: turns a device id into a seed, so a device behaves the same on every run. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Combines two integers into a seed (for per-day plans that must not consume the main stream). */
export const mixSeeds = (a: number, b: number): number => hashString(`${a >>> 0}:${b}`);

export class Random {
  private state: number;
  private spare: number | undefined;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next 32 random bits, as an unsigned integer: mulberry32, inlined for the hot loops. */
  uint32(): number {
    const a = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  private next(): number {
    return this.uint32() / 4294967296;
  }

  float(): number {
    return this.next();
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer from lo to hi, both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor((hi - lo + 1) * this.next());
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Box–Muller; keeps the second value of each pair. */
  normal(mean = 0, sd = 1): number {
    let z = this.spare;
    if (z === undefined) {
      const u = 1 - this.next(); // (0, 1]: log(0) would be -Infinity
      const v = this.next();
      const r = Math.sqrt(-2 * Math.log(u));
      z = r * Math.cos(2 * Math.PI * v);
      this.spare = r * Math.sin(2 * Math.PI * v);
    } else {
      this.spare = undefined;
    }
    return mean + sd * z;
  }
}
