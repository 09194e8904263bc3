import { describe, expect, it } from 'vitest';
import { MAX_RANGES, SeqRanges } from './seq-ranges.js';

describe('SeqRanges', () => {
  it('merges neighbours and reports repeats', () => {
    const r = new SeqRanges();
    for (const s of [5, 7, 6, 1, 2, 3]) expect(r.add(s)).toBe(true);
    expect(r.toJSON()).toEqual([1, 3, 5, 7]);
    expect(r.add(4)).toBe(true);
    expect(r.toJSON()).toEqual([1, 7]);
    for (const s of [1, 4, 7]) expect(r.add(s)).toBe(false);
    expect(r.has(0)).toBe(false);
    expect(r.has(8)).toBe(false);
  });

  it('agrees with a Set on random input', () => {
    const r = new SeqRanges();
    const set = new Set<number>();
    let x = 12345;
    for (let i = 0; i < 5000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      const s = x % 100; // at most 50 ranges: under the bound
      expect(r.add(s)).toBe(!set.has(s));
      set.add(s);
    }
    for (let s = 0; s < 100; s++) expect(r.has(s)).toBe(set.has(s));
    expect(SeqRanges.parse(JSON.stringify(r)).toJSON()).toEqual(r.toJSON());
  });

  it('stays bounded by forgetting the lowest ranges', () => {
    const r = new SeqRanges();
    for (let i = 0; i < MAX_RANGES + 10; i++) r.add(i * 2);
    expect(r.rangeCount).toBe(MAX_RANGES);
    expect(r.has((MAX_RANGES + 9) * 2)).toBe(true);
    expect(r.has(0)).toBe(false);
  });
});
