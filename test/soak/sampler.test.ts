import { describe, expect, it } from 'vitest';
import { medianSlope, slope } from './sampler.js';

describe('the soak’s memory slope', () => {
  it('follows the trend through spikes that pull least squares off it', () => {
    const xs = Array.from({ length: 240 }, (_, i) => i * 10);
    // 10 MB/h of growth, a 60-s sawtooth of ±50 MB, and a few 300-MB spikes near the end.
    const ys = xs.map((t, i) => 1200 + (10 * t) / 3600 + ((t % 60) - 30) * (50 / 30) + (i > 220 && i % 5 === 0 ? 300 : 0));
    expect(medianSlope(xs, ys) * 3600).toBeCloseTo(10, 0);
    expect(slope(xs, ys) * 3600).toBeGreaterThan(32);
  });

  it('is exact on a line and 0 on a constant', () => {
    expect(medianSlope([0, 1, 2, 3], [5, 7, 9, 11])).toBe(2);
    expect(medianSlope([0, 1, 2], [4, 4, 4])).toBe(0);
  });
});
