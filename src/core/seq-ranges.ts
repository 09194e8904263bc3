/**
 * The (deviceId, seq) pairs a device has sent, kept as sorted disjoint inclusive ranges.
 * A phone numbers its readings 0, 1, 2, … so a device's history is nearly always a single
 * range, and checking a reading costs a binary search instead of an index insert per reading.
 *
 * Bounded: past MAX_RANGES (a device sending sparse seqs), the lowest ranges are forgotten;
 * a duplicate that old is then appended again, which consumers absorb (DESIGN §3.2: every
 * effect is idempotent on (deviceId, seq)).
 */
export const MAX_RANGES = 64;

export class SeqRanges {
  /** Flat [lo0, hi0, lo1, hi1, …], ascending, ranges neither overlapping nor touching. */
  constructor(private flat: number[] = []) {}

  static parse(json: string): SeqRanges {
    return new SeqRanges(JSON.parse(json) as number[]);
  }

  toJSON(): number[] {
    return this.flat;
  }

  get rangeCount(): number {
    return this.flat.length / 2;
  }

  /** Index of the last range whose lo ≤ seq, or -1. */
  private find(seq: number): number {
    let lo = 0;
    let hi = this.flat.length / 2 - 1;
    let ans = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.flat[mid * 2] <= seq) {
        ans = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return ans;
  }

  has(seq: number): boolean {
    const i = this.find(seq);
    return i >= 0 && seq <= this.flat[i * 2 + 1];
  }

  /** Adds seq; returns false when it was already there. */
  add(seq: number): boolean {
    const f = this.flat;
    const i = this.find(seq);
    if (i >= 0 && seq <= f[i * 2 + 1]) return false;
    const joinsLeft = i >= 0 && f[i * 2 + 1] === seq - 1;
    const joinsRight = i + 1 < f.length / 2 && f[(i + 1) * 2] === seq + 1;
    if (joinsLeft && joinsRight) {
      f[i * 2 + 1] = f[(i + 1) * 2 + 1];
      f.splice((i + 1) * 2, 2);
    } else if (joinsLeft) {
      f[i * 2 + 1] = seq;
    } else if (joinsRight) {
      f[(i + 1) * 2] = seq;
    } else {
      f.splice((i + 1) * 2, 0, seq, seq);
      if (f.length > MAX_RANGES * 2) f.splice(0, f.length - MAX_RANGES * 2);
    }
    return true;
  }
}
