import { describe, expect, it } from 'vitest';
import type { Reading } from '../core/reading.js';
import { admit, expire, newReorderState, REORDER_HOLD_MS, REORDER_MAX_PENDING } from './reorder.js';

const T0 = Date.UTC(2026, 0, 5, 10);
const r = (seq: number, receivedAt = T0 + seq * 5000): Reading => ({ deviceId: 'band-1', seq, ts: T0 + seq * 5000, receivedAt });

function feed(seqs: number[], receivedAt?: (seq: number) => number) {
  const st = newReorderState();
  const released: number[] = [];
  const admissions = seqs.map((seq) => {
    const out: Reading[] = [];
    const a = admit(st, r(seq, receivedAt?.(seq)), out);
    released.push(...out.map((x) => x.seq));
    return a;
  });
  return { st, released, admissions };
}

describe('reorder buffer', () => {
  it('passes readings in order straight through and drops duplicates', () => {
    const { released, admissions } = feed([0, 1, 2, 2, 1, 3]);
    expect(released).toEqual([0, 1, 2, 3]);
    expect(admissions).toEqual(['released', 'released', 'released', 'duplicate', 'duplicate', 'released']);
  });

  it('puts a shuffled burst back in seq order', () => {
    const burst = [10, 14, 12, 11, 13, 16, 15];
    const { released } = feed([9, ...burst], () => T0);
    expect(released).toEqual([9, 10, 11, 12, 13, 14, 15, 16]);
  });

  it('gives up on a gap after the hold time of receive time, and then treats the missing reading as late', () => {
    const st = newReorderState();
    const out: Reading[] = [];
    admit(st, r(0, T0), out);
    expect(admit(st, r(2, T0 + 1000), out)).toBe('held');
    expect(admit(st, r(3, T0 + 2000), out)).toBe('held');
    expect(out.map((x) => x.seq)).toEqual([0]);
    admit(st, r(4, T0 + 1000 + REORDER_HOLD_MS), out);
    expect(out.map((x) => x.seq)).toEqual([0, 2, 3, 4]);
    expect(admit(st, r(1, T0 + 40_000), out)).toBe('late');
    expect(admit(st, r(1, T0 + 41_000), out)).toBe('duplicate');
  });

  it('bounds what a gap can hold', () => {
    const seqs = Array.from({ length: REORDER_MAX_PENDING + 5 }, (_, i) => i + 2);
    const { st, released } = feed([0, ...seqs], () => T0);
    expect(st.pending.length).toBeLessThanOrEqual(REORDER_MAX_PENDING);
    expect(released.length).toBeGreaterThan(1);
    expect(released).toEqual([...released].sort((a, b) => a - b));
  });

  it('expires held readings on processing time', () => {
    const { st } = feed([0, 5], () => T0);
    const out: Reading[] = [];
    expire(st, T0 + REORDER_HOLD_MS - 1, out);
    expect(out).toEqual([]);
    expire(st, T0 + REORDER_HOLD_MS, out);
    expect(out.map((x) => x.seq)).toEqual([5]);
  });

  it('keeps its state through a JSON round trip', () => {
    const { st } = feed([0, 1, 3], () => T0);
    const copy = JSON.parse(JSON.stringify(st));
    const out: Reading[] = [];
    admit(copy, r(2, T0), out);
    expect(out.map((x) => x.seq)).toEqual([2, 3]);
  });
});
